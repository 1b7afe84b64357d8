/**
 * One restore run, by concern: check everything and plan every stage (nothing opened or
 * written yet) → open the stages → stream and encode (pipeline/stream.ts) with the artefacts
 * (artefacts.ts) → score against the reference (score.ts) → assemble the report (assemble.ts)
 * → write reports and video as one unit.
 */
import { promises as fs, constants as fsc, readFileSync } from 'node:fs';
import path from 'node:path';
import { ensureWritableDir, removeStalePartials, type VideoEncoder } from '../media/encode.js';
import { probeVideo, type VideoInfo } from '../media/probe.js';
import { childrenCpuMs, configureWorkers, threadClockIsCpu, threadCpuMs } from '../workers/pool.js';
import { packageRoot } from '../util/paths.js';
import { resetDeviceState, setNativeLogging } from '../models/session.js';
import { stageRunReports } from '../report/write.js';
import type { RunReport } from '../report/types.js';
import { inputError, RestoreError, usageError } from '../errors.js';
import { createLogger, type Logger } from '../util/log.js';
import type { RestoreOptions, RunContext, StageReport } from '../stages/types.js';
import { Artefacts } from './artefacts.js';
import { assembleReport, inputNotes, timingNote } from './assemble.js';
import { createServices, openStages, planStages, videoForPlan } from './plan.js';
import { scoreAgainstReference } from './score.js';
import { streamAndEncode } from './stream.js';
import { validateOptionValues, validateOutputTarget } from './validate.js';

export { scoredFramesLine } from './score.js';

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

