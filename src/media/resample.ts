/**
 * Classical resampling done by ffmpeg's own scaler, so `--upscale lanczos` gives what
 * `ffmpeg -vf scale=W:H:flags=lanczos` gives, chroma included.
 *
 * RGB frames go into one long-lived ffmpeg process, which converts them back to the source's
 * planar YUV with the source's matrix and range (the exact inverse of how they were decoded) and
 * scales the planes as ffmpeg would scale the stored video. The scaled planes come back as they
 * are (see planes.ts: the encoder writes them, so no RGB round trip clips them). Frames stream
 * through in order; memory is bounded by a small in-flight window.
 */
import { spawn } from 'node:child_process';
import { fpsModeArgs, resolveFfmpeg } from './ffmpeg.js';
import type { RgbFrame } from './frame.js';
import { encodeScaleArgs, type Colour } from './colour.js';
import { planarBytes, splitPlanes, type CarriedFormat, type YuvPlanes } from './planes.js';

/** Packed planar bytes of one frame (as the encoder and ffmpeg's rawvideo take them). */
export interface YuvPlanesBytes {
  data: Uint8Array;
}
import { RestoreError } from '../errors.js';

export type ScalerFlags = 'lanczos' | 'bicubic' | 'bilinear' | 'area' | 'spline' | 'neighbor';

export interface ResampleSpec {
  from: { width: number; height: number };
  to: { width: number; height: number };
  flags: ScalerFlags;
  /** The scaler's first parameter (`param0`: Lanczos' window width, bicubic's B); ffmpeg's default when unset. */
  param0?: number;
  colour: Colour;
  /** Planar format of the source (its chroma subsampling); yuv420p when unknown. */
  pixFmt?: string;
  /** The frames come as stored planes of this format (then they are scaled as they are). */
  inputPlanes?: CarriedFormat;
}

/** The 8-bit planar format to scale in: the input planes' own, else the source's subsampling, 4:4:4 where a size is odd. */
export function planarFormatFor(spec: ResampleSpec): string {
  if (spec.inputPlanes) return spec.inputPlanes;
  const sizes = [spec.from.width, spec.from.height, spec.to.width, spec.to.height];
  const m = /^yuvj?(420|422|444)p/.exec(spec.pixFmt ?? 'yuv420p');
  const sub = m?.[1] ?? '420';
  if (sub !== '444' && sizes.some((s) => s % 2)) return 'yuv444p';
  return `yuv${sub}p`;
}

/** The filter chain: (RGB → source YUV →) scaled planes. */
export function resampleFilter(spec: ResampleSpec): string {
  const fmt = planarFormatFor(spec);
  const param = spec.param0 !== undefined ? `:param0=${spec.param0}` : '';
  if (spec.inputPlanes) return `scale=${spec.to.width}:${spec.to.height}:flags=${spec.flags}${param},format=${fmt}`;
  return [
    `scale=${encodeScaleArgs(spec.colour)}:flags=accurate_rnd+full_chroma_int`,
    `format=${fmt}`,
    // the flags alone, as a plain `-vf scale=W:H:flags=lanczos` run has them
    `scale=${spec.to.width}:${spec.to.height}:flags=${spec.flags}${param}`,
    `format=${fmt}`,
  ].join(',');
}

/**
 * Map a stream of items through ffmpeg's scaler, in order. `get` reads an item's frame, `set`
 * stores the scaled planes. At most `window` frames are inside ffmpeg at a time.
 */
export async function* resampleStream<T>(
  input: AsyncIterable<T>,
  spec: ResampleSpec,
  get: (item: T) => RgbFrame | YuvPlanesBytes,
  set: (item: T, planes: YuvPlanes) => void,
  opts: { signal?: AbortSignal; window?: number } = {},
): AsyncGenerator<T> {
  const { ffmpeg } = resolveFfmpeg();
  const { from, to } = spec;
  const format = planarFormatFor(spec) as CarriedFormat;
  const inBytes = spec.inputPlanes ? planarBytes(spec.inputPlanes, from.width, from.height) : from.width * from.height * 3;
  const outBytes = planarBytes(format, to.width, to.height);
  const window = opts.window ?? 4;
  const args = [
    '-hide_banner', '-v', 'error',
    '-f', 'rawvideo', '-pix_fmt', spec.inputPlanes ?? 'rgb24', '-s', `${from.width}x${from.height}`, '-framerate', '25', '-i', 'pipe:0',
    '-vf', resampleFilter(spec),
    ...fpsModeArgs('passthrough'),
    '-f', 'rawvideo', '-pix_fmt', format, 'pipe:1',
  ];
  const child = spawn(ffmpeg, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-2000);
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  child.stdin.on('error', () => undefined); // a dead ffmpeg is reported by its exit below
  const fail = (why: string) => new RestoreError('internal', `ffmpeg resampling ${from.width}x${from.height} -> ${to.width}x${to.height} failed (${why})`);

  const pending: T[] = [];
  let inputDone = false;
  let closed = false;
  let writerError: unknown;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const waitFor = () => new Promise<void>((r) => (wake = r));

  // Writer: feeds frames while fewer than `window` are inside ffmpeg.
  const writer = (async () => {
    try {
      for await (const item of input) {
        if (opts.signal?.aborted || closed) break;
        while (pending.length >= window && !closed) await waitFor();
        if (closed) break;
        const f = get(item);
        if (f.data.length !== inBytes) throw fail(`frame of ${f.data.length} bytes, expected ${inBytes}`);
        pending.push(item);
        notify();
        if (!child.stdin.write(f.data)) await new Promise<void>((r) => child.stdin.once('drain', () => r()));
      }
    } catch (e) {
      writerError = e;
    } finally {
      inputDone = true;
      child.stdin.end();
      notify();
    }
  })();

  const stdout = child.stdout[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let buf: Buffer[] = [];
  let have = 0;
  try {
    for (;;) {
      while (!pending.length && !inputDone) await waitFor();
      if (!pending.length) break;
      while (have < outBytes) {
        const r = await stdout.next();
        if (r.done) {
          const code = await exited;
          if (writerError) throw writerError;
          throw fail(stderr.trim().split(/\r?\n/).pop() || `exit ${code}, ${pending.length} frames missing`);
        }
        buf.push(r.value);
        have += r.value.length;
      }
      const all = buf.length === 1 ? buf[0] : Buffer.concat(buf, have);
      const data = new Uint8Array(outBytes);
      data.set(all.subarray(0, outBytes));
      const rest = all.subarray(outBytes);
      buf = rest.length ? [Buffer.from(rest)] : [];
      have = rest.length;
      const item = pending.shift()!;
      notify();
      set(item, splitPlanes(data, format, to.width, to.height));
      yield item;
    }
    await writer;
    if (writerError) throw writerError;
  } finally {
    closed = true;
    if (child.exitCode === null) child.kill('SIGKILL');
    notify();
  }
}

/** Resample a list of frames to planes (tests). */
export async function resampleFrames(frames: RgbFrame[], spec: ResampleSpec): Promise<YuvPlanes[]> {
  const out: YuvPlanes[] = [];
  async function* items() {
    for (const f of frames) yield { f, p: undefined as YuvPlanes | undefined };
  }
  for await (const it of resampleStream(items(), spec, (i) => i.f, (i, p) => (i.p = p))) out.push(it.p!);
  return out;
}
