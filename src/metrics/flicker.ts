/**
 * Flicker: the temporal warping error between consecutive output frames after motion
 * compensation (lower = steadier). See FLICKER_DEFINITION for the exact recipe.
 *
 * Why the flow runs on "structure" planes (luma minus its local mean) rather than on luma:
 * Lucas-Kanade assumes brightness constancy, so a brightness jump in a face region would be
 * partly explained away as motion and the metric would under-report exactly the flicker it is
 * meant to measure. Removing the local mean makes the flow blind to smooth brightness and
 * colour changes while keeping edges and texture, which carry the motion.
 */
import { boxMean, estimateFlow, resizePlane, type FlowField } from '../flow/flow.js';
import { lumaBt601, type RgbFrame } from '../media/frame.js';

/** Radius (pixels of the flow working copy) of the box mean removed from luma before the flow runs. */
export const FLICKER_STRUCTURE_RADIUS = 4;
/** The flow runs on a copy whose longer side is at most this many pixels (cost bound). */
export const FLICKER_FLOW_MAX_SIDE = 256;
/** Forward-backward consistency: |g + f(x+g)|^2 <= ALPHA (|g|^2 + |f(x+g)|^2) + BETA (px^2). */
export const FB_ALPHA = 0.01;
export const FB_BETA = 0.5;

export const FLICKER_DEFINITION =
  'Flicker of frame t (t >= 1) = mean absolute BT.601 luma difference (float, 0..255 grey levels) between frame t and frame t-1 ' +
  'warped onto frame t by dense optical flow, over the pixels where the flow is valid. ' +
  `Flow: the project's pyramidal Lucas-Kanade (src/flow/flow.ts) on structure planes: luma resized (bilinear, box pre-filter) so the longer side is at most ${FLICKER_FLOW_MAX_SIDE} px, ` +
  `minus its ${2 * FLICKER_STRUCTURE_RADIUS + 1}x${2 * FLICKER_STRUCTURE_RADIUS + 1} box mean (so brightness flicker is not absorbed as motion); estimated in both directions, ` +
  'g from t to t-1 and f from t-1 to t, and resized back to the frame (vectors scaled). ' +
  'Frame t-1 is sampled bilinearly at x + g(x). A pixel is valid when x + g(x) lies inside frame t-1 and passes the forward-backward check ' +
  `|g(x) + f(x+g(x))|^2 <= ${FB_ALPHA} (|g(x)|^2 + |f(x+g(x))|^2) + ${FB_BETA} px^2 (Sundaram et al. 2010); other pixels (occlusions, inconsistent flow) are left out. ` +
  'A clip\'s flicker is the mean of its per-frame values (frame 0 has none). Lower = less flicker; 0 for identical or purely moved frames.';

/** Computes [back, fwd] = [flow cur→prev, flow prev→cur] at the working size (a worker may run the two on two threads). */
export type BothFlows = (prev: Float32Array, cur: Float32Array, w: number, h: number) => [FlowField, FlowField];

export const serialFlows: BothFlows = (prev, cur, w, h) => [estimateFlow(cur, prev, { width: w, height: h }), estimateFlow(prev, cur, { width: w, height: h })];

/** The two flows between a pair of frames, on the full frame grid. */
export interface FlowPair {
  /** From the current frame to the previous one (defined on the current frame's pixels). */
  back: FlowField;
  /** From the previous frame to the current one (defined on the previous frame's pixels). */
  fwd: FlowField;
}

export interface FlickerOptions {
  /** Flow working size: longer side in pixels (default FLICKER_FLOW_MAX_SIDE). */
  flowMaxSide?: number;
}

export interface FlickerFrame {
  index: number;
  /** Mean absolute luma warping error over valid pixels (grey levels); NaN when no pixel is valid. */
  flicker: number;
  /** Share of pixels that passed the validity checks (0..1). */
  valid: number;
}

/** The plane the flow runs on: luma at the flow working size minus its box mean, offset by 128. */
export interface FlowPlane {
  plane: Float32Array;
  /** Working size. */
  w: number;
  h: number;
  /** Frame size. */
  fw: number;
  fh: number;
}

/** Build the flow plane of a luma plane (see FLICKER_DEFINITION). */
export function flowPlane(luma: Float32Array, w: number, h: number, maxSide = FLICKER_FLOW_MAX_SIDE): FlowPlane {
  const scale = flowScaleFor(w, h, maxSide);
  const w2 = scale >= 1 ? w : Math.max(8, Math.round(w * scale));
  const h2 = scale >= 1 ? h : Math.max(8, Math.round(h * scale));
  const l = scale >= 1 ? luma : resizePlane(luma, w, h, w2, h2);
  const m = boxMean(l, w2, h2, FLICKER_STRUCTURE_RADIUS);
  const plane = new Float32Array(w2 * h2);
  for (let i = 0; i < plane.length; i++) plane[i] = l[i] - m[i] + 128;
  return { plane, w: w2, h: h2, fw: w, fh: h };
}

export { boxMean };

/** Scale factor of the flow working copy. */
export function flowScaleFor(w: number, h: number, maxSide = FLICKER_FLOW_MAX_SIDE): number {
  return Math.min(1, maxSide / Math.max(w, h));
}

