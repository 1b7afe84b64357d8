/**
 * `--mask auto`: find painted-over regions in the input itself. A painted overlay is a flat,
 * uniformly coloured area that stays put while the content around it moves, with a hard
 * edge against that content. Per frame, over a window of neighbouring frames:
 *
 * 1. candidates: pixels that are static over the window (max colour change small) and
 *    locally flat (3x3 colour range small);
 * 2. each 4-connected candidate region is kept only if its colour is uniform, the pixels
 *    2-3 px outside it differ strongly from its colour (hard edge), and the content 3-5 px
 *    outside it moves over the window (so a plain wall in a still shot, or flat content
 *    that moves, is not flagged: moving flat content shrinks to a core whose surroundings
 *    still have its own colour);
 * 3. kept regions grow back by up to 2 px over pixels close to their colour (the edge
 *    pixels that the flatness test dropped and that codecs blend).
 */
import { createMask, type Mask, type RgbFrame } from '../../media/frame.js';

export interface AutoMaskOptions {
  /** Max colour change over the window for a static pixel (default 10). */
  staticTol?: number;
  /** Max 3x3 colour range for a flat pixel (default 12). */
  flatTol?: number;
  /** Smallest region, pixels (default 6). */
  minArea?: number;
  /** Max per-channel standard deviation inside a region (default 8). */
  uniformTol?: number;
  /** Min median colour difference just outside a region (default 30). */
  edgeMin?: number;
  /** Min mean temporal change of the content around a region (default 6). */
  motionMin?: number;
}

/** Detect the painted mask of `frames[t]` from the window `frames` (at least 2 frames). */
export function detectPaintedMask(frames: RgbFrame[], t: number, opts: AutoMaskOptions = {}): Mask {
  const f = frames[t];
  const { width: w, height: h } = f;
  const n = w * h;
  const staticTol = opts.staticTol ?? 10;
  const flatTol = opts.flatTol ?? 12;
  const minArea = opts.minArea ?? 6;
  const uniformTol = opts.uniformTol ?? 8;
  const edgeMin = opts.edgeMin ?? 30;
  const motionMin = opts.motionMin ?? 6;
  const out = createMask(w, h);
  if (frames.length < 2) return out;
  const d = f.data;
  // Temporal change: max over the window of the max channel difference.
  const change = new Float32Array(n);
  for (let s = 0; s < frames.length; s++) {
    if (s === t) continue;
    const e = frames[s].data;
    for (let i = 0, j = 0; i < n; i++, j += 3) {
      const c = Math.max(Math.abs(d[j] - e[j]), Math.abs(d[j + 1] - e[j + 1]), Math.abs(d[j + 2] - e[j + 2]));
      if (c > change[i]) change[i] = c;
    }
  }
  const cand = new Uint8Array(n);
  for (let y = 1; y < h - 1; y++)
    for (let x = 1; x < w - 1; x++) {
      const i = y * w + x;
      if (change[i] > staticTol) continue;
      let flat = true;
      for (let c = 0; c < 3 && flat; c++) {
        let lo = 255, hi = 0;
        for (let dy = -1; dy <= 1; dy++)
          for (let dx = -1; dx <= 1; dx++) {
            const v = d[3 * (i + dy * w + dx) + c];
            if (v < lo) lo = v;
            if (v > hi) hi = v;
          }
        if (hi - lo > flatTol) flat = false;
      }
      if (flat) cand[i] = 1;
    }
  const label = new Int32Array(n).fill(-1);
  const stack: number[] = [];
  const ring = new Int32Array(n).fill(0); // BFS distance stamp per component
  let comp = 0;
  for (let s0 = 0; s0 < n; s0++) {
    if (!cand[s0] || label[s0] >= 0) continue;
    const pix: number[] = [];
    stack.push(s0);
    label[s0] = comp;
    while (stack.length) {
      const i = stack.pop()!;
      pix.push(i);
      const x = i % w, y = (i / w) | 0;
      const nb = [x > 0 ? i - 1 : -1, x < w - 1 ? i + 1 : -1, y > 0 ? i - w : -1, y < h - 1 ? i + w : -1];
      for (const j of nb) if (j >= 0 && cand[j] && label[j] < 0) { label[j] = comp; stack.push(j); }
    }
    const id = comp++;
    if (pix.length < minArea) continue;
    // Colour statistics.
    const mean = [0, 0, 0], sq = [0, 0, 0];
    for (const i of pix) for (let c = 0; c < 3; c++) { mean[c] += d[3 * i + c]; sq[c] += d[3 * i + c] ** 2; }
    let uniform = true;
    for (let c = 0; c < 3; c++) {
      mean[c] /= pix.length;
      if (Math.sqrt(Math.max(0, sq[c] / pix.length - mean[c] ** 2)) > uniformTol) uniform = false;
    }
    if (!uniform) continue;
    // Rings by BFS (8-neighbour steps) up to distance 5 outside the region.
    const rings: number[][] = [pix];
    const stamp = id + 1;
    for (const i of pix) ring[i] = stamp;
    for (let r = 1; r <= 5; r++) {
      const next: number[] = [];
      for (const i of rings[r - 1]) {
        const x = i % w, y = (i / w) | 0;
        for (let dy = -1; dy <= 1; dy++)
          for (let dx = -1; dx <= 1; dx++) {
            const xx = x + dx, yy = y + dy;
            if (xx < 0 || yy < 0 || xx >= w || yy >= h) continue;
            const j = yy * w + xx;
            if (ring[j] === stamp) continue;
            ring[j] = stamp;
            next.push(j);
          }
      }
      rings.push(next);
    }
    const colourDiff = (i: number) => Math.max(Math.abs(d[3 * i] - mean[0]), Math.abs(d[3 * i + 1] - mean[1]), Math.abs(d[3 * i + 2] - mean[2]));
    const edge = [...rings[2], ...rings[3]].map(colourDiff).sort((a, b) => a - b);
    if (!edge.length || edge[edge.length >> 1] < edgeMin) continue;
    const around = [...rings[3], ...rings[4], ...rings[5]];
    let mv = 0;
    for (const i of around) mv += change[i];
    if (!around.length || mv / around.length < motionMin) continue;
    for (const i of pix) out.data[i] = 255;
    // Grow back over the edge pixels that look like the paint (or a blend with it).
    for (const i of rings[1]) if (colourDiff(i) < 90) out.data[i] = 255;
    for (const i of rings[2]) if (colourDiff(i) < 40 && change[i] <= staticTol * 2) out.data[i] = 255;
  }
  return out;
}

/** Recall (share of true hole pixels found) and false-positive rate (share of true keep pixels flagged). */
export function maskAgreement(found: Mask, truth: Mask): { recall: number; falsePositive: number; precision: number } {
  let tp = 0, fp = 0, pos = 0, neg = 0;
  for (let i = 0; i < truth.data.length; i++) {
    const t = truth.data[i] >= 128, f = found.data[i] >= 128;
    if (t) { pos++; if (f) tp++; } else { neg++; if (f) fp++; }
  }
  return { recall: pos ? tp / pos : 1, falsePositive: neg ? fp / neg : 0, precision: tp + fp ? tp / (tp + fp) : 1 };
}
