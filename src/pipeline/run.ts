/**
 * One restore run: probe → decode (streamed) → stages → encode (temp name, renamed when whole)
 * → metrics against the reference (lock-step decode) → report.json, frames.csv, report.html.
 */
import { promises as fs, constants as fsc, readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { decodeFrames } from '../media/decode.js';
import { ensureWritableDir, removeStalePartials, VideoEncoder, writeFileAtomic } from '../media/encode.js';
import { cloneFrame, type RgbFrame } from '../media/frame.js';
import { probeVideo, rationalValue, type VideoInfo } from '../media/probe.js';
import { colourDifferences, describeColour } from '../media/colour.js';
import { ffmpegScores, roundScores } from '../metrics/ffmpeg.js';
import { summarize } from '../metrics/frame.js';
import { scoreFrame } from '../metrics/compare.js';
import { configureWorkers } from '../workers/pool.js';
import { runStages } from './chain.js';
import type { FrameMetrics } from '../metrics/types.js';
import { packageRoot } from '../util/paths.js';
import { setNativeLogging } from '../models/session.js';
import { stageRunReports } from '../report/write.js';
import type { RunReport, Thumbnail, VideoSummary } from '../report/types.js';
import { inputError, RestoreError, usageError } from '../errors.js';
import { createLogger, type Logger } from '../util/log.js';
import { buildStages, type StageBuildContext } from './plan.js';
import { validateModelChoices, validateOptionValues, validateOutputTarget } from './validate.js';
import type { FrameItem, RestoreOptions, Stage, StageReport } from '../stages/types.js';
import type { Box } from '../faces/types.js';

export interface RunHooks {
  signal?: AbortSignal;
  onProgress?(p: { done: number; total: number; fps: number; phase?: string }): void;
  log?: Logger;
}

export interface RunResult {
  report: RunReport;
  out: string;
  reportDir: string;
  files: { json: string; csv: string; html: string };
}

export const toolVersion: string = (() => {
  try {
    return JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')).version as string;
  } catch {
    return '0.0.0';
  }
})();

/** Options with the defaults a user gets from the CLI. */
export function defaultOptions(given: Partial<RestoreOptions> & { input: string }): RestoreOptions {
  // An option passed as undefined (not given on the command line) keeps its default.
  const partial = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) as typeof given;
  const base = path.basename(partial.input, path.extname(partial.input));
  const reportDir = partial.reportDir ?? path.join('reports', base);
  return {
    out: partial.out ?? path.join(reportDir, `${base}.restored.mp4`),
    reportDir,
    crf: 18,
    preset: 'medium',
    device: 'auto',
    backends: {},
    concurrency: 2,
    thumbnails: 3,
    json: false,
    quiet: false,
    progress: true,
    ...partial,
  } as RestoreOptions;
}

async function assertReadable(file: string, what: string): Promise<void> {
  try {
    const st = await fs.stat(file);
    if (!st.isFile()) throw inputError(`${file}: ${what} is not a file`);
    await fs.access(file, fsc.R_OK);
  } catch (e: any) {
    if (e instanceof RestoreError) throw e;
    throw inputError(`${file}: ${what} ${e?.code === 'ENOENT' ? 'not found' : `cannot be read (${e?.code ?? e})`}`);
  }
}

const fpsString = (v: VideoInfo) => (v.fps.den === 1 ? `${v.fps.num}` : `${v.fps.num}/${v.fps.den}`);

function summaryOf(v: VideoInfo): VideoSummary {
  return {
    path: v.path,
    width: v.width,
    height: v.height,
    fps: fpsString(v),
    frames: v.frameCount,
    duration: +v.duration.toFixed(3),
    rotation: v.rotation,
    vfr: v.vfr,
    audioStreams: v.audio.length,
  };
}

function pickThumbIndices(total: number, n: number): Set<number> {
  const s = new Set<number>();
  if (n <= 0 || total <= 0) return s;
  for (let k = 0; k < n; k++) s.add(Math.min(total - 1, Math.round(((k + 0.5) / n) * (total - 1))));
  return s;
}