/** Both flows between two flow planes of the same size, returned at the frame size. */
export function flowPair(prev: FlowPlane, cur: FlowPlane, both: BothFlows = serialFlows): FlowPair {
  const { w, h, fw, fh } = cur;
  const [back, fwd] = both(prev.plane, cur.plane, w, h);
  if (w === fw && h === fh) return { back, fwd };
  const up = (f: FlowField): FlowField => ({ width: fw, height: fh, u: resizePlane(f.u, w, h, fw, fh, fw / w), v: resizePlane(f.v, w, h, fw, fh, fh / h) });
  return { back: up(back), fwd: up(fwd) };
}

/**
 * Per pixel of the current frame: 1 where x + back(x) lies inside the previous frame and the
 * forward-backward check passes, else 0.
 */
export function consistentMask(pair: FlowPair): Uint8Array {
  const { back, fwd } = pair;
  const w = back.width, h = back.height;
  const out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const gu = back.u[i], gv = back.v[i];
      const px = x + gu, py = y + gv;
      if (px < 0 || py < 0 || px > w - 1 || py > h - 1) continue;
      const fu = bilinear(fwd.u, w, h, px, py), fv = bilinear(fwd.v, w, h, px, py);
      const du = gu + fu, dv = gv + fv;
      if (du * du + dv * dv <= FB_ALPHA * (gu * gu + gv * gv + fu * fu + fv * fv) + FB_BETA) out[i] = 1;
    }
  }
  return out;
}

/** Bilinear sample of a plane at (x, y), x and y inside [0, w-1] x [0, h-1]. */
export function bilinear(p: Float32Array, w: number, h: number, x: number, y: number): number {
  const x0 = Math.floor(x), y0 = Math.floor(y);
  const x1 = x0 < w - 1 ? x0 + 1 : x0, y1 = y0 < h - 1 ? y0 + 1 : y0;
  const ax = x - x0, ay = y - y0;
  return (p[y0 * w + x0] * (1 - ax) + p[y0 * w + x1] * ax) * (1 - ay) + (p[y1 * w + x0] * (1 - ax) + p[y1 * w + x1] * ax) * ay;
}

/**
 * Warping error of `cur` against `prev` (luma planes) with given flows and validity mask:
 * mean |cur(x) - prev(x + back(x))| over valid pixels. Returns NaN when none is valid.
 */
export function warpingError(prevL: Float32Array, curL: Float32Array, back: FlowField, valid: Uint8Array): { flicker: number; valid: number } {
  const w = back.width, h = back.height;
  let s = 0, k = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      if (!valid[i]) continue;
      s += Math.abs(curL[i] - bilinear(prevL, w, h, x + back.u[i], y + back.v[i]));
      k++;
    }
  }
  return { flicker: k ? s / k : NaN, valid: k / (w * h) };
}

/** Flicker of one frame pair (RGB frames of the same size). */
export function frameFlicker(prev: RgbFrame, cur: RgbFrame, opts: FlickerOptions = {}): { flicker: number; valid: number } {
  if (prev.width !== cur.width || prev.height !== cur.height) throw new Error(`frameFlicker: frame sizes differ (${prev.width}x${prev.height} vs ${cur.width}x${cur.height})`);
  const w = cur.width, h = cur.height;
  const pl = lumaBt601(prev), cl = lumaBt601(cur);
  const pair = flowPair(flowPlane(pl, w, h, opts.flowMaxSide), flowPlane(cl, w, h, opts.flowMaxSide));
  return warpingError(pl, cl, pair.back, consistentMask(pair));
}

export interface FlickerSummary {
  /** Frames that got a value (frames after the first with at least one valid pixel). */
  frames: number;
  mean: number;
  max: number;
  /** Mean share of valid pixels. */
  validMean: number;
  definition: string;
}

/** Streaming flicker: push frames in order; keeps only the previous frame's planes. */
export class FlickerAccumulator {
  private prev?: { luma: Float32Array; fp: FlowPlane };
  private index = 0;
  readonly perFrame: FlickerFrame[] = [];
  constructor(private readonly opts: FlickerOptions = {}) {}

  /** Add the next frame; returns its flicker (undefined for the first frame). */
  push(frame: RgbFrame): FlickerFrame | undefined {
    const w = frame.width, h = frame.height;
    const luma = lumaBt601(frame);
    const fp = flowPlane(luma, w, h, this.opts.flowMaxSide);
    const prev = this.prev;
    const index = this.index++;
    this.prev = { luma, fp };
    if (!prev) return undefined;
    if (prev.fp.fw !== w || prev.fp.fh !== h) throw new Error(`FlickerAccumulator: frame ${index} is ${w}x${h}, the previous one ${prev.fp.fw}x${prev.fp.fh}`);
    const pair = flowPair(prev.fp, fp);
    const r = warpingError(prev.luma, luma, pair.back, consistentMask(pair));
    const out = { index, ...r };
    this.perFrame.push(out);
    return out;
  }

  /** Record a value computed elsewhere (e.g. by the temporal stage with its own flows). */
  add(value: FlickerFrame): void {
    this.perFrame.push(value);
  }

  summary(): FlickerSummary {
    return summarizeFlicker(this.perFrame);
  }
}

export function summarizeFlicker(perFrame: FlickerFrame[]): FlickerSummary {
  const ok = perFrame.filter((f) => Number.isFinite(f.flicker));
  const mean = ok.length ? ok.reduce((a, f) => a + f.flicker, 0) / ok.length : NaN;
  const max = ok.length ? Math.max(...ok.map((f) => f.flicker)) : NaN;
  const validMean = perFrame.length ? perFrame.reduce((a, f) => a + f.valid, 0) / perFrame.length : 0;
  return { frames: ok.length, mean, max, validMean, definition: FLICKER_DEFINITION };
}
