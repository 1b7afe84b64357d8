/**
 * Tiled inference for fully convolutional image-to-image models (super-resolution).
 *
 * The frame is mirror-padded by `overlap` on every side (and up to the tile grid), cut into
 * equal tiles of core + 2*overlap, each tile is run, and only each tile's core (the output
 * without its overlap margins) is kept. With overlap >= the model's receptive-field radius
 * every output pixel sees exactly the context it would see in one whole-canvas run, so the
 * result equals the untiled result (seam-free by construction, not by blending).
 */
import type { RgbFrame } from '../../media/frame.js';

export interface TileModel {
  /** Output pixels per input pixel. */
  scale: number;
  /** Input/output value range (e.g. [0,1], [0,255], [-1,1]). */
  inRange: [number, number];
  outRange: [number, number];
  /** Run one NCHW [1,3,h,w] tile; resolves the NCHW [1,3,h*scale,w*scale] output. */
  run(data: Float32Array, h: number, w: number): Promise<Float32Array>;
}

export interface TileOptions {
  /** Tile edge (input px) including the overlap margins; Infinity = one tile. */
  tile: number;
  overlap: number;
  /** Tile sides must be a multiple of this (SwinIR window 8). */
  multiple?: number;
  /** Every tile exactly `tile` x `tile` (exports that only run at their export size). */
  staticSize?: boolean;
}

/** Mirror index into [0, n) for any integer (reflect-101, folded as often as needed). */
export function mirror(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  let k = i % period;
  if (k < 0) k += period;
  return k < n ? k : period - k;
}

const roundUp = (x: number, m: number) => Math.ceil(x / m) * m;

export interface AxisPlan {
  /** Number of tiles. */
  n: number;
  /** Core size per tile (input px). */
  core: number;
  /** Tile size = core + 2 * overlap. */
  size: number;
}

/** Tiling along one axis of length `len`. */
export function planAxis(len: number, o: TileOptions): AxisPlan {
  const m = Math.max(1, o.multiple ?? 1);
  const ov = o.overlap;
  if (o.staticSize) {
    const core = o.tile - 2 * ov;
    if (core <= 0) throw new Error(`tile ${o.tile} is not larger than twice the overlap ${ov}`);
    return { n: Math.ceil(len / core), core, size: o.tile };
  }
  const maxCore = Number.isFinite(o.tile) ? Math.max(1, o.tile - 2 * ov) : len;
  const n = Math.max(1, Math.ceil(len / maxCore));
  let core = Math.ceil(len / n);
  // tile side (core + 2*overlap) must be a multiple of m
  core = roundUp(core + 2 * ov, m) - 2 * ov;
  return { n, core, size: core + 2 * ov };
}

/**
 * Upscale a frame with a tile model. Returns planar float output in the model's output range
 * mapped to 0..255 (not rounded), size (W*scale) x (H*scale), channel-planar [3][H][W].
 */
export async function runTiledFloat(frame: RgbFrame, model: TileModel, opts: TileOptions, signal?: AbortSignal): Promise<{ width: number; height: number; planes: Float32Array }> {
  const { width: W, height: H, data } = frame;
  const s = model.scale;
  const ov = opts.overlap;
  const px = planAxis(W, opts);
  const py = planAxis(H, opts);
  const OW = W * s;
  const OH = H * s;
  const planes = new Float32Array(3 * OW * OH);
  const [a0, a1] = model.inRange;
  const inK = (a1 - a0) / 255;
  const [b0, b1] = model.outRange;
  const outK = 255 / (b1 - b0);
  const tw = px.size;
  const th = py.size;
  const tile = new Float32Array(3 * tw * th);
  // precomputed mirrored source columns per tile column offset
  for (let ty = 0; ty < py.n; ty++) {
    for (let tx = 0; tx < px.n; tx++) {
      signal?.throwIfAborted();
      // tile origin in frame coordinates (may be negative: mirrored context)
      const ox = tx * px.core - ov;
      const oy = ty * py.core - ov;
      const plane = tw * th;
      for (let y = 0; y < th; y++) {
        const sy = mirror(oy + y, H);
        const row = sy * W;
        for (let x = 0; x < tw; x++) {
          const si = (row + mirror(ox + x, W)) * 3;
          const di = y * tw + x;
          tile[di] = a0 + data[si] * inK;
          tile[plane + di] = a0 + data[si + 1] * inK;
          tile[2 * plane + di] = a0 + data[si + 2] * inK;
        }
      }
      const out = await model.run(tile, th, tw);
      const otw = tw * s;
      const oth = th * s;
      if (out.length !== 3 * otw * oth) throw new Error(`model output has ${out.length} values, expected 3x${oth}x${otw}`);
      // copy the core
      const cx0 = tx * px.core * s;
      const cy0 = ty * py.core * s;
      const cw = Math.min(px.core * s, OW - cx0);
      const ch = Math.min(py.core * s, OH - cy0);
      const oplane = otw * oth;
      for (let c = 0; c < 3; c++) {
        for (let y = 0; y < ch; y++) {
          const src = c * oplane + (ov * s + y) * otw + ov * s;
          const dst = c * OW * OH + (cy0 + y) * OW + cx0;
          for (let x = 0; x < cw; x++) planes[dst + x] = (out[src + x] - b0) * outK;
        }
      }
    }
  }
  return { width: OW, height: OH, planes };
}

/** Planar float 0..255 → packed RGB24 (rounded, clamped). */
export function planesToFrame(width: number, height: number, planes: Float32Array): RgbFrame {
  const n = width * height;
  const out = new Uint8Array(n * 3);
  for (let i = 0, j = 0; i < n; i++, j += 3) {
    for (let c = 0; c < 3; c++) {
      const v = Math.round(planes[c * n + i]);
      out[j + c] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return { width, height, data: out };
}

/** Upscale a frame with a tile model; packed RGB24 out. */
export async function runTiled(frame: RgbFrame, model: TileModel, opts: TileOptions, signal?: AbortSignal): Promise<RgbFrame> {
  const r = await runTiledFloat(frame, model, opts, signal);
  return planesToFrame(r.width, r.height, r.planes);
}

/** How many tiles a frame of this size needs (for reports and benches). */
export function tileCount(width: number, height: number, opts: TileOptions): number {
  return planAxis(width, opts).n * planAxis(height, opts).n;
}
