/**
 * `restore metrics <a> <b> [--json]`: per-frame and summary PSNR/SSIM between two videos,
 * decoded in lock-step. Returns the result and the text to print (a table, or JSON with --json).
 */
import { compareVideos } from '../../metrics/compare.js';
import type { CompareResult } from '../../metrics/types.js';
import { usageError } from '../../errors.js';
import type { VideoInfo } from '../../media/probe.js';
import { ffmpegScores, roundScores, type FfmpegScores } from '../../metrics/ffmpeg.js';

export interface MetricsCommandOptions {
  json?: boolean;
  maxFrames?: number;
  signal?: AbortSignal;
  onFrame?: (done: number, total: number) => void;
}

export interface MetricsVideo {
  path: string;
  width: number;
  height: number;
  fps: string;
  frames: number;
}

export interface MetricsCommandResult extends CompareResult {
  a: MetricsVideo;
  b: MetricsVideo;
  notes: string[];
  /** ffmpeg's own psnr/ssim filters on the stored planes (what users of the field compare). */
  ffmpeg?: FfmpegScores;
}

const video = (v: VideoInfo): MetricsVideo => ({
  path: v.path,
  width: v.width,
  height: v.height,
  fps: `${v.fps.num}/${v.fps.den}`,
  frames: v.frameCount,
});

const f = (v: number, d: number, w: number) => (Number.isFinite(v) ? v.toFixed(d) : '-').padStart(w);

/** JSON text; NaN/Infinity become null. */
export function metricsJson(result: MetricsCommandResult): string {
  return JSON.stringify(result, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2);
}

/** Human-readable table: one row per frame, then mean, min, PSNR of the mean MSE, notes and definitions. */
export function metricsTable(r: MetricsCommandResult): string {
  const s = r.summary;
  const out: string[] = [];
  out.push(`a: ${r.a.path} (${r.a.width}x${r.a.height}, ${r.a.fps} fps, ${r.a.frames} frames)`);
  out.push(`b: ${r.b.path} (${r.b.width}x${r.b.height}, ${r.b.fps} fps, ${r.b.frames} frames)`);
  out.push('');
  const head = `${'frame'.padStart(7)}  ${'PSNR RGB'.padStart(9)}  ${'PSNR Y'.padStart(9)}  ${'SSIM Y'.padStart(8)}`;
  out.push(head);
  out.push('-'.repeat(head.length));
  for (const p of r.perFrame) out.push(`${String(p.index).padStart(7)}  ${f(p.psnrRgb, 3, 9)}  ${f(p.psnrY, 3, 9)}  ${f(p.ssimY, 5, 8)}`);
  out.push('-'.repeat(head.length));
  out.push(`${'mean'.padStart(7)}  ${f(s.psnrRgbMean, 3, 9)}  ${f(s.psnrYMean, 3, 9)}  ${f(s.ssimYMean, 5, 8)}`);
  out.push(`${'min'.padStart(7)}  ${f(s.psnrRgbMin, 3, 9)}  ${f(s.psnrYMin, 3, 9)}  ${f(s.ssimYMin, 5, 8)}`);
  out.push(`PSNR of mean MSE: RGB ${f(s.psnrRgbOfMeanMse, 3, 0)} dB, Y ${f(s.psnrYOfMeanMse, 3, 0)} dB over ${s.frames} frames (PSNR in dB)`);
  if (r.ffmpeg) {
    const p = r.ffmpeg.psnr, q = r.ffmpeg.ssim;
    out.push(`ffmpeg psnr filter: y ${f(p.y, 3, 0)} u ${f(p.u, 3, 0)} v ${f(p.v, 3, 0)} average ${f(p.average, 3, 0)} dB; ssim filter: Y ${f(q.y, 5, 0)} All ${f(q.all, 5, 0)} (${r.ffmpeg.frames} frames, stored planes)`);
  }
  if (r.notes.length) {
    out.push('');
    for (const n of r.notes) out.push(`note: ${n}`);
  }
  out.push('');
  out.push(`PSNR: ${s.definitions.psnr}`);
  out.push(`SSIM: ${s.definitions.ssim}`);
  return out.join('\n') + '\n';
}

export async function metricsCommand(
  a: string,
  b: string,
  opts: MetricsCommandOptions = {},
): Promise<{ result: MetricsCommandResult; text: string }> {
  if (opts.maxFrames !== undefined && (!Number.isInteger(opts.maxFrames) || opts.maxFrames < 1)) {
    throw usageError(`--max-frames must be a positive integer (got ${opts.maxFrames})`);
  }
  // ffmpeg's filters run in their own process beside the lock-step comparison
  const [r, ff] = await Promise.all([
    compareVideos(a, b, { signal: opts.signal, maxFrames: opts.maxFrames, onFrame: opts.onFrame }),
    ffmpegScores(a, b, { maxFrames: opts.maxFrames, signal: opts.signal }).catch(() => undefined),
  ]);
  const result: MetricsCommandResult = {
    a: video(r.a),
    b: video(r.b),
    perFrame: r.perFrame,
    summary: r.summary,
    notes: r.notes,
    ...(ff ? { ffmpeg: roundScores(ff) } : {}),
  };
  return { result, text: opts.json ? metricsJson(result) + '\n' : metricsTable(result) };
}
