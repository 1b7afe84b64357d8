/**
 * Scores inside a mask (src/metrics has whole-frame scores only): PSNR over the RGB values
 * of the hole pixels, and luma SSIM (Wang et al. 2004: 11x11 Gaussian, sigma 1.5, K1 .01,
 * K2 .03, the same definition as src/metrics) averaged over the windows centred on hole
 * pixels (the valid-window region, as src/metrics).
 */
import { createMask, lumaBt601, type Mask, type RgbFrame } from '../../media/frame.js';
import { psnrFromMse, ssimGray, SSIM_K1, SSIM_K2, SSIM_SIGMA, SSIM_WINDOW } from '../../metrics/frame.js';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { decodeFrames } from '../../media/decode.js';
import { probeVideo } from '../../media/probe.js';
import { meshWarpMap } from '../swap/mesh.js';
import { meshTopology } from '../swap/topology.js';
import { maskAgreement } from './auto.js';
import { consistentMask, flowPair, flowPlane, warpingError } from '../../metrics/flicker.js';
import { harmonicFill } from './harmonic.js';
import { binarizeMask, maskFromFrame } from './mask.js';
import { spatialFill } from './patchmatch.js';
import { FlowCache, prepareWindowFrame, temporalFill } from './propagate.js';

export interface MaskedMetrics {
  /** RGB PSNR over the hole pixels (dB, capped like src/metrics). */
  psnr: number;
  mse: number;
  /** Luma SSIM averaged over the windows centred on hole pixels. */
  ssim: number;
  /** Whole-frame RGB PSNR and luma SSIM, for reference. */
  psnrFrame: number;
  ssimFrame: number;
  /** Hole pixels counted. */
  pixels: number;
}

/** PSNR/SSIM of `a` against `b` inside `mask` (>= 128 = inside), and over the whole frame. */
export function maskedMetrics(a: RgbFrame, b: RgbFrame, mask: Mask): MaskedMetrics {
  if (a.width !== b.width || a.height !== b.height || mask.width !== a.width || mask.height !== a.height) {
    throw new Error(`maskedMetrics: sizes differ (${a.width}x${a.height}, ${b.width}x${b.height}, mask ${mask.width}x${mask.height})`);
  }
  const n = a.width * a.height;
  let se = 0, k = 0, seAll = 0;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let c = 0; c < 3; c++) {
      const d = a.data[3 * i + c] - b.data[3 * i + c];
      s += d * d;
    }
    seAll += s;
    if (mask.data[i] >= 128) {
      se += s;
      k++;
    }
  }
  const mse = k ? se / (3 * k) : 0;
  const ya = lumaBt601(a), yb = lumaBt601(b);
  return {
    psnr: psnrFromMse(mse),
    mse,
    ssim: k ? ssimMasked(ya, yb, a.width, a.height, mask) : 1,
    psnrFrame: psnrFromMse(seAll / (3 * n)),
    ssimFrame: ssimGray(ya, yb, a.width, a.height),
    pixels: k,
  };
}

