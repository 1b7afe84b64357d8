/**
 * The super-resolution stage (`upscale`). Backends:
 * - `rdn` (default; embedded): RDN weights from @upscalerjs/esrgan-medium converted to ONNX on
 *   first use (`rdn-slim`: the smaller @upscalerjs/esrgan-slim weights);
 * - `swinir`, `swin2sr`, `realesrgan`: user-supplied ONNX files (models/onnx, see the manifest);
 * - `lanczos`: the classical fallback (sharp's Lanczos-3), named as such in the report.
 * The model runs at its scale (the smallest listed scale that reaches the target, else the
 * largest), tiled with mirrored overlap; the result is resized to the exact target with Lanczos
 * when the target is not that multiple.
 */
import sharp from 'sharp';
import { modelError, usageError } from '../../errors.js';
import type { RgbFrame } from '../../media/frame.js';
import type { Logger } from '../../util/log.js';
import { skippedStage, StageStats } from '../kit.js';
import type { FrameItem, RestoreOptions, Stage } from '../types.js';
import { DEFAULT_COLOUR, type Colour } from '../../media/colour.js';
import { cloneFrame } from '../../media/frame.js';
import { addLuma, lumaFromPlanes, planesForEncode, planesToRgb, type YuvPlanes } from '../../media/planes.js';
import { resampleStream } from '../../media/resample.js';
import { addLumaToRgb, createBackProjector, finishPlanes, lumaOf, neighbourOf, type BackProjectSpec, type Neighbour, type ResampleKernel } from './backproject.js';
import { flowOfJob, type FlowField } from '../../flow/flow.js';
import type { ModelEntry, TilingSpec } from '../../models/manifest.js';
import { entriesFor, isEmbedded } from '../../models/manifest.js';
import { installedModels, modelStatus, openModel, type OpenedModel } from '../../models/registry.js';
import type { DeviceRequest } from '../../models/session.js';
import { ort } from '../../models/session.js';
import { getPool, transferable } from '../../workers/pool.js';
import { runTiled, tileCount, type TileModel, type TileOptions } from './tiling.js';
import { manifestCandidates, upscaleFamilies } from './families.js';

export { runTiled, runTiledFloat, planAxis, mirror, tileCount } from './tiling.js';
export type { TileModel, TileOptions } from './tiling.js';

import type { Size } from '../module.js';
export type { Size };

export interface UpscaleContext {
  device: DeviceRequest;
  log?: Logger;
  /** Exact output size; undefined = input x opts.scale (or no upscaling when neither is set). */
  targetSize: Size | undefined;
  inputSize: Size;
  /** intra-op threads for the model session. */
  threads?: number;
  /** The source's colour (ffmpeg scales in its YUV); BT.709 limited when not given. */
  colour?: Colour;
  /** The source's pixel format (chroma subsampling of the planes ffmpeg scales). */
  pixFmt?: string;
}

/** Backend names the stage accepts (`--upscale-backend` / options.backends.upscale). */
export const UPSCALE_BACKENDS = ['auto', 'rdn', 'rdn-slim', 'swinir', 'swin2sr', 'realesrgan', 'lanczos', 'bicubic', 'none'] as const;

