/**
 * The `faces` stage: detect (BlazeFace), mesh (468 points), track across frames (ids, gap
 * filling, smoothing) and select the target faces; sets `item.faces` in the coordinates of
 * `item.frame` (the stage runs after upscaling). Frames leave `lookahead` frames late, in order.
 */
import { combineTimings, FaceAnalyzer, zeroTimings } from '../faces/analyzer.js';
import type { Face } from '../faces/types.js';
import type { RgbFrame } from '../media/frame.js';
import { getPool } from '../workers/pool.js';
import { analyzeFacesRemote } from './threads/remote.js';
import { loadIdentity } from '../faces/identity.js';
import { identityTarget, TargetSelector, type TargetSelectorOptions } from '../faces/select.js';
import { FaceTracker } from '../faces/track.js';
import type { Logger } from '../util/log.js';
import { mapOrdered } from './kit.js';
import type { FrameItem, RestoreOptions, Stage, StageReport } from './types.js';
import { usageError } from '../errors.js';
import { checkChoice, skip, willRun, type StageModule } from './module.js';
import type { DeviceRequest } from '../models/session.js';
import { cloneFrame } from '../media/frame.js';

export interface FacesStageContext {
  device?: DeviceRequest;
  log?: Logger;
  /** Tracker smoothing (Gaussian sigma in frames, 0 = off). Default 1.5. */
  smoothing?: number;
  /** Frames held back for gap filling and centred smoothing. Default 4. */
  lookahead?: number;
  minFaceSize?: number;
  /** Which faces later stages get. Default: all. */
  target?: TargetSelectorOptions;
  /**
   * An analyzer to share (e.g. with the identity loader); created when absent. A promise is
   * awaited at the first frame: the frames upstream start while its sessions load.
   */
  analyzer?: FaceAnalyzer | Promise<FaceAnalyzer>;
}