/** Mean of the SSIM map over the valid windows whose centre is a hole pixel (nearest valid centre for holes at the border). */
export function ssimMasked(x: Float32Array, y: Float32Array, w: number, h: number, mask: Mask): number {
  const n = SSIM_WINDOW, half = (n - 1) >> 1;
  if (w < n || h < n) return ssimGray(x, y, w, h);
  const k = new Float64Array(n);
  let ks = 0;
  for (let i = 0; i < n; i++) ks += k[i] = Math.exp(-((i - half) ** 2) / (2 * SSIM_SIGMA * SSIM_SIGMA));
  for (let i = 0; i < n; i++) k[i] /= ks;
  const c1 = (SSIM_K1 * 255) ** 2, c2 = (SSIM_K2 * 255) ** 2;
  // Count, per valid window centre, how many hole pixels map to it.
  const ow = w - n + 1, oh = h - n + 1;
  const weight = new Float64Array(ow * oh);
  for (let py = 0; py < h; py++)
    for (let px = 0; px < w; px++) {
      if (mask.data[py * w + px] < 128) continue;
      const cx = Math.min(Math.max(px - half, 0), ow - 1), cy = Math.min(Math.max(py - half, 0), oh - 1);
      weight[cy * ow + cx]++;
    }
  let total = 0, wsum = 0;
  for (let r = 0; r < oh; r++)
    for (let c = 0; c < ow; c++) {
      const wt = weight[r * ow + c];
      if (!wt) continue;
      let mx = 0, my = 0, sxx = 0, syy = 0, sxy = 0;
      for (let dy = 0; dy < n; dy++) {
        const ky = k[dy];
        const row = (r + dy) * w + c;
        for (let dx = 0; dx < n; dx++) {
          const kk = ky * k[dx];
          const a = x[row + dx], b = y[row + dx];
          mx += kk * a; my += kk * b; sxx += kk * a * a; syy += kk * b * b; sxy += kk * a * b;
        }
      }
      const vx = sxx - mx * mx, vy = syy - my * my, cxy = sxy - mx * my;
      total += wt * (((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2)));
      wsum += wt;
    }
  return total / wsum;
}

/** Running means of masked metrics over frames. */
export class MaskedMetricsMean {
  frames = 0;
  private sum = { psnr: 0, ssim: 0, psnrFrame: 0, ssimFrame: 0 };
  add(m: MaskedMetrics): void {
    if (!m.pixels) return;
    this.frames++;
    this.sum.psnr += m.psnr;
    this.sum.ssim += m.ssim;
    this.sum.psnrFrame += m.psnrFrame;
    this.sum.ssimFrame += m.ssimFrame;
  }
  mean(): { psnr: number; ssim: number; psnrFrame: number; ssimFrame: number; frames: number } {
    const f = Math.max(1, this.frames);
    return { psnr: this.sum.psnr / f, ssim: this.sum.ssim / f, psnrFrame: this.sum.psnrFrame / f, ssimFrame: this.sum.ssimFrame / f, frames: this.frames };
  }
}

// ---- Evaluating the backends on a degraded case folder (restore degrade output) ----


export interface LoadedCase {
  dir: string;
  input: RgbFrame[];
  mask: Mask[];
  /** The clean reference, downscaled to the input size with the filter the degrade used. */
  reference: RgbFrame[];
}

async function readFrames(file: string, opts: Parameters<typeof decodeFrames>[1] = {}): Promise<RgbFrame[]> {
  const out: RgbFrame[] = [];
  for await (const f of decodeFrames(await probeVideo(file), opts)) out.push({ width: f.width, height: f.height, data: f.data });
  return out;
}

/** Read a case folder (case.json, input.mp4, mask.mp4, reference.mp4) into memory (small clips only). */
export async function loadCase(dir: string): Promise<LoadedCase> {
  const info = JSON.parse(await fs.readFile(path.join(dir, 'case.json'), 'utf8'));
  const input = await readFrames(path.join(dir, info.files.input));
  const mask = (await readFrames(path.join(dir, info.files.mask))).map((f) => binarizeMask(maskFromFrame(f)));
  const reference = await readFrames(path.join(dir, info.files.reference), { size: info.size, scaleFlags: info.scaleFilter ?? 'area' });
  return { dir, input, mask, reference };
}

export type EvalMethod = 'none' | 'harmonic' | 'spatial' | 'builtin';

export interface CaseScore {
  method: EvalMethod;
  /** Means over frames with a hole: inside-mask PSNR (RGB) / SSIM (luma), whole-frame PSNR / SSIM. */
  psnr: number;
  ssim: number;
  psnrFrame: number;
  ssimFrame: number;
  frames: number;
  msPerFrame: number;
  /** builtin: share of hole pixels filled from other frames. */
  temporalShare?: number;
  /**
   * Mean absolute change (0-255) of the hole pixels between consecutive output frames, and the
   * same for the reference: an output changing much more than the reference flickers.
   */
  holeChange: number;
  referenceHoleChange: number;
}

