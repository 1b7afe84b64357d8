/**
 * `builtin`: temporal-first completion. The hidden pixels of a frame are often visible in
 * its neighbours: estimate dense flow between the frame and each neighbour (on luma with
 * the holes prefilled by the harmonic fill and excluded from the data term, so a static
 * overlay does not drag the flow; the flow inside the hole is completed from around it),
 * follow it into the neighbour, and copy the colour found there when the neighbour's pixel
 * is known and the forward and backward flows agree. Neighbours are tried nearest first
 * (t±1, then t±2, ...), averaging the two sides at equal distance. What no neighbour saw is
 * carried from the previous frame's output along the flow when that is given (so invented
 * content does not flicker), and the rest is filled with the `spatial` method (or the
 * harmonic fill), which then sees the temporally filled pixels as known.
 */
import { createMask, cloneFrame, lumaBt601, type Mask, type RgbFrame } from '../../media/frame.js';
import { flowOfJob, resizePlane, resizeValid, sampleBilinear, type FlowField, type FlowJob } from '../../flow/flow.js';
import { harmonicFill, clamp255 } from './harmonic.js';
import { dilateMask } from './mask.js';
import { spatialFill, type SpatialOptions } from './patchmatch.js';

export interface TemporalOptions {
  /** How many frames away on each side a hole pixel may be traced (default 30). */
  radius?: number;
  /** Forward-backward consistency tolerance, pixels (default 0.75). */
  consistency?: number;
  /**
   * Known pixels this close to a hole are not copied from (codecs bleed the paint colour
   * into them; default 1.5 px).
   */
  guard?: number;
  /**
   * Also re-fill this ring (px) outside the hole from other frames where they show it
   * (default 0; measured on the fixtures, 1 px gains 0.01-0.13 dB over the whole frame).
   */
  edgeRing?: number;
  /**
   * The previous frame's output (index and filled frame): pixels no frame saw are carried
   * from it along the flow before the spatial fill (temporal stability). Its index must be
   * in the window.
   */
  previous?: { index: number; frame: RgbFrame };
  /** Fill for what no frame saw (default 'spatial', the exemplar fill mixed with the membrane fill). */
  fallback?: 'harmonic' | 'spatial';
  spatial?: SpatialOptions;
}

/** A frame of the window, with what the flow and the propagation need precomputed. */
export interface WindowFrame {
  index: number;
  frame: RgbFrame;
  mask: Mask;
  /** Luma of the harmonic-prefilled frame. */
  luma: Float32Array;
  /** 1 where the flow may use the pixel (not a hole). */
  valid: Uint8Array;
  /** 1 where the pixel may be copied into another frame (known and away from the hole edge). */
  source: Uint8Array;
  holes: number;
}

export function prepareWindowFrame(index: number, frame: RgbFrame, mask: Mask, guard = 1.5): WindowFrame {
  const n = frame.width * frame.height;
  let holes = 0;
  const valid = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    if (mask.data[i] >= 128) holes++;
    else valid[i] = 1;
  }
  const luma = lumaBt601(holes ? harmonicFill(frame, mask) : frame);
  const grown = holes && guard > 0 ? dilateMask(mask, guard) : mask;
  const source = new Uint8Array(n);
  for (let i = 0; i < n; i++) source[i] = grown.data[i] >= 128 ? 0 : 1;
  return { index, frame, mask, luma, valid, source, holes };
}

/**
 * A flow kept at the size it was estimated at (a few hundred pixels at most), sampled in
 * full-resolution pixels: memory per flow stays small whatever the frame size.
 */
