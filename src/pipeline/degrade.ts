/**
 * `restore degrade`: build a benchmark case from a clean clip the way tampered clips look:
 * downscaled, then partly painted over with flat-coloured shapes that stay put while the
 * content moves. Reproducible from the seed. Writes input.mp4 (the damaged clip), mask.mp4
 * (white = painted, lossless), reference.mp4 (the clean clip) and case.json.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { decodeFrames } from '../media/decode.js';
import { ensureWritableDir, VideoEncoder, writeFileAtomic } from '../media/encode.js';
import { createMask, maskCoverage, type Mask, type RgbFrame } from '../media/frame.js';
import { probeVideo } from '../media/probe.js';
import { usageError } from '../errors.js';
import type { Logger } from '../util/log.js';

export interface DegradeOptions {
  clean: string;
  outDir: string;
  /** Downscale factor (default 4). */
  scale?: number;
  /** Seed of the painted shapes (default 1). */
  maskSeed?: number;
  /** Number of painted shapes (default 3). */
  shapes?: number;
  /** Change the person first (identity-swap damage); the function is supplied by the swap stage. */
  swapIdentity?: string;
  swapFn?: (clean: string, identity: string, out: string) => Promise<void>;
  crf?: number;
  maxFrames?: number;
  log?: Logger;
  signal?: AbortSignal;
}

export interface PaintShape {
  kind: 'rect' | 'ellipse' | 'stroke';
  color: [number, number, number];
  /** rect/ellipse: x, y, w, h; stroke: points and radius. */
  x?: number;
  y?: number;
  w?: number;
  h?: number;
  points?: [number, number][];
  radius?: number;
}

export interface CaseInfo {
  clean: string;
  scale: number;
  scaleFilter: 'area';
  maskSeed: number;
  size: { width: number; height: number };
  frames: number;
  maskCoverage: number;
  shapes: PaintShape[];
  swappedIdentity?: string;
  files: { input: string; mask: string; reference: string };
}

/** mulberry32: small, seedable, good enough for placing shapes. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random flat-coloured shapes covering roughly 4-12% of a w x h frame, biased to the centre. */
export function makeShapes(width: number, height: number, seed: number, count = 3): PaintShape[] {
  const rnd = seededRandom(seed);
  const shapes: PaintShape[] = [];
  const palette: [number, number, number][] = [
    [255, 255, 255], [20, 20, 20], [230, 40, 40], [40, 180, 60], [40, 90, 220], [250, 210, 30], [200, 120, 200],
  ];
  const m = Math.min(width, height);
  const centreBiased = (n: number) => n * (0.2 + 0.6 * (rnd() + rnd()) / 2);
  for (let i = 0; i < count; i++) {
    const kind = (['rect', 'ellipse', 'stroke'] as const)[Math.floor(rnd() * 3)];
    const color = palette[Math.floor(rnd() * palette.length)];
    if (kind === 'stroke') {
      const n = 3 + Math.floor(rnd() * 3);
      let x = centreBiased(width);
      let y = centreBiased(height);
      const points: [number, number][] = [[x, y]];
      for (let k = 1; k < n; k++) {
        x = Math.min(width - 1, Math.max(0, x + (rnd() - 0.5) * m * 0.35));
        y = Math.min(height - 1, Math.max(0, y + (rnd() - 0.5) * m * 0.35));
        points.push([x, y]);
      }
      shapes.push({ kind, color, points, radius: Math.max(1.5, m * (0.025 + rnd() * 0.02)) });
    } else {
      const w = m * (0.1 + rnd() * 0.14);
      const h = m * (0.08 + rnd() * 0.12);
      const x = Math.min(width - w, Math.max(0, centreBiased(width) - w / 2));
      const y = Math.min(height - h, Math.max(0, centreBiased(height) - h / 2));
      shapes.push({ kind, color, x, y, w, h });
    }
  }
  return shapes;
}

function distToSegment(px: number, py: number, a: [number, number], b: [number, number]): number {
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  const len2 = dx * dx + dy * dy;
  const t = len2 ? Math.max(0, Math.min(1, ((px - a[0]) * dx + (py - a[1]) * dy) / len2)) : 0;
  const qx = a[0] + t * dx - px;
  const qy = a[1] + t * dy - py;
  return Math.hypot(qx, qy);
}