/** Fill a loaded case with one method and score it against the reference. */
export function scoreCase(c: LoadedCase, method: EvalMethod, opts: { temporalRadius?: number; carry?: boolean } = {}): CaseScore {
  const t0 = performance.now();
  let outs: RgbFrame[];
  let temporalShare: number | undefined;
  if (method === 'none') outs = c.input;
  else if (method === 'harmonic') outs = c.input.map((f, i) => harmonicFill(f, c.mask[i]));
  else if (method === 'spatial') outs = c.input.map((f, i) => spatialFill(f, c.mask[i]));
  else {
    const R = opts.temporalRadius ?? 30;
    const wf = c.input.map((f, i) => prepareWindowFrame(i, f, c.mask[i]));
    const cache = new FlowCache(undefined);
    let tmp = 0, all = 0;
    outs = [];
    wf.forEach((t, i) => {
      const previous = (opts.carry ?? true) && i > 0 ? { index: i - 1, frame: outs[i - 1] } : undefined;
      const r = temporalFill(t, wf.slice(Math.max(0, i - R), i + R + 1), cache, { radius: R, previous });
      tmp += r.temporal;
      all += r.holePixels;
      cache.keep(i - R, i + R);
      outs.push(r.frame);
    });
    temporalShare = all ? tmp / all : 0;
  }
  const msPerFrame = (performance.now() - t0) / c.input.length;
  const mean = new MaskedMetricsMean();
  outs.forEach((o, i) => mean.add(maskedMetrics(o, c.reference[i], c.mask[i])));
  // Temporal change inside the hole between consecutive frames, output vs reference.
  let dOut = 0, dRef = 0, k = 0;
  for (let i = 1; i < outs.length; i++) {
    const m = c.mask[i].data;
    for (let p = 0; p < m.length; p++) {
      if (m[p] < 128) continue;
      for (let ch = 0; ch < 3; ch++) {
        dOut += Math.abs(outs[i].data[3 * p + ch] - outs[i - 1].data[3 * p + ch]);
        dRef += Math.abs(c.reference[i].data[3 * p + ch] - c.reference[i - 1].data[3 * p + ch]);
      }
      k += 3;
    }
  }
  return { method, ...mean.mean(), msPerFrame, temporalShare, holeChange: k ? dOut / k : 0, referenceHoleChange: k ? dRef / k : 0 };
}

// ---- Scores by region: face holes and background holes, and the auto mask against the truth ----

export interface RegionScore {
  /** Luma (BT.601) PSNR over the region's pixels, dB (capped like src/metrics); null when the region is empty. */
  ypsnr: number | null;
  /** Luma SSIM over the windows centred on the region's pixels; null when empty. */
  ssim: number | null;
  /** Luma squared error summed over the region (for pooling over frames). */
  se: number;
  pixels: number;
}

export interface HoleRegionScores {
  /** Hole pixels inside a face (the face region given), outside it, and all. */
  face: RegionScore;
  background: RegionScore;
  all: RegionScore;
  /** The auto mask against the true holes, when one is given. */
  auto?: { recall: number; falsePositive: number; precision: number };
}

/** Pixels covered by the face meshes (468-point mesh triangles, eye and mouth openings included). */
export function faceRegionMask(width: number, height: number, meshes: Float32Array[]): Mask {
  const m = createMask(width, height);
  const tri = meshTopology().triangles;
  for (const mesh of meshes) {
    const map = meshWarpMap(mesh, mesh, tri, { x: 0, y: 0, width, height });
    for (let i = 0; i < map.inR.length; i++) if (map.inR[i]) m.data[i] = 255;
  }
  return m;
}

