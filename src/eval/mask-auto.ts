/**
 * `--mask auto` measured on real clips: the eval's box degradation (cases.ts: the clip downscaled
 * with ffmpeg's scaler, the three boxes of placeBoxes drawn with ffmpeg's drawbox, x264) with
 * every box in one colour (black, white, a flat colour), static as the eval paints them or
 * moving; and the clean clip through the same downscale, where nothing may be flagged. The
 * detector runs as the inpaint stage runs it (autoMaskSequence: a window of neighbouring
 * frames, each frame's mask united with its neighbours').
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { decodeFrames } from '../media/decode.js';
import { resolveFfmpeg } from '../media/ffmpeg.js';
import { createMask, type Mask, type RgbFrame } from '../media/frame.js';
import { probeVideo } from '../media/probe.js';
import type { FaceAnalyzer } from '../faces/analyzer.js';
import { autoMaskSequence, maskAgreement, type AutoMaskOptions } from '../stages/inpaint/auto.js';
import { mouthOf, placeBoxes, type PaintedBox, type Kernel } from './cases.js';

const run = promisify(execFile);

/** Box colours: ffmpeg drawbox colour names or 0xRRGGBB. `mixed` keeps the eval's own colours. */
export const PAINT_COLOURS = ['black', 'white', '0x2e8b57', '0xe62828'] as const;

export interface PaintedClip {
  input: string;
  /** The clean clip through the same downscale and encode. */
  clean?: string;
  size: { width: number; height: number };
  frames: number;
  boxes: PaintedBox[];
  /** True mask of frame n (white = painted). */
  truth(n: number): Mask;
  /** ... of box k alone. */
  boxTruth(n: number, k: number): Mask;
}

export interface PaintOptions {
  frames?: number;
  scale?: number;
  kernel?: Kernel;
  crf?: number;
  /** One colour for every box, or 'mixed' (the eval's black, white and green). */
  colour?: string;
  /** Boxes slide back and forth (triangle wave, integer steps). */
  moving?: boolean;
  analyzer?: FaceAnalyzer;
  /** Also write the clean clip through the same downscale. */
  clean?: boolean;
}

const even = (v: number) => Math.max(2, 2 * Math.round(v / 2));

/** ffmpeg expressions of a box's place at frame n: triangle waves, 12 px wide in x (period 24 frames), 8 px in y (period 16). */
function moveExpr(b: PaintedBox, k: number): { x: string; y: string } {
  const s = k % 2 ? -1 : 1;
  return { x: `${b.x}+${s}*(abs(mod(n,24)-12)-6)`, y: `${b.y}+${s}*(abs(mod(n+${4 * k},16)-8)-4)` };
}

