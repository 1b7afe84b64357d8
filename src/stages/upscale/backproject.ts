/**
 * Consistency with the low-resolution input (iterative back-projection on luma).
 *
 * A super-resolved frame, downscaled with the kernel that made the input, should give the input
 * back. Each iteration downscales the current luma, takes the error against the input's luma and
 * adds it back upscaled: `Y += up(Ylr - down(Y))`. Only luma is corrected, by adding the same
 * amount to R, G and B (which leaves the chroma of any YUV matrix unchanged).
 *
 * The resampling follows ffmpeg's scaler conventions: pixel centres at (i + 0.5), the kernel
 * stretched by the factor when downscaling, weights normalised to one, edges clamped. Kernels:
 * `bicubic` (swscale's default B = 0, C = 0.6), `lanczos` (a = 3), `area` (box), `bilinear`.
 */
import type { RgbFrame } from '../../media/frame.js';
import { LUMA_WEIGHTS, type Colour, type SwsMatrix } from '../../media/colour.js';
import { addLuma, lumaFromPlanes, planesToRgb, type YuvPlanes } from '../../media/planes.js';
import { upsampleFlow, type FlowField } from '../../flow/flow.js';

export type ResampleKernel = 'bicubic' | 'lanczos' | 'area' | 'bilinear';
export const RESAMPLE_KERNELS: readonly ResampleKernel[] = ['bicubic', 'area', 'lanczos', 'bilinear'];


function kernelOf(k: ResampleKernel): { support: number; f: (x: number) => number } {
  switch (k) {
    case 'bicubic': {
      const B = 0;
      const C = 0.6;
      return {
        support: 2,
        f: (x) => {
          x = Math.abs(x);
          if (x < 1) return ((12 - 9 * B - 6 * C) * x ** 3 + (-18 + 12 * B + 6 * C) * x * x + (6 - 2 * B)) / 6;
          if (x < 2) return ((-B - 6 * C) * x ** 3 + (6 * B + 30 * C) * x * x + (-12 * B - 48 * C) * x + (8 * B + 24 * C)) / 6;
          return 0;
        },
      };
    }
    case 'lanczos':
      return {
        support: 3,
        f: (x) => {
          x = Math.abs(x);
          if (x < 1e-9) return 1;
          if (x >= 3) return 0;
          const px = Math.PI * x;
          return (3 * Math.sin(px) * Math.sin(px / 3)) / (px * px);
        },
      };
    case 'bilinear':
      return { support: 1, f: (x) => Math.max(0, 1 - Math.abs(x)) };
    case 'area':
      return { support: 0.5, f: (x) => (Math.abs(x) <= 0.5 ? 1 : 0) };
  }
}

/** Sparse 1-D resampling matrix from `n` samples to `m` samples. */
export interface Weights {
  start: Int32Array;
  len: Int32Array;
  /** `len[i]` weights per output sample, `maxLen` apart. */
  w: Float32Array;
  maxLen: number;
}

export function resampleWeights(n: number, m: number, kernel: ResampleKernel): Weights {
  const { support, f } = kernelOf(kernel);
  const scale = n / m;
  const stretch = Math.max(1, scale); // widen the kernel when downscaling
  const reach = support * stretch;
  const maxLen = Math.ceil(2 * reach) + 2;
  const start = new Int32Array(m);
  const len = new Int32Array(m);
  const w = new Float32Array(m * maxLen);
  for (let i = 0; i < m; i++) {
    const centre = (i + 0.5) * scale - 0.5;
    let lo = Math.ceil(centre - reach);
    let hi = Math.floor(centre + reach);
    if (kernel === 'area' && lo > hi) lo = hi = Math.round(centre);
    const acc = new Map<number, number>();
    let sum = 0;
    for (let j = lo; j <= hi; j++) {
      const v = f((j - centre) / stretch);
      if (v === 0) continue;
      const jj = Math.min(n - 1, Math.max(0, j)); // clamp at the edges
      acc.set(jj, (acc.get(jj) ?? 0) + v);
      sum += v;
    }
    if (!acc.size) acc.set(Math.min(n - 1, Math.max(0, Math.round(centre))), (sum = 1));
    const idx = [...acc.keys()].sort((a, b) => a - b);
    start[i] = idx[0];
    len[i] = idx[idx.length - 1] - idx[0] + 1;
    for (const j of idx) w[i * maxLen + (j - idx[0])] = acc.get(j)! / sum;
  }
  return { start, len, w, maxLen };
}

