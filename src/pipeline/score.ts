/**
 * Scoring against the reference: the output, the reference and the input (bicubic-scaled, the
 * "before") decoded in lock-step, one frame of each in memory, each frame scored in a worker
 * when there are workers; ffmpeg's own psnr/ssim filters run alongside in their own process.
 */
import { decodeFrames } from '../media/decode.js';
import { probeVideo, type VideoInfo } from '../media/probe.js';
import { cropFrame, frameMetrics, summarize } from '../metrics/frame.js';
import { ffmpegScores, roundScores } from '../metrics/ffmpeg.js';
import type { FrameMetrics } from '../metrics/types.js';
import type { RunReport } from '../report/types.js';
import { scoreFrameRemote } from '../stages/threads/remote.js';
import type { MetricsTaskArgs } from '../stages/threads/tasks.js';
import type { Logger } from '../util/log.js';
import type { Artefacts } from './artefacts.js';

/**
 * PSNR/SSIM of an output frame (and the bicubic "before" frame) against the reference over the
 * common w x h area: in a worker when there is a pool (the frames' buffers move there), else here.
 */
export async function scoreFrame(a: MetricsTaskArgs): Promise<{ after: FrameMetrics; before?: FrameMetrics }> {
  const remote = await scoreFrameRemote(a);
  if (remote) return remote;
  const ref = cropFrame(a.ref, a.width, a.height);
  const after = frameMetrics(cropFrame(a.out, a.width, a.height), ref, a.index);
  return { after, before: a.before ? frameMetrics(cropFrame(a.before, a.width, a.height), ref, a.index) : undefined };
}

/** The one line saying which frames were scored, when output and reference differ in length. */
export function scoredFramesLine(scored: number, output: number, referenceFrames: number): string | undefined {
  if (scored < output) return `metrics: the reference has ${scored} frames, the output ${output}: scored the first ${scored}`;
  if (referenceFrames > output) return `metrics: scored the output's ${output} frames against the first ${output} of the reference's ${referenceFrames}`;
  return undefined;
}

export interface ScoreInput {
  /** The encoded output (its temporary name), the reference and the input. */
  output: string;
  reference: VideoInfo;
  input: VideoInfo;
  /** Frames encoded. */
  frames: number;
  /** Frames scored at once (the worker count). */
  parallel: number;
  signal: AbortSignal;
  log: Logger;
  artefacts: Artefacts;
  onProgress?(done: number, total: number): void;
}

/** Metrics of the output against the reference, and the notes the report gets about them. */
export async function scoreAgainstReference(s: ScoreInput): Promise<{ metrics: NonNullable<RunReport['metrics']>; notes: string[] }> {
  const { reference, signal } = s;
  const notes: string[] = [];
  s.onProgress?.(0, s.frames);
  const outInfo = await probeVideo(s.output);
  const w = Math.min(reference.width, outInfo.width);
  const h = Math.min(reference.height, outInfo.height);
  if (outInfo.width !== reference.width || outInfo.height !== reference.height) {
    notes.push(`metrics over the common ${w}x${h} area (output is padded to even size for H.264)`);
  }
  const ffmpegPass = ffmpegScores(s.output, reference.path, { maxFrames: s.frames, crop: { width: w, height: h }, signal }).then(
    (r) => roundScores(r),
    (e: Error) => {
      notes.push(`ffmpeg psnr/ssim could not be computed: ${e.message}`);
      return undefined;
    },
  );
  const outIt = decodeFrames(outInfo, { signal, maxFrames: s.frames });
  const refIt = decodeFrames(reference, { signal, maxFrames: s.frames, checkCount: false });
  const inIt = decodeFrames(s.input, { signal, maxFrames: s.frames, size: { width: reference.width, height: reference.height }, scaleFlags: 'bicubic' });
  type Scored = { index: number; after: FrameMetrics; before?: FrameMetrics };
  const perFrame: Scored[] = [];
  const inFlight: Promise<Scored>[] = [];
  const settle = async () => {
    perFrame.push(await inFlight.shift()!);
    s.onProgress?.(perFrame.length, s.frames);
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
    await s.artefacts.onReference(index, r.value);
    const job = scoreFrame({ out: o.value, ref: r.value, before: i.done ? undefined : i.value, width: w, height: h, index }).then((m) => ({ index, ...m }));
    job.catch(() => undefined);
    inFlight.push(job);
    while (inFlight.length > Math.max(0, s.parallel)) await settle();
  }
  while (inFlight.length) await settle();
  const scored = scoredFramesLine(perFrame.length, s.frames, reference.frameCount);
  if (scored) {
    s.log.info(scored);
    notes.push(scored);
  }
  const befores = perFrame.map((p) => p.before).filter((b): b is FrameMetrics => !!b);
  const ff = await ffmpegPass;
  return {
    metrics: {
      ...(ff ? { ffmpeg: ff } : {}),
      after: summarize(perFrame.map((p) => p.after)),
      ...(befores.length === perFrame.length ? { before: summarize(befores) } : {}),
      perFrame,
    },
    notes,
  };
}
