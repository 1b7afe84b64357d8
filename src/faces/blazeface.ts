/**
 * BlazeFace (MediaPipe face detection) pre- and post-processing: letterboxing, SSD anchors,
 * box/keypoint decoding, sigmoid scores and weighted non-maximum suppression, following the
 * calculator options of MediaPipe's face_detection_short_range / full_range graphs.
 */
import type { RgbFrame } from '../media/frame.js';
import type { Box, Point } from './types.js';

export interface BlazeFaceSpec {
  name: 'short' | 'full';
  inputSize: number;
  strides: number[];
  /** 2 anchors per cell per layer when interpolated_scale_aspect_ratio is set (short range). */
  anchorsPerLayer: number;
  minScore: number;
  nmsIou: number;
}

export const SHORT_RANGE: BlazeFaceSpec = { name: 'short', inputSize: 128, strides: [8, 16, 16, 16], anchorsPerLayer: 2, minScore: 0.5, nmsIou: 0.3 };
export const FULL_RANGE: BlazeFaceSpec = { name: 'full', inputSize: 192, strides: [4], anchorsPerLayer: 1, minScore: 0.6, nmsIou: 0.3 };

/** Anchor centres (x, y) normalized 0..1; layers with the same stride share one grid. */
export function ssdAnchors(spec: BlazeFaceSpec): Float32Array {
  const out: number[] = [];
  let layer = 0;
  while (layer < spec.strides.length) {
    const stride = spec.strides[layer];
    let perCell = 0;
    let last = layer;
    while (last < spec.strides.length && spec.strides[last] === stride) {
      perCell += spec.anchorsPerLayer;
      last++;
    }
    const cells = Math.ceil(spec.inputSize / stride);
    for (let y = 0; y < cells; y++) {
      for (let x = 0; x < cells; x++) {
        for (let k = 0; k < perCell; k++) out.push((x + 0.5) / cells, (y + 0.5) / cells);
      }
    }
    layer = last;
  }
  return Float32Array.from(out);
}

export interface Letterbox {
  /** Input tensor NHWC, [-1, 1]. */
  tensor: Float32Array;
  /** frame px = (tensor px - offset) / scale */
  scale: number;
  offsetX: number;
  offsetY: number;
}

/**
 * Area-weighted separable resize weights (triangle filter widened by the shrink factor, as
 * PIL/libvips do): for output index o, taps idx[o*T..] (clamped source indices) and weights.
 */
function resizeWeights(inSize: number, outSize: number, scale: number, offset: number) {
  // output pixel centre o maps to source coordinate (o + 0.5 - offset)/scale - 0.5
  const support = Math.max(1, 1 / scale);
  const T = Math.ceil(support) * 2 + 1;
  const idx = new Int32Array(outSize * T);
  const wts = new Float32Array(outSize * T);
  for (let o = 0; o < outSize; o++) {
    const c = (o + 0.5 - offset) / scale - 0.5;
    const lo = Math.floor(c - support) + 1;
    let sum = 0;
    for (let k = 0; k < T; k++) {
      const i = lo + k;
      const t = 1 - Math.abs(i - c) / support;
      const v = t > 0 ? t : 0;
      idx[o * T + k] = i < 0 ? 0 : i >= inSize ? inSize - 1 : i;
      wts[o * T + k] = v;
      sum += v;
    }
    if (sum > 0) for (let k = 0; k < T; k++) wts[o * T + k] /= sum;
  }
  return { T, idx, wts };
}

/**
 * Resize `frame` into a size x size square keeping the aspect ratio, centred, padded with
 * black; values mapped by v/127.5 - 1. Pixels of the padding are exactly -1.
 */
