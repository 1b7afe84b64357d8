import { describe, expect, it, beforeAll } from 'vitest';
import { boxMean, estimateFlow, endPointError, type FlowField } from '../src/flow/flow.js';
import { astronautLuma as sourceLuma, benchFlow, interior, renderView as render, trueFlow, type View } from '../src/flow/synthetic.js';

describe('estimateFlow (pyramidal iterative Lucas-Kanade)', () => {
  let S256: Float32Array;
  beforeAll(async () => {
    S256 = await sourceLuma(256);
  });

  const cases: [string, View, View, number][] = [
    ['sub-pixel translation', { zoom: 1, tx: 0, ty: 0 }, { zoom: 1, tx: -2.3, ty: 1.7 }, 0.2],
    ['large translation (7 px)', { zoom: 1, tx: 0, ty: 0 }, { zoom: 1, tx: -7, ty: 4.5 }, 0.2],
    ['zoom 4% + translation', { zoom: 1, tx: 0, ty: 0 }, { zoom: 0.96, tx: 1.5, ty: -1 }, 0.25],
  ];
  for (const [name, a, b, tol] of cases) {
    it(`${name}: end-point error below ${tol} px on 96x96`, () => {
      const w = 96, h = 96;
      const p = render(S256, 256, w, h, a), q = render(S256, 256, w, h, b);
      const f = estimateFlow(p, q, { width: w, height: h });
      const gt = trueFlow(w, h, a, b);
      const epe = endPointError(f, gt, interior(w, h, 8));
      const zero = endPointError({ width: w, height: h, u: new Float32Array(w * h), v: new Float32Array(w * h) }, gt, interior(w, h, 8));
      console.log(`flow ${name}: EPE ${epe.toFixed(3)} px (zero flow ${zero.toFixed(2)} px)`);
      expect(epe).toBeLessThan(tol);
      expect(epe).toBeLessThan(zero * 0.15);
    });
  }

  it('ignores a static painted overlay when told where it is (validity mask)', () => {
    const w = 96, h = 96;
    const a = { zoom: 1, tx: 0, ty: 0 }, b = { zoom: 1, tx: -3, ty: 2 };
    const p = render(S256, 256, w, h, a), q = render(S256, 256, w, h, b);
    // A flat overlay that stays put while the content moves.
    const hole = new Uint8Array(w * h);
    for (let y = 30; y < 58; y++) for (let x = 40; x < 70; x++) { hole[y * w + x] = 1; p[y * w + x] = 200; q[y * w + x] = 200; }
    const valid = hole.map((x) => (x ? 0 : 1));
    const gt = trueFlow(w, h, a, b);
    const naive = estimateFlow(p, q, { width: w, height: h });
    const masked = estimateFlow(p, q, { width: w, height: h, validPrev: valid, validNext: valid });
    const eNaive = endPointError(naive, gt, hole);
    const eMasked = endPointError(masked, gt, hole);
    const eOut = endPointError(masked, gt, interior(w, h, 8).map((v, i) => v & (hole[i] ^ 1)));
    console.log(`flow overlay: EPE inside overlay naive ${eNaive.toFixed(3)} px, masked ${eMasked.toFixed(3)} px; outside ${eOut.toFixed(3)} px`);
    expect(eMasked).toBeLessThan(0.1);
    expect(eMasked).toBeLessThan(eNaive * 0.5);
    expect(eOut).toBeLessThan(0.1);
  });

  it('runs at 360p (640x360): time per frame and end-point error, full size and on a 0.5x downscale', async () => {
    const full = await benchFlow({ runs: 1 });
    const half = await benchFlow({ runs: 2, scale: 0.5 });
    const quarter = await benchFlow({ runs: 2, scale: 0.25 });
    for (const r of [full, half, quarter]) console.log(`flow 360p scale ${r.scale}: ${r.msPerFrame} ms/frame wall, ${r.cpuMsPerFrame} ms CPU, EPE ${r.epe} px`);
    expect(full.epe).toBeLessThan(0.2);
    expect(half.epe).toBeLessThan(0.35);
    expect(quarter.epe).toBeLessThan(0.6);
    expect(half.msPerFrame).toBeLessThan(full.msPerFrame);
  });
});

describe('boxMean (running sums in an edge, middle and edge span)', () => {
  it('equals the direct mean with replicated borders, for planes narrower and wider than the window', () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 255;
    for (const w of [1, 2, 3, 5, 6, 7, 11, 40]) {
      for (const h of [1, 4, 9]) {
        for (const r of [1, 2, 3, 5]) {
          const src = Float32Array.from({ length: w * h }, rnd);
          const got = boxMean(src, w, h, r);
          const at = (x: number, y: number) => src[Math.min(h - 1, Math.max(0, y)) * w + Math.min(w - 1, Math.max(0, x))];
          let worst = 0;
          for (let y = 0; y < h; y++) {
            for (let x = 0; x < w; x++) {
              let s = 0;
              for (let dy = -r; dy <= r; dy++) for (let dx = -r; dx <= r; dx++) s += at(x + dx, y + dy);
              worst = Math.max(worst, Math.abs(got[y * w + x] - s / (2 * r + 1) ** 2));
            }
          }
          expect(worst, `w ${w} h ${h} r ${r}`).toBeLessThan(1e-3);
        }
      }
    }
  });
});