/** Resize packed RGB with sharp's Lanczos-3 (the classical fallback and the exact-size finisher). */
export async function lanczosResize(frame: RgbFrame, width: number, height: number): Promise<RgbFrame> {
  if (frame.width === width && frame.height === height) return frame;
  const { data, info } = await sharp(frame.data, { raw: { width: frame.width, height: frame.height, channels: 3 } })
    .resize(width, height, { kernel: 'lanczos3', fit: 'fill' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** A TileModel over an opened SR model (input/output by contract role 'image'). */
export function tileModelOf(m: OpenedModel): TileModel {
  const c = m.entry.contract;
  const inSpec = m.inputs.image;
  const outSpec = m.outputs.image;
  const range = (r: unknown): [number, number] => (Array.isArray(r) ? (r as [number, number]) : [0, 1]);
  return {
    scale: c.scale ?? 1,
    inRange: range(inSpec.spec.range),
    outRange: range(outSpec.spec.range),
    async run(data, h, w) {
      const feeds: Record<string, ort.Tensor> = { [inSpec.name]: new ort.Tensor('float32', data, [1, 3, h, w]) };
      const res = await m.session.run(feeds, [outSpec.name]);
      const t = res[outSpec.name];
      const out = t.data as Float32Array;
      t.dispose?.();
      return out;
    },
  };
}

export function tileOptionsOf(t: TilingSpec | undefined, override?: Partial<TileOptions>): TileOptions {
  return {
    tile: override?.tile ?? t?.tile ?? 128,
    overlap: override?.overlap ?? t?.overlap ?? 16,
    multiple: override?.multiple ?? t?.multiple ?? 1,
    staticSize: override?.staticSize ?? t?.staticExportSize ?? false,
  };
}

/** Family/size of the models a backend name selects, in preference order. */
function candidates(backend: string): ModelEntry[] {
  const ups = entriesFor('upscale');
  switch (backend) {
    case 'rdn':
      return ups.filter((e) => e.name.startsWith('rdn_medium_'));
    case 'rdn-slim':
      return ups.filter((e) => e.name.startsWith('rdn_slim_'));
    case 'swinir':
      return ups.filter((e) => e.name === 'swinir_x4');
    case 'swin2sr':
      return ups.filter((e) => e.name === 'swin2sr_x4');
    case 'realesrgan':
      return ups.filter((e) => e.family === 'realesrgan');
    default:
      return manifestCandidates(backend);
  }
}

/** The model of a backend whose scale reaches `factor` with the least excess (else the largest). */
export function pickScale(entries: ModelEntry[], factor: number): ModelEntry | undefined {
  const sorted = [...entries].sort((a, b) => (a.contract.scale ?? 1) - (b.contract.scale ?? 1));
  return sorted.find((e) => (e.contract.scale ?? 1) >= factor - 1e-6) ?? sorted[sorted.length - 1];
}

export interface UpscaleChoice {
  backend: string;
  entry?: ModelEntry;
  reason: string;
}

/** Decide which backend runs for `requested` (a name or 'auto'). */
export async function chooseUpscaleBackend(requested: string, factor: number): Promise<UpscaleChoice> {
  if (requested === 'lanczos' || requested === 'bicubic') return { backend: requested, reason: `${requested} requested (ffmpeg's scaler)` };
  if (requested !== 'auto' && requested !== 'auto-best') {
    if (!(UPSCALE_BACKENDS as readonly string[]).includes(requested) && !manifestCandidates(requested).length) {
      throw usageError(`unknown upscale backend '${requested}'`, `use one of ${UPSCALE_BACKENDS.join(', ')}, a model family (${upscaleFamilies().join(', ')}) or a model name`);
    }
    const list = candidates(requested);
    const usable = list.filter((e) => ['installed', 'embedded'].includes(modelStatus(e).state));
    const entry = pickScale(usable, factor);
    if (!entry) {
      const st = list.map(modelStatus)[0];
      throw usageError(`upscale backend '${requested}' has no model installed`, st?.note ?? 'see restore models list');
    }
    return { backend: requested, entry, reason: `${requested} requested` };
  }
  // auto: a user-supplied model when installed, then the embedded RDN, then Lanczos
  // the embedded models only matter to --quality best (their status costs a hash of their weights)
  const installed = await installedModels('upscale', { embedded: requested === 'auto-best' });
  const user = installed.filter((m) => !m.embedded).map((m) => m.entry);
  for (const fam of ['swinir', 'swin2sr', 'realesrgan']) {
    const entry = pickScale(user.filter((e) => candidates(fam).includes(e)), factor);
    if (entry) return { backend: fam, entry, reason: `auto: ${entry.name} is installed` };
  }
  if (requested === 'auto-best') {
    const rrdn = pickScale(installed.filter((m) => m.entry.family === 'rrdn').map((m) => m.entry), factor);
    if (rrdn) return { backend: 'rrdn', entry: rrdn, reason: `--quality best: no user super-resolution model installed; embedded ${rrdn.name} (the only embedded model measured above Lanczos)` };
  }
  // The embedded RDN scored below ffmpeg's Lanczos on real clips (npm run eval), so it is not the default.
  return { backend: 'lanczos', reason: 'auto: no user super-resolution model installed; ffmpeg Lanczos with back-projection (the embedded RDN measured below it on real clips: npm run eval)' };
}

/** What the stage (and `npm run bench`) runs per frame: upscale one frame to the target size. */
export interface Upscaler {
  backend: string;
  /** e.g. 'rdn_medium_x4 (tiled 128/16, 9 tiles) + lanczos to 1280x720' */
  label: string;
  entry?: ModelEntry;
  provider?: string;
  tile?: TileOptions;
  upscale(frame: RgbFrame, signal?: AbortSignal): Promise<RgbFrame>;
  close(): Promise<void>;
}

/** Build an upscaler for a backend choice and a target size (bench calls this directly). */
export async function createUpscaler(
  choice: UpscaleChoice,
  target: Size,
  opts: { device?: DeviceRequest; log?: Logger; threads?: number; tile?: Partial<TileOptions> } = {},
): Promise<Upscaler> {
  if (choice.backend === 'lanczos' || !choice.entry) {
    return {
      backend: 'lanczos',
      label: `lanczos3 to ${target.width}x${target.height} (fallback)`,
      upscale: (f) => lanczosResize(f, target.width, target.height),
      close: async () => undefined,
    };
  }
  const m = await openModel(choice.entry, { device: opts.device ?? 'auto', log: (s) => opts.log?.info(s), threads: opts.threads });
  const tm = tileModelOf(m);
  const tile = tileOptionsOf(choice.entry.contract.tiling, opts.tile);
  // a static-size export (fixed H and W in the file) only runs at that size: tile at it
  const [, , fh, fw] = m.inputs.image.dims;
  if (typeof fh === 'number' && typeof fw === 'number' && fh > 0 && fw > 0) {
    if (fh !== fw) throw modelError(`model ${choice.entry.name} (${m.path}) has a non-square static input ${fw}x${fh}; re-export it square or with dynamic H/W`);
    if (fh <= 2 * tile.overlap) throw modelError(`model ${choice.entry.name} (${m.path}) has a static input of ${fh} px, too small for the ${tile.overlap} px tile overlap`);
    tile.tile = fh;
    tile.staticSize = true;
  }
  return {
    backend: choice.backend,
    label: `${choice.entry.name} (tile ${tile.tile}, overlap ${tile.overlap}) to ${target.width}x${target.height}`,
    entry: choice.entry,
    provider: m.provider,
    tile,
    async upscale(frame, signal) {
      const up = await runTiled(frame, tm, tile, signal);
      return lanczosResize(up, target.width, target.height);
    },
    close: async () => undefined,
  };
}

/** Output size from options: --size wins, else input x --scale; undefined = no upscaling. */
export function upscaleTarget(opts: Pick<RestoreOptions, 'scale' | 'size'>, input: Size): Size | undefined {
  if (opts.size) return { width: opts.size.width, height: opts.size.height };
  if (opts.scale && opts.scale !== 1) return { width: Math.round(input.width * opts.scale), height: Math.round(input.height * opts.scale) };
  return undefined;
}

/** Move face coordinates found at the input size onto the output size (pixel centres on integers). */
function rescaleFaces(item: FrameItem, sx: number, sy: number): void {
  if (!item.faces) return;
  const px = (p: { x: number; y: number }) => ({ x: (p.x + 0.5) * sx - 0.5, y: (p.y + 0.5) * sy - 0.5 });
  for (const f of item.faces) {
    const tl = px(f.box);
    f.box = { x: tl.x, y: tl.y, width: f.box.width * sx, height: f.box.height * sy };
    f.keypoints = f.keypoints.map(px);
    f.five = f.five.map(px);
    if (f.mesh) {
      for (let i = 0; i < f.mesh.length; i += 3) {
        f.mesh[i] = (f.mesh[i] + 0.5) * sx - 0.5;
        f.mesh[i + 1] = (f.mesh[i + 1] + 0.5) * sy - 0.5;
      }
    }
  }
}

/**
 * `--quality`: what `auto` means. `fast` = ffmpeg Lanczos alone; `default` = a model you installed,
 * else Lanczos + back-projection; `best` = a model you installed, else the embedded RRDN
 * (measured +1.2 dB Y over Lanczos on two dev clips, about 80x slower than the default).
 * A backend named with `--upscale` wins.
 */
export const QUALITY_PRESETS = ['fast', 'default', 'best'] as const;
export function backendForQuality(requested: string, quality: string | undefined): string {
  if (requested !== 'auto' || !quality || quality === 'default') return requested;
  if (quality === 'fast') return 'lanczos';
  if (quality === 'best') return 'auto-best';
  throw usageError(`unknown --quality '${quality}'`, `use one of ${QUALITY_PRESETS.join(', ')}`);
}

/** Back-projection iterations a backend gets by default: on for auto and models, off for a classical resampler asked for by name. */
export function defaultBackprojection(requested: string): number {
  return requested === 'lanczos' || requested === 'bicubic' ? 0 : DEFAULT_BACKPROJECT_ITERATIONS;
}

export const DEFAULT_BACKPROJECT_ITERATIONS = 2;

/** Frames whose model run may be in flight at once: one per worker (1 on the main thread). */
export function modelFramesInFlight(): number {
  return getPool()?.size ?? 1;
}
/** Lanczos window of the first estimate that back-projection refines. */
export const BACKPROJECT_LANCZOS_LOBES = 4;
/** Input frames each side that the back-projection matches by default. */
// Measured over 2 s of the three dev clips and three held-out ones (x4 bicubic,
// reports/eval/sr-frames-*.md): ±1 frame keeps the PSNR gain (dev +0.678/+0.287/+0.346 dB vs
// +0.659/+0.302/+0.343) and brings the flicker to about plain Lanczos's (0.81/1.08/0.269 vs
// 0.84/1.16/0.263; without: 0.96/1.18/0.290). Since the start-up and back-projection speed-ups
// the default 480p pipeline keeps 3.05-3.14 fps with it on 2 cores (4.0 without; the bar for a
// default is 3), so it is the default at x4. At x2 it cost PSNR in the full eval (gain over
// Lanczos +0.125 mean / -0.349 worst against +0.221 / -0.088 without; talk-child -0.26 dB):
// below x3 the default stays 0. ±2 frames lowered talk-child's x4 gain to +0.19 dB.
export const DEFAULT_SR_FRAMES = 1;
/** Below this upscale factor the back-projection matches the frame alone by default. */
export const SR_FRAMES_MIN_FACTOR = 3;

/** --sr-frames when it is not given: 1 at x3 and above, 0 below (see DEFAULT_SR_FRAMES). */
export function defaultSrFrames(factor: number): number {
  return factor >= SR_FRAMES_MIN_FACTOR ? DEFAULT_SR_FRAMES : 0;
}


/**
 * The `upscale` stage. Skipped (and says why) when no scale/size is asked for or the backend is
 * 'none'. Every frame is first scaled by ffmpeg's own scaler (Lanczos, or bicubic when asked),
 * in the source's YUV; a model's output then replaces the luma only (its chroma measured worse
 * than ffmpeg's); back-projection makes the luma consistent with the input under the downscale
 * kernel (`--sr-kernel`). The report names the backend, the model, tiles and the provider.
 */
/** What the stage will run, or why it will not: the stage module's plan and the factory both use this. */
export type UpscalePlan = { skip: string } | { requested: string; target: Size; choice: UpscaleChoice };

export async function planUpscale(opts: RestoreOptions, input: Size, targetSize?: Size): Promise<UpscalePlan> {
  const target = targetSize ?? upscaleTarget(opts, input);
  const requested = backendForQuality(opts.backends?.upscale ?? 'auto', opts.quality);
  if (requested === 'none') return { skip: 'upscale backend none requested' };
  if (!target) return { skip: 'no --scale or --size given' };
  if (target.width === input.width && target.height === input.height) return { skip: `output size equals the input size (${target.width}x${target.height})` };
  // the choice reads the manifest and the models folder only: a missing model fails here
  const choice = await chooseUpscaleBackend(requested, Math.max(target.width / input.width, target.height / input.height));
  return { requested, target, choice };
}

export async function createUpscaleStage(opts: RestoreOptions, ctx: UpscaleContext, planned?: UpscalePlan): Promise<Stage> {
  const plan = planned ?? (await planUpscale(opts, ctx.inputSize, ctx.targetSize));
  if ('skip' in plan) return skippedStage('upscale', plan.skip);
  const { requested, target, choice } = plan;
  const classical = !choice.entry;
  const up = classical ? undefined : await createUpscaler(choice, target, { device: ctx.device, log: ctx.log, threads: ctx.threads });
  const kernel = (opts.srKernel ?? 'bicubic') as ResampleKernel;
  const iterations = opts.backproject ?? defaultBackprojection(requested);
  const colour = ctx.colour ?? DEFAULT_COLOUR;
  const bp = iterations > 0 ? createBackProjector(ctx.inputSize, target, { kernel, iterations, matrix: colour.matrix }) : undefined;
  // neighbouring input frames each side that the back-projection also matches (0 = this frame only)
  const sx = target.width / ctx.inputSize.width;
  const sy = target.height / ctx.inputSize.height;
  const radius = bp ? (opts.srFrames ?? defaultSrFrames(Math.min(sx, sy))) : 0;
  const flags = choice.backend === 'bicubic' ? 'bicubic' : 'lanczos';
  // Under back-projection the first estimate is Lanczos with a 4-lobe window (measured +0.03 to
  // +0.09 dB over ffmpeg's default 3 on the three dev clips); a plain `lanczos` stays ffmpeg's own.
  // Embedded models (RDN) measured worse than ffmpeg on chroma: they give the luma only. A model
  // the user brings (SwinIR, Real-ESRGAN, ...) gives all three channels.
  const lumaOnly = !!choice.entry && isEmbedded(choice.entry);
  const param0 = bp && flags === 'lanczos' ? BACKPROJECT_LANCZOS_LOBES : undefined;
  const label = [
    up ? `${up.label}${lumaOnly ? `, luma on ffmpeg ${flags} chroma` : ''}` : `ffmpeg ${flags}${param0 ? ` (${param0} lobes)` : ''} to ${target.width}x${target.height}`,
    ...(bp ? [`back-projection x${iterations} (${kernel} kernel${radius ? `, ±${radius} frames` : ''})`] : []),
  ].join(' + ');
  ctx.log?.info(`upscale: ${label}${up?.provider ? ` on ${up.provider.toUpperCase()}` : ''}`);
  const stats = new StageStats();
  let residual = 0;
  const backend = up?.entry ? `${up.backend}:${up.entry.name}` : flags;
  return {
    name: 'upscale',
    backend: bp ? `${backend}+backproject` : backend,
    async *run(input, runCtx) {
      // The decoder kept the stored planes (all frames or none): scale those, with what the
      // stages before changed merged in, so ffmpeg scales exactly what it would scale itself.
      const it = input[Symbol.asyncIterator]();
      const head = await it.next();
      if (head.done) return;
      const inputPlanes = head.value.planes?.planes.format;
      async function* all(): AsyncGenerator<FrameItem> {
        yield head.value;
        for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
      }
      const scaled = resampleStream(
        all(),
        { from: ctx.inputSize, to: target, flags, param0, colour, pixFmt: ctx.pixFmt, inputPlanes },
        (item) => (inputPlanes ? { data: planesForEncode(item.planes!, item.frame, colour) } : item.frame),
        (item, planes) => {
          item.low = item.frame; // the input-size frame: the model's input, and the faces stage detects on it
          item.planes = { planes, rgb: item.frame };
        },
        { signal: runCtx.signal },
      );
      // Frames wait for `radius` frames after them: the back-projection also uses their inputs.
      interface Pending {
        item: FrameItem;
        lr: RgbFrame;
        ylr: Float32Array;
        /** A model's full RGB output (models you bring); else the planes carry the estimate. */
        frame?: RgbFrame;
      }
      const window: Pending[] = [];
      // flows between input frames (input size), each pair once; with workers, computed there
      // as soon as both frames are in the window
      const flows = new Map<string, FlowField | Promise<FlowField>>();
      const pool = getPool();
      const pooled = !!pool;
      // a model's full RGB output is corrected on this thread, and so are its flows
      const flowsOnPool = pooled && !(up && !lumaOnly);
      const flowBetween = (a: Pending, b: Pending): FlowField | Promise<FlowField> => {
        const key = `${a.item.index}:${b.item.index}`;
        let f = flows.get(key);
        if (!f) {
          const job = { prev: a.ylr, next: b.ylr, width: ctx.inputSize.width, height: ctx.inputSize.height };
          f = flowsOnPool ? pool!.call<FlowField>({ op: 'task', name: 'flow', args: job }) : flowOfJob(job);
          flows.set(key, f);
        }
        return f;
      };
      // on this thread (a model's RGB output, or no workers)
      const flowHere = (a: Pending, b: Pending): FlowField => {
        const f = flowBetween(a, b);
        if (f instanceof Promise) throw new Error('upscale: a pooled flow was asked for on the main thread');
        return f;
      };
      const neighbourHere = (n: Pending, p: Pending): Neighbour => neighbourOf(n.ylr, flowHere(n, p), flowHere(p, n), target);
      const finish = (k: number): FrameItem | Promise<FrameItem> => {
        const p = window[k];
        const { item } = p;
        const planes = item.planes!.planes;
        const near: Pending[] = [];
        if (bp) for (let j = Math.max(0, k - radius); j <= Math.min(window.length - 1, k + radius); j++) if (j !== k) near.push(window[j]);
        if (!p.frame) {
          const done = (rgb: RgbFrame, frame: RgbFrame, err: number, out: YuvPlanes) => {
            residual += err;
            item.planes = { planes: out, rgb };
            item.frame = frame;
            rescaleFaces(item, sx, sy);
            return item;
          };
          if (pooled) {
            // in a worker, several frames at once (the planes go there and come back; with
            // neighbour frames, their input lumas and input-size flows go too)
            const spec: BackProjectSpec | undefined = bp ? { from: ctx.inputSize, to: target, kernel, iterations, matrix: colour.matrix } : undefined;
            const ylr = p.ylr;
            // (both flows asked for now: the window may slide before they are done)
            const pairs = near.map((n) => [n.ylr, flowBetween(n, p), flowBetween(p, n)] as const);
            return Promise.all(pairs.map(async ([nylr, to, from]) => ({ ylr: nylr, toFrame: await to, fromFrame: await from })))
              .then((nb) =>
                // a frame's input luma is still needed by the frames after it when they match neighbours
                pool!.call<{ planes: YuvPlanes; rgb: RgbFrame; frame: RgbFrame; err: number }>(
                  { op: 'task', name: 'upscale.finish', args: { planes, ylr, colour, bp: spec, ...(nb.length ? { near: nb } : {}) } },
                  radius === 0 ? transferable(ylr) : [],
                ),
              )
              .then((r) => done(r.rgb, r.frame, r.err, r.planes));
          }
          const r = finishPlanes(planes, p.ylr, colour, bp, near.map((n) => neighbourHere(n, p)));
          return done(r.rgb, cloneFrame(r.rgb), r.err, planes);
        }
        // a model's full RGB output (models you bring): corrected here
        if (bp) {
          // (a model's output is not pooled: its flows were computed here)
          const neighbours = near.map((n) => neighbourHere(n, p));
          const { delta, err } = bp.lumaDelta(lumaOf(p.frame, colour.matrix), p.ylr, neighbours);
          addLumaToRgb(p.frame, delta);
          residual += err;
        }
        // The RGB the planes stand for; the encoder writes the planes where no later stage changed it.
        item.planes = { planes, rgb: planesToRgb(planes, colour) };
        item.frame = p.frame;
        rescaleFaces(item, sx, sy);
        return item;
      };
      const slide = () => {
        const gone = window.shift()!;
        for (const key of [...flows.keys()]) if (key.split(':').includes(String(gone.item.index))) flows.delete(key);
      };
      // The model runs for up to `ahead` frames at once (one per worker: each worker session has
      // a share of the cores, so one frame at a time would leave the others idle).
      const ahead = up ? modelFramesInFlight() : 1;
      const inFlight: { item: FrameItem; lr: RgbFrame; out?: Promise<RgbFrame> }[] = [];
      const start = (item: FrameItem) => {
        const lr = item.low!;
        const out = up?.upscale(lr, runCtx.signal);
        out?.catch(() => undefined); // awaited in order below
        inFlight.push({ item, lr, out });
      };
      const take = async () => {
        const { item, lr, out } = inFlight.shift()!;
        await stats.time(async () => {
          const planes = item.planes!.planes;
          let frame: RgbFrame | undefined;
          if (out) {
            const m = await out;
            if (lumaOnly) {
              // the model's luma onto ffmpeg's planes
              const yl = lumaFromPlanes(planes, colour);
              const ym = lumaOf(m, colour.matrix);
              for (let i = 0; i < ym.length; i++) ym[i] -= yl[i];
              addLuma(planes, ym, colour);
            } else frame = m;
          }
          const entry: Pending = { item, lr, ylr: lumaOf(lr, colour.matrix), frame };
          window.push(entry);
          // the flows to and from the frames before it, started now (on the pool: ahead of their use)
          if (flowsOnPool && bp) for (let j = Math.max(0, window.length - 1 - radius); j < window.length - 1; j++) {
            // (a failure surfaces where the flow is awaited, in the frame's finish)
            for (const f of [flowBetween(window[j], entry), flowBetween(entry, window[j])]) if (f instanceof Promise) f.catch(() => undefined);
          }
        });
        // the frame `radius` back now has all its neighbours
        const k = window.length - 1 - radius;
        if (k < 0) return undefined;
        // (wrapped: an async function would wait for a pooled finish's promise)
        const done = pooled ? finish(k) : await stats.time(() => finish(k));
        stats.frames++;
        if (k >= radius) slide();
        return { done };
      };
      // pooled finishes run pool size + 1 frames at once; frames still leave in order
      const finishing: Promise<FrameItem>[] = [];
      const depth = pooled ? pool!.size + 1 : 0;
      try {
        for await (const item of scaled) {
          start(item);
          if (inFlight.length < ahead) continue;
          const t = await take();
          if (t) finishing.push(Promise.resolve(t.done));
          while (finishing.length > depth) yield await finishing.shift()!;
        }
        while (inFlight.length) {
          const t = await take();
          if (t) finishing.push(Promise.resolve(t.done));
        }
        while (finishing.length) yield await finishing.shift()!;
      } finally {
        // an abort or a failure: let the runs still in flight end before the stage closes
        await Promise.allSettled([...inFlight.map((f) => f.out), ...finishing]);
      }
      // the last frames: fewer neighbours after them
      for (let k = Math.max(0, window.length - radius); k < window.length; k++) {
        const done = await stats.time(() => finish(k));
        stats.frames++;
        yield done;
      }
    },
    report: () =>
      stats.report({
        name: 'upscale',
        backend: bp ? `${backend}+backproject` : backend,
        ran: true,
        reason: choice.reason,
        facts: { provider: up?.provider ?? 'cpu' },
        details: {
          model: up?.entry?.name ?? null,
          label,
          provider: up?.provider ?? 'cpu',
          input: `${ctx.inputSize.width}x${ctx.inputSize.height}`,
          output: `${target.width}x${target.height}`,
          resampler: `ffmpeg ${flags}`,
          chroma: up && !lumaOnly ? 'model' : `ffmpeg ${flags}`,
          backprojection: bp ? { iterations, kernel, neighbourFrames: radius, meanAbsResidual: stats.frames ? +(residual / stats.frames).toFixed(3) : 0 } : null,
          ...(up?.tile ? { tile: up.tile, tilesPerFrame: tileCount(ctx.inputSize.width, ctx.inputSize.height, up.tile) } : {}),
          fallback: classical,
        },
      }),
    close: () => up?.close() ?? Promise.resolve(),
  };
}