async function writeThumb(f: RgbFrame, file: string, width: number): Promise<void> {
  // Upscale small inputs with nearest neighbour so a person sees the actual pixels.
  const height = Math.round((f.height / f.width) * width);
  await sharp(Buffer.from(f.data.buffer, f.data.byteOffset, f.data.byteLength), { raw: { width: f.width, height: f.height, channels: 3 } })
    .resize(width, height, { kernel: f.width < width ? 'nearest' : 'lanczos3' })
    .jpeg({ quality: 88 })
    .toBuffer()
    .then((buf) => writeFileAtomic(file, buf));
}

const SHEET_TILE = 128;

/** A square crop around `box` (given in output-frame pixels), `scale` mapping those to `f`'s pixels. */
async function faceTile(f: RgbFrame, box: Box, scale: number): Promise<Buffer> {
  const size = Math.max(2, Math.min(f.width, f.height, Math.round(Math.max(box.width, box.height) * 1.6 * scale)));
  const cx = (box.x + box.width / 2) * scale;
  const cy = (box.y + box.height / 2) * scale;
  const left = Math.min(f.width - size, Math.max(0, Math.round(cx - size / 2)));
  const top = Math.min(f.height - size, Math.max(0, Math.round(cy - size / 2)));
  return sharp(Buffer.from(f.data.buffer, f.data.byteOffset, f.data.byteLength), { raw: { width: f.width, height: f.height, channels: 3 } })
    .extract({ left, top, width: size, height: size })
    .resize(SHEET_TILE, SHEET_TILE, { kernel: 'lanczos3' })
    .raw()
    .toBuffer();
}

/** Input tiles over output tiles, one column per frame. */
async function writeFaceSheet(tiles: Map<number, { input: Buffer; output: Buffer }>, file: string): Promise<number[]> {
  const frames = [...tiles.keys()].sort((a, b) => a - b);
  const raw = { width: SHEET_TILE, height: SHEET_TILE, channels: 3 as const };
  const parts = frames.flatMap((idx, col) => [
    { input: tiles.get(idx)!.input, raw, left: col * SHEET_TILE, top: 0 },
    { input: tiles.get(idx)!.output, raw, left: col * SHEET_TILE, top: SHEET_TILE },
  ]);
  const jpg = await sharp({ create: { width: frames.length * SHEET_TILE, height: 2 * SHEET_TILE, channels: 3, background: { r: 0, g: 0, b: 0 } } })
    .composite(parts)
    .jpeg({ quality: 88 })
    .toBuffer();
  await writeFileAtomic(file, jpg);
  return frames;
}

function mergeSignals(a?: AbortSignal): AbortController {
  const c = new AbortController();
  if (a) {
    if (a.aborted) c.abort();
    else a.addEventListener('abort', () => c.abort(), { once: true });
  }
  return c;
}

function maskSummary(source: string, stages: StageReport[]): NonNullable<RunReport['mask']> {
  const d = stages.find((s) => s.name === 'inpaint')?.details ?? {};
  return {
    source,
    ...(typeof d.meanCoverage === 'number' ? { coverage: d.meanCoverage } : {}),
    ...(typeof d.maskFile === 'string' ? { file: d.maskFile } : {}),
  };
}

/** Files (thumbnails, face sheet) a run writes into thumbs/, removed again when the run fails. */
class WrittenFiles {
  private readonly files: string[] = [];
  private dirMade = false;
  private dirChecked = false;
  constructor(private readonly dir: string) {}

  /** The path for `rel` under the report folder, creating thumbs/ on first use. */
  async file(reportDir: string, rel: string): Promise<string> {
    if (!this.dirChecked) {
      this.dirChecked = true;
      const existed = await fs.stat(this.dir).then(() => true, () => false);
      await fs.mkdir(this.dir, { recursive: true });
      this.dirMade = !existed;
    }
    const f = path.join(reportDir, rel);
    this.files.push(f);
    return f;
  }

  /** Remove what this run wrote, and thumbs/ when this run made it and it is empty now. */
  async discard(): Promise<void> {
    for (const f of this.files.splice(0)) await fs.rm(f, { force: true }).catch(() => undefined);
    if (this.dirMade) await fs.rmdir(this.dir).catch(() => undefined);
  }
}

