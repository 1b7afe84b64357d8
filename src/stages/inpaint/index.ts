/**
 * The inpaint stage: runs first, on the decoded (degraded) input frames. Attaches the hole
 * mask to each item (`item.mask`, input size, 255 = hole) and fills `item.frame`.
 *
 * Backends (`--backend inpaint=NAME`): 'auto' (a model when one is installed: MAT, then
 * LaMa; else 'builtin'), 'mat', 'lama', 'builtin' (temporal propagation along dense flow,
 * then a spatial fill), 'spatial' (PatchMatch exemplar fill), 'harmonic' (membrane fill),
 * 'none'. Mask: `--mask FILE` (image or mask video, white = hole) or `--mask auto`.
 * The stage buffers a bounded window of frames (the temporal radius, and the auto-mask
 * window), so memory depends on the window and the frame size, not on the video length.
 * The mask used is written to <reportDir>/mask.mp4.
 */
import path from 'node:path';
import { createFrame, createMask, maskCoverage, type Mask, type RgbFrame } from '../../media/frame.js';
import { VideoEncoder } from '../../media/encode.js';
import type { VideoInfo } from '../../media/probe.js';
import type { FrameItem, RestoreOptions, RunContext, Stage, StageReport } from '../types.js';
import type { Logger } from '../../util/log.js';
import { skippedStage } from '../kit.js';
import { checkChoice, familiesOf, modelNamesOf, skip, willRun, type StageModule, type StagePlan } from '../module.js';
import { entriesFor } from '../../models/manifest.js';
import { isInstalled, modelStatus } from '../../models/registry.js';
import { RestoreError, usageError } from '../../errors.js';
import { FaceAnalyzer } from '../../faces/analyzer.js';
import { findIdentityFace, readImage } from '../../faces/identity.js';
import type { Face } from '../../faces/types.js';
import { prepareMeshSource, type MeshSource } from '../swap/mesh.js';
import { detectPaintedMask, uniteWithNeighbours } from './auto.js';
import { FaceBank, faceHoleFill, type FaceFillState } from './face.js';
import { harmonicFill } from './harmonic.js';
import { dilateMask, openMaskSource, type MaskSource } from './mask.js';
import { openModelInpainter, type ModelInpainter } from './models.js';
import { spatialFill } from './patchmatch.js';
import { FlowCache, prepareWindowFrame, temporalFill, type WindowFlowJob, type WindowFrame } from './propagate.js';
import type { FlowField } from '../../flow/flow.js';
import { getPool, transferable } from '../../workers/pool.js';
import { analyzeFacesRemote } from '../threads/remote.js';

export const INPAINT_BACKENDS = ['auto', 'mat', 'lama', 'builtin', 'spatial', 'harmonic', 'none'] as const;

export interface InpaintStageContext {
  device: 'auto' | 'cpu' | 'cuda';
  log: Logger;
  video: VideoInfo;
  reportDir: string;
  signal: AbortSignal;
  /**
   * The run's face analyzer, shared with the faces stage (one is made when absent). A promise is
   * awaited where the face prior first needs it (or at once for --identity photos).
   */
  analyzer?: FaceAnalyzer | Promise<FaceAnalyzer>;
}

export interface InpaintTuning {
  /** Temporal radius of `builtin`, frames each side (default 30, lowered to fit `windowBytes`). */
  temporalRadius?: number;
  /** Frames each side that `--mask auto` looks at (default 16). */
  autoRadius?: number;
  /** Memory budget of the frame window (default 384 MiB). */
  windowBytes?: number;
  /** Write <reportDir>/mask.mp4 (default true). */
  writeMask?: boolean;
  /** Fill holes over faces from the person (track frames, identity photo); default true unless --faces none. */
  facePrior?: boolean;
}

/** Resolve 'auto' and aliases to a concrete backend name and, for models, the manifest entry. */
export function resolveInpaintBackend(requested: string | undefined): { backend: string; model?: string; reason: string } {
  const want = (requested ?? 'auto').toLowerCase();
  const entries = entriesFor('inpaint');
  const families = familiesOf('inpaint');
  const installed = (family: string) => entries.find((e) => e.family === family && isInstalled(e));
  if (want === 'auto') {
    for (const fam of families) {
      const e = installed(fam);
      if (e) return { backend: fam, model: e.name, reason: `auto: model ${e.name} is installed` };
    }
    return { backend: 'builtin', reason: `auto: no inpainting model installed (${families.join(', ')}), using the temporal-spatial builtin` };
  }
  if (families.includes(want)) {
    const e = installed(want);
    if (!e) {
      const any = entries.filter((x) => x.family === want);
      throw new RestoreError('model', `inpaint backend ${want}: no ${want} model file installed (${any.map((x) => modelStatus(x).path).join(' or ')})`, {
        hint: `add one with 'restore models add', or use --inpaint builtin`,
      });
    }
    return { backend: want, model: e.name, reason: `requested; model ${e.name}` };
  }
  const byName = entries.find((e) => e.name.toLowerCase() === want);
  if (byName) return { backend: byName.family, model: byName.name, reason: 'requested' };
  if ((INPAINT_BACKENDS as readonly string[]).includes(want)) return { backend: want, reason: 'requested' };
  throw usageError(`unknown inpaint backend '${requested}'`, `use one of ${INPAINT_BACKENDS.join(', ')}`);
}

