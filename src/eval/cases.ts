/**
 * Benchmark cases made from clean clips with plain ffmpeg, the way a user of this field makes
 * them: a short clean reference (lossless), its x4/x2 downscale with ffmpeg's bicubic, area or
 * lanczos scaler, x264-compressed (crf 12 by default, 23 for the heavy case), optionally with
 * flat boxes painted over it at fixed places (one over the mouth) and optionally with the person
 * changed first (`degrade --swap-identity`).
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { decodeFrames } from '../media/decode.js';
import { resolveFfmpeg } from '../media/ffmpeg.js';
import { probeVideo, rationalValue, type VideoInfo } from '../media/probe.js';
import { FaceAnalyzer } from '../faces/analyzer.js';

const run = promisify(execFile);

export type Kernel = 'bicubic' | 'area' | 'lanczos';

export interface CaseSpec {
  /** Short name: e.g. `x4-bicubic`, `x4-boxes`, `x4-crf23`, `x4-swap`. */
  name: string;
  scale: number;
  kernel: Kernel;
  crf: number;
  boxes?: boolean;
  swap?: boolean;
}

/** The cases every clip gets (the first is the headline: x4 bicubic, no mask). */
export const DEFAULT_CASES: CaseSpec[] = [
  { name: 'x4-bicubic', scale: 4, kernel: 'bicubic', crf: 12 },
  { name: 'x4-area', scale: 4, kernel: 'area', crf: 12 },
  { name: 'x4-lanczos', scale: 4, kernel: 'lanczos', crf: 12 },
  { name: 'x2-bicubic', scale: 2, kernel: 'bicubic', crf: 12 },
  { name: 'x4-crf23', scale: 4, kernel: 'bicubic', crf: 23 },
  { name: 'x4-boxes', scale: 4, kernel: 'bicubic', crf: 12, boxes: true },
  { name: 'x4-swap', scale: 4, kernel: 'bicubic', crf: 12, swap: true },
];

export interface PaintedBox {
  x: number;
  y: number;
  w: number;
  h: number;
  color: string;
  /** Where it was placed (`mouth`, `corner`, ...). */
  at: string;
}

export interface BuiltCase {
  clip: string;
  spec: CaseSpec;
  dir: string;
  /** The damaged clip restore gets. */
  input: string;
  /** The clean clip, lossless, same frames. */
  reference: string;
  /** The clean clip through the same downscale and crf (no boxes, no swap): the "perfect fill" input. */
  cleanLow: string;
  size: { width: number; height: number };
  lowSize: { width: number; height: number };
  frames: number;
  /** White = painted, at the low size (box cases). */
  mask?: string;
  boxes?: PaintedBox[];
  /** Photo of the clip's own person (swap cases): its first clean frame. */
  identity?: string;
  /** Box cases: a photo of the clip's person for the face prior, its last frame (outside the scored frames when the clip is longer). */
  holeIdentity?: string;
}

const even = (v: number) => Math.max(2, 2 * Math.round(v / 2));

async function ffmpeg(args: string[]): Promise<void> {
  await run(resolveFfmpeg().ffmpeg, ['-hide_banner', '-v', 'error', '-y', '-nostdin', ...args], { maxBuffer: 1 << 24 });
}

/** Where the mouth is in the first frame (fractions of the frame), or a talking-head guess. */
export async function mouthOf(info: VideoInfo, analyzer: FaceAnalyzer | undefined): Promise<{ x: number; y: number; size: number }> {
  const guess = { x: 0.5, y: 0.62, size: 0.12 };
  if (!analyzer) return guess;
  for await (const f of decodeFrames(info, { maxFrames: 1 })) {
    const faces = await analyzer.detect(f);
    const face = faces.sort((a, b) => b.box.width * b.box.height - a.box.width * a.box.height)[0];
    if (!face || face.five.length < 5) return guess;
    const [re, le, , rm, lm] = face.five;
    const eye = Math.hypot(le.x - re.x, le.y - re.y);
    return { x: (rm.x + lm.x) / 2 / f.width, y: (rm.y + lm.y) / 2 / f.height, size: (1.1 * eye) / Math.min(f.width, f.height) };
  }
  return guess;
}