export function letterbox(frame: RgbFrame, size: number): Letterbox {
  const { width: W, height: H, data } = frame;
  const scale = size / Math.max(W, H);
  const nw = W * scale, nh = H * scale;
  const offsetX = (size - nw) / 2, offsetY = (size - nh) / 2;
  const x0 = Math.max(0, Math.floor(offsetX)), x1 = Math.min(size, Math.ceil(offsetX + nw));
  const y0 = Math.max(0, Math.floor(offsetY)), y1 = Math.min(size, Math.ceil(offsetY + nh));
  const rx = resizeWeights(W, size, scale, offsetX);
  const ry = resizeWeights(H, size, scale, offsetY);
  // vertical pass first, only over the output rows: (y1-y0) rows x W cols
  const rows = y1 - y0;
  const tmp = new Float32Array(rows * W * 3);
  const TY = ry.T;
  const rowLen = W * 3;
  // Each output row sums its non-zero taps in tap order, rounded to float32 after every step
  // (what `dst[i] += src[i] * w` on the Float32Array row does); four taps per pass over the row
  // keep the same roundings with a quarter of the row's loads and stores.
  const sb = new Int32Array(TY);
  const ws = new Float64Array(TY);
  const f = Math.fround;
  for (let y = y0; y < y1; y++) {
    const tb = (y - y0) * rowLen;
    const dst = tmp.subarray(tb, tb + rowLen);
    let nt = 0;
    for (let k = 0; k < TY; k++) {
      const w = ry.wts[y * TY + k];
      if (w === 0) continue;
      sb[nt] = ry.idx[y * TY + k] * rowLen;
      ws[nt++] = w;
    }
    let k = 0;
    for (; k + 4 <= nt; k += 4) {
      const s0 = data.subarray(sb[k], sb[k] + rowLen), s1 = data.subarray(sb[k + 1], sb[k + 1] + rowLen);
      const s2 = data.subarray(sb[k + 2], sb[k + 2] + rowLen), s3 = data.subarray(sb[k + 3], sb[k + 3] + rowLen);
      const w0 = ws[k], w1 = ws[k + 1], w2 = ws[k + 2], w3 = ws[k + 3];
      for (let i = 0; i < rowLen; i++) dst[i] = f(f(f(dst[i] + s0[i] * w0) + s1[i] * w1) + s2[i] * w2) + s3[i] * w3;
    }
    // the last one to three taps in one pass too (enlarging, as from a small input frame: two)
    if (nt - k === 3) {
      const s0 = data.subarray(sb[k], sb[k] + rowLen), s1 = data.subarray(sb[k + 1], sb[k + 1] + rowLen), s2 = data.subarray(sb[k + 2], sb[k + 2] + rowLen);
      const w0 = ws[k], w1 = ws[k + 1], w2 = ws[k + 2];
      for (let i = 0; i < rowLen; i++) dst[i] = f(f(dst[i] + s0[i] * w0) + s1[i] * w1) + s2[i] * w2;
    } else if (nt - k === 2) {
      const s0 = data.subarray(sb[k], sb[k] + rowLen), s1 = data.subarray(sb[k + 1], sb[k + 1] + rowLen);
      const w0 = ws[k], w1 = ws[k + 1];
      for (let i = 0; i < rowLen; i++) dst[i] = f(dst[i] + s0[i] * w0) + s1[i] * w1;
    } else if (nt - k === 1) {
      // (row views: the same sums, about a third faster than indexing the whole planes)
      const src = data.subarray(sb[k], sb[k] + rowLen);
      const w = ws[k];
      for (let i = 0; i < rowLen; i++) dst[i] += src[i] * w;
    }
  }
  const tensor = new Float32Array(size * size * 3).fill(-1);
  const TX = rx.T;
  // per column: its non-zero taps (a zero tap adds nothing to the sums) and its coverage; edge
  // pixels only partly covered by the image are blended with the black padding
  const nx = new Int32Array(size), xo = new Int32Array(size * TX), xw = new Float64Array(size * TX), covX = new Float64Array(size);
  for (let x = x0; x < x1; x++) {
    for (let k = 0; k < TX; k++) {
      const w = rx.wts[x * TX + k];
      if (w === 0) continue;
      xo[x * TX + nx[x]] = rx.idx[x * TX + k] * 3;
      xw[x * TX + nx[x]++] = w;
    }
    covX[x] = Math.min(1, Math.min(x + 1, offsetX + nw) - Math.max(x, offsetX));
  }
  for (let y = y0; y < y1; y++) {
    const tb = (y - y0) * W * 3;
    const cy = Math.min(1, Math.min(y + 1, offsetY + nh) - Math.max(y, offsetY));
    for (let x = x0; x < x1; x++) {
      let r = 0, g = 0, b = 0;
      for (let k = x * TX, e = k + nx[x]; k < e; k++) {
        const w = xw[k], o = tb + xo[k];
        r += tmp[o] * w; g += tmp[o + 1] * w; b += tmp[o + 2] * w;
      }
      const t = (y * size + x) * 3;
      const k = (covX[x] * cy) / 127.5;
      tensor[t] = r * k - 1; tensor[t + 1] = g * k - 1; tensor[t + 2] = b * k - 1;
    }
  }
  return { tensor, scale, offsetX, offsetY };
}

