/**
 * What the pool workers can run besides model calls: stateless named tasks and stateful actors
 * (an object kept in one worker across calls). Each returns its value and the buffers to move.
 */
import type { Face } from '../faces/types.js';
import type { Mask, RgbFrame } from '../media/frame.js';
import { cropFrame, frameMetrics } from '../metrics/frame.js';
import { TemporalSmoother, type TemporalOptions } from '../stages/temporal.js';
import { transferable } from './pool.js';

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
    const s = new TemporalSmoother(args.options);
    return {
      call(method, a: { frame: RgbFrame; faces?: Face[]; mask?: Mask; base?: RgbFrame }) {
        if (method === 'reset') {
          s.reset();
          return { value: null };
        }
        if (method !== 'process') throw new Error(`temporal actor: no method ${method}`);
        const r = s.process(a.frame, a.faces, a.mask, a.base);
        // the smoother keeps its output as the next frame's reference: send back a copy
        const frame = { width: r.frame.width, height: r.frame.height, data: new Uint8Array(r.frame.data) };
        return { value: { ...r, frame }, transfer: transferable(frame.data) };
      },
    };
  },
};
