/**
 * Stored YUV planes carried beside the RGB working frame.
 *
 * After ffmpeg's scaler has produced a frame's planes, the stages still work on RGB, but the
 * encoder writes the planes themselves: pixels no later stage changed keep exactly the values
 * ffmpeg gave them (no RGB gamut clipping on the way back), and only the pixels a stage changed
 * (and the chroma samples that cover them) are converted from RGB with the source's matrix.
 */
import type { RgbFrame } from './frame.js';
import { LUMA_WEIGHTS, type Colour } from './colour.js';

export type PlanarFormat = 'yuv420p' | 'yuv422p' | 'yuv444p';
/** A planar format as stored, full-range `yuvj` names included (the layout is the same). */
export type CarriedFormat = PlanarFormat | 'yuvj420p' | 'yuvj422p' | 'yuvj444p';

export interface YuvPlanes {
  format: CarriedFormat;
  width: number;
  height: number;
  /** Chroma plane size. */
  cw: number;
  ch: number;
  y: Uint8Array;
  u: Uint8Array;
  v: Uint8Array;
}

/** The planes of a frame and the RGB they were converted to (what "unchanged" is measured against). */
export interface CarriedPlanes {
  planes: YuvPlanes;
  rgb: RgbFrame;
}


export function chromaSize(format: CarriedFormat, w: number, h: number): { cw: number; ch: number } {
  if (format.endsWith('444p')) return { cw: w, ch: h };
  if (format.endsWith('422p')) return { cw: Math.ceil(w / 2), ch: h };
  return { cw: Math.ceil(w / 2), ch: Math.ceil(h / 2) };
}

export function planarBytes(format: CarriedFormat, w: number, h: number): number {
  const { cw, ch } = chromaSize(format, w, h);
  return w * h + 2 * cw * ch;
}

/** View a packed planar buffer (as ffmpeg writes rawvideo) as planes. */
export function splitPlanes(buf: Uint8Array, format: CarriedFormat, width: number, height: number): YuvPlanes {
  const { cw, ch } = chromaSize(format, width, height);
  const n = width * height;
  const c = cw * ch;
  return { format, width, height, cw, ch, y: buf.subarray(0, n), u: buf.subarray(n, n + c), v: buf.subarray(n + c, n + 2 * c) };
}

/** Coefficients of the source's YUV (matrix and range) in both directions. */
function coefficients(colour: Colour) {
  const [kr, kb] = LUMA_WEIGHTS[colour.matrix];
  const kg = 1 - kr - kb;
  const tv = colour.range === 'tv';
  const ys = tv ? 219 / 255 : 1;
  const yo = tv ? 16 : 0;
  const cs = tv ? 224 / 255 : 1;
  return { kr, kg, kb, ys, yo, cs };
}

const clamp8 = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));

/** RGB of the planes (bilinear chroma, centre-sited), for the stages that work on RGB. */
export function planesToRgb(p: YuvPlanes, colour: Colour): RgbFrame {
  const { kr, kg, kb, ys, yo, cs } = coefficients(colour);
  const { width: w, height: h, cw, ch } = p;
  const fx = cw / w, fy = ch / h;
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    const sy = Math.min(ch - 1, Math.max(0, (y + 0.5) * fy - 0.5));
    const y0 = Math.floor(sy), y1 = Math.min(ch - 1, y0 + 1), ty = sy - y0;
    for (let x = 0; x < w; x++) {
      const sx = Math.min(cw - 1, Math.max(0, (x + 0.5) * fx - 0.5));
      const x0 = Math.floor(sx), x1 = Math.min(cw - 1, x0 + 1), tx = sx - x0;
      const a = y0 * cw + x0, b = y0 * cw + x1, c = y1 * cw + x0, d = y1 * cw + x1;
      const U = (p.u[a] * (1 - tx) + p.u[b] * tx) * (1 - ty) + (p.u[c] * (1 - tx) + p.u[d] * tx) * ty - 128;
      const V = (p.v[a] * (1 - tx) + p.v[b] * tx) * (1 - ty) + (p.v[c] * (1 - tx) + p.v[d] * tx) * ty - 128;
      const L = (p.y[y * w + x] - yo) / ys;
      const r = L + (2 * (1 - kr) * V) / cs;
      const bl = L + (2 * (1 - kb) * U) / cs;
      const g = (L - kr * r - kb * bl) / kg;
      const o = (y * w + x) * 3;
      out[o] = clamp8(r);
      out[o + 1] = clamp8(g);
      out[o + 2] = clamp8(bl);
    }
  }
  return { width: w, height: h, data: out };
}