export interface RawDetection {
  box: Box; // frame pixels
  keypoints: Point[]; // 6, frame pixels
  score: number;
}

function iou(a: Box, b: Box): number {
  const x0 = Math.max(a.x, b.x), y0 = Math.max(a.y, b.y);
  const x1 = Math.min(a.x + a.width, b.x + b.width), y1 = Math.min(a.y + a.height, b.y + b.height);
  const inter = Math.max(0, x1 - x0) * Math.max(0, y1 - y0);
  const u = a.width * a.height + b.width * b.height - inter;
  return u > 0 ? inter / u : 0;
}

export { iou as boxIou };

/**
 * Decode raw outputs into frame-pixel detections: sigmoid scores (logits clipped to ±100),
 * centre/size/keypoints relative to anchors, then MediaPipe's weighted NMS (the kept box is
 * the score-weighted mean of its overlapping candidates; score of the best).
 */
export function decodeDetections(spec: BlazeFaceSpec, anchors: Float32Array, regressors: Float32Array, logits: Float32Array, lb: Letterbox): RawDetection[] {
  const n = logits.length;
  const S = spec.inputSize;
  const cands: { box: Box; kps: Point[]; score: number }[] = [];
  for (let i = 0; i < n; i++) {
    const logit = Math.max(-100, Math.min(100, logits[i]));
    const score = 1 / (1 + Math.exp(-logit));
    if (score < spec.minScore) continue;
    const r = regressors.subarray(i * 16, i * 16 + 16);
    const ax = anchors[i * 2] * S, ay = anchors[i * 2 + 1] * S;
    const cx = ax + r[0], cy = ay + r[1], w = r[2], h = r[3];
    const toFrame = (x: number, y: number): Point => ({ x: (x - lb.offsetX) / lb.scale, y: (y - lb.offsetY) / lb.scale });
    const p0 = toFrame(cx - w / 2, cy - h / 2);
    const box: Box = { x: p0.x, y: p0.y, width: w / lb.scale, height: h / lb.scale };
    const kps: Point[] = [];
    for (let k = 0; k < 6; k++) kps.push(toFrame(ax + r[4 + 2 * k], ay + r[5 + 2 * k]));
    cands.push({ box, kps, score });
  }
  cands.sort((a, b) => b.score - a.score);
  const out: RawDetection[] = [];
  const used = new Uint8Array(cands.length);
  for (let i = 0; i < cands.length; i++) {
    if (used[i]) continue;
    const best = cands[i];
    let sw = 0, bx = 0, by = 0, bw = 0, bh = 0;
    const kx = new Float64Array(6), ky = new Float64Array(6);
    for (let j = i; j < cands.length; j++) {
      if (used[j]) continue;
      const c = cands[j];
      if (j !== i && iou(best.box, c.box) <= spec.nmsIou) continue;
      used[j] = 1;
      const w = c.score;
      sw += w;
      bx += c.box.x * w; by += c.box.y * w; bw += c.box.width * w; bh += c.box.height * w;
      for (let k = 0; k < 6; k++) { kx[k] += c.kps[k].x * w; ky[k] += c.kps[k].y * w; }
    }
    out.push({
      box: { x: bx / sw, y: by / sw, width: bw / sw, height: bh / sw },
      keypoints: Array.from({ length: 6 }, (_, k) => ({ x: kx[k] / sw, y: ky[k] / sw })),
      score: best.score,
    });
  }
  return out;
}
