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
 * 3. kept regions grow back by 1 px, and by a 2nd px over static pixels close to their colour
 *    (the edge pixels that the flatness test dropped and that codecs blend).
 */
import { createMask, type Mask, type RgbFrame } from '../../media/frame.js';

export interface AutoMaskOptions {
  /** Max colour change over the window for a static pixel (default 12). */
  staticTol?: number;
  /** Max 3x3 luma range for a flat pixel (default 12; chroma may vary 2.5 times as much). */
  flatTol?: number;
  /** Smallest region core, pixels (default 16). */
  minArea?: number;
  /** Max luma standard deviation inside a region (default 8; chroma twice that). */
  uniformTol?: number;
  /** Min median colour difference just outside a region (default 30). */
  edgeMin?: number;
  /** Min mean temporal change over the frame: below it the shot is still and nothing is flagged (default 4). */
  motionMin?: number;
  /** Max share of the pixels just outside a region that take its colour in any frame of the window (default 0.35). */
  persistMax?: number;
  /** Receives one line per candidate region with the test that rejected it (tuning aid). */
  debug?: (line: string) => void;
}

/** Detect the painted mask of `frames[t]` from the window `frames` (at least 2 frames). */
export function detectPaintedMask(frames: RgbFrame[], t: number, opts: AutoMaskOptions = {}): Mask {
  const f = frames[t];
  const { width: w, height: h } = f;
  const n = w * h;
  const staticTol = opts.staticTol ?? 12;
  const flatTol = opts.flatTol ?? 12;
  const minArea = opts.minArea ?? 16;
  const uniformTol = opts.uniformTol ?? 8;
  const edgeMin = opts.edgeMin ?? 30;
  const motionMin = opts.motionMin ?? 4;
  const persistMax = opts.persistMax ?? 0.35;
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
  // A still shot: nothing tells an overlay from the scene.
  let meanChange = 0;
  for (let i = 0; i < n; i++) meanChange += change[i];
  if (meanChange / n < motionMin) return out;
  // Flatness in YCbCr: codecs subsample chroma, so a flat saturated paint varies more in
  // chroma (and in RGB) than in luma.
  const Y = new Float32Array(n), Cb = new Float32Array(n), Cr = new Float32Array(n);
  for (let i = 0, j = 0; i < n; i++, j += 3) {
    Y[i] = 0.299 * d[j] + 0.587 * d[j + 1] + 0.114 * d[j + 2];
    Cb[i] = 0.564 * (d[j + 2] - Y[i]);
    Cr[i] = 0.713 * (d[j] - Y[i]);
  }
  const range3 = (p: Float32Array, i: number) => {
    let lo = Infinity, hi = -Infinity;
    for (let dy = -1; dy <= 1; dy++)
      for (let dx = -1; dx <= 1; dx++) {
        const v = p[i + dy * w + dx];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    return hi - lo;
  };
  const cand = new Uint8Array(n);
  for (let y = 1; y < h - 1; y++)
    for (let x = 1; x < w - 1; x++) {
      const i = y * w + x;
      if (change[i] > staticTol) continue;
      if (range3(Y, i) <= flatTol && range3(Cb, i) <= 2.5 * flatTol && range3(Cr, i) <= 2.5 * flatTol) cand[i] = 1;
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
    const mean = [0, 0, 0];
    for (const i of pix) for (let c = 0; c < 3; c++) mean[c] += d[3 * i + c];
    for (let c = 0; c < 3; c++) mean[c] /= pix.length;
    const sd = [Y, Cb, Cr].map((p) => {
      let s1 = 0, s2 = 0;
      for (const i of pix) { s1 += p[i]; s2 += p[i] * p[i]; }
      return Math.sqrt(Math.max(0, s2 / pix.length - (s1 / pix.length) ** 2));
    });
    const uniform = sd[0] <= uniformTol && sd[1] <= 2 * uniformTol && sd[2] <= 2 * uniformTol;
    const dbg = opts.debug;
    const at = `region ${pix.length}px at ${pix[0] % w},${(pix[0] / w) | 0} colour ${mean.map((v) => Math.round(v)).join('/')}`;
    if (!uniform) { dbg?.(`${at}: not uniform`); continue; }
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
    if (!edge.length || edge[edge.length >> 1] < edgeMin) { dbg?.(`${at}: weak edge ${edge[edge.length >> 1]}`); continue; }
    // The edge must hold in every frame of the window: moving flat content covers its own
    // surroundings in some frames, a painted overlay never does.
    const near = [...rings[2], ...rings[3]];
    let worst = 0;
    for (let s = 0; s < frames.length && worst <= persistMax; s++) {
      const e = frames[s].data;
      let similar = 0;
      for (const i of near) {
        const cd = Math.max(Math.abs(e[3 * i] - mean[0]), Math.abs(e[3 * i + 1] - mean[1]), Math.abs(e[3 * i + 2] - mean[2]));
        if (cd < edgeMin / 2) similar++;
      }
      worst = Math.max(worst, similar / Math.max(1, near.length));
    }
    if (worst > persistMax) { dbg?.(`${at}: edge not persistent ${worst.toFixed(2)}`); continue; }
    dbg?.(`${at}: painted`);
    for (const i of pix) out.data[i] = 255;
    // Grow back: the flatness test always drops the paint's outermost pixel (ring 1), and
    // codecs blend the next one with the paint colour (ring 2, taken when close and static).
    for (const i of rings[1]) out.data[i] = 255;
    for (const i of rings[2]) if (colourDiff(i) < 60 && change[i] <= staticTol * 2) out.data[i] = 255;
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