/**
 * The output size: from --size or --scale, and it must match the reference's (within the one
 * pixel H.264 padding adds) unless no size was given and the reference is the input scaled
 * uniformly, which is then said on screen. A reference of another shape is never stretched to.
 */
export function planOutputSize(
  video: Pick<VideoInfo, 'width' | 'height'>,
  reference: Pick<VideoInfo, 'width' | 'height'> | undefined,
  opts: Pick<RestoreOptions, 'size' | 'scale'>,
): { size?: { width: number; height: number }; note?: string } {
  const size = opts.size ?? (opts.scale ? { width: Math.round(video.width * opts.scale), height: Math.round(video.height * opts.scale) } : undefined);
  if (!reference) return { size };
  const ref = `${reference.width}x${reference.height}`;
  const near = (a: { width: number; height: number }) => Math.abs(a.width - reference.width) <= 1 && Math.abs(a.height - reference.height) <= 1;
  if (size) {
    if (near(size)) return { size };
    throw usageError(
      `the output will be ${size.width}x${size.height} (${opts.size ? '--size' : `--scale ${opts.scale}`}) but the reference is ${ref}: it cannot be scored`,
      `use --size ${ref} to score against it`,
    );
  }
  if (near(video)) return {};
  const f = reference.width / video.width;
  const uniform = Math.abs(Math.round(video.height * f) - reference.height) <= 1;
  if (!uniform) {
    throw usageError(
      `the reference is ${ref}, the input ${video.width}x${video.height}: another shape, and no --scale or --size gives the output size`,
      `use --size ${ref} to stretch to it, or --scale N and a reference of that size`,
    );
  }
  return { size: { width: reference.width, height: reference.height }, note: `no --scale or --size: upscaling x${+f.toFixed(3)} to the reference size ${ref}` };
}

/** The one line saying which frames were scored, when output and reference differ in length. */
export function scoredFramesLine(scored: number, output: number, referenceFrames: number): string | undefined {
  if (scored < output) return `metrics: the reference has ${scored} frames, the output ${output}: scored the first ${scored}`;
  if (referenceFrames > output) return `metrics: scored the output's ${output} frames against the first ${output} of the reference's ${referenceFrames}`;
  return undefined;
}