export async function createFacesStage(opts: RestoreOptions, ctx: FacesStageContext = {}): Promise<Stage> {
  const device = ctx.device ?? opts.device ?? 'auto';
  const ready = Promise.resolve(ctx.analyzer ?? FaceAnalyzer.create({ device, minFaceSize: ctx.minFaceSize, log: (m) => ctx.log?.debug(m) }));
  ready.catch(() => undefined); // a failure is the run's error where it is awaited, not an unhandled rejection
  let analyzer: FaceAnalyzer | undefined = ctx.analyzer instanceof FaceAnalyzer ? ctx.analyzer : undefined;
  const tracker = new FaceTracker({ smoothing: ctx.smoothing ?? 1.5, lookahead: ctx.lookahead ?? 4 });
  const selector = new TargetSelector(ctx.target ?? { mode: 'all' });
  let frames = 0, withFaces = 0, faces = 0, interpolated = 0, selected = 0, ms = 0;
  // what the workers' analyzers did (their timings come back with each frame)
  let remote = zeroTimings();
  // with workers, the copy of the frame the worker analysed comes back with its faces: it is the
  // frame before the face stages (item.base), without a second copy on the main thread
  const analyzeInPool = async (frame: RgbFrame, low: RgbFrame | undefined): Promise<{ found: Face[]; copy: RgbFrame }> => {
    const r = (await analyzeFacesRemote(frame, { low, device, minFaceSize: ctx.minFaceSize }))!;
    remote = combineTimings(remote, r.timings);
    return { found: r.faces, copy: r.frame };
  };

  const stage: Stage = {
    name: 'faces',
    get backend() {
      return analyzer ? `mediapipe-onnx:${analyzer.provider}` : 'mediapipe-onnx';
    },
    async *run(input, runCtx) {
      const opened = async (): Promise<FaceAnalyzer> => {
        analyzer ??= await ready;
        return analyzer;
      };
      const held = new Map<number, { item: FrameItem; copy?: RgbFrame }>();
      const pool = getPool();
      const analyzed = mapOrdered(
        input,
        async (item: FrameItem) => {
          const t = performance.now();
          // with workers: the whole analysis (its resizes and crops too) in a worker, several frames at once
          const a = await opened(); // the analyzer's sessions (the workers' too) are ready
          // (detection on the upscale stage's input, the meshes on the upscaled frame)
          const r: { found: Face[]; copy?: RgbFrame } = pool ? await analyzeInPool(item.frame, item.low) : { found: await a.analyze(item.frame, item.low) };
          ms += performance.now() - t;
          return { item, ...r };
        },
        pool ? pool.size + 1 : Math.max(1, opts.concurrency ?? 1),
      );
      const finish = async (index: number, tracked: import('../faces/types.js').Face[]): Promise<FrameItem> => {
        const { item, copy } = held.get(index)!;
        held.delete(index);
        const t = performance.now();
        frames++;
        if (tracked.length) withFaces++;
        faces += tracked.length;
        interpolated += tracked.filter((f) => f.interpolated).length;
        const chosen = await selector.select(item.frame, tracked);
        selected += chosen.length;
        item.faces = chosen;
        if (chosen.length) item.base = copy ?? cloneFrame(item.frame);
        (item.values ??= {}).faces = tracked.length;
        ms += performance.now() - t;
        return item;
      };
      for await (const { item, found, copy } of analyzed) {
        if (runCtx.signal.aborted) return;
        held.set(item.index, { item, copy });
        for (const r of tracker.push(item.index, found)) yield await finish(r.index, r.faces);
      }
      for (const r of tracker.flush()) yield await finish(r.index, r.faces);
    },
    report(): StageReport {
      const tm = combineTimings(analyzer?.timings ?? zeroTimings(), remote);
      // (no analyzer when no frame reached the stage: its models were never needed)
      const provider = analyzer?.provider ?? 'none';
      const backend = stage.backend;
      const tracks = tracker.summary();
      return {
        name: 'faces',
        backend,
        ran: true,
        reason: `MediaPipe BlazeFace + face mesh converted from npm TFLite to ONNX, on ${analyzer ? provider.toUpperCase() : 'no device (no frame reached the stage)'}`,
        frames,
        ms: Math.round(ms),
        msPerFrame: frames ? +(ms / frames).toFixed(2) : 0,
        facts: { framesWithFaces: withFaces, provider },
        details: {
          framesWithFaces: withFaces,
          framesWithoutFaces: frames - withFaces,
          faces,
          facesInterpolated: interpolated,
          facesSelected: selected,
          target: ctx.target?.mode ?? 'all',
          tracks: tracks.length,
          trackList: tracks,
          targets: selector.decisions(),
          detectMsPerFrame: tm.detectCalls ? +(tm.detectMs / tm.detectCalls).toFixed(2) : 0,
          // detections that ran on the upscale stage's input instead of the upscaled frame
          detectOnInputSize: tm.smallCalls,
          meshMsPerFace: tm.meshCalls ? +(tm.meshMs / tm.meshCalls).toFixed(2) : 0,
          fullRangeCalls: tm.fullRangeCalls,
          rejectedDetections: tm.rejected,
          smoothing: tracker.smoothing,
          lookahead: tracker.lookahead,
          provider,
        },
      };
    },
  };
  return stage;
}

/** Which faces the faces stage works on (`--faces`). */
export const FACES_MODES = ['all', 'largest', 'identity', 'none'] as const;
export type FacesMode = (typeof FACES_MODES)[number];

/**
 * The faces stage's module (src/stages/module.ts). `--faces identity` keeps only the tracks
 * whose face matches the --identity photo (the run's shared descriptor decides).
 */
export const facesStage: StageModule<{ mode: FacesMode }> = {
  name: 'faces',
  key: 'faces',
  flag: '--faces',
  choices: () => ({ builtin: FACES_MODES, families: [], models: [] }),
  plan(opts) {
    const mode = (opts.backends?.faces ?? 'all') as FacesMode;
    checkChoice(facesStage, mode);
    if (mode === 'none') return skip('faces', '--faces none: faces are neither detected nor restored');
    if (mode === 'identity' && !opts.identity?.length) throw usageError('--faces identity needs --identity PHOTO');
    return willRun('faces', 'mediapipe-onnx', `--faces ${mode}`, { mode });
  },
  async open(plan, opts, env) {
    // not awaited unless the identity photo needs it now: the sessions load while frames start
    let analyzer: FaceAnalyzer | Promise<FaceAnalyzer> = env.services.analyzer();
    let target: TargetSelectorOptions = { mode: plan.params.mode === 'largest' ? 'largest' : 'all' };
    if (plan.params.mode === 'identity') {
      const descriptor = await env.services.descriptor();
      analyzer = await analyzer;
      const identity = await loadIdentity(opts.identity!, { analyzer, descriptor, identityFace: opts.identityFace });
      target = identityTarget(identity, descriptor);
    }
    return createFacesStage(opts, { device: env.device, log: env.log, target, analyzer });
  },
};