/**
 * Separable resample of one float plane with precomputed weights (x then y). The y pass adds
 * the taps in order into float32 samples; its 4-tap rows (the bicubic upscale's) and 16-tap
 * rows (the x4 downscale's interior) keep that rounding in a register (Math.fround) instead of
 * storing after each tap, and both passes spell those two tap counts out: the same values.
 */
export function resamplePlane(src: Float32Array, sw: number, sh: number, wx: Weights, wy: Weights, dw: number, dh: number): Float32Array {
  const tmp = new Float32Array(dw * sh);
  const xs = wx.start, xl = wx.len, xw = wx.w, xm = wx.maxLen;
  for (let y = 0; y < sh; y++) {
    const row = y * sw, tb = y * dw;
    for (let x = 0; x < dw; x++) {
      const s = row + xs[x], l = xl[x], o = x * xm;
      if (l === 4) {
        tmp[tb + x] = xw[o] * src[s] + xw[o + 1] * src[s + 1] + xw[o + 2] * src[s + 2] + xw[o + 3] * src[s + 3];
        continue;
      }
      if (l === 16) {
        // the x4 downscale's interior taps, added left to right as the loop below does
        tmp[tb + x] =
          xw[o] * src[s] + xw[o + 1] * src[s + 1] + xw[o + 2] * src[s + 2] + xw[o + 3] * src[s + 3] +
          xw[o + 4] * src[s + 4] + xw[o + 5] * src[s + 5] + xw[o + 6] * src[s + 6] + xw[o + 7] * src[s + 7] +
          xw[o + 8] * src[s + 8] + xw[o + 9] * src[s + 9] + xw[o + 10] * src[s + 10] + xw[o + 11] * src[s + 11] +
          xw[o + 12] * src[s + 12] + xw[o + 13] * src[s + 13] + xw[o + 14] * src[s + 14] + xw[o + 15] * src[s + 15];
        continue;
      }
      let acc = 0;
      for (let k = 0; k < l; k++) acc += xw[o + k] * src[s + k];
      tmp[tb + x] = acc;
    }
  }
  const out = new Float32Array(dw * dh);
  const ys = wy.start, yl = wy.len, yw = wy.w, ym = wy.maxLen;
  for (let y = 0; y < dh; y++) {
    const s = ys[y], l = yl[y], o = y * ym, base = y * dw;
    if (l === 4) {
      const w0 = yw[o], w1 = yw[o + 1], w2 = yw[o + 2], w3 = yw[o + 3];
      const r0 = s * dw, r1 = r0 + dw, r2 = r1 + dw, r3 = r2 + dw;
      for (let x = 0; x < dw; x++) {
        let a = Math.fround(w0 * tmp[r0 + x]);
        a = Math.fround(a + w1 * tmp[r1 + x]);
        a = Math.fround(a + w2 * tmp[r2 + x]);
        out[base + x] = a + w3 * tmp[r3 + x];
      }
      continue;
    }
    if (l === 16) {
      // the x4 downscale's interior rows: 16 taps, each sum rounded to float32 as the stores below do
      const f = Math.fround;
      const w0 = yw[o], w1 = yw[o + 1], w2 = yw[o + 2], w3 = yw[o + 3], w4 = yw[o + 4], w5 = yw[o + 5], w6 = yw[o + 6], w7 = yw[o + 7];
      const w8 = yw[o + 8], w9 = yw[o + 9], w10 = yw[o + 10], w11 = yw[o + 11], w12 = yw[o + 12], w13 = yw[o + 13], w14 = yw[o + 14], w15 = yw[o + 15];
      const r0 = s * dw;
      for (let x = 0; x < dw; x++) {
        const i = r0 + x;
        let a = f(w0 * tmp[i]);
        a = f(a + w1 * tmp[i + dw]);
        a = f(a + w2 * tmp[i + 2 * dw]);
        a = f(a + w3 * tmp[i + 3 * dw]);
        a = f(a + w4 * tmp[i + 4 * dw]);
        a = f(a + w5 * tmp[i + 5 * dw]);
        a = f(a + w6 * tmp[i + 6 * dw]);
        a = f(a + w7 * tmp[i + 7 * dw]);
        a = f(a + w8 * tmp[i + 8 * dw]);
        a = f(a + w9 * tmp[i + 9 * dw]);
        a = f(a + w10 * tmp[i + 10 * dw]);
        a = f(a + w11 * tmp[i + 11 * dw]);
        a = f(a + w12 * tmp[i + 12 * dw]);
        a = f(a + w13 * tmp[i + 13 * dw]);
        a = f(a + w14 * tmp[i + 14 * dw]);
        out[base + x] = a + w15 * tmp[i + 15 * dw];
      }
      continue;
    }
    for (let k = 0; k < l; k++) {
      const wk = yw[o + k];
      const r = (s + k) * dw;
      for (let x = 0; x < dw; x++) out[base + x] += wk * tmp[r + x];
    }
  }
  return out;
}

