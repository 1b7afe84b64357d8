/**
 * What the pool workers can run besides model calls: stateless named tasks and stateful actors
 * (an object kept in one worker across calls). Each returns its value and the buffers to move.
 */
import type { Face } from '../../faces/types.js';
import { combineTimings, FaceAnalyzer } from '../../faces/analyzer.js';
import type { DeviceRequest } from '../../models/session.js';
import type { Mask, RgbFrame } from '../../media/frame.js';
import { cropFrame, frameMetrics } from '../../metrics/frame.js';
import { prepareTemporal, temporalMotion, TemporalSmoother, type RegionInputs, type TemporalOptions, type TemporalPrepared } from '../temporal/smoother.js';
import { flowPair, type FlowPlane } from '../../metrics/flicker.js';
import { peerFlows } from './peer.js';
import { transferable } from '../../workers/pool.js';
import { cloneFrame } from '../../media/frame.js';
import { flowOfJob, type FlowField, type FlowJob } from '../../flow/flow.js';
import type { Colour } from '../../media/colour.js';
import type { YuvPlanes } from '../../media/planes.js';
import { createBackProjector, finishPlanes, neighbourOf, type BackProjector, type BackProjectSpec } from '../upscale/backproject.js';

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

/** Back-projectors a worker has made, by their spec (the weights are made once per run size). */
const projectors = new Map<string, BackProjector>();
function projectorFor(spec: BackProjectSpec): BackProjector {
  const key = JSON.stringify(spec);
  let bp = projectors.get(key);
  if (!bp) {
    if (projectors.size > 4) projectors.clear();
    bp = createBackProjector(spec.from, spec.to, { kernel: spec.kernel, iterations: spec.iterations, matrix: spec.matrix });
    projectors.set(key, bp);
  }
  return bp;
}

/** The face analyzers this worker has made (its own sessions), by device and minimum face size. */
const analyzers = new Map<string, Promise<FaceAnalyzer>>();

export interface FacesTaskArgs {
  frame: RgbFrame;
  /** The same picture at the input size (FrameItem.low): detection runs on it. */
  low?: RgbFrame;
  device: DeviceRequest;
  minFaceSize?: number;
}

export const tasks: Record<string, (args: any) => TaskResult | Promise<TaskResult>> = {
  /** Detect and mesh the faces of one frame (FaceAnalyzer.analyze, pre-processing included), several frames at once. */
  async 'faces.analyze'(a: FacesTaskArgs): Promise<TaskResult> {
    const key = `${a.device}|${a.minFaceSize ?? ''}`;
    let made = analyzers.get(key);
    if (!made) {
      made = FaceAnalyzer.create({ device: a.device, minFaceSize: a.minFaceSize });
      made.catch(() => analyzers.delete(key));
      analyzers.set(key, made);
    }
    const analyzer = await made;
    const t0 = { ...analyzer.timings };
    const faces = await analyzer.analyze(a.frame, a.low);
    const timings = combineTimings(analyzer.timings, t0, -1);
    // the frame goes back too (unchanged): the faces stage keeps it as the frame before the face stages
    return { value: { faces, timings, provider: analyzer.provider, frame: a.frame }, transfer: transferable(a.frame.data, ...faces.map((f) => f.mesh)) };
  },
  /** One optical flow (the inpaint fill's window, the back-projection's neighbours). */
  flow(j: FlowJob): TaskResult {
    const f = flowOfJob(j);
    return { value: f, transfer: transferable(f.u, f.v) };
  },
  /** The classical upscale's per-frame end (back-projection and RGB conversion), several frames at once. */
  'upscale.finish'(a: { planes: YuvPlanes; ylr: Float32Array; colour: Colour; bp?: BackProjectSpec; near?: { ylr: Float32Array; toFrame: FlowField; fromFrame: FlowField }[] }): TaskResult {
    // neighbouring inputs come with their flows at the input size (small); scaled up here
    const neighbours = a.bp && a.near ? a.near.map((n) => neighbourOf(n.ylr, n.toFrame, n.fromFrame, a.bp!.to)) : [];
    const { rgb, err } = finishPlanes(a.planes, a.ylr, a.colour, a.bp ? projectorFor(a.bp) : undefined, neighbours);
    const frame = cloneFrame(rgb);
    return { value: { planes: a.planes, rgb, frame, err }, transfer: transferable(rgb.data, frame.data, a.planes.y, a.planes.u, a.planes.v) };
  },
  /** The temporal smoother's per-frame work that needs no other frame: luma, flow plane and, with `region`, the changed region. */
  'temporal.prepare'(a: { frame: RgbFrame; flowMaxSide: number; region?: RegionInputs }): TaskResult {
    const p = prepareTemporal(a.frame, a.flowMaxSide, a.region);
    return { value: p, transfer: transferable(p.xL, p.fp!.plane, p.region?.R) };
  },
  /** The motion between two incoming frames (both flows on this worker: several frames run at once). */
  'temporal.motion'(a: { prevL: Float32Array; prevFP: FlowPlane; xL: Float32Array; fp: FlowPlane }): TaskResult {
    const m = temporalMotion(a.prevL, a.prevFP, a.xL, a.fp);
    return { value: m, transfer: transferable(m.back.u, m.back.v, m.valid) };
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
