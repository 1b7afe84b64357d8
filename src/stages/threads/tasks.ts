/**
 * What the pool workers can run besides model calls: stateless named tasks and stateful actors
 * (an object kept in one worker across calls). Each returns its value and the buffers to move.
 */
import type { Face } from '../../faces/types.js';
import type { Mask, RgbFrame } from '../../media/frame.js';
import { cropFrame, frameMetrics } from '../../metrics/frame.js';
import { prepareTemporal, TemporalSmoother, type TemporalOptions, type TemporalPrepared } from '../temporal/smoother.js';
import { flowPair } from '../../metrics/flicker.js';
import { peerFlows } from './peer.js';
import { transferable } from '../../workers/pool.js';

export interface TaskResult {
  value: unknown;
  transfer?: ArrayBuffer[];
}

export interface Actor {
  call(method: string, args: any): TaskResult;
}

export interface MetricsTaskArgs {
  out: RgbFrame;
  ref: RgbFrame;
  /** The bicubic "before" frame, when there is one. */
  before?: RgbFrame;
  width: number;
  height: number;
  index: number;
}

export const tasks: Record<string, (args: any) => TaskResult> = {
  /** The temporal smoother's work that does not need its previous output (luma, flow plane, flow pair). */
  'temporal.prepare'(a: { frame: RgbFrame; flowMaxSide: number }): TaskResult {
    const p = prepareTemporal(a.frame, a.flowMaxSide);
    return { value: p, transfer: transferable(p.xL, p.fp.plane) };
  },
  /** PSNR/SSIM of the output (and the "before" frame) against the reference, over the common area. */
  'metrics.frame'(a: MetricsTaskArgs): TaskResult {
    const ref = cropFrame(a.ref, a.width, a.height);
    const after = frameMetrics(cropFrame(a.out, a.width, a.height), ref, a.index);
    const before = a.before ? frameMetrics(cropFrame(a.before, a.width, a.height), ref, a.index) : undefined;
    return { value: { after, before } };
  },
};

export const actorKinds: Record<string, (args: any) => Actor> = {
  /** The temporal stage's recursive smoother of one run (its state is the previous output). */
  temporal(args: { options?: TemporalOptions }): Actor {
    // its two flows per frame run on this worker and a peer at once
    const s = new TemporalSmoother(args.options, { flowPair: (prev, cur) => flowPair(prev, cur, peerFlows) });
    return {
      call(method, a: { frame: RgbFrame; faces?: Face[]; mask?: Mask; base?: RgbFrame; pre?: TemporalPrepared }) {
        if (method === 'reset') {
          s.reset();
          return { value: null };
        }
        if (method !== 'process') throw new Error(`temporal actor: no method ${method}`);
        const r = s.process(a.frame, a.faces, a.mask, a.base, a.pre);
        // the smoother keeps its output as the next frame's reference: send back a copy
        const frame = { width: r.frame.width, height: r.frame.height, data: new Uint8Array(r.frame.data) };
        return { value: { ...r, frame }, transfer: transferable(frame.data) };
      },
    };
  },
};