export class ScaledFlow {
  private readonly sx: number;
  private readonly sy: number;
  constructor(readonly field: FlowField, readonly fullWidth: number, readonly fullHeight: number) {
    this.sx = field.width / fullWidth;
    this.sy = field.height / fullHeight;
  }
  /** Displacement (full-resolution pixels) at full-resolution position (x, y), into out[0..1]. */
  at(x: number, y: number, out: Float32Array): Float32Array {
    const f = this.field;
    if (this.sx === 1 && this.sy === 1) {
      out[0] = sampleBilinear(f.u, f.width, f.height, x, y);
      out[1] = sampleBilinear(f.v, f.width, f.height, x, y);
    } else {
      const fx = (x + 0.5) * this.sx - 0.5, fy = (y + 0.5) * this.sy - 0.5;
      out[0] = sampleBilinear(f.u, f.width, f.height, fx, fy) / this.sx;
      out[1] = sampleBilinear(f.v, f.width, f.height, fx, fy) / this.sy;
    }
    return out;
  }
}

/** A window flow's inputs at the size it is estimated at: both validity planes are known. */
export type WindowFlowJob = Required<FlowJob>;

/**
 * Flows between frames of the window, computed once each and dropped when they leave it. With
 * `prefetch`, flows are computed elsewhere (a worker) before they are asked for; `get` computes
 * any other one here, with the same function, so the numbers do not depend on where it ran.
 */
export class FlowCache {
  private flows = new Map<string, ScaledFlow>();
  private pending = new Map<string, Promise<void>>();
  private small = new WeakMap<WindowFrame, { luma: Float32Array; valid: Uint8Array; w: number; h: number }>();
  computed = 0;
  ms = 0;
  /** `scale`: flow size relative to the frame (default: 1 up to 200 px, then ~200 px on the long side). */
  constructor(private readonly scale: number | undefined) {}
  private reduced(f: WindowFrame, s: number) {
    let r = this.small.get(f);
    if (!r) {
      const { width, height } = f.frame;
      const w = Math.max(8, Math.round(width * s)), h = Math.max(8, Math.round(height * s));
      r = s >= 1 ? { luma: f.luma, valid: f.valid, w: width, h: height } : { luma: resizePlane(f.luma, width, height, w, h), valid: resizeValid(f.valid, width, height, w, h), w, h };
      this.small.set(f, r);
    }
    return r;
  }
  private job(a: WindowFrame, b: WindowFrame): WindowFlowJob {
    const { width, height } = a.frame;
    const s = this.scale ?? (Math.max(width, height) > 200 ? 200 / Math.max(width, height) : 1);
    const ra = this.reduced(a, s), rb = this.reduced(b, s);
    return { prev: ra.luma, next: rb.luma, validPrev: ra.valid, validNext: rb.valid, width: ra.w, height: ra.h };
  }
  /** Start computing the flow a -> b with `compute` (given copies it may keep), unless it is known or under way. */
  prefetch(a: WindowFrame, b: WindowFrame, compute: (job: WindowFlowJob) => Promise<FlowField>): void {
    const key = `${a.index}>${b.index}`;
    if (this.flows.has(key) || this.pending.has(key)) return;
    const j = this.job(a, b);
    const copy: WindowFlowJob = { ...j, prev: j.prev.slice(), next: j.next.slice(), validPrev: j.validPrev.slice(), validNext: j.validNext.slice() };
    const p = compute(copy).then(
      (field) => {
        if (!this.flows.has(key)) {
          this.computed++;
          this.flows.set(key, new ScaledFlow(field, a.frame.width, a.frame.height));
        }
      },
      () => undefined, // get() computes it here instead
    );
    this.pending.set(key, p);
    void p.finally(() => this.pending.delete(key));
  }
  /** Wait for the prefetches under way. */
  async settle(): Promise<void> {
    await Promise.all([...this.pending.values()]);
  }
  get(a: WindowFrame, b: WindowFrame): ScaledFlow {
    const key = `${a.index}>${b.index}`;
    let f = this.flows.get(key);
    if (!f) {
      const { width, height } = a.frame;
      const t0 = performance.now();
      const field = flowOfJob(this.job(a, b));
      this.ms += performance.now() - t0;
      this.computed++;
      f = new ScaledFlow(field, width, height);
      this.flows.set(key, f);
    }
    return f;
  }
  /** Forget flows that touch frames outside [lo, hi]. */
  keep(lo: number, hi: number): void {
    for (const k of [...this.flows.keys()]) {
      const [a, b] = k.split('>').map(Number);
      if (a < lo || a > hi || b < lo || b > hi) this.flows.delete(k);
    }
  }
}