export async function runRestore(opts: RestoreOptions, hooks: RunHooks = {}): Promise<RunResult> {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const log = hooks.log ?? createLogger({ quiet: opts.quiet || opts.json });
  const notes: string[] = [];

  // ---- validate everything before any work or any file is written
  validateOptionValues(opts);
  setNativeLogging(!!opts.verbose);
  const video = await probeVideo(opts.input);
  const reference = opts.reference ? await probeVideo(opts.reference) : undefined;
  for (const id of opts.identity ?? []) await assertReadable(id, 'identity photo');
  if (opts.mask && opts.mask !== 'auto') await assertReadable(opts.mask, 'mask');
  await validateOutputTarget(opts);
  await validateModelChoices(opts);
  const plannedSize = planOutputSize(video, reference, opts);
  await ensureWritableDir(opts.reportDir);
  await ensureWritableDir(path.dirname(path.resolve(opts.out)));
  for (const dir of new Set([path.dirname(path.resolve(opts.out)), path.resolve(opts.reportDir), path.resolve(opts.reportDir, 'thumbs')])) {
    for (const f of removeStalePartials(dir)) log.debug(`removed ${path.join(dir, f)}, left by a run that was killed`);
  }

  if (video.rotation) notes.push(`input has ${video.rotation}° rotation metadata: frames were decoded upright and the output is stored upright`);
  if (video.vfr) notes.push(`input has a variable frame rate: converted to a constant ${fpsString(video)} fps`);
  if (video.colour.assumed) notes.push(`input colour is not fully tagged: decoded and encoded as ${describeColour(video.colour)} (ffmpeg's assumption for untagged video)`);
  if (video.colour.bitDepth > 8) notes.push(`input is ${video.colour.bitDepth}-bit: decoded without clipping (range ${video.colour.range}) and written as 8-bit`);
  if (reference && colourDifferences(video.colour, reference.colour).length) {
    notes.push(`the output keeps the input's colour; the reference's tags differ (${colourDifferences(video.colour, reference.colour).join('; ')}): ffmpeg's filters compare the stored planes as they are`);
  }
  if (video.sar.num !== video.sar.den) notes.push(`input has non-square pixels (SAR ${video.sar.num}:${video.sar.den}), kept in the output`);

  const targetSize = plannedSize.size;
  if (plannedSize.note) {
    log.info(plannedSize.note);
    notes.push(plannedSize.note);
  }

  const workers = configureWorkers(opts.workers);
  const controller = mergeSignals(hooks.signal);
  const signal = controller.signal;
  const ctx: StageBuildContext = { signal, device: opts.device, log, video, options: opts, reportDir: opts.reportDir, targetSize };
  const stages: Stage[] = await buildStages(opts, ctx);

  const total = opts.maxFrames ? Math.min(opts.maxFrames, video.frameCount) : video.frameCount;
  const thumbIdx = pickThumbIndices(total, opts.thumbnails);
  const thumbs = new Map<number, Thumbnail>();
  const thumbDir = path.join(opts.reportDir, 'thumbs');
  const written = new WrittenFiles(thumbDir);
  const thumbWidth = Math.min(480, Math.max(targetSize?.width ?? video.width, 240));
  const sheetIdx = pickThumbIndices(total, opts.thumbnails ? 8 : 0);
  const sheetTiles = new Map<number, { input: Buffer; output: Buffer }>();

  async function* source(): AsyncGenerator<FrameItem> {
    // the stored planes travel with each frame, so the encoder can write untouched pixels back exactly
    for await (const f of decodeFrames(video, { signal, maxFrames: opts.maxFrames, planes: true })) {
      const input: RgbFrame = { width: f.width, height: f.height, data: f.data };
      yield { index: f.index, time: f.time, input, frame: cloneFrame(input), ...(f.planes ? { planes: { planes: f.planes, rgb: input } } : {}) };
    }
  }

  const chain = runStages(stages, source(), ctx);
  const stream = chain.stream;

  let enc: VideoEncoder | undefined;
  let stageReports: StageReport[] = [];
  let outSize = { width: 0, height: 0 };
  let done = 0;
  const perFrameValues: { index: number; values: Record<string, number> }[] = [];
  const tLoop = performance.now();
  try {
    for await (const item of stream) {
      if (!enc) {
        outSize = { width: item.frame.width, height: item.frame.height };
        enc = await VideoEncoder.open({
          out: opts.out,
          width: outSize.width,
          height: outSize.height,
          fps: video.fps,
          crf: opts.crf,
          preset: opts.preset,
          audioFrom: video,
          ...(opts.maxFrames && opts.maxFrames < video.frameCount ? { audioSeconds: total / rationalValue(video.fps) } : {}),
          sar: video.sar,
          colour: video.colour,
          planar: item.planes?.planes.format,
          signal,
        });
      }
      await enc.write(item.frame, item.planes);
      if (thumbIdx.has(item.index)) {
        const t: Thumbnail = { index: item.index, input: `thumbs/${item.index}-input.jpg`, output: `thumbs/${item.index}-output.jpg` };
        await writeThumb(item.input, await written.file(opts.reportDir, t.input!), thumbWidth);
        await writeThumb(item.frame, await written.file(opts.reportDir, t.output), thumbWidth);
        thumbs.set(item.index, t);
      }
      if (sheetIdx.has(item.index) && item.faces?.length) {
        const face = item.faces.reduce((a, b) => (b.box.width * b.box.height > a.box.width * a.box.height ? b : a));
        sheetTiles.set(item.index, {
          input: await faceTile(item.input, face.box, item.input.width / item.frame.width),
          output: await faceTile(item.frame, face.box, 1),
        });
      }
      if (item.values && Object.keys(item.values).length) perFrameValues.push({ index: item.index, values: item.values });
      done++;
      const secs = (performance.now() - tLoop) / 1000;
      hooks.onProgress?.({ done, total, fps: secs > 0 ? done / secs : 0 });
    }
    if (signal.aborted) throw new RestoreError('interrupted', 'interrupted: no output written');
    if (!enc) throw inputError(`${opts.input}: no frame could be decoded`);
    stageReports = chain.reports();
    const faces = stageReports.find((r) => r.name === 'faces');
    if (opts.identity?.length && faces?.ran && faces.details && faces.details.framesWithFaces === 0) {
      throw inputError(`${opts.input}: no face found in any frame`, 'nothing to restore or swap back');
    }
    await enc.complete();
  } catch (e) {
    await enc?.abort();
    await written.discard();
    // Once the user asked to stop, whatever broke on the way out is a consequence of that.
    if (signal.aborted) throw new RestoreError('interrupted', 'interrupted: no output written');
    throw e;
  } finally {
    for (const s of stages) await s.close?.().catch(() => undefined);
  }
  const encoder = enc as VideoEncoder; // set: the loop above throws when no frame was encoded
  try {
    const wallPipeline = performance.now() - t0;
    const cpuPipeline = process.cpuUsage(cpu0);
    let faceSheet: RunReport['faceSheet'];
    if (sheetTiles.size >= 2) {
      const file = 'thumbs/faces.jpg';
      const frames = await writeFaceSheet(sheetTiles, await written.file(opts.reportDir, file));
      faceSheet = { file, frames, rows: ['input', 'output'], tile: SHEET_TILE };
    }

    // ---- metrics against the reference, decoded in lock-step with the output and the input
    let metrics: RunReport['metrics'];
    let metricsSkipped: string | undefined;
    if (!reference) metricsSkipped = 'no --reference given';
    else if (Math.abs(reference.width - outSize.width) > 1 || Math.abs(reference.height - outSize.height) > 1) {
      metricsSkipped = `output ${outSize.width}x${outSize.height} and reference ${reference.width}x${reference.height} differ in size: use --size ${reference.width}x${reference.height}`;
    } else {
      hooks.onProgress?.({ done: 0, total: done, fps: 0, phase: 'metrics' });
      const outInfo = await probeVideo(encoder.tmpPath);
      const w = Math.min(reference.width, outInfo.width);
      const h = Math.min(reference.height, outInfo.height);
      if (outInfo.width !== reference.width || outInfo.height !== reference.height) {
        notes.push(`metrics over the common ${w}x${h} area (output is padded to even size for H.264)`);
      }
      // ffmpeg's own filters run in their own process, alongside the lock-step pass below.
      const ffmpegPass = ffmpegScores(encoder.tmpPath, reference.path, { maxFrames: done, crop: { width: w, height: h }, signal }).then(
        (s) => roundScores(s),
        (e: Error) => {
          notes.push(`ffmpeg psnr/ssim could not be computed: ${e.message}`);
          return undefined;
        },
      );
      const outIt = decodeFrames(outInfo, { signal, maxFrames: done });
      const refIt = decodeFrames(reference, { signal, maxFrames: done, checkCount: false });
      const inIt = decodeFrames(video, { signal, maxFrames: done, size: { width: reference.width, height: reference.height }, scaleFlags: 'bicubic' });
      const perFrame: { index: number; after: FrameMetrics; before?: FrameMetrics }[] = [];
      // frames are scored in workers, a few at once, while the decoders run on
      const inFlight: Promise<{ index: number; after: FrameMetrics; before?: FrameMetrics }>[] = [];
      const settle = async () => {
        perFrame.push(await inFlight.shift()!);
        hooks.onProgress?.({ done: perFrame.length, total: done, fps: 0, phase: 'metrics' });
      };
      let submitted = 0;
      for (;;) {
        const [o, r, i] = await Promise.all([outIt.next(), refIt.next(), inIt.next()]);
        if (o.done || r.done) {
          if (!o.done) await outIt.return(undefined);
          if (!r.done) await refIt.return(undefined);
          if (!i.done) await inIt.return(undefined);
          break;
        }
        const index = submitted++;
        const t = thumbs.get(index);
        if (t) {
          t.reference = `thumbs/${index}-reference.jpg`;
          await writeThumb(r.value, await written.file(opts.reportDir, t.reference), thumbWidth);
        }
        const job = scoreFrame({ out: o.value, ref: r.value, before: i.done ? undefined : i.value, width: w, height: h, index }).then((m) => ({ index, ...m }));
        job.catch(() => undefined);
        inFlight.push(job);
        while (inFlight.length > Math.max(0, workers)) await settle();
      }
      while (inFlight.length) await settle();
      const scored = scoredFramesLine(perFrame.length, done, reference.frameCount);
      if (scored) {
        log.info(scored);
        notes.push(scored);
      }
      const befores = perFrame.map((p) => p.before).filter((b): b is FrameMetrics => !!b);
      const ff = await ffmpegPass;
      metrics = {
        ...(ff ? { ffmpeg: ff } : {}),
        after: summarize(perFrame.map((p) => p.after)),
        ...(befores.length === perFrame.length ? { before: summarize(befores) } : {}),
        perFrame,
      };
    }

    if (stageReports.filter((s) => s.ran).length > 1) {
      const cpu = stageReports.reduce((a, s) => a + (s.ran ? s.ms : 0), 0);
      const critical = stageReports.reduce((a, s) => a + (s.timing?.criticalMs ?? 0), 0);
      notes.push(
        `stage ms/frame is the CPU time of each stage's own work (main thread + its tasks in workers); timing.criticalMs is the wall time it held the pipeline. ` +
          (workers > 0 && cpu > wallPipeline
            ? `With ${workers} worker(s) the stages ran at once on different frames: their CPU times add up to ${Math.round(cpu)} ms, more than the ${Math.round(wallPipeline)} ms the run took; the critical-path times add up to ${Math.round(critical)} ms`
            : `The stages ran one at a time${workers > 0 ? '' : ' (--workers 0)'}: their times add up to at most the run's time`),
      );
    }
    const wallMs = performance.now() - t0;
    const report: RunReport = {
      tool: { name: 'restore', version: toolVersion },
      createdAt: new Date().toISOString(),
      input: summaryOf(video),
      output: { path: opts.out, width: outSize.width, height: outSize.height, fps: fpsString(video), frames: done },
      ...(reference ? { reference: summaryOf(reference) } : {}),
      ...(opts.mask ? { mask: maskSummary(opts.mask, stageReports) } : {}),
      ...(opts.identity?.length ? { identity: opts.identity } : {}),
      colour: {
        input: describeColour(video.colour),
        output: describeColour({ ...video.colour, bitDepth: 8 }),
        assumed: video.colour.assumed,
        ...(reference && colourDifferences(video.colour, reference.colour).length ? { referenceDiffers: colourDifferences(video.colour, reference.colour) } : {}),
      },
      settings: {
        scale: opts.scale ?? null,
        size: opts.size ?? targetSize ?? null,
        crf: opts.crf,
        preset: opts.preset,
        device: opts.device,
        backends: opts.backends,
        maskDilate: opts.maskDilate ?? null,
        maxFrames: opts.maxFrames ?? null,
      },
      device: stageReports.some((s) => s.details?.provider === 'cuda') ? 'cuda' : 'cpu',
      stages: stageReports,
      timing: {
        wallMs: Math.round(wallMs),
        fps: +(done / (wallPipeline / 1000)).toFixed(2),
        peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
        workers,
        // process CPU time (all threads) over wall time, up to the encoded output (before metrics)
        cpuPercent: Math.round(((cpuPipeline.user + cpuPipeline.system) / 1000 / wallPipeline) * 100),
      },
      ...(metrics ? { metrics } : {}),
      ...(metricsSkipped ? { metricsSkipped } : {}),
      ...(perFrameValues.length ? { perFrameValues } : {}),
      notes,
      thumbnails: [...thumbs.values()].sort((a, b) => a.index - b.index),
      ...(faceSheet ? { faceSheet } : {}),
    };
    // The result is one unit: reports under temp names first, then all renamed, the video last.
    const staged = await stageRunReports(report, opts.reportDir);
    try {
      await staged.commit();
      await encoder.commit();
    } catch (e) {
      await staged.discard();
      throw e;
    }
    return { report, out: opts.out, reportDir: opts.reportDir, files: staged.files };
  } catch (e) {
    await encoder.abort();
    await written.discard();
    if (signal.aborted) throw new RestoreError('interrupted', 'interrupted: no output written');
    throw e;
  }
}