/** Three boxes at the low size: one over the mouth (black), one white, one flat colour. */
export function placeBoxes(w: number, h: number, mouth: { x: number; y: number; size: number }): PaintedBox[] {
  const m = Math.min(w, h);
  const s = Math.max(4, Math.round(mouth.size * m));
  const clampBox = (b: PaintedBox): PaintedBox => ({
    ...b,
    x: Math.max(0, Math.min(w - b.w, Math.round(b.x))),
    y: Math.max(0, Math.min(h - b.h, Math.round(b.y))),
  });
  return [
    clampBox({ x: mouth.x * w - s / 2, y: mouth.y * h - s / 3, w: s, h: Math.max(3, Math.round(s * 0.6)), color: 'black', at: 'mouth' }),
    clampBox({ x: 0.08 * w, y: 0.1 * h, w: Math.round(0.16 * m), h: Math.round(0.1 * m), color: 'white', at: 'top-left' }),
    clampBox({ x: 0.74 * w, y: 0.78 * h, w: Math.round(0.14 * m), h: Math.round(0.12 * m), color: '0x2e8b57', at: 'bottom-right' }),
  ];
}

export interface BuildOptions {
  /** Frames per case (default: 2 s of the clip, at most the clip). */
  frames?: number;
  /** Photo the person is changed into for swap cases. */
  swapPhoto?: string;
  /** Runs `degrade --swap-identity`'s swap (the swap stage). */
  swapFn?: (clean: string, photo: string, out: string) => Promise<void>;
  analyzer?: FaceAnalyzer;
}

/** Build one case of one clean clip into `dir`. */
export async function buildCase(clip: string, spec: CaseSpec, dir: string, opts: BuildOptions = {}): Promise<BuiltCase> {
  await fs.mkdir(dir, { recursive: true });
  const info = await probeVideo(clip);
  const frames = Math.min(info.frameCount, opts.frames ?? Math.round(2 * rationalValue(info.fps)));
  const size = { width: info.width, height: info.height };
  const lowSize = { width: even(info.width / spec.scale), height: even(info.height / spec.scale) };
  const reference = path.join(dir, 'reference.mp4');
  await ffmpeg(['-i', clip, '-frames:v', String(frames), '-an', '-c:v', 'libx264', '-crf', '0', reference]);
  let source = reference;
  let identity: string | undefined;
  if (spec.swap) {
    if (!opts.swapFn || !opts.swapPhoto) throw new Error('swap case needs a swap function and a photo');
    identity = path.join(dir, 'identity.png');
    for await (const f of decodeFrames(await probeVideo(reference), { maxFrames: 1 })) {
      await sharp(Buffer.from(f.data), { raw: { width: f.width, height: f.height, channels: 3 } }).png().toFile(identity);
    }
    source = path.join(dir, 'swapped.mp4');
    await opts.swapFn(reference, opts.swapPhoto, source);
  }
  const scale = `scale=${lowSize.width}:${lowSize.height}:flags=${spec.kernel}`;
  const enc = ['-c:v', 'libx264', '-crf', String(spec.crf), '-preset', 'medium'];
  const cleanLow = path.join(dir, 'clean-low.mp4');
  await ffmpeg(['-i', reference, '-an', '-vf', scale, ...enc, cleanLow]);
  const input = path.join(dir, 'input.mp4');
  let boxes: PaintedBox[] | undefined;
  let mask: string | undefined;
  let holeIdentity: string | undefined;
  if (spec.boxes) {
    boxes = placeBoxes(lowSize.width, lowSize.height, await mouthOf(info, opts.analyzer));
    const draw = boxes.map((b) => `drawbox=x=${b.x}:y=${b.y}:w=${b.w}:h=${b.h}:color=${b.color}:t=fill`).join(',');
    await ffmpeg(['-i', source, '-an', '-vf', `${scale},${draw}`, ...enc, input]);
    mask = path.join(dir, 'mask.png');
    const m = Buffer.alloc(lowSize.width * lowSize.height);
    for (const b of boxes) for (let y = b.y; y < b.y + b.h; y++) m.fill(255, y * lowSize.width + b.x, y * lowSize.width + b.x + b.w);
    await sharp(m, { raw: { width: lowSize.width, height: lowSize.height, channels: 1 } }).png().toFile(mask);
    holeIdentity = path.join(dir, 'identity-last-frame.png');
    // the clip's last frame (every frame of its last second is written over the one before)
    await ffmpeg(['-sseof', '-1', '-i', clip, '-an', '-update', '1', holeIdentity]);
  } else {
    await ffmpeg(['-i', source, '-an', '-vf', scale, ...enc, input]);
  }
  return { clip: path.basename(clip), spec, dir, input, reference, cleanLow, size, lowSize, frames, mask, boxes, identity, holeIdentity };
}

/** Plain ffmpeg upscale of `input` to `size` (a baseline row), at the same crf as restore. */
export async function ffmpegUpscale(input: string, size: { width: number; height: number }, flags: 'bicubic' | 'lanczos', out: string, crf: number): Promise<string> {
  await ffmpeg(['-i', input, '-an', '-vf', `scale=${size.width}:${size.height}:flags=${flags}`, '-c:v', 'libx264', '-crf', String(crf), '-preset', 'medium', out]);
  return out;
}
