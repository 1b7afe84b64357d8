/**
 * The back-projection's separable resample (its unrolled 4- and 16-tap paths) against the plain
 * per-tap loop written here: x pass summed in doubles and stored as float32, y pass added tap by
 * tap into float32 samples. Same bytes.
 */
import { describe, expect, it } from 'vitest';
import { resamplePlane, resampleWeights } from '../src/stages/upscale/backproject.js';

function plane(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    a[i] = (s >>> 8) / 65536; // 0..256 with fractions
  }
  return a;
}

function reference(src: Float32Array, sw: number, sh: number, dw: number, dh: number, kernel: 'bicubic' | 'area' | 'lanczos'): Float32Array {
  const wx = resampleWeights(sw, dw, kernel), wy = resampleWeights(sh, dh, kernel);
  const tmp = new Float32Array(dw * sh);
  for (let y = 0; y < sh; y++)
    for (let x = 0; x < dw; x++) {
      let acc = 0;
      for (let k = 0; k < wx.len[x]; k++) acc += wx.w[x * wx.maxLen + k] * src[y * sw + wx.start[x] + k];
      tmp[y * dw + x] = acc;
    }
  const out = new Float32Array(dw * dh);
  for (let y = 0; y < dh; y++)
    for (let k = 0; k < wy.len[y]; k++)
      for (let x = 0; x < dw; x++) out[y * dw + x] += wy.w[y * wy.maxLen + k] * tmp[(wy.start[y] + k) * dw + x];
  return out;
}

describe('back-projection resample', () => {
  it('gives the bytes of the plain per-tap loop: x4 down and up, x2, x3, odd sizes, three kernels', () => {
    const cases: [number, number, number, number, 'bicubic' | 'area' | 'lanczos'][] = [
      [160, 120, 40, 30, 'bicubic'], // x4 down: 16-tap interior
      [40, 30, 160, 120, 'bicubic'], // x4 up: 4-tap
      [90, 66, 45, 33, 'bicubic'],
      [99, 75, 33, 25, 'lanczos'],
      [96, 64, 24, 16, 'area'],
      [37, 23, 111, 69, 'lanczos'],
    ];
    const lens = new Set<number>();
    for (const [sw, sh, dw, dh, kernel] of cases) {
      const src = plane(sw * sh, sw * 7 + sh);
      const got = resamplePlane(src, sw, sh, resampleWeights(sw, dw, kernel), resampleWeights(sh, dh, kernel), dw, dh);
      const want = reference(src, sw, sh, dw, dh, kernel);
      expect(Buffer.compare(Buffer.from(got.buffer), Buffer.from(want.buffer)), `${sw}x${sh} -> ${dw}x${dh} ${kernel}`).toBe(0);
      for (const l of resampleWeights(sw, dw, kernel).len) lens.add(l);
    }
    // the unrolled paths were exercised
    expect(lens.has(16) && lens.has(4)).toBe(true);
  });
});
