/**
 * Mask sources for the inpaint stage: one image for every frame, or a mask video decoded in
 * lock-step with the input (white = hole). Values are thresholded (soft masks: >= threshold
 * is a hole) and optionally dilated. A size mismatch with the video is one clear input error.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { decodeFrames, type DecodedFrame } from '../../media/decode.js';
import { createMask, type Mask, type RgbFrame } from '../../media/frame.js';
import { probeVideo, type VideoInfo } from '../../media/probe.js';
import { inputError, isRestoreError } from '../../errors.js';

export interface MaskSourceOptions {
  /** Grey level at or above which a mask pixel is a hole (default 128). */
  threshold?: number;
  /** Grow the hole by this many pixels (Euclidean disk). */
  dilate?: number;
  signal?: AbortSignal;
}

export interface MaskSource {
  kind: 'image' | 'video';
  path: string;
  /** The mask of the next frame (in order). A mask video that ends early repeats its last frame. */
  next(): Promise<Mask>;
  close(): Promise<void>;
}

const VIDEO_EXT = new Set(['.mp4', '.mkv', '.mov', '.avi', '.webm', '.m4v', '.mpg', '.mpeg', '.ts', '.y4m', '.gif']);

/** Threshold grey levels into a hard mask (255 = hole), in place on a copy. */
export function binarizeMask(m: Mask, threshold = 128): Mask {
  const out = createMask(m.width, m.height);
  for (let i = 0; i < m.data.length; i++) out.data[i] = m.data[i] >= threshold ? 255 : 0;
  return out;
}

/** Grow the holes of a hard mask by `r` pixels (Euclidean disk). */
export function dilateMask(m: Mask, r: number): Mask {
  if (!(r > 0)) return m;
  const { width: w, height: h } = m;
  const out = createMask(w, h);
  out.data.set(m.data);
  const R = Math.ceil(r);
  const offs: number[][] = [];
  for (let dy = -R; dy <= R; dy++) for (let dx = -R; dx <= R; dx++) if (dx * dx + dy * dy <= r * r + 1e-9) offs.push([dx, dy]);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      if (m.data[i] < 128) continue;
      // Only boundary pixels can grow the hole.
      const interior = x > 0 && x < w - 1 && y > 0 && y < h - 1 && m.data[i - 1] >= 128 && m.data[i + 1] >= 128 && m.data[i - w] >= 128 && m.data[i + w] >= 128;
      if (interior) continue;
      for (const [dx, dy] of offs) {
        const xx = x + dx, yy = y + dy;
        if (xx >= 0 && yy >= 0 && xx < w && yy < h) out.data[yy * w + xx] = 255;
      }
    }
  }
  return out;
}

/** Shrink the holes (dilate the kept region). */
export function erodeMask(m: Mask, r: number): Mask {
  const inv = createMask(m.width, m.height);
  for (let i = 0; i < m.data.length; i++) inv.data[i] = m.data[i] >= 128 ? 0 : 255;
  const d = dilateMask(inv, r);
  for (let i = 0; i < d.data.length; i++) d.data[i] = d.data[i] >= 128 ? 0 : 255;
  return d;
}

/** Grey mask from an RGB frame (max of the channels, so any coloured paint on black counts). */
export function maskFromFrame(f: RgbFrame): Mask {
  const m = createMask(f.width, f.height);
  for (let i = 0, j = 0; i < m.data.length; i++, j += 3) m.data[i] = Math.max(f.data[j], f.data[j + 1], f.data[j + 2]);
  return m;
}

function sizeError(file: string, mw: number, mh: number, video: VideoInfo): Error {
  return inputError(
    `${file}: mask is ${mw}x${mh} but the video ${video.path} is ${video.width}x${video.height}`,
    'give a mask the size of the input video (white = hole)',
  );
}

/** Read a mask image (any format sharp reads). Transparent pixels count as black (keep). */
export async function readMaskImage(file: string): Promise<Mask> {
  try {
    const { data, info } = await sharp(file).flatten({ background: '#000000' }).greyscale().raw().toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, info.width * info.height) };
  } catch (e: any) {
    if (e?.code === 'ENOENT' || /missing|no such file/i.test(String(e?.message))) throw inputError(`${file}: no such mask file`);
    throw inputError(`${file}: not a readable mask image (${String(e?.message ?? e).split('\n')[0].slice(0, 120)})`, 'use a PNG/JPEG/WebP image or a mask video, white = hole');
  }
}

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg', '.webp', '.tif', '.tiff', '.bmp', '.avif', '.heif', '.pgm', '.ppm', '.pbm']);

async function isVideoFile(file: string): Promise<boolean> {
  const ext = path.extname(file).toLowerCase();
  if (VIDEO_EXT.has(ext)) return true;
  if (IMAGE_EXT.has(ext)) return false;
  try {
    const meta = await sharp(file).metadata();
    return !meta.format;
  } catch {
    return true; // not an image: let ffprobe decide (and explain)
  }
}

/** Open `--mask FILE` for a video: an image (same mask every frame) or a mask video. */
export async function openMaskSource(file: string, video: VideoInfo, opts: MaskSourceOptions = {}): Promise<MaskSource> {
  const threshold = opts.threshold ?? 128;
  const finish = (m: Mask) => dilateMask(binarizeMask(m, threshold), opts.dilate ?? 0);
  try {
    const st = await fs.stat(file);
    if (!st.isFile()) throw inputError(`${file}: the mask is not a file`);
  } catch (e: any) {
    if (isRestoreError(e)) throw e;
    throw inputError(`${file}: no such mask file`, 'give a mask image or a mask video (white = hole), or --mask auto');
  }
  if (!(await isVideoFile(file))) {
    const raw = await readMaskImage(file);
    if (raw.width !== video.width || raw.height !== video.height) throw sizeError(file, raw.width, raw.height, video);
    const mask = finish(raw);
    return { kind: 'image', path: file, next: async () => mask, close: async () => undefined };
  }
  let info: VideoInfo;
  try {
    info = await probeVideo(file);
  } catch (e) {
    if (isRestoreError(e)) throw inputError(`mask ${e.message}`, 'give a mask image or a mask video (white = hole)');
    throw e;
  }
  if (info.width !== video.width || info.height !== video.height) throw sizeError(file, info.width, info.height, video);
  const it: AsyncGenerator<DecodedFrame> = decodeFrames(info, { signal: opts.signal, checkCount: false });
  let last: Mask | undefined;
  let ended = false;
  return {
    kind: 'video',
    path: file,
    async next() {
      if (!ended) {
        const r = await it.next();
        if (r.done) ended = true;
        else last = finish(maskFromFrame(r.value));
      }
      if (!last) throw inputError(`${file}: the mask video has no frames`);
      return last;
    },
    async close() {
      await it.return(undefined);
    },
  };
}
