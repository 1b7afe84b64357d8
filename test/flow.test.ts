import { describe, expect, it, beforeAll } from 'vitest';
import path from 'node:path';
import sharp from 'sharp';
import { estimateFlow, endPointError, sampleBilinear, type FlowField } from '../src/flow/flow.js';
import { fixturesDir } from '../src/models/paths.js';

/** Luma of the astronaut portrait at `size`x`size`. */
async function sourceLuma(size: number): Promise<Float32Array> {
  const { data } = await sharp(path.join(fixturesDir, 'source', 'astronaut.png')).resize(size, size, { kernel: 'lanczos3' }).blur(1.2).greyscale().raw().toBuffer({ resolveWithObject: true });
  return Float32Array.from(data);
}

interface View { zoom: number; tx: number; ty: number }
/** A w x h frame that samples the source at s = c + (x - w/2) * zoom + t. */
function render(src: Float32Array, S: number, w: number, h: number, v: View): Float32Array {
  const out = new Float32Array(w * h);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) out[y * w + x] = sampleBilinear(src, S, S, S / 2 + (x - w / 2) * v.zoom + v.tx, S / 2 + (y - h / 2) * v.zoom + v.ty);
  return out;
}
/** The exact flow from view a to view b: x + f = w/2 + (za (x - w/2) + ta - tb) / zb. */
function trueFlow(w: number, h: number, a: View, b: View): FlowField {
  const u = new Float32Array(w * h), v = new Float32Array(w * h);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      u[y * w + x] = w / 2 + (a.zoom * (x - w / 2) + a.tx - b.tx) / b.zoom - x;
      v[y * w + x] = h / 2 + (a.zoom * (y - h / 2) + a.ty - b.ty) / b.zoom - y;
    }
  return { width: w, height: h, u, v };
}
function interior(w: number, h: number, m: number): Uint8Array {
  const r = new Uint8Array(w * h);
  for (let y = m; y < h - m; y++) for (let x = m; x < w - m; x++) r[y * w + x] = 1;
  return r;
}

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

  it('runs at 360p (640x360) within a bench budget, and on a 0.5x downscale faster', async () => {
    const S = await sourceLuma(720);
    const w = 640, h = 360;
    const a = { zoom: 1, tx: 0, ty: 0 }, b = { zoom: 1, tx: -3.4, ty: 1.2 };
    const p = render(S, 720, w, h, a), q = render(S, 720, w, h, b);
    const gt = trueFlow(w, h, a, b);
    estimateFlow(p, q, { width: w, height: h, scale: 0.5 }); // warm-up
    let t0 = performance.now();
    const full = estimateFlow(p, q, { width: w, height: h });
    const msFull = performance.now() - t0;
    t0 = performance.now();
    const runs = 3;
    let half!: FlowField;
    for (let r = 0; r < runs; r++) half = estimateFlow(p, q, { width: w, height: h, scale: 0.5 });
    const msHalf = (performance.now() - t0) / runs;
    const eFull = endPointError(full, gt, interior(w, h, 12));
    const eHalf = endPointError(half, gt, interior(w, h, 12));
    console.log(`flow 360p: full ${msFull.toFixed(1)} ms EPE ${eFull.toFixed(3)}; scale 0.5 ${msHalf.toFixed(1)} ms EPE ${eHalf.toFixed(3)}`);
    expect(eFull).toBeLessThan(0.2);
    expect(eHalf).toBeLessThan(0.35);
    expect(msHalf).toBeLessThan(msFull);
  });
});