/** Paint the eval's boxes over `clip` (downscaled as the eval does) into `dir`. */
export async function paintClip(clip: string, dir: string, o: PaintOptions = {}): Promise<PaintedClip> {
  await fs.mkdir(dir, { recursive: true });
  const info = await probeVideo(clip);
  const frames = Math.min(info.frameCount, o.frames ?? 24);
  const scale = o.scale ?? 4;
  const size = { width: even(info.width / scale), height: even(info.height / scale) };
  const { width: w, height: h } = size;
  const vf = `scale=${w}:${h}:flags=${o.kernel ?? 'bicubic'}`;
  const enc = ['-c:v', 'libx264', '-crf', String(o.crf ?? 12), '-preset', 'medium'];
  const ff = (args: string[]) => run(resolveFfmpeg().ffmpeg, ['-hide_banner', '-v', 'error', '-y', '-nostdin', '-i', clip, '-frames:v', String(frames), '-an', ...args], { maxBuffer: 1 << 24 });
  const boxes = placeBoxes(w, h, await mouthOf(info, o.analyzer)).map((b) => (o.colour && o.colour !== 'mixed' ? { ...b, color: o.colour } : b));
  const input = path.join(dir, 'input.mp4');
  /** Per frame, per pixel: 0 = unpainted, k + 1 = box k. */
  let labels: (n: number) => Uint8Array;
  if (!o.moving) {
    // exactly the eval's paint (cases.ts buildCase)
    const draw = boxes.map((b) => `drawbox=x=${b.x}:y=${b.y}:w=${b.w}:h=${b.h}:color=${b.color}:t=fill`).join(',');
    await ff(['-vf', `${vf},${draw}`, ...enc, input]);
    const still = new Uint8Array(w * h);
    boxes.forEach((b, k) => {
      for (let y = b.y; y < Math.min(h, b.y + b.h); y++) still.fill(k + 1, y * w + b.x, y * w + Math.min(w, b.x + b.w));
    });
    labels = () => still;
  } else {
    // This ffmpeg's drawbox places a box once; overlay evaluates its position every frame (in
    // RGB: in yuv420p it rounds the position down to even). The true mask comes from the same
    // graph over a blacked-out copy, box k in grey 60(k+1), so it has the same frame timing.
    const graph = (main: string, colour: (b: PaintedBox, k: number) => string) => {
      const srcs = boxes.map((b, k) => `color=c=${colour(b, k)}:s=${b.w}x${b.h}:r=${info.fps.num}/${info.fps.den}[b${k}]`);
      let chain = `[0:v]${vf}${main}[v0]`;
      boxes.forEach((b, k) => {
        const p = moveExpr(b, k);
        chain += `;[v${k}][b${k}]overlay=x='${p.x}':y='${p.y}':shortest=1:format=rgb[v${k + 1}]`;
      });
      return ['-filter_complex', `${srcs.join(';')};${chain}`, '-map', `[v${boxes.length}]`];
    };
    await ff([...graph('', (b) => b.color), ...enc, input]);
    const grey = (k: number) => `0x${(60 * (k + 1)).toString(16).padStart(2, '0').repeat(3)}`;
    const maskFile = path.join(dir, 'mask.gray');
    await ff([...graph(',lutrgb=r=0:g=0:b=0', (_, k) => grey(k)), '-f', 'rawvideo', '-pix_fmt', 'gray', maskFile]);
    const raw = await fs.readFile(maskFile);
    const all = Array.from({ length: frames }, (_, n) => {
      const m = new Uint8Array(w * h);
      for (let i = 0; i < m.length; i++) {
        const v = raw[n * w * h + i] ?? 0;
        m[i] = v < 30 ? 0 : Math.min(boxes.length, Math.round(v / 60));
      }
      return m;
    });
    labels = (n) => all[Math.min(n, frames - 1)];
  }
  let clean: string | undefined;
  if (o.clean) {
    clean = path.join(dir, 'clean.mp4');
    await ff(['-vf', vf, ...enc, clean]);
  }
  const maskOf = (n: number, k?: number) => {
    const l = labels(n), m = createMask(w, h);
    for (let i = 0; i < l.length; i++) if (l[i] && (k === undefined || l[i] === k + 1)) m.data[i] = 255;
    return m;
  };
  return { input, clean, size, frames, boxes, truth: (n) => maskOf(n), boxTruth: (n, k) => maskOf(n, k) };
}

export async function readRgb(file: string, opts: Parameters<typeof decodeFrames>[1] = {}): Promise<RgbFrame[]> {
  const out: RgbFrame[] = [];
  for await (const f of decodeFrames(await probeVideo(file), opts)) out.push({ width: f.width, height: f.height, data: f.data });
  return out;
}

export interface AutoMaskScore {
  frames: number;
  /** Mean over frames of the share of true hole pixels found. */
  recall: number;
  /** Mean over frames of the share of unpainted pixels flagged. */
  falsePositive: number;
  /** Per box (in placeBoxes order): mean recall. */
  boxRecall: number[];
  /** Share of all pixels flagged (for a clean clip: everything flagged is a false positive). */
  flagged: number;
}

/** Score the stage's auto masks of `frames` against the truth (none: a clean clip). */
export function scoreAutoMask(
  frames: RgbFrame[],
  truth?: Pick<PaintedClip, 'truth' | 'boxTruth' | 'boxes'>,
  opts: { radius?: number; detector?: AutoMaskOptions; sequence?: (frames: RgbFrame[]) => Mask[] } = {},
): AutoMaskScore {
  const masks = opts.sequence ? opts.sequence(frames) : autoMaskSequence(frames, opts.radius ?? 16, opts.detector);
  const { width: w, height: h } = frames[0];
  let rec = 0, fp = 0, flagged = 0;
  const boxRec = (truth?.boxes ?? []).map(() => 0);
  masks.forEach((m, n) => {
    for (const v of m.data) if (v >= 128) flagged++;
    if (!truth) return;
    const a = maskAgreement(m, truth.truth(n));
    rec += a.recall;
    fp += a.falsePositive;
    boxRec.forEach((_, k) => (boxRec[k] += maskAgreement(m, truth.boxTruth(n, k)).recall));
  });
  const n = masks.length;
  return { frames: n, recall: truth ? rec / n : 1, falsePositive: truth ? fp / n : flagged / (n * w * h), boxRecall: boxRec.map((v) => v / n), flagged: flagged / (n * w * h) };
}
