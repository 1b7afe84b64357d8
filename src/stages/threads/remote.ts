/**
 * Main-thread handles on work that runs in the pool: the temporal smoother of one run (an
 * actor, since each frame needs the previous output), face analysis and the per-frame scoring task.
 */
import type { Face } from '../../faces/types.js';
import { cloneFrame, type Mask, type RgbFrame } from '../../media/frame.js';
import type { FrameMetrics } from '../../metrics/types.js';
import type { FrameItem } from '../types.js';
import { mapOrdered } from '../kit.js';
import type { TemporalFrameResult, TemporalMotion, TemporalOptions, TemporalPrepared } from '../temporal/smoother.js';
import type { FlowPlane } from '../../metrics/flicker.js';
import { getPool, RemoteActor, transferable } from '../../workers/pool.js';
import type { FacesTaskArgs, MetricsTaskArgs } from './tasks.js';
import type { AnalyzerTimings } from '../../faces/analyzer.js';
import type { DeviceRequest } from '../../models/session.js';

export interface SmootherLike {
  reset(): void | Promise<void>;
  process(frame: RgbFrame, faces?: Face[], mask?: Mask, base?: RgbFrame, pre?: TemporalPrepared): TemporalFrameResult | Promise<TemporalFrameResult>;
}

/** What moves to the actor with a frame: the motion and the region (made for it alone); the luma and flow plane are copied, the next frame's motion reads them. */
const preBuffers = (p?: TemporalPrepared) => [...(p?.motion ? [p.motion.back.u, p.motion.back.v, p.motion.valid] : []), p?.region?.R];
const copyPlane = (fp: FlowPlane): FlowPlane => ({ ...fp, plane: fp.plane.slice() });

/**
 * The temporal smoother in a worker, or undefined with --workers 0. `frame`'s buffer moves to
 * the worker (the caller replaces it with the result), unless it is shared with `keep`.
 */
export async function remoteSmoother(options: TemporalOptions | undefined): Promise<
  | (SmootherLike & {
      close(): Promise<void>;
      /**
       * The input with each frame's luma, flow plane, changed region (faces, mask, edit; with
       * `faceExtent`) and motion from the frame before, computed on idle workers, pool size + 1
       * frames ahead: the smoother's flows and region leave the sequential path.
       */
      prepared(input: AsyncIterable<FrameItem>, flowMaxSide: number, faceExtent: number): AsyncIterable<{ item: FrameItem; pre?: TemporalPrepared }>;
    })
  | undefined
> {
  const pool = getPool();
  if (!pool) return undefined;
  // made in the background (a worker may still be starting): the first call waits for it
  const made = RemoteActor.create(pool, 'temporal', { options });
  made.catch(() => undefined); // a failure is the error of the first call
  return {
    reset: async () => (await made).call('reset', {}),
    // `base` (the frame before the face stages) is copied, not moved: the caller may share it
    process: async (frame, faces, mask, base, pre) => (await made).call<TemporalFrameResult>('process', { frame, faces, mask, base, pre }, transferable(frame.data, ...preBuffers(pre))),
    prepared(input, flowMaxSide, faceExtent) {
      let last: Promise<TemporalPrepared> | undefined;
      return mapOrdered(
        input,
        async (item) => {
          // a copy goes: the frame itself moves to the actor later
          const frame = { width: item.frame.width, height: item.frame.height, data: item.frame.data.slice() };
          // the faces, mask and base are copied (the actor gets them again with the frame)
          const region = { faces: item.faces, mask: item.mask, base: item.base, faceExtent };
          const mine = pool.call<TemporalPrepared>({ op: 'task', name: 'temporal.prepare', args: { frame, flowMaxSide, region } }, transferable(frame.data));
          const before = last;
          last = mine;
          const pre = await mine;
          const p = before && (await before);
          if (!p || p.fp!.fw !== pre.fp!.fw || p.fp!.fh !== pre.fp!.fh) return { item, pre };
          const args = { prevL: p.xL.slice(), prevFP: copyPlane(p.fp!), xL: pre.xL.slice(), fp: copyPlane(pre.fp!) };
          const motion = await pool.call<TemporalMotion>({ op: 'task', name: 'temporal.motion', args }, transferable(args.prevL, args.prevFP.plane, args.xL, args.fp.plane));
          return { item, pre: { ...pre, motion } };
        },
        pool.size + 1,
      );
    },
    close: async () => {
      const actor = await made.catch(() => undefined);
      await actor?.free();
    },
  };
}

/** Score one frame (and its "before") against the reference over w x h, in a worker when there is a pool. */
export async function scoreFrameRemote(a: MetricsTaskArgs): Promise<{ after: FrameMetrics; before?: FrameMetrics } | undefined> {
  const pool = getPool();
  if (!pool) return undefined;
  return pool.call({ op: 'task', name: 'metrics.frame', args: a }, transferable(a.out.data, a.ref.data, a.before?.data));
}

/**
 * FaceAnalyzer.analyze in a worker (its letterbox, crops and decoding too, not only the model
 * runs), or undefined with --workers 0. The frame is copied (the caller keeps it); `low`
 * (FrameItem.low) is copied too. The copy comes back as `frame`, the same bytes: a copy of the
 * frame the caller may keep without making another.
 */
export async function analyzeFacesRemote(
  frame: RgbFrame,
  opts: { low?: RgbFrame; device: DeviceRequest; minFaceSize?: number },
): Promise<{ faces: Face[]; timings: AnalyzerTimings; frame: RgbFrame } | undefined> {
  const pool = getPool();
  if (!pool) return undefined;
  const args: FacesTaskArgs = { frame: cloneFrame(frame), low: opts.low, device: opts.device, minFaceSize: opts.minFaceSize };
  return pool.call({ op: 'task', name: 'faces.analyze', args }, transferable(args.frame.data));
}