function regionScore(ya: Float32Array, yb: Float32Array, w: number, h: number, region: Mask): RegionScore {
  let se = 0, k = 0;
  for (let i = 0; i < region.data.length; i++) {
    if (region.data[i] < 128) continue;
    se += (ya[i] - yb[i]) ** 2;
    k++;
  }
  if (!k) return { ypsnr: null, ssim: null, se: 0, pixels: 0 };
  return { ypsnr: psnrFromMse(se / k), ssim: ssimMasked(ya, yb, w, h, region), se, pixels: k };
}

/**
 * Scores of one output frame against its reference inside the true holes, split into face
 * holes (holes ∩ `faceRegion`, e.g. faceRegionMask of the reference's face meshes) and
 * background holes; and, given the auto mask, its recall and false-positive rate.
 */
export function holeRegionScores(output: RgbFrame, reference: RgbFrame, holes: Mask, faceRegion?: Mask, autoMask?: Mask): HoleRegionScores {
  const { width: w, height: h } = output;
  if (reference.width !== w || reference.height !== h || holes.width !== w || holes.height !== h) {
    throw new Error(`holeRegionScores: sizes differ (${w}x${h}, ${reference.width}x${reference.height}, holes ${holes.width}x${holes.height})`);
  }
  const ya = lumaBt601(output), yb = lumaBt601(reference);
  const face = createMask(w, h), bg = createMask(w, h);
  for (let i = 0; i < w * h; i++) {
    if (holes.data[i] < 128) continue;
    if (faceRegion && faceRegion.data[i] >= 128) face.data[i] = 255;
    else bg.data[i] = 255;
  }
  const out: HoleRegionScores = { face: regionScore(ya, yb, w, h, face), background: regionScore(ya, yb, w, h, bg), all: regionScore(ya, yb, w, h, binarizeMask(holes)) };
  if (autoMask) out.auto = maskAgreement(autoMask, holes);
  return out;
}

/** Means of holeRegionScores over frames: per-frame mean of Y-PSNR/SSIM, pooled Y-PSNR, auto-mask means. */
export class HoleRegionMeans {
  private acc = { face: [0, 0, 0, 0, 0], background: [0, 0, 0, 0, 0], all: [0, 0, 0, 0, 0] } as Record<'face' | 'background' | 'all', number[]>;
  private auto = [0, 0, 0, 0];
  frames = 0;
  add(s: HoleRegionScores): void {
    this.frames++;
    for (const r of ['face', 'background', 'all'] as const) {
      const v = s[r], a = this.acc[r];
      if (v.ypsnr === null) continue;
      a[0] += v.ypsnr; a[1] += v.ssim!; a[2]++; a[3] += v.se; a[4] += v.pixels;
    }
    if (s.auto) { this.auto[0] += s.auto.recall; this.auto[1] += s.auto.falsePositive; this.auto[2] += s.auto.precision; this.auto[3]++; }
  }
  mean() {
    const r = (k: 'face' | 'background' | 'all') => {
      const a = this.acc[k];
      return a[2] ? { ypsnr: a[0] / a[2], ssim: a[1] / a[2], ypsnrPooled: psnrFromMse(a[3] / a[4]), frames: a[2], pixels: a[4] } : null;
    };
    const a = this.auto;
    return { face: r('face'), background: r('background'), all: r('all'), auto: a[3] ? { recall: a[0] / a[3], falsePositive: a[1] / a[3], precision: a[2] / a[3] } : null };
  }
}

/**
 * Flicker inside the holes: src/metrics/flicker.ts's warping error between consecutive output
 * frames (same flow, same validity test), counted only over the pixels of `holes` (of frame `cur`).
 */
export function holeFlicker(prev: RgbFrame, cur: RgbFrame, holes: Mask): { flicker: number; valid: number } {
  const w = cur.width, h = cur.height;
  const pl = lumaBt601(prev), cl = lumaBt601(cur);
  const pair = flowPair(flowPlane(pl, w, h), flowPlane(cl, w, h));
  const valid = consistentMask(pair);
  for (let i = 0; i < valid.length; i++) if (holes.data[i] < 128) valid[i] = 0;
  return warpingError(pl, cl, pair.back, valid);
}