/** The one line `--mask auto` reports: what it found, or that it found nothing. */
export function autoMaskSummary(frames: number, withHoles: number, meanCoverage: number): string {
  if (!withHoles) return `inpaint: --mask auto found no painted region in ${frames} frames; nothing was filled`;
  return `inpaint: --mask auto found painted regions in ${withHoles} of ${frames} frames (${(meanCoverage * 100).toFixed(2)}% of the frame on average)`;
}

interface Slot {
  index: number;
  /** The frame as it reached this stage, and the decoded input (what the window's fills use). */
  frame: RgbFrame;
  input: RgbFrame;
  /**
   * The item until it is emitted. The window keeps a frame for up to `keepBehind` frames after
   * that, and must not keep the item: later stages hang their full-size frames and planes on it
   * (about 2.5 MB a frame at 480p, 30 frames deep).
   */
  item?: FrameItem;
  mask?: Mask;
  /** `--mask auto`: this frame's own detection (its mask is the union with the neighbours'). */
  raw?: Mask;
  wf?: WindowFrame;
}

export async function createInpaintStage(opts: RestoreOptions, ctx: InpaintStageContext, tuning: InpaintTuning = {}): Promise<Stage> {
  const plan = inpaintStage.plan(opts, ctx.video) as StagePlan<InpaintChoice>;
  if (!plan.run) return skippedStage('inpaint', plan.reason);
  const choice = plan.params;
  const { width, height } = ctx.video;
  const autoMask = opts.mask === 'auto';
  const dilate = opts.maskDilate ?? 0;
  let source: MaskSource | undefined;
  if (!autoMask) source = await openMaskSource(opts.mask!, ctx.video, { dilate, signal: ctx.signal });
  let model: ModelInpainter | undefined;
  if (choice.model) model = await openModelInpainter(choice.model, { device: ctx.device, log: (m) => ctx.log.debug(m) });

  // Per buffered frame: the RGB input, its filled copy, luma (float), masks; flows are kept small.
  const frameBytes = width * height * 13;
  const budget = tuning.windowBytes ?? 384 * 2 ** 20;
  const maxRadius = Math.max(1, Math.floor(budget / frameBytes / 2));
  const temporalRadius = choice.backend === 'builtin' ? Math.min(tuning.temporalRadius ?? 30, maxRadius) : 0;
  if (choice.backend === 'builtin' && temporalRadius < (tuning.temporalRadius ?? 30)) {
    ctx.log.debug(`inpaint: temporal radius lowered to ${temporalRadius} frames to keep the window under ${Math.round(budget / 2 ** 20)} MiB`);
  }
  const autoRadius = autoMask ? Math.min(tuning.autoRadius ?? 16, maxRadius) : 0;
  const cache = new FlowCache(undefined);
  // with workers, the fill's flows are computed there, ahead of the fill that needs them
  const pool = choice.backend === 'builtin' ? getPool() : undefined;
  const flowInPool = (job: WindowFlowJob) => pool!.call<FlowField>({ op: 'task', name: 'flow', args: job }, transferable(job.prev, job.next, job.validPrev, job.validNext));
  /** Prefetch both flows between each pair of consecutive frames (by index) of `wfs`. */
  const prefetchFlows = (wfs: WindowFrame[]) => {
    const sorted = [...wfs].sort((x, y) => x.index - y.index);
    for (let k = 1; k < sorted.length; k++) {
      cache.prefetch(sorted[k - 1], sorted[k], flowInPool);
      cache.prefetch(sorted[k], sorted[k - 1], flowInPool);
    }
  };

  // Face prior: holes over a face are filled from the person (src/stages/inpaint/face.ts).
  const usePrior = tuning.facePrior ?? opts.backends?.faces !== 'none';
  let analyzerReady: Promise<FaceAnalyzer> | undefined;
  let identity: MeshSource | undefined;
  if (usePrior) {
    analyzerReady = Promise.resolve(ctx.analyzer ?? FaceAnalyzer.create({ device: ctx.device, log: (m) => ctx.log.debug(m) }));
    analyzerReady.catch(() => undefined); // a failure is the run's error where it is awaited
    for (const file of opts.identity ?? []) {
      const photo = await findIdentityFace(file, await readImage(file), await analyzerReady, opts.identityFace);
      if (photo.face.mesh) { identity = prepareMeshSource(photo.frame, photo.face); break; }
    }
  }
  const bank = new FaceBank();
  let faceStates: { cx: number; cy: number; last: number; state: FaceFillState }[] = [];
  const prior = { frames: 0, facePixels: 0, fromTrack: 0, fromIdentity: 0, rejected: 0 };
  /** `seen`: the hole pixels the generic fill took from other frames (kept by the prior). */
  const priorFill = async (index: number, input: RgbFrame, filled: RgbFrame, mask: Mask, seen?: Mask): Promise<RgbFrame> => {
    if (!analyzerReady) return filled;
    const analyzer = await analyzerReady;
    let faces: Face[];
    try {
      // with workers, the whole analysis runs in one (the models and their pre-processing)
      faces = (await analyzeFacesRemote(filled, { device: ctx.device }))?.faces ?? (await analyzer.analyze(filled));
    } catch (e) {
      ctx.log.debug(`inpaint: face analysis failed on frame ${index}: ${(e as Error).message}`);
      return filled;
    }
    let out = filled;
    faceStates = faceStates.filter((f) => f.last >= index - 1);
    for (const face of faces) {
      if (!face.mesh) continue;
      // the state of the face at this place in the previous frame (same person)
      const cx = face.box.x + face.box.width / 2, cy = face.box.y + face.box.height / 2;
      let st = faceStates.find((f) => f.last === index - 1 && Math.hypot(f.cx - cx, f.cy - cy) < 0.3 * face.box.width);
      if (!st) faceStates.push((st = { cx, cy, last: index, state: {} }));
      Object.assign(st, { cx, cy, last: index });
      const r = faceHoleFill(out, mask, face.mesh, bank.near(face, index), { identity, state: st.state, seen });
      if (r.facePixels) prior.frames++;
      prior.facePixels += r.facePixels;
      if (r.rejected) prior.rejected++;
      else {
        prior.fromTrack += r.fromTrack;
        prior.fromIdentity += r.fromIdentity;
        out = r.frame;
      }
      bank.add(index, input, mask, face);
    }
    return out;
  };

  let ms = 0, frames = 0, coverageSum = 0, holePx = 0, temporalPx = 0, spatialPx = 0, carriedPx = 0, framesWithHoles = 0;
  let lastOut: { index: number; frame: RgbFrame } | undefined;
  const maskFile = path.join(ctx.reportDir, 'mask.mp4');
  let maskEnc: VideoEncoder | undefined;
  let maskWritten = false;

  const fill = async (slot: Slot, window: Slot[]): Promise<RgbFrame> => {
    const generic = await genericFill(slot, window);
    return maskCoverage(slot.mask!) > 0 ? priorFill(slot.index, slot.frame, generic.frame, slot.mask!, generic.seen) : generic.frame;
  };
  /** A slot's frame as the builtin fill's window holds it (made once, when its mask is known). */
  const windowFrame = (s: Slot): WindowFrame => (s.wf ??= prepareWindowFrame(s.index, s.frame, s.mask!));
  const genericFill = async (slot: Slot, window: Slot[]): Promise<{ frame: RgbFrame; seen?: Mask }> => {
    const mask = slot.mask!;
    const frame = slot.frame;
    switch (choice.backend) {
      case 'harmonic':
        return { frame: harmonicFill(frame, mask) };
      case 'spatial':
        return { frame: spatialFill(frame, mask) };
      case 'builtin': {
        const wf = windowFrame(slot);
        const others = window.filter((s) => s !== slot && s.mask).map(windowFrame);
        const previous = lastOut && lastOut.index === slot.index - 1 ? lastOut : undefined;
        if (pool && wf.holes) {
          // the flows of the window that are not known yet, on the workers (at once), then the fill
          prefetchFlows([wf, ...others]);
          await cache.settle();
        }
        const r = temporalFill(wf, others, cache, { radius: temporalRadius, previous });
        holePx += r.holePixels;
        temporalPx += r.temporal;
        spatialPx += r.spatial;
        carriedPx += r.carried;
        lastOut = { index: slot.index, frame: r.frame };
        return { frame: r.frame, seen: r.seen };
      }
      default:
        return { frame: await model!.fill(frame, mask) };
    }
  };

  const stage: Stage = {
    name: 'inpaint',
    backend: choice.model ?? choice.backend,
    async *run(input: AsyncIterable<FrameItem>, _rc: RunContext) {
      const buf: Slot[] = []; // frames kept for the window, in order
      let next = 0; // position in buf of the next frame to emit
      let ended = false;
      const keepBehind = Math.max(temporalRadius, autoRadius);
      // --mask auto with the temporal fill: every frame of the fill's window needs its mask, which
      // needs its own auto-mask window ahead (when the memory budget allows; else the frames
      // ahead without a mask yet are left out of the window)
      const full = temporalRadius + autoRadius + 1;
      // (with the flows on workers and a mask file, 2 frames more: the newest flows of a window are
      // then started 2 frames before the fill needs them; the window itself is the same)
      const lookahead =
        autoMask && temporalRadius && (full + keepBehind + 1) * frameBytes <= budget ? full : Math.max(temporalRadius, autoRadius) + (pool && !autoMask && temporalRadius ? 2 : 0);
      const ensureMask = async (k: number) => {
        const s = buf[k];
        if (s.mask) return;
        if (autoMask) {
          // A static overlay is in the neighbouring frames too: each frame's mask is the union of
          // its own detection and its neighbours' (an I-frame's ringing can hide a paint's edge
          // column in one frame, and a pixel missed once would be copied into the others).
          const raw = (j: number): Mask | undefined => {
            const x = buf[j];
            if (!x) return undefined;
            if (!x.raw) {
              const lo = Math.max(0, j - autoRadius), hi = Math.min(buf.length, j + autoRadius + 1);
              x.raw = detectPaintedMask(buf.slice(lo, hi).map((y) => y.input), j - lo);
            }
            return x.raw;
          };
          const nbs = [k - 1, k + 1].flatMap((j) => (raw(j) ? [{ frame: buf[j].input, mask: raw(j)! }] : []));
          const m = uniteWithNeighbours(s.input, raw(k)!, nbs);
          s.mask = dilate > 0 ? dilateMask(m, dilate) : m;
        }
      };
      const emitOne = async (): Promise<FrameItem> => {
        const t0 = performance.now();
        // Masks of everything the window needs (auto masks need their own look-ahead, already buffered).
        const hiAvail = buf.length - 1;
        const hi = Math.min(hiAvail, next + temporalRadius);
        for (let k = Math.max(0, next - temporalRadius); k <= hi; k++) {
          if (autoMask && !ended && k + autoRadius > hiAvail) continue;
          await ensureMask(k);
        }
        await ensureMask(next);
        const slot = buf[next];
        const window = buf.slice(Math.max(0, next - temporalRadius), hi + 1);
        const filled = await fill(slot, window);
        const item = slot.item!;
        slot.item = undefined;
        item.mask = slot.mask;
        ms += performance.now() - t0;
        frames++;
        const cov = maskCoverage(slot.mask!);
        coverageSum += cov;
        if (cov > 0) framesWithHoles++;
        item.values = { ...item.values, maskCoverage: +cov.toFixed(5) };
        if (tuning.writeMask ?? true) {
          if (!maskEnc) maskEnc = await VideoEncoder.open({ out: maskFile, width, height, fps: ctx.video.fps, crf: 0, preset: 'veryfast', signal: ctx.signal });
          const rgb = createFrame(width, height);
          const md = slot.mask!.data;
          for (let i = 0; i < md.length; i++) rgb.data.fill(md[i], 3 * i, 3 * i + 3);
          await maskEnc.write(rgb);
        }
        item.frame = filled;
        next++;
        // Drop what the window no longer needs.
        const drop = next - keepBehind;
        if (drop > 0) {
          buf.splice(0, drop);
          next -= drop;
        }
        const base = buf[0]?.index ?? item.index;
        cache.keep(base, base + buf.length);
        return item;
      };
      try {
        for await (const item of input) {
          if (item.frame.width !== width || item.frame.height !== height) {
            throw new RestoreError('internal', `inpaint: frame ${item.frame.width}x${item.frame.height} is not the input size ${width}x${height} (inpaint must run first)`);
          }
          const slot: Slot = { index: item.index, frame: item.frame, input: item.input, item };
          if (source) slot.mask = await source.next();
          buf.push(slot);
          // a known mask: this frame's flows with the one before can start now, well before the fill asks
          const before = buf[buf.length - 2];
          if (pool && slot.mask && before?.mask && (maskCoverage(slot.mask) > 0 || maskCoverage(before.mask) > 0)) {
            prefetchFlows([windowFrame(before), windowFrame(slot)]);
          }
          while (buf.length - 1 - next >= lookahead) yield await emitOne();
        }
        ended = true;
        while (next < buf.length) yield await emitOne();
        if (autoMask) ctx.log.info(autoMaskSummary(frames, framesWithHoles, frames ? coverageSum / frames : 0));
        if (maskEnc) {
          await maskEnc.finish();
          maskWritten = true;
        }
      } catch (e) {
        await maskEnc?.abort();
        throw e;
      } finally {
        if (!maskWritten && maskEnc) await maskEnc.abort().catch(() => undefined);
        await source?.close();
      }
    },
    report(): StageReport {
      const facts = { maskCoverage: frames ? +(coverageSum / frames).toFixed(5) : 0, ...(maskWritten ? { maskFile: 'mask.mp4' } : {}) };
      const details: Record<string, unknown> = {
        maskSource: autoMask ? 'auto (detected painted regions)' : `${source?.kind} ${opts.mask}`,
        maskDilate: dilate,
        maskFile: maskWritten ? 'mask.mp4' : null,
        meanCoverage: frames ? +(coverageSum / frames).toFixed(5) : 0,
      };
      if (choice.backend === 'builtin') {
        details.temporalRadius = temporalRadius;
        details.holePixels = holePx;
        details.filledTemporal = holePx ? +(temporalPx / holePx).toFixed(4) : 0;
        details.filledSpatial = holePx ? +(spatialPx / holePx).toFixed(4) : 0;
        details.carriedFromPreviousOutput = holePx ? +(carriedPx / holePx).toFixed(4) : 0;
        details.flows = cache.computed;
        details.flowMsPerFlow = cache.computed ? +(cache.ms / cache.computed).toFixed(2) : 0;
      }
      if (model) {
        details.model = model.name;
        details.provider = model.provider;
        details.modelRuns = model.runs;
      }
      if (usePrior) {
        details.facePrior = {
          identity: identity ? 'photo' : null,
          frames: prior.frames,
          faceHolePixels: prior.facePixels,
          fromTrack: prior.facePixels ? +(prior.fromTrack / prior.facePixels).toFixed(4) : 0,
          fromIdentity: prior.facePixels ? +(prior.fromIdentity / prior.facePixels).toFixed(4) : 0,
          rejectedFrames: prior.rejected,
          references: bank.size,
        };
      }
      if (autoMask) {
        details.autoRadius = autoRadius;
        details.autoFramesWithHoles = framesWithHoles;
        details.autoSummary = autoMaskSummary(frames, framesWithHoles, frames ? coverageSum / frames : 0);
      }
      return {
        name: 'inpaint',
        backend: choice.model ?? choice.backend,
        ran: true,
        reason: choice.reason,
        frames,
        ms: Math.round(ms),
        msPerFrame: frames ? +(ms / frames).toFixed(2) : 0,
        facts: { ...facts, ...(model ? { provider: model.provider } : {}) },
        details,
      };
    },
    async close() {
      await source?.close();
    },
  };
  return stage;
}