/** Luma of packed RGB (0..255, no range scaling: only differences of it are used). */
export function lumaOf(f: RgbFrame, matrix: SwsMatrix): Float32Array {
  const [kr, kb] = LUMA_WEIGHTS[matrix];
  const kg = 1 - kr - kb;
  const n = f.width * f.height;
  const y = new Float32Array(n);
  const d = f.data;
  for (let i = 0, p = 0; i < n; i++, p += 3) y[i] = kr * d[p] + kg * d[p + 1] + kb * d[p + 2];
  return y;
}

/** An input frame next to the one being corrected, with the flows between them at the output size. */
export interface Neighbour {
  /** The neighbour's input luma (low resolution). */
  ylr: Float32Array;
  /** For each output pixel of the neighbour: where it is in the corrected frame (displacement). */
  toFrame: FlowField;
  /** For each output pixel of the corrected frame: where it is in the neighbour. */
  fromFrame: FlowField;
}

/** Error scale of a neighbour's weight, grey levels: an error of this size counts e^-1. */
export const NEIGHBOUR_ERROR_SCALE = 6;

/**
 * `p` sampled at each pixel plus its flow: sampleBilinear's arithmetic, inlined, with the
 * clamped (non-negative) coordinates truncated by `| 0` instead of Math.floor (the same
 * values, about twice as fast).
 */
function warpPlane(p: Float32Array, w: number, h: number, f: FlowField): Float32Array {
  const o = new Float32Array(w * h);
  const { u, v } = f;
  const wm = w - 1, hm = h - 1;
  for (let y = 0, i = 0; y < h; y++)
    for (let x = 0; x < w; x++, i++) {
      let cx = x + u[i], cy = y + v[i];
      cx = cx < 0 ? 0 : cx > wm ? wm : cx;
      cy = cy < 0 ? 0 : cy > hm ? hm : cy;
      const x0 = cx | 0, y0 = cy | 0;
      const x1 = x0 < wm ? x0 + 1 : x0, r0 = y0 * w, r1 = y0 < hm ? r0 + w : r0;
      const ax = cx - x0, ay = cy - y0;
      o[i] = (p[r0 + x0] * (1 - ax) + p[r0 + x1] * ax) * (1 - ay) + (p[r1 + x0] * (1 - ax) + p[r1 + x1] * ax) * ay;
    }
  return o;
}

