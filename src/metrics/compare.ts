/**
 * Full-reference comparison of two frame streams or two video files, decoded in lock-step
 * (one frame of each in memory at a time, both decoders running side by side).
 */
import { decodeFrames } from '../media/decode.js';
import type { RgbFrame } from '../media/frame.js';
import { probeVideo, type VideoInfo } from '../media/probe.js';
import { RestoreError } from '../errors.js';
import { cropFrame, frameMetrics, summarize } from './frame.js';
import type { CompareResult, FrameMetrics } from './types.js';

/** How many pixels larger one side may be before a size difference is an error (yuv420p padding). */
export const SIZE_SLACK_PX = 1;

export interface CompareOutcome extends CompareResult {
  /** Things the reader should know: cropping, frame-count mismatch. */
  notes: string[];
}

/**
 * Accumulates per-frame metrics for pairs of frames pushed one at a time (for a runner that
 * already holds both frames). Frames differing by at most SIZE_SLACK_PX in width/height are
 * cropped to the common top-left part (H.264 yuv420p pads odd sizes to even); larger
 * differences throw RestoreError('input').
 */
export class MetricsAccumulator {
  readonly perFrame: FrameMetrics[] = [];
  readonly notes: string[] = [];
  private cropNoted = false;

  constructor(
    private readonly labelA = 'a',
    private readonly labelB = 'b',
  ) {}

  add(a: RgbFrame, b: RgbFrame, index = this.perFrame.length): FrameMetrics {
    let fa = a;
    let fb = b;
    if (a.width !== b.width || a.height !== b.height) {
      const dw = Math.abs(a.width - b.width);
      const dh = Math.abs(a.height - b.height);
      if (dw > SIZE_SLACK_PX || dh > SIZE_SLACK_PX) {
        throw new RestoreError(
          'input',
          `${this.labelA} is ${a.width}x${a.height} but ${this.labelB} is ${b.width}x${b.height}: frame sizes must match to compare`,
          { hint: 'compare videos of the same size (e.g. restore with --size matching the reference)' },
        );
      }
      const w = Math.min(a.width, b.width);
      const h = Math.min(a.height, b.height);
      if (!this.cropNoted) {
        this.notes.push(
          `sizes differ by at most ${SIZE_SLACK_PX} px (${this.labelA} ${a.width}x${a.height}, ${this.labelB} ${b.width}x${b.height}; ` +
            `H.264 yuv420p pads odd sizes to even): compared the common top-left ${w}x${h}`,
        );
        this.cropNoted = true;
      }
      fa = cropFrame(a, w, h);
      fb = cropFrame(b, w, h);
    }
    const m = frameMetrics(fa, fb, index);
    this.perFrame.push(m);
    return m;
  }

  result(): CompareOutcome {
    return { perFrame: this.perFrame, summary: summarize(this.perFrame), notes: [...this.notes] };
  }
}

export interface CompareStreamOptions {
  signal?: AbortSignal;
  /** Stop after this many frame pairs. */
  maxFrames?: number;
  /** Called after each pair; `total` when known. */
  onFrame?: (done: number, total?: number) => void;
  total?: number;
  /** Names used in notes and errors (file names). */
  labelA?: string;
  labelB?: string;
  /** Frame counts when known (probe), for the frame-count note. */
  countA?: number;
  countB?: number;
}

/**
 * Compare two ordered frame streams pairwise in lock-step. When one ends first, the common
 * prefix is compared and a note gives both counts (the longer stream is not drained: its
 * count is `countA`/`countB` when given, else "more than N").
 */
export async function compareFrameStreams(
  a: AsyncIterable<RgbFrame>,
  b: AsyncIterable<RgbFrame>,
  opts: CompareStreamOptions = {},
): Promise<CompareOutcome> {
  const labelA = opts.labelA ?? 'a';
  const labelB = opts.labelB ?? 'b';
  const acc = new MetricsAccumulator(labelA, labelB);
  const ia = a[Symbol.asyncIterator]();
  const ib = b[Symbol.asyncIterator]();
  let endedA = false;
  let endedB = false;
  let n = 0;
  try {
    while (!opts.maxFrames || n < opts.maxFrames) {
      if (opts.signal?.aborted) throw new RestoreError('interrupted', 'comparison interrupted');
      const [ra, rb] = await Promise.all([ia.next(), ib.next()]);
      endedA = !!ra.done;
      endedB = !!rb.done;
      if (endedA || endedB) break;
      acc.add(ra.value, rb.value, n);
      n++;
      opts.onFrame?.(n, opts.total);
    }
  } finally {
    // Stop whichever decoder still runs (kills its ffmpeg).
    await Promise.allSettled([endedA ? undefined : ia.return?.(), endedB ? undefined : ib.return?.()]);
  }
  const out = acc.result();
  if (endedA !== endedB) {
    const count = (ended: boolean, known?: number) => (ended ? String(n) : known !== undefined && known > n ? String(known) : `more than ${n}`);
    out.notes.push(
      `frame counts differ (${labelA}: ${count(endedA, opts.countA)}, ${labelB}: ${count(endedB, opts.countB)}): compared the first ${n} frames`,
    );
  }
  if (n === 0 && !opts.maxFrames) {
    throw new RestoreError('input', `no frame pairs to compare (${labelA} or ${labelB} has no frames)`);
  }
  return out;
}

export interface CompareVideosOptions {
  signal?: AbortSignal;
  maxFrames?: number;
  onFrame?: (done: number, total: number) => void;
}

/** Probe both files, then decode them in lock-step and score every frame pair. */
export async function compareVideos(
  a: string,
  b: string,
  opts: CompareVideosOptions = {},
): Promise<CompareOutcome & { a: VideoInfo; b: VideoInfo }> {
  const [ia, ib] = await Promise.all([probeVideo(a), probeVideo(b)]);
  const dw = Math.abs(ia.width - ib.width);
  const dh = Math.abs(ia.height - ib.height);
  if (dw > SIZE_SLACK_PX || dh > SIZE_SLACK_PX) {
    throw new RestoreError('input', `${a} is ${ia.width}x${ia.height} but ${b} is ${ib.width}x${ib.height}: frame sizes must match to compare`, {
      hint: 'compare videos of the same size',
    });
  }
  const common = Math.min(ia.frameCount, ib.frameCount);
  const total = opts.maxFrames ? Math.min(opts.maxFrames, common) : common;
  const dec = { signal: opts.signal, maxFrames: opts.maxFrames };
  const out = await compareFrameStreams(decodeFrames(ia, dec), decodeFrames(ib, dec), {
    signal: opts.signal,
    maxFrames: opts.maxFrames,
    total,
    onFrame: opts.onFrame ? (d) => opts.onFrame!(d, total) : undefined,
    labelA: a,
    labelB: b,
    countA: ia.frameCount,
    countB: ib.frameCount,
  });
  if (ia.frameCount !== ib.frameCount && !out.notes.some((s) => s.startsWith('frame counts differ'))) {
    out.notes.push(`frame counts differ (${a}: ${ia.frameCount}, ${b}: ${ib.frameCount}): compared the first ${out.perFrame.length} frames`);
  }
  const fa = `${ia.fps.num}/${ia.fps.den}`;
  const fb = `${ib.fps.num}/${ib.fps.den}`;
  if (ia.fps.num * ib.fps.den !== ib.fps.num * ia.fps.den) {
    out.notes.push(`frame rates differ (${a}: ${fa}, ${b}: ${fb}): frames were paired by index, not by time`);
  }
  return { ...out, a: ia, b: ib };
}