export type InpaintChoice = ReturnType<typeof resolveInpaintBackend>;

/**
 * The inpaint stage's module (src/stages/module.ts): built-in fills, or the manifest's inpaint
 * families (MAT, LaMa) and model names. Runs only with --mask (a file, or 'auto').
 */
export const inpaintStage: StageModule<InpaintChoice> = {
  name: 'inpaint',
  key: 'inpaint',
  flag: '--inpaint',
  choices: () => ({ builtin: INPAINT_BACKENDS, families: familiesOf('inpaint'), models: modelNamesOf('inpaint') }),
  plan(opts) {
    checkChoice(inpaintStage, opts.backends?.inpaint);
    if (!opts.mask) return skip('inpaint', 'no --mask given (use --mask FILE or --mask auto)');
    const choice = resolveInpaintBackend(opts.backends?.inpaint);
    if (choice.backend === 'none') return skip('inpaint', 'backend none requested');
    return willRun('inpaint', choice.model ?? choice.backend, choice.reason, choice);
  },
  async open(_plan, opts, env) {
    // the face prior shares the run's analyzer unless faces are off
    // (not awaited here: the first frames are decoded and prepared while its sessions load)
    const analyzer = opts.backends?.faces !== 'none' ? env.services.analyzer() : undefined;
    return createInpaintStage(opts, { device: env.device, log: env.log, video: env.video, reportDir: env.reportDir, signal: env.signal, analyzer });
  },
};