/** Add a luma change to packed RGB in place (the same on R, G and B, so chroma stays). */
export function addLumaToRgb(f: RgbFrame, delta: Float32Array): void {
  const d = f.data;
  for (let i = 0, p = 0; i < delta.length; i++, p += 3) {
    if (delta[i] === 0) continue;
    for (let c = 0; c < 3; c++) {
      const v = Math.round(d[p + c] + delta[i]);
      d[p + c] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
}

export interface BackProjector {
  kernel: ResampleKernel;
  iterations: number;
  /** Correct `hr` in place so that its luma, downscaled with `kernel`, matches `lr`'s. Returns the final mean abs error. */
  apply(hr: RgbFrame, lr: RgbFrame): number;
  /**
   * The luma correction for a high-resolution luma `yhr` against the input's luma `ylr` (0..255
   * units). With `neighbours`, the input frames around it count too: the estimate is warped into
   * each neighbour's geometry, downscaled and compared with that frame's input, and the error
   * (weighted down where it is large: occlusion or bad flow) comes back along the flow.
   */
  lumaDelta(yhr: Float32Array, ylr: Float32Array, neighbours?: Neighbour[]): { delta: Float32Array; err: number };
  /** Mean absolute luma error of `down(hr)` against `lr` (to compare kernels). */
  residual(hr: RgbFrame, lr: RgbFrame): number;
}

export function createBackProjector(
  lrSize: { width: number; height: number },
  hrSize: { width: number; height: number },
  opts: { kernel: ResampleKernel; iterations: number; matrix: SwsMatrix },
): BackProjector {
  const { width: lw, height: lh } = lrSize;
  const { width: hw, height: hh } = hrSize;
  const dx = resampleWeights(hw, lw, opts.kernel);
  const dy = resampleWeights(hh, lh, opts.kernel);
  const ux = resampleWeights(lw, hw, 'bicubic');
  const uy = resampleWeights(lh, hh, 'bicubic');
  const meanAbs = (a: Float32Array, b: Float32Array) => {
    let s = 0;
    for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
    return s / a.length;
  };
  return {
    kernel: opts.kernel,
    iterations: opts.iterations,
    residual(hr, lr) {
      return meanAbs(resamplePlane(lumaOf(hr, opts.matrix), hw, hh, dx, dy, lw, lh), lumaOf(lr, opts.matrix));
    },
    lumaDelta(y0, ylr, neighbours = []) {
      const y = Float32Array.from(y0);
      let err = 0;
      const k2 = NEIGHBOUR_ERROR_SCALE * NEIGHBOUR_ERROR_SCALE;
      for (let it = 0; it < opts.iterations; it++) {
        const down = resamplePlane(y, hw, hh, dx, dy, lw, lh);
        let e = 0;
        for (let i = 0; i < down.length; i++) {
          down[i] = ylr[i] - down[i];
          e += Math.abs(down[i]);
        }
        err = e / down.length;
        const up = resamplePlane(down, lw, lh, ux, uy, hw, hh);
        for (const nb of neighbours) {
          const seen = resamplePlane(warpPlane(y, hw, hh, nb.toFrame), hw, hh, dx, dy, lw, lh);
          for (let i = 0; i < seen.length; i++) {
            const d = nb.ylr[i] - seen[i];
            seen[i] = d * Math.exp(-(d * d) / k2);
          }
          const back = warpPlane(resamplePlane(seen, lw, lh, ux, uy, hw, hh), hw, hh, nb.fromFrame);
          for (let i = 0; i < up.length; i++) up[i] += back[i];
        }
        const norm = 1 / (1 + neighbours.length);
        for (let i = 0; i < y.length; i++) y[i] += up[i] * norm;
      }
      for (let i = 0; i < y.length; i++) y[i] -= y0[i];
      return { delta: y, err };
    },
    apply(hr, lr) {
      const { delta, err } = this.lumaDelta(lumaOf(hr, opts.matrix), lumaOf(lr, opts.matrix));
      addLumaToRgb(hr, delta);
      return err;
    },
  };
}

/** How the back-projection is set up: what a worker needs to make the same BackProjector. */
export interface BackProjectSpec {
  from: { width: number; height: number };
  to: { width: number; height: number };
  kernel: ResampleKernel;
  iterations: number;
  matrix: SwsMatrix;
}

/** A neighbour of a frame from its input luma and the input-size flows to and from the frame, scaled to the output size. */
export function neighbourOf(near: Float32Array, toFrame: FlowField, fromFrame: FlowField, hr: { width: number; height: number }): Neighbour {
  return { ylr: near, toFrame: upsampleFlow(toFrame, hr.width, hr.height), fromFrame: upsampleFlow(fromFrame, hr.width, hr.height) };
}

/**
 * The per-frame end of the classical path: back-project the planes'
 * luma against the input's (and the neighbouring inputs', when given; in place) and convert the
 * planes to RGB. The same function runs on the main thread (--workers 0) and in a worker
 * ('upscale.finish'), so both give the same bytes.
 */
export function finishPlanes(planes: YuvPlanes, ylr: Float32Array, colour: Colour, bp: BackProjector | undefined, neighbours: Neighbour[] = []): { rgb: RgbFrame; err: number } {
  let err = 0;
  if (bp) {
    const r = bp.lumaDelta(lumaFromPlanes(planes, colour), ylr, neighbours);
    addLuma(planes, r.delta, colour);
    err = r.err;
  }
  return { rgb: planesToRgb(planes, colour), err };
}
