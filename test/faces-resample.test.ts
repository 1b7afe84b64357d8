/**
 * The face analyzer's fast resampling paths (the mesh crop's supersampled bilinear warp, the
 * detector's letterbox) against plain per-sample references written here: same bytes.
 */
import { describe, expect, it } from 'vitest';
import { warpAffine, warpAffineTensor, invertAffine, type Affine } from '../src/faces/align.js';
import { letterbox } from '../src/faces/blazeface.js';
import type { RgbFrame } from '../src/media/frame.js';

function noise(w: number, h: number, seed: number): RgbFrame {
  let s = seed >>> 0;
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    data[i] = s >>> 24;
  }
  return { width: w, height: h, data };
}

/** n x n bilinear samples per pixel (offsets (i + 0.5) / n - 0.5), clamped border, averaged. */
function referenceWarp(src: RgbFrame, m: Affine, width: number, height: number, n: number): Uint8Array {
  const inv = invertAffine(m);
  const { width: W, height: H, data: s } = src;
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const acc = [0, 0, 0];
      for (let j = 0; j < n; j++) {
        for (let i = 0; i < n; i++) {
          const xx = x + ((i + 0.5) / n - 0.5), yy = y + ((j + 0.5) / n - 0.5);
          const sx = Math.min(W - 1, Math.max(0, inv[0] * xx + inv[1] * yy + inv[2]));
          const sy = Math.min(H - 1, Math.max(0, inv[3] * xx + inv[4] * yy + inv[5]));
          const ix = Math.floor(sx), iy = Math.floor(sy), fx = sx - ix, fy = sy - iy;
          const ix1 = Math.min(W - 1, ix + 1), iy1 = Math.min(H - 1, iy + 1);
          for (let c = 0; c < 3; c++) {
            const at = (xq: number, yq: number) => s[(yq * W + xq) * 3 + c];
            acc[c] += at(ix, iy) * ((1 - fx) * (1 - fy)) + at(ix1, iy) * (fx * (1 - fy)) + at(ix, iy1) * ((1 - fx) * fy) + at(ix1, iy1) * (fx * fy);
          }
        }
      }
      for (let c = 0; c < 3; c++) {
        const v = acc[c] * (1 / (n * n));
        out[(y * width + x) * 3 + c] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
      }
    }
  }
  return out;
}

/** The letterbox by its definition: triangle filter widened by the shrink, taps summed in float32, edge coverage, v/127.5 - 1. */
function referenceLetterbox(frame: RgbFrame, size: number): Float32Array {
  const { width: W, height: H, data } = frame;
  const scale = size / Math.max(W, H);
  const nw = W * scale, nh = H * scale, ox = (size - nw) / 2, oy = (size - nh) / 2;
  const support = Math.max(1, 1 / scale), T = Math.ceil(support) * 2 + 1;
  const taps = (o: number, off: number, n: number) => {
    const c = (o + 0.5 - off) / scale - 0.5, lo = Math.floor(c - support) + 1;
    const t = Array.from({ length: T }, (_, k) => ({ i: Math.min(n - 1, Math.max(0, lo + k)), w: Math.max(0, 1 - Math.abs(lo + k - c) / support) }));
    const sum = t.reduce((a, b) => a + b.w, 0);
    // weights are kept as float32 before and after the normalisation
    return t.map((q) => ({ i: q.i, w: Math.fround(sum > 0 ? Math.fround(q.w) / sum : q.w) }));
  };
  const out = new Float32Array(size * size * 3).fill(-1);
  for (let y = Math.max(0, Math.floor(oy)); y < Math.min(size, Math.ceil(oy + nh)); y++) {
    const ty = taps(y, oy, H);
    const col = new Float32Array(W * 3); // the vertical pass, one output row
    for (let i = 0; i < W * 3; i++) {
      let acc = 0;
      for (const q of ty) if (q.w !== 0) acc = Math.fround(acc + data[q.i * W * 3 + i] * q.w);
      col[i] = acc;
    }
    const cy = Math.min(1, Math.min(y + 1, oy + nh) - Math.max(y, oy));
    for (let x = Math.max(0, Math.floor(ox)); x < Math.min(size, Math.ceil(ox + nw)); x++) {
      const tx = taps(x, ox, W);
      const cov = Math.min(1, Math.min(x + 1, ox + nw) - Math.max(x, ox)) * cy;
      for (let c = 0; c < 3; c++) {
        let v = 0;
        for (const q of tx) v += col[q.i * 3 + c] * q.w;
        out[(y * size + x) * 3 + c] = v * (cov / 127.5) - 1;
      }
    }
  }
  return out;
}

describe('face analyzer resampling', () => {
  it('the supersampled bilinear warp (mesh crops of large faces) gives the bytes of the per-sample average', () => {
    const src = noise(300, 260, 7);
    for (const [shrink, n] of [[1.8, 2], [2.6, 3], [4.2, 5]] as const) {
      const a = 0.3, k = 1 / shrink;
      const m: Affine = [Math.cos(a) * k, -Math.sin(a) * k, 20, Math.sin(a) * k, Math.cos(a) * k, -15];
      const got = warpAffine(src, m, 64, 48, 'bilinear').data;
      expect(Buffer.compare(Buffer.from(got), Buffer.from(referenceWarp(src, m, 64, 48, n))), `shrink ${shrink}`).toBe(0);
    }
  });

  it('the one-sample bilinear warp (mesh crops of small faces) gives the bytes of the per-sample definition, and the model-input warp those bytes / 255', () => {
    const src = noise(300, 260, 11);
    // enlarging, mild shrinking (below the 1.5x supersampling threshold), and shrinking by 2.6x
    // crops centred near each corner: they reach past the frame's edges (replicated border)
    const cases = [0.6, 1.3, 2.6].flatMap((shrink) => [[shrink, 10, 12], [shrink, 292, 251]] as const);
    for (const [shrink, cx, cy] of cases) {
      const n = shrink > 1.5 ? 3 : 1;
      const a = -0.4, k = 1 / shrink;
      const c = Math.cos(a) * k, sn = Math.sin(a) * k;
      const m: Affine = [c, -sn, 48 - (c * cx - sn * cy), sn, c, 40 - (sn * cx + c * cy)];
      const want = referenceWarp(src, m, 96, 80, n);
      expect(Buffer.compare(Buffer.from(warpAffine(src, m, 96, 80, 'bilinear').data), Buffer.from(want)), `shrink ${shrink}`).toBe(0);
      const t = warpAffineTensor(src, m, 96, 80);
      expect(t.length).toBe(want.length);
      let bad = 0;
      for (let i = 0; i < t.length; i++) if (t[i] !== Math.fround(want[i] / 255)) bad++;
      expect(bad, `shrink ${shrink}: tensor values that are not byte / 255`).toBe(0);
    }
  });

  it('the letterbox (detector input) equals its definition, square and non-square frames', () => {
    for (const [w, h] of [[480, 480], [333, 190], [97, 211], [120, 120], [100, 60]] as const) {
      const f = noise(w, h, w + h);
      const got = letterbox(f, 128).tensor;
      const want = referenceLetterbox(f, 128);
      expect(Buffer.compare(Buffer.from(got.buffer), Buffer.from(want.buffer)), `${w}x${h}`).toBe(0);
    }
  });
});