/**
 * The planes to encode for `frame`: the carried planes where `frame` equals the RGB they were
 * converted to, and a conversion of `frame` with the source's matrix where a stage changed it
 * (a chroma sample is recomputed, from the mean of the pixels it covers, when any of them changed).
 */
export function planesForEncode(carried: CarriedPlanes, frame: RgbFrame, colour: Colour): Uint8Array {
  const p = carried.planes;
  const { width: w, height: h, cw, ch } = p;
  const out = new Uint8Array(planarBytes(p.format, w, h));
  out.set(p.y, 0);
  out.set(p.u, w * h);
  out.set(p.v, w * h + cw * ch);
  const a = frame.data, s = carried.rgb.data;
  if (a === s) return out;
  const { kr, kg, kb, ys, yo, cs } = coefficients(colour);
  const sx = w / cw, sy = h / ch; // pixels per chroma sample: 1 or 2
  const changedBlock = new Uint8Array(cw * ch);
  let any = false;
  for (let i = 0, q = 0; i < w * h; i++, q += 3) {
    if (a[q] === s[q] && a[q + 1] === s[q + 1] && a[q + 2] === s[q + 2]) continue;
    any = true;
    out[i] = clamp8(yo + ys * (kr * a[q] + kg * a[q + 1] + kb * a[q + 2]));
    const x = i % w, y = (i - x) / w;
    changedBlock[Math.floor(y / sy) * cw + Math.floor(x / sx)] = 1;
  }
  if (!any) return out;
  const uo = w * h, vo = w * h + cw * ch;
  for (let cy = 0; cy < ch; cy++) {
    for (let cx = 0; cx < cw; cx++) {
      const j = cy * cw + cx;
      if (!changedBlock[j]) continue;
      let su = 0, sv = 0, n = 0;
      for (let y = cy * sy; y < Math.min(h, (cy + 1) * sy); y++) {
        for (let x = cx * sx; x < Math.min(w, (cx + 1) * sx); x++) {
          const q = (y * w + x) * 3;
          const L = kr * a[q] + kg * a[q + 1] + kb * a[q + 2];
          su += (a[q + 2] - L) / (2 * (1 - kb));
          sv += (a[q] - L) / (2 * (1 - kr));
          n++;
        }
      }
      out[uo + j] = clamp8(128 + (cs * su) / n);
      out[vo + j] = clamp8(128 + (cs * sv) / n);
    }
  }
  return out;
}

/** Add `delta` (in RGB luma units, 0..255 scale) to the Y plane, in place. */
export function addLuma(p: YuvPlanes, delta: Float32Array, colour: Colour): void {
  const { ys } = coefficients(colour);
  for (let i = 0; i < p.y.length; i++) if (delta[i] !== 0) p.y[i] = clamp8(p.y[i] + ys * delta[i]);
}

/** Luma of the Y plane in RGB-luma units (0..255, range removed), as float. */
export function lumaFromPlanes(p: YuvPlanes, colour: Colour): Float32Array {
  const { ys, yo } = coefficients(colour);
  const out = new Float32Array(p.y.length);
  for (let i = 0; i < out.length; i++) out[i] = (p.y[i] - yo) / ys;
  return out;
}
