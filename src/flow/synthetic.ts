/**
 * Frames with a known motion, for testing and timing the optical flow: a w x h view of a
 * source image (luma) at a zoom and offset, and the exact flow between two such views.
 */
import path from 'node:path';
import sharp from 'sharp';
import { fixturesDir } from '../util/paths.js';
import { estimateFlow, endPointError, sampleBilinear, type FlowField, type FlowOptions } from './flow.js';

export interface View {
  zoom: number;
  tx: number;
  ty: number;
}

/** Luma of fixtures/source/astronaut.png at size x size, lightly blurred so bilinear views are exact enough. */
export async function astronautLuma(size: number): Promise<Float32Array> {
  const { data } = await sharp(path.join(fixturesDir, 'source', 'astronaut.png'))
    .resize(size, size, { kernel: 'lanczos3' })
    .blur(1.2)
    .greyscale()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return Float32Array.from(data);
}

/** A w x h frame that samples the S x S source at s = S/2 + (x - w/2) * zoom + t. */
export function renderView(src: Float32Array, S: number, w: number, h: number, v: View): Float32Array {
  const out = new Float32Array(w * h);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) out[y * w + x] = sampleBilinear(src, S, S, S / 2 + (x - w / 2) * v.zoom + v.tx, S / 2 + (y - h / 2) * v.zoom + v.ty);
  return out;
}

/** The exact flow from view a to view b: x + f = w/2 + (za (x - w/2) + ta - tb) / zb. */
export function trueFlow(w: number, h: number, a: View, b: View): FlowField {
  const u = new Float32Array(w * h), v = new Float32Array(w * h);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      u[y * w + x] = w / 2 + (a.zoom * (x - w / 2) + a.tx - b.tx) / b.zoom - x;
      v[y * w + x] = h / 2 + (a.zoom * (y - h / 2) + a.ty - b.ty) / b.zoom - y;
    }
  return { width: w, height: h, u, v };
}

/** 1 inside a margin of m pixels from the border. */
export function interior(w: number, h: number, m: number): Uint8Array {
  const r = new Uint8Array(w * h);
  for (let y = m; y < h - m; y++) for (let x = m; x < w - m; x++) r[y * w + x] = 1;
  return r;
}

export interface FlowBenchResult {
  width: number;
  height: number;
  scale: number;
  runs: number;
  /** Wall time per frame. */
  msPerFrame: number;
  /** CPU time per frame (user + system): steadier than wall time on a shared machine. */
  cpuMsPerFrame: number;
  /** Mean end-point error (px) inside a 12 px margin, against the exact synthetic flow. */
  epe: number;
}

/**
 * Time `estimateFlow` on a pair of 360p (by default) luma frames with a known motion
 * (3.4 px right, 1.2 px down, 1% zoom) and report ms per frame and the end-point error.
 * For `npm run bench`.
 */
export async function benchFlow(opts: { width?: number; height?: number; runs?: number; scale?: number; flow?: Partial<FlowOptions> } = {}): Promise<FlowBenchResult> {
  const w = opts.width ?? 640, h = opts.height ?? 360;
  const S = Math.ceil(Math.max(w, h) * 1.125);
  const src = await astronautLuma(S);
  const a: View = { zoom: 1, tx: 0, ty: 0 }, b: View = { zoom: 0.99, tx: -3.4, ty: 1.2 };
  const p = renderView(src, S, w, h, a), q = renderView(src, S, w, h, b);
  const scale = opts.scale ?? 1;
  const run = () => estimateFlow(p, q, { width: w, height: h, scale, ...opts.flow });
  run(); // warm-up (JIT)
  const runs = opts.runs ?? 3;
  let f!: FlowField;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) f = run();
  const ms = (performance.now() - t0) / runs;
  const c = process.cpuUsage(c0);
  return { width: w, height: h, scale, runs, msPerFrame: +ms.toFixed(2), cpuMsPerFrame: +((c.user + c.system) / 1000 / runs).toFixed(2), epe: +endPointError(f, trueFlow(w, h, a, b), interior(w, h, 12)).toFixed(4) };
}
