import { describe, expect, it } from 'vitest';
import path from 'node:path';
import sharp from 'sharp';
import {
  alignFace,
  applyAffine,
  composeAffine,
  estimateSimilarity,
  invertAffine,
  pasteBack,
  softBoxMask,
  softHullMask,
  TEMPLATES,
  templatePoints,
  warpAffine,
  type Affine,
} from '../src/faces/align.js';
import type { RgbFrame } from '../src/media/frame.js';
import { fixturesDir } from '../src/util/paths.js';

async function loadPng(p: string): Promise<RgbFrame> {
  const { data, info } = await sharp(p).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

// Approximate 5 points of the portrait's face (right eye, left eye, nose, mouth corners), in pixels.
const FIVE = [
  { x: 203, y: 112 },
  { x: 246, y: 112 },
  { x: 224, y: 133 },
  { x: 208, y: 150 },
  { x: 242, y: 150 },
];

describe('estimateSimilarity', () => {
  it('recovers a known similarity exactly from noiseless points', () => {
    const th = 0.3, s = 1.7;
    const m: Affine = [s * Math.cos(th), -s * Math.sin(th), 12.5, s * Math.sin(th), s * Math.cos(th), -7.25];
    const src = FIVE;
    const dst = src.map((p) => applyAffine(m, p));
    const est = estimateSimilarity(src, dst);
    for (let i = 0; i < 6; i++) expect(est[i]).toBeCloseTo(m[i], 9);
  });

  it('is the least-squares fit: residual is smaller than any perturbed transform', () => {
    const dst = templatePoints('arcface_112_v2', 112);
    const est = estimateSimilarity(FIVE, dst);
    const res = (m: Affine) => FIVE.reduce((acc, p, i) => {
      const q = applyAffine(m, p);
      return acc + (q.x - dst[i].x) ** 2 + (q.y - dst[i].y) ** 2;
    }, 0);
    const r0 = res(est);
    for (const [da, db, dc] of [[1e-3, 0, 0], [0, 1e-3, 0], [0, 0, 0.05], [-1e-3, 0, 0], [0, -1e-3, 0], [0, 0, -0.05]]) {
      const a = est[0] + da, b = est[3] + db;
      const m: Affine = [a, -b, est[2] + dc, b, a, est[5] + dc];
      expect(res(m)).toBeGreaterThan(r0);
    }
  });

  it('inverts and composes', () => {
    const m = estimateSimilarity(FIVE, templatePoints('ffhq_512', 512));
    const id = composeAffine(invertAffine(m), m);
    const want = [1, 0, 0, 0, 1, 0];
    for (let i = 0; i < 6; i++) expect(id[i]).toBeCloseTo(want[i], 9);
    expect(() => estimateSimilarity([{ x: 1, y: 1 }, { x: 1, y: 1 }], [{ x: 0, y: 0 }, { x: 1, y: 1 }])).toThrow(/degenerate/);
  });

  it('has the five templates from MODEL-CONTRACTS.md', () => {
    expect(Object.keys(TEMPLATES).sort()).toEqual(['arcface_112_v1', 'arcface_112_v2', 'arcface_128', 'ffhq_512', 'mtcnn_512']);
    expect(TEMPLATES.arcface_112_v1[2]).toEqual([0.5, 0.61154464]);
    expect(TEMPLATES.ffhq_512[4]).toEqual([0.61150205, 0.72490465]);
  });
});

describe('warpAffine', () => {
  it('identity and integer translations are exact; border is replicated', () => {
    const src: RgbFrame = { width: 7, height: 5, data: new Uint8Array(7 * 5 * 3).map((_, i) => (i * 37) % 256) };
    const same = warpAffine(src, [1, 0, 0, 0, 1, 0], 7, 5);
    expect(Buffer.from(same.data).equals(Buffer.from(src.data))).toBe(true);
    const shifted = warpAffine(src, [1, 0, 2, 0, 1, 1], 7, 5); // dst(x,y) = src(x-2, y-1)
    const px = (f: RgbFrame, x: number, y: number) => Array.from(f.data.subarray((y * f.width + x) * 3, (y * f.width + x) * 3 + 3));
    expect(px(shifted, 4, 3)).toEqual(px(src, 2, 2));
    expect(px(shifted, 0, 0)).toEqual(px(src, 0, 0)); // replicated corner
    expect(px(shifted, 1, 3)).toEqual(px(src, 0, 2)); // replicated left edge
  });

  it('places the face points on the template', async () => {
    const frame = await loadPng(path.join(fixturesDir, 'source', 'astronaut.png'));
    const { crop, matrix } = alignFace(frame, FIVE, 'arcface_112_v1', 112);
    expect(crop.width).toBe(112);
    const mapped = FIVE.map((p) => applyAffine(matrix, p));
    const tpl = templatePoints('arcface_112_v1', 112);
    const err = mapped.reduce((a, p, i) => a + Math.hypot(p.x - tpl[i].x, p.y - tpl[i].y), 0) / 5;
    expect(err).toBeLessThan(3); // residual of a similarity fit to a real face
  });
});

describe('masks and paste-back', () => {
  it('soft box mask is 0 at the border, 1 in the middle, symmetric and monotone', () => {
    const m = softBoxMask(256);
    expect(m[0]).toBe(0);
    expect(m[255]).toBe(0);
    expect(m[128 * 256 + 128]).toBe(1);
    for (let x = 1; x < 128; x++) expect(m[128 * 256 + x]).toBeGreaterThanOrEqual(m[128 * 256 + x - 1]);
    expect(m[128 * 256 + 20]).toBeCloseTo(m[128 * 256 + 235], 6);
  });

  it('hull mask follows the polygon', () => {
    const hull = [{ x: 20, y: 20 }, { x: 100, y: 20 }, { x: 100, y: 100 }, { x: 20, y: 100 }, { x: 60, y: 60 }];
    const m = softHullMask(128, hull, 0, 0.05);
    expect(m[60 * 128 + 60]).toBeCloseTo(1, 5);
    expect(m[10 * 128 + 10]).toBe(0);
    expect(m[60 * 128 + 110]).toBe(0);
    expect(m[60 * 128 + 22]).toBeGreaterThan(0);
    expect(m[60 * 128 + 22]).toBeLessThan(0.5);
  });

  for (const [template, size] of [['ffhq_512', 512], ['arcface_128', 256], ['arcface_112_v1', 224]] as const) {
    it(`round trip ${template}@${size}: outside the mask bit-identical, inside < 1 grey level mean`, async () => {
      const frame = await loadPng(path.join(fixturesDir, 'source', 'astronaut.png'));
      const { crop, matrix } = alignFace(frame, FIVE, template, size);
      for (const mask of ['box', 'hull'] as const) {
        const hull = mask === 'hull' ? [
          { x: 0.15 * size, y: 0.2 * size }, { x: 0.85 * size, y: 0.2 * size }, { x: 0.8 * size, y: 0.95 * size }, { x: 0.2 * size, y: 0.95 * size },
        ] : undefined;
        const out = pasteBack(frame, crop, matrix, { mask, hull });
        let changedOutside = 0, inside = 0, sumDiff = 0, maxDiff = 0;
        for (let y = 0; y < frame.height; y++) {
          for (let x = 0; x < frame.width; x++) {
            const o = (y * frame.width + x) * 3;
            const c = applyAffine(matrix, { x, y });
            const inCrop = c.x > -1 && c.y > -1 && c.x < size && c.y < size;
            const d = Math.abs(out.data[o] - frame.data[o]) + Math.abs(out.data[o + 1] - frame.data[o + 1]) + Math.abs(out.data[o + 2] - frame.data[o + 2]);
            if (!inCrop) { if (d) changedOutside++; continue; }
            inside++;
            sumDiff += d / 3;
            maxDiff = Math.max(maxDiff, d / 3);
          }
        }
        expect(changedOutside).toBe(0);
        expect(inside).toBeGreaterThan(1000);
        const mean = sumDiff / inside;
        console.log(`round trip ${template}@${size} ${mask}: mean |diff| ${mean.toFixed(3)} over ${inside} px, max ${maxDiff.toFixed(1)}`);
        expect(mean).toBeLessThan(1);
      }
    });
  }

  it('paste-back of a different crop changes only the masked region, with no seam at the crop border', async () => {
    const frame = await loadPng(path.join(fixturesDir, 'source', 'astronaut.png'));
    const { matrix } = alignFace(frame, FIVE, 'arcface_128', 128);
    const red: RgbFrame = { width: 128, height: 128, data: new Uint8Array(128 * 128 * 3) };
    for (let i = 0; i < red.data.length; i += 3) red.data[i] = 255;
    const out = pasteBack(frame, red, matrix);
    const centre = applyAffine(invertAffine(matrix), { x: 64, y: 64 });
    const o = (Math.round(centre.y) * 512 + Math.round(centre.x)) * 3;
    expect(out.data[o]).toBe(255);
    expect(out.data[o + 1]).toBe(0);
    // Along the crop's border the frame is untouched (mask is exactly 0 there).
    const inv = invertAffine(matrix);
    for (let t = 0; t <= 127; t += 8) {
      for (const p of [{ x: t, y: 0 }, { x: 0, y: t }, { x: 127, y: t }, { x: t, y: 127 }]) {
        const q = applyAffine(inv, p);
        const qx = Math.round(q.x), qy = Math.round(q.y);
        const k = (qy * 512 + qx) * 3;
        expect(Math.abs(out.data[k] - frame.data[k])).toBeLessThanOrEqual(1);
      }
    }
  });
});