/** Rasterize shapes: a colour layer (RGB) and a hard mask (255 where painted). */
export function rasterizeShapes(width: number, height: number, shapes: PaintShape[]): { paint: RgbFrame; mask: Mask } {
  const mask = createMask(width, height);
  const paint: RgbFrame = { width, height, data: new Uint8Array(width * height * 3) };
  for (const s of shapes) {
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const cx = x + 0.5;
        const cy = y + 0.5;
        let inside = false;
        if (s.kind === 'rect') inside = cx >= s.x! && cx < s.x! + s.w! && cy >= s.y! && cy < s.y! + s.h!;
        else if (s.kind === 'ellipse') {
          const ex = (cx - (s.x! + s.w! / 2)) / (s.w! / 2);
          const ey = (cy - (s.y! + s.h! / 2)) / (s.h! / 2);
          inside = ex * ex + ey * ey <= 1;
        } else {
          const pts = s.points!;
          for (let k = 1; k < pts.length && !inside; k++) inside = distToSegment(cx, cy, pts[k - 1], pts[k]) <= s.radius!;
        }
        if (inside) {
          const i = y * width + x;
          mask.data[i] = 255;
          paint.data.set(s.color, i * 3);
        }
      }
    }
  }
  return { paint, mask };
}

export async function degradeClip(opts: DegradeOptions): Promise<CaseInfo> {
  const scale = opts.scale ?? 4;
  const seed = opts.maskSeed ?? 1;
  if (!(scale >= 1 && scale <= 16)) throw usageError(`--scale must be between 1 and 16 (got ${scale})`);
  await ensureWritableDir(opts.outDir);
  let source = opts.clean;
  let swapped: string | undefined;
  const cleanInfo = await probeVideo(opts.clean);
  if (opts.swapIdentity) {
    if (!opts.swapFn) throw usageError('--swap-identity needs the identity swap stage, which is not available');
    swapped = path.join(opts.outDir, 'swapped.mp4');
    await opts.swapFn(opts.clean, opts.swapIdentity, swapped);
    source = swapped;
  }
  const info = source === opts.clean ? cleanInfo : await probeVideo(source);
  const width = Math.max(16, Math.round(info.width / scale));
  const height = Math.max(16, Math.round(info.height / scale));
  const shapes = makeShapes(width, height, seed, opts.shapes ?? 3);
  const { paint, mask } = rasterizeShapes(width, height, shapes);
  const files = {
    input: path.join(opts.outDir, 'input.mp4'),
    mask: path.join(opts.outDir, 'mask.mp4'),
    reference: path.join(opts.outDir, 'reference.mp4'),
  };
  const enc = await VideoEncoder.open({ out: files.input, width, height, fps: info.fps, crf: opts.crf ?? 14, preset: 'slow', audioFrom: info, colour: info.colour, signal: opts.signal });
  const maskEnc = await VideoEncoder.open({ out: files.mask, width, height, fps: info.fps, crf: 0, preset: 'medium', signal: opts.signal });
  const maskRgb: RgbFrame = { width, height, data: new Uint8Array(width * height * 3) };
  for (let i = 0; i < mask.data.length; i++) maskRgb.data.fill(mask.data[i], i * 3, i * 3 + 3);
  let frames = 0;
  try {
    for await (const f of decodeFrames(info, { size: { width, height }, scaleFlags: 'area', maxFrames: opts.maxFrames, signal: opts.signal })) {
      for (let i = 0; i < mask.data.length; i++) {
        if (mask.data[i]) f.data.set(paint.data.subarray(i * 3, i * 3 + 3), i * 3);
      }
      await enc.write(f);
      await maskEnc.write(maskRgb);
      frames++;
    }
    await enc.finish();
    await maskEnc.finish();
  } catch (e) {
    await enc.abort();
    await maskEnc.abort();
    throw e;
  }
  if (path.resolve(opts.clean) !== path.resolve(files.reference)) {
    const tmp = files.reference + '.partial';
    await fs.copyFile(opts.clean, tmp);
    await fs.rename(tmp, files.reference);
  }
  const info2: CaseInfo = {
    clean: path.basename(opts.clean),
    scale,
    scaleFilter: 'area',
    maskSeed: seed,
    size: { width, height },
    frames,
    maskCoverage: +maskCoverage(mask).toFixed(4),
    shapes,
    ...(opts.swapIdentity ? { swappedIdentity: path.basename(opts.swapIdentity) } : {}),
    files: { input: 'input.mp4', mask: 'mask.mp4', reference: 'reference.mp4' },
  };
  await writeFileAtomic(path.join(opts.outDir, 'case.json'), JSON.stringify(info2, null, 2) + '\n');
  opts.log?.info(`degraded ${frames} frames to ${width}x${height} (x${scale}), ${(info2.maskCoverage * 100).toFixed(1)}% painted -> ${opts.outDir}`);
  return info2;
}
