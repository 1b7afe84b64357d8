/**
 * Streamed decode: ffmpeg writes raw RGB24 frames to a pipe; frames are yielded one by one.
 * The async iterator pulls, so a slow consumer pauses ffmpeg (memory bounded by the pipe).
 */
import type { Readable } from 'node:stream';
import { ffmpeg, fpsModeArgs, resolveFfmpeg } from './ffmpeg.js';
import type { RgbFrame } from './frame.js';
import { rationalValue, type VideoInfo } from './probe.js';
import { inputError, RestoreError } from '../errors.js';
import { decodeScaleArgs } from './colour.js';
import { planarBytes, planesToRgb, splitPlanes, type CarriedFormat, type YuvPlanes } from './planes.js';

export interface DecodedFrame extends RgbFrame {
  index: number;
  /** With `planes`: the stored planes (8-bit) this RGB was converted from. */
  planes?: YuvPlanes;
  /** Presentation time in seconds from the start of the stream. */
  time: number;
}

export interface DecodeOptions {
  /** Resize on decode (used by `degrade` and for thumbnails). */
  size?: { width: number; height: number };
  /** Resampling filter for `size`. */
  scaleFlags?: 'bicubic' | 'lanczos' | 'area' | 'bilinear' | 'neighbor';
  maxFrames?: number;
  signal?: AbortSignal;
  /** Fail when fewer frames than probed arrive (truncated or corrupt input). Default true. */
  checkCount?: boolean;
  /**
   * Also keep the stored planes (see planes.ts): ffmpeg writes the source's own 8-bit planar
   * format and the RGB is converted from it here, so an untouched pixel can be written back
   * exactly. Only for YUV sources without `size`; others decode to RGB as usual.
   */
  planes?: boolean;
}

/** The 8-bit planar format a source's planes are kept in, or undefined when they cannot be. */
export function keptPlanarFormat(info: VideoInfo): CarriedFormat | undefined {
  const m = /^(yuvj?)(420|422|444)p/.exec(info.pixFmt);
  if (!m) return undefined;
  if (info.rotation) return undefined; // frames are turned upright by ffmpeg's filters: keep to RGB
  return `${m[1]}${m[2]}p` as CarriedFormat;
}

function stderrTail(stderr: string | null | undefined): string {
  const lines = (stderr ?? '')
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter((s) => s && !/^(frame=|size=|video:|Stream mapping|Press \[q\]|\s*Metadata)/.test(s));
  return lines.slice(-1)[0]?.slice(0, 200) ?? '';
}

/** Chunks of a readable; ends quietly when the stream is destroyed because of an abort. */
async function* streamChunks(stream: Readable, signal?: AbortSignal): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) yield chunk;
  } catch (e) {
    if (!signal?.aborted) throw e;
  }
}

export async function* decodeFrames(info: VideoInfo, opts: DecodeOptions = {}): AsyncGenerator<DecodedFrame> {
  resolveFfmpeg();
  const width = opts.size?.width ?? info.width;
  const height = opts.size?.height ?? info.height;
  const planar = opts.planes && !opts.size ? keptPlanarFormat(info) : undefined;
  const frameBytes = planar ? planarBytes(planar, width, height) : width * height * 3;
  const flags = opts.scaleFlags ?? 'bicubic';
  // The source's own matrix and range (ffmpeg's assumption when untagged), stated explicitly so the
  // encoder can write the planes back with the same ones.
  const colour = decodeScaleArgs(info.colour);
  const scale = opts.size
    ? `scale=${width}:${height}:flags=${flags}+accurate_rnd+full_chroma_int:${colour}`
    : `scale=flags=accurate_rnd+full_chroma_int:${colour}`;
  const fpsStr = `${info.fps.num}/${info.fps.den}`;
  const outOpts = [
    '-map', '0:v:0',
    ...(info.vfr ? [...fpsModeArgs('cfr'), '-r', fpsStr] : fpsModeArgs('passthrough')),
    // planes: the stored format as it is (10-bit and more brought to 8 bits, range kept)
    '-vf', planar ? `format=${planar}` : `${scale},format=rgb24`,
    ...(opts.maxFrames ? ['-frames:v', String(opts.maxFrames)] : []),
    '-an', '-sn',
  ];

  let failure: Error | undefined;
  let done = false;
  // Settles when ffmpeg has ended or failed, so the outcome does not depend on which event lands first.
  let settle: () => void = () => {};
  const exited = new Promise<void>((r) => (settle = r));
  // fluent-ffmpeg spawns ffmpeg asynchronously: a kill asked for before that is applied on 'start'.
  let started = false;
  let killRequested = false;
  const kill = () => {
    killRequested = true;
    if (started) cmd.kill('SIGKILL');
  };
  const cmd = ffmpeg(info.path)
    .inputOptions(['-nostdin'])
    .outputOptions(outOpts)
    .format('rawvideo')
    .on('error', (err: Error, _stdout: string | null, stderr: string | null) => {
      // fluent-ffmpeg reports 'Output stream closed' when ffmpeg's exit comes more than 20 ms after
      // the pipe closed (a loaded machine): all output was read by then, so it is not a failure.
      if (!done && !/^Output stream closed/.test(err.message)) {
        failure = new RestoreError('input', `${info.path}: decoding failed (${stderrTail(stderr) || err.message})`);
      }
      settle();
    })
    .on('start', () => {
      started = true;
      if (killRequested) cmd.kill('SIGKILL');
    })
    .on('end', () => {
      done = true;
      settle();
    });
  const stream = cmd.pipe() as Readable;
  // Killing ffmpeg does not always end fluent-ffmpeg's output stream: destroy it too.
  const onAbort = () => {
    kill();
    stream.destroy();
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });

  const fpsV = rationalValue(info.fps);
  let index = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  try {
    if (opts.signal?.aborted) return;
    for await (const chunk of streamChunks(stream, opts.signal)) {
      pending.push(chunk);
      pendingBytes += chunk.length;
      while (pendingBytes >= frameBytes) {
        const all = pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingBytes);
        const data = new Uint8Array(frameBytes);
        data.set(all.subarray(0, frameBytes));
        const rest = all.subarray(frameBytes);
        pending = rest.length ? [Buffer.from(rest)] : [];
        pendingBytes = rest.length;
        if (planar) {
          const planes = splitPlanes(data, planar, width, height);
          const rgb = planesToRgb(planes, info.colour);
          yield { ...rgb, planes, index, time: index / fpsV };
        } else yield { width, height, data, index, time: index / fpsV };
        index++;
        if (opts.maxFrames && index >= opts.maxFrames) return;
      }
    }
    // ffmpeg's 'end' or 'error' may land after the stream ends: wait for it (bounded).
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000).unref())]);
    if (opts.signal?.aborted) return;
    // No frame at all reads the same whichever way ffmpeg reported it.
    if (index === 0) throw inputError(`${info.path}: no frame could be decoded`, 'the file is corrupt or truncated');
    if (failure) throw failure;
    const expected = opts.maxFrames ? Math.min(opts.maxFrames, info.frameCount) : info.frameCount;
    if ((opts.checkCount ?? true) && info.frameCountExact && index < expected - Math.max(2, Math.round(expected * 0.02))) {
      throw inputError(`${info.path}: truncated or corrupt: decoded ${index} of ${expected} frames`);
    }
  } finally {
    done = true;
    opts.signal?.removeEventListener('abort', onAbort);
    if (!stream.readableEnded) {
      kill();
      stream.destroy();
    }
  }
}