export interface TemporalResult {
  frame: RgbFrame;
  holePixels: number;
  /** Hole pixels filled from other frames / by the spatial method / carried from the previous output. */
  temporal: number;
  spatial: number;
  carried: number;
  /** The hole pixels some other frame showed (255), filled from it; absent when none did. */
  seen?: Mask;
}

/**
 * Fill `target`'s holes from `window` (the other frames around it, any order), then spatially.
 *
 * Each hole pixel is traced along the chain of adjacent-frame flows, forward and backward,
 * until the trace lands on a copyable pixel of some frame (or leaves the frame, fails the
 * forward-backward check, or goes past opts.radius frames). Tracing through adjacent flows
 * reaches far neighbours (slow motion reveals a hole's centre only after many frames) at
 * the cost of two flows per frame. The nearer side wins; at equal distance both are averaged.
 */
export function temporalFill(target: WindowFrame, window: WindowFrame[], cache: FlowCache, opts: TemporalOptions = {}): TemporalResult {
  const { width: w, height: h } = target.frame;
  const n = w * h;
  if (target.holes === 0) return { frame: cloneFrame(target.frame), holePixels: 0, temporal: 0, spatial: 0, carried: 0 };
  const radius = opts.radius ?? 30;
  const tol = opts.consistency ?? 0.75;
  const out = cloneFrame(target.frame);
  const byIndex = new Map(window.map((f) => [f.index, f]));
  const uv = new Float32Array(2), uv2 = new Float32Array(2);
  byIndex.set(target.index, target);
  const holeIdx: number[] = [];
  for (let i = 0; i < n; i++) if (target.mask.data[i] >= 128) holeIdx.push(i);
  const holePixels = holeIdx.length;
  // The ring just outside the hole, where codecs bleed the paint colour: replaced when
  // another frame shows it, kept otherwise.
  const ringR = opts.edgeRing ?? 0;
  if (ringR > 0) {
    const grown = dilateMask(target.mask, ringR);
    for (let i = 0; i < n; i++) if (grown.data[i] >= 128 && target.mask.data[i] < 128) holeIdx.push(i);
  }
  const tracked = holeIdx.length;
  // Per hole pixel: distance reached and colour found, per direction.
  const found = [new Int32Array(tracked).fill(0), new Int32Array(tracked).fill(0)];
  const col = [new Float32Array(tracked * 3), new Float32Array(tracked * 3)];
  for (const [dirI, dir] of [[0, -1], [1, 1]] as const) {
    const px = new Float32Array(tracked), py = new Float32Array(tracked);
    const alive = new Uint8Array(tracked).fill(1);
    let nAlive = tracked;
    for (let k = 0; k < tracked; k++) {
      px[k] = holeIdx[k] % w;
      py[k] = (holeIdx[k] / w) | 0;
    }
    for (let d = 1; d <= radius && nAlive > 0; d++) {
      const a = byIndex.get(target.index + dir * (d - 1));
      const b = byIndex.get(target.index + dir * d);
      if (!a || !b) break;
      const fwd = cache.get(a, b);
      const bwd = cache.get(b, a);
      const src = b.source, f = b.frame.data;
      for (let k = 0; k < tracked; k++) {
        if (!alive[k]) continue;
        const x = px[k], y = py[k];
        fwd.at(x, y, uv);
        const u = uv[0], v = uv[1];
        const qx = x + u, qy = y + v;
        if (qx < 0 || qy < 0 || qx > w - 1 || qy > h - 1 || (bwd.at(qx, qy, uv2), Math.hypot(u + uv2[0], v + uv2[1])) > tol) {
          alive[k] = 0;
          nAlive--;
          continue;
        }
        px[k] = qx;
        py[k] = qy;
        const x0 = Math.floor(qx), y0 = Math.floor(qy);
        const x1 = Math.min(x0 + 1, w - 1), y1 = Math.min(y0 + 1, h - 1);
        if (!src[y0 * w + x0] || !src[y0 * w + x1] || !src[y1 * w + x0] || !src[y1 * w + x1]) continue;
        const ax = qx - x0, ay = qy - y0;
        for (let c = 0; c < 3; c++) {
          col[dirI][3 * k + c] =
            (f[3 * (y0 * w + x0) + c] * (1 - ax) + f[3 * (y0 * w + x1) + c] * ax) * (1 - ay) +
            (f[3 * (y1 * w + x0) + c] * (1 - ax) + f[3 * (y1 * w + x1) + c] * ax) * ay;
        }
        found[dirI][k] = d;
        alive[k] = 0;
        nAlive--;
      }
    }
  }
  const rest = createMask(w, h);
  const seen = createMask(w, h);
  let left = 0;
  for (let k = 0; k < tracked; k++) {
    const i = holeIdx[k];
    const db = found[0][k], df = found[1][k];
    if (!db && !df) {
      if (k < holePixels) {
        rest.data[i] = 255;
        left++;
      }
      continue;
    }
    if (k < holePixels) seen.data[i] = 255;
    for (let c = 0; c < 3; c++) {
      const v = db && df && db === df ? (col[0][3 * k + c] + col[1][3 * k + c]) / 2 : db && (!df || db < df) ? col[0][3 * k + c] : col[1][3 * k + c];
      out.data[3 * i + c] = clamp255(v);
    }
  }
  // What no frame saw: carry the previous frame's fill along the flow, when given, so the
  // invented content stays put instead of being re-invented (and flickering) every frame.
  let carried = 0;
  const prev = opts.previous;
  if (left > 0 && prev && byIndex.get(prev.index)) {
    const pw = byIndex.get(prev.index)!;
    const fwd = cache.get(target, pw), bwd = cache.get(pw, target);
    const f = prev.frame.data;
    for (let i = 0; i < n; i++) {
      if (!rest.data[i]) continue;
      const x = i % w, y = (i / w) | 0;
      fwd.at(x, y, uv);
      const qx = x + uv[0], qy = y + uv[1];
      if (qx < 0 || qy < 0 || qx > w - 1 || qy > h - 1) continue;
      bwd.at(qx, qy, uv2);
      if (Math.hypot(uv[0] + uv2[0], uv[1] + uv2[1]) > tol) continue;
      const x0 = Math.floor(qx), y0 = Math.floor(qy), x1 = Math.min(x0 + 1, w - 1), y1 = Math.min(y0 + 1, h - 1);
      const ax = qx - x0, ay = qy - y0;
      for (let c = 0; c < 3; c++)
        out.data[3 * i + c] = clamp255(
          (f[3 * (y0 * w + x0) + c] * (1 - ax) + f[3 * (y0 * w + x1) + c] * ax) * (1 - ay) + (f[3 * (y1 * w + x0) + c] * (1 - ax) + f[3 * (y1 * w + x1) + c] * ax) * ay,
        );
      rest.data[i] = 0;
      carried++;
    }
    left -= carried;
  }
  const temporal = holePixels - left - carried;
  const seenMask = temporal > 0 ? seen : undefined;
  if (left === 0) return { frame: out, holePixels, temporal, spatial: 0, carried, seen: seenMask };
  const filled = (opts.fallback ?? 'spatial') === 'harmonic' ? harmonicFill(out, rest) : spatialFill(out, rest, opts.spatial);
  return { frame: filled, holePixels, temporal, spatial: left, carried, seen: seenMask };
}
