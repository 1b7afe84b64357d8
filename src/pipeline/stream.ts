/**
 * The stream: decode (with the stored planes when asked) → the stage chain → encode under a
 * temporary name. The encoder is returned completed but not committed: the caller renames it
 * into place when the rest of its result is ready (runRestore) or at once (degrade).
 */
import { decodeFrames } from '../media/decode.js';
import { VideoEncoder } from '../media/encode.js';
import { cloneFrame, type RgbFrame } from '../media/frame.js';
import { rationalValue, type VideoInfo } from '../media/probe.js';
import { inputError, RestoreError } from '../errors.js';
import type { FrameItem, RunContext, Stage, StageReport } from '../stages/types.js';
import { runStages } from './chain.js';

export interface StreamJob {
  video: VideoInfo;
  stages: Stage[];
  ctx: RunContext;
  out: string;
  crf: number;
  preset?: string;
  maxFrames?: number;
  /** Carry the stored planes so untouched pixels are written back exactly (runRestore does). */
  planes?: boolean;
  /** Called with every frame after it was written (thumbnails, per-frame values, progress). */
  onFrame?(item: FrameItem, done: number): Promise<void> | void;
  /** Called with the stage reports before the encoder completes; may throw to fail the run. */
  beforeComplete?(reports: StageReport[]): void;
}

export interface StreamResult {
  encoder: VideoEncoder;
  frames: number;
  outSize: { width: number; height: number };
  reports: StageReport[];
}

export async function streamAndEncode(job: StreamJob): Promise<StreamResult> {
  const { video, ctx } = job;
  const signal = ctx.signal;
  const total = job.maxFrames ? Math.min(job.maxFrames, video.frameCount) : video.frameCount;
  async function* source(): AsyncGenerator<FrameItem> {
    for await (const f of decodeFrames(video, { signal, maxFrames: job.maxFrames, planes: job.planes })) {
      const input: RgbFrame = { width: f.width, height: f.height, data: f.data };
      yield { index: f.index, time: f.time, input, frame: cloneFrame(input), ...(f.planes ? { planes: { planes: f.planes, rgb: input } } : {}) };
    }
  }
  const chain = runStages(job.stages, source(), ctx);
  let enc: VideoEncoder | undefined;
  let outSize = { width: 0, height: 0 };
  let done = 0;
  try {
    for await (const item of chain.stream) {
      if (!enc) {
        outSize = { width: item.frame.width, height: item.frame.height };
        enc = await VideoEncoder.open({
          out: job.out,
          width: outSize.width,
          height: outSize.height,
          fps: video.fps,
          crf: job.crf,
          ...(job.preset ? { preset: job.preset } : {}),
          audioFrom: video,
          ...(job.maxFrames && job.maxFrames < video.frameCount ? { audioSeconds: total / rationalValue(video.fps) } : {}),
          sar: video.sar,
          colour: video.colour,
          planar: item.planes?.planes.format,
          signal,
        });
      }
      await enc.write(item.frame, item.planes);
      done++;
      await job.onFrame?.(item, done);
    }
    if (signal.aborted) throw new RestoreError('interrupted', 'interrupted: no output written');
    if (!enc) throw inputError(`${video.path}: no frame could be decoded`);
    const reports = chain.reports();
    job.beforeComplete?.(reports);
    await enc.complete();
    return { encoder: enc, frames: done, outSize, reports };
  } catch (e) {
    await enc?.abort();
    if (signal.aborted) throw new RestoreError('interrupted', 'interrupted: no output written');
    throw e;
  } finally {
    for (const s of job.stages) await s.close?.().catch(() => undefined);
  }
}