function mergeSignals(a?: AbortSignal): AbortController {
  const c = new AbortController();
  if (a) {
    if (a.aborted) c.abort();
    else a.addEventListener('abort', () => c.abort(), { once: true });
  }
  return c;
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

/** Every option and input checked and every stage planned; nothing opened or written. */
async function check(opts: RestoreOptions) {
  validateOptionValues(opts);
  setNativeLogging(!!opts.verbose);
  const video = await probeVideo(opts.input);
  const reference = opts.reference ? await probeVideo(opts.reference) : undefined;
  for (const id of opts.identity ?? []) await assertReadable(id, 'identity photo');
  if (opts.mask && opts.mask !== 'auto') await assertReadable(opts.mask, 'mask');
  await validateOutputTarget(opts);
  const sized = planOutputSize(video, reference, opts);
  const planned = await planStages(opts, videoForPlan(video, sized.size));
  return { video, reference, sized, planned };
}

/** What a run of these options would do, stage by stage, without opening or writing anything (`--dry-run`). */
export async function planRestore(opts: RestoreOptions): Promise<RunPlanSummary> {
  const { video, sized, planned } = await check(opts);
  return {
    input: `${video.width}x${video.height}, ${video.frameCount} frames`,
    output: sized.size ? `${sized.size.width}x${sized.size.height}` : `${video.width}x${video.height}`,
    ...(sized.note ? { note: sized.note } : {}),
    stages: planned.map(({ plan }) => (plan.run ? { stage: plan.stage, run: true, backend: plan.backend, reason: plan.reason } : { stage: plan.stage, run: false, reason: plan.reason })),
  };
}

export interface RunPlanSummary {
  input: string;
  output: string;
  note?: string;
  stages: { stage: string; run: boolean; backend?: string; reason: string }[];
}

/** check(), then the output folders made and partial files of killed runs removed. */
async function prepare(opts: RestoreOptions, log: Logger) {
  const { video, reference, sized, planned } = await check(opts);
  await ensureWritableDir(opts.reportDir);
  await ensureWritableDir(path.dirname(path.resolve(opts.out)));
  for (const dir of new Set([path.dirname(path.resolve(opts.out)), path.resolve(opts.reportDir), path.resolve(opts.reportDir, 'thumbs')])) {
    for (const f of removeStalePartials(dir)) log.debug(`removed ${path.join(dir, f)}, left by a run that was killed`);
  }
  return { video, reference, sized, planned };
}

export async function runRestore(opts: RestoreOptions, hooks: RunHooks = {}): Promise<RunResult> {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const children0 = childrenCpuMs();
  const log = hooks.log ?? createLogger({ quiet: opts.quiet || opts.json });
  resetDeviceState();
  const { video, reference, sized, planned } = await prepare(opts, log);
  log.debug(`start-up: input checked and stages planned in ${(performance.now() - t0).toFixed(0)} ms`);
  const notes = inputNotes(video, reference);
  const targetSize = sized.size;
  if (sized.note) {
    log.info(sized.note);
    notes.push(sized.note);
  }

  const workers = configureWorkers(opts.workers);
  const control = mergeSignals(hooks.signal);
  const signal = control.signal;
  // a model a stage left loading (the face analyzer) that fails stops the run at once, with its error
  let loadFailure: { e: unknown } | undefined;
  const services = createServices(opts.device, log, (e) => {
    loadFailure ??= { e };
    control.abort();
  });
  const ctx: RunContext = { signal, device: opts.device, log, video, options: opts, reportDir: opts.reportDir };
  const stages = await openStages(planned, opts, { device: opts.device, log, signal, video, reportDir: opts.reportDir, services });

  log.debug(`start-up: stages open at ${(performance.now() - t0).toFixed(0)} ms`);
  const total = opts.maxFrames ? Math.min(opts.maxFrames, video.frameCount) : video.frameCount;
  const artefacts = new Artefacts(opts.reportDir, total, opts.thumbnails, Math.min(480, Math.max(targetSize?.width ?? video.width, 240)));
  const perFrameValues: NonNullable<RunReport['perFrameValues']> = [];
  const tLoop = performance.now();
  const mainLoop0 = threadCpuMs();
  let streamed;
  try {
    streamed = await streamAndEncode({
      video,
      stages,
      ctx,
      out: opts.out,
      crf: opts.crf,
      preset: opts.preset,
      maxFrames: opts.maxFrames,
      planes: true,
      async onFrame(item, done) {
        await artefacts.onFrame(item);
        if (item.values && Object.keys(item.values).length) perFrameValues.push({ index: item.index, values: item.values });
        const secs = (performance.now() - tLoop) / 1000;
        hooks.onProgress?.({ done, total, fps: secs > 0 ? done / secs : 0 });
      },
      beforeComplete(reports: StageReport[]) {
        const faces = reports.find((r) => r.name === 'faces');
        if (opts.identity?.length && faces?.ran && faces.facts?.framesWithFaces === 0) {
          throw inputError(`${opts.input}: no face found in any frame`, 'nothing to restore or swap back');
        }
      },
    });
  } catch (e) {
    await artefacts.discard();
    throw loadFailure ? loadFailure.e : e;
  }
  const { encoder, frames: done, outSize, reports: stageReports } = streamed;
  try {
    const wallPipeline = performance.now() - t0;
    // (where there is no thread clock it would be wall time: left out)
    const mainThreadLoopMs = threadClockIsCpu() ? threadCpuMs() - mainLoop0 : undefined;
    const cpuPipeline = process.cpuUsage(cpu0);
    const children1 = childrenCpuMs();
    const childCpuMs = children0 !== undefined && children1 !== undefined ? children1 - children0 : undefined;
    const faceSheet = await artefacts.faceSheet();
    const scoring0 = performance.now();
    const scored = await score(opts, { encoder, reference, video, done, outSize, workers, signal, log, artefacts, hooks });
    const scoringMs = scored.metrics ? performance.now() - scoring0 : undefined;
    notes.push(...scored.notes);
    const tn = timingNote(stageReports, workers, wallPipeline);
    if (tn) notes.push(tn);
    const report = assembleReport({
      tool: { name: 'restore', version: toolVersion },
      opts,
      video,
      reference,
      targetSize,
      outSize,
      frames: done,
      stages: stageReports,
      wallMs: performance.now() - t0,
      wallPipelineMs: wallPipeline,
      scoringMs,
      cpuPipeline,
      childCpuMs,
      mainThreadLoopMs,
      workers,
      metrics: scored.metrics,
      metricsSkipped: scored.skipped,
      perFrameValues,
      notes,
      thumbnails: artefacts.thumbnails(),
      faceSheet,
    });
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
    await artefacts.discard();
    if (signal.aborted) throw new RestoreError('interrupted', 'interrupted: no output written');
    throw e;
  }
}

/** The metrics against the reference, or why there are none. */
async function score(
  opts: RestoreOptions,
  s: {
    encoder: VideoEncoder;
    reference?: VideoInfo;
    video: VideoInfo;
    done: number;
    outSize: { width: number; height: number };
    workers: number;
    signal: AbortSignal;
    log: Logger;
    artefacts: Artefacts;
    hooks: RunHooks;
  },
): Promise<{ metrics?: RunReport['metrics']; skipped?: string; notes: string[] }> {
  const ref = s.reference;
  if (!ref) return { skipped: 'no --reference given', notes: [] };
  if (Math.abs(ref.width - s.outSize.width) > 1 || Math.abs(ref.height - s.outSize.height) > 1) {
    return { skipped: `output ${s.outSize.width}x${s.outSize.height} and reference ${ref.width}x${ref.height} differ in size: use --size ${ref.width}x${ref.height}`, notes: [] };
  }
  return scoreAgainstReference({
    output: s.encoder.tmpPath,
    reference: ref,
    input: s.video,
    frames: s.done,
    parallel: s.workers,
    signal: s.signal,
    log: s.log,
    artefacts: s.artefacts,
    onProgress: (done, total) => s.hooks.onProgress?.({ done, total, fps: 0, phase: 'metrics' }),
  });
}
