/**
 * `--mask auto`: find painted-over regions in the input itself. A painted overlay is a flat,
 * uniformly coloured area that stays put while the content around it moves, with a hard
 * edge against that content. Per frame, over a window of neighbouring frames:
 *
 * 1. candidates: pixels that are static over the window (max colour change small) and
 *    locally flat (3x3 colour range small);
 * 2. each 4-connected candidate region is kept only if its colour is uniform over the whole
 *    region (paint is one colour: a luma standard deviation of about 1 after x264, where
 *    real flat surfaces, walls, hair or a dark shirt, show 3 or more from shading; this, not
 *    the amount of motion, is what keeps a wall of a nearly still shot out), the pixels
 *    2-3 px outside it differ strongly from its colour (hard edge), and the content 3-5 px
 *    outside it moves over the window (so a plain wall in a still shot, or flat content
 *    that moves, is not flagged: moving flat content shrinks to a core whose surroundings
 *    still have its own colour);
 * 3. kept regions grow back by 1 px, and by a 2nd px over static pixels close to their colour
 *    (the edge pixels that the flatness test dropped and that codecs blend); static pixels
 *    the region encloses (the text of a caption bar, a logo on a plate) join it.
 */
import { createMask, type Mask, type RgbFrame } from '../../media/frame.js';

export interface AutoMaskOptions {
  /** Max colour change over the window for a static pixel (default 12). */
  staticTol?: number;
  /** Max 3x3 luma range for a flat pixel (default 12; chroma may vary 2.5 times as much). */
  flatTol?: number;
  /** Smallest region core, pixels (default 16). */
  minArea?: number;
  /** Max luma standard deviation inside a region (default 2.5; chroma twice that). */
  uniformTol?: number;
  /** Min median colour difference just outside a region (default 30). */
  edgeMin?: number;
  /** Max share of the pixels just outside a region that take its colour in any frame of the window (default 0.35). */
  persistMax?: number;
  /** Max share of the pixels 4-10 px outside a region within a quarter of edgeMin of its colour (default 0.2). */
  surfaceMax?: number;
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
  const uniformTol = opts.uniformTol ?? 2.5;
  const edgeMin = opts.edgeMin ?? 30;
  const persistMax = opts.persistMax ?? 0.35;
  const surfaceMax = opts.surfaceMax ?? 0.2;
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
  // Two passes: the tolerances as given, then a third of them over what the first left, which
  // separates a paint from flat content of a similar colour that touches it (a black box on
  // black clothes), merged into one non-uniform region by the first pass.
  const cand = new Uint8Array(n);
  const label = new Int32Array(n);
  const stack: number[] = [];
  const ring = new Int32Array(n).fill(0); // BFS distance stamp per component
  let comp = 0;
  for (const f of [1, 1 / 3]) {
  cand.fill(0);
  for (let y = 1; y < h - 1; y++)
    for (let x = 1; x < w - 1; x++) {
      const i = y * w + x;
      if (change[i] > staticTol * f || out.data[i]) continue;
      if (range3(Y, i) <= flatTol * f && range3(Cb, i) <= 2.5 * flatTol * f && range3(Cr, i) <= 2.5 * flatTol * f) cand[i] = 1;
    }
  label.fill(-1);
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
    // A region cut by the frame's edge must have a body, pixels 2 px deep inside it: flat
    // background showing as a sliver between hair and the frame's edge does not. (Inside the
    // frame thin regions stay: a saturated stroke's flat core is thin after chroma subsampling.)
    let touches = false;
    for (const i of pix) {
      const x = i % w, y = (i / w) | 0;
      if (x <= 1 || y <= 1 || x >= w - 2 || y >= h - 2) { touches = true; break; }
    }
    const depth = 2;
    let core = touches ? 0 : minArea;
    for (const i of touches ? pix : []) {
      const x = i % w, y = (i / w) | 0;
      if (x < depth || y < depth || x >= w - depth || y >= h - depth) continue;
      let all = true;
      for (let dy = -depth; dy <= depth && all; dy++) for (let dx = -depth; dx <= depth && all; dx++) all = label[i + dy * w + dx] === id;
      if (all) core++;
    }
    if (core < minArea / 4) { dbg?.(`${at}: no body (${core} px ${depth} px deep)`); continue; }
    // Rings by BFS (8-neighbour steps) up to distance 10 outside the region.
    const rings: number[][] = [pix];
    const stamp = id + 1;
    for (const i of pix) ring[i] = stamp;
    for (let r = 1; r <= 10; r++) {
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
    // Pixels already flagged (a paint this region touches) say nothing about its own edge.
    const near = [...rings[2], ...rings[3]].filter((i) => !out.data[i]);
    const edge = near.map(colourDiff).sort((a, b) => a - b);
    const edgeMed = edge.length ? edge[edge.length >> 1] : 0;
    // Flat black or white is also where a camera clips (a black shirt, a dark background, a
    // blown-out window); clipping fades into the content over a few pixels, a paint steps:
    // 2 px out it already differs at least half as much as 4 px out.
    const clipped = mean.every((v) => v <= 16) || mean.every((v) => v >= 240);
    if (clipped) {
      const medOf = (r: number[]) => {
        const v = r.filter((i) => !out.data[i]).map(colourDiff).sort((a, b) => a - b);
        return v.length ? v[v.length >> 1] : 0;
      };
      const m2 = medOf(rings[2]), m4 = medOf(rings[4]);
      if (m2 < 0.5 * m4) { dbg?.(`${at}: soft edge of a clipped area (${m2.toFixed(0)} 2 px out, ${m4.toFixed(0)} 4 px out)`); continue; }
    }
    // Next to a paint already found, codecs bleed its colour into the content: a region there
    // needs twice the contrast.
    const nextToPaint = [1, 2, 3].some((r) => rings[r].some((i) => out.data[i]));
    if (nextToPaint && edgeMed < 2 * edgeMin) { dbg?.(`${at}: next to a paint, edge ${edgeMed}`); continue; }
    // Small flat patches are common in real content (a fold of a shirt): they need more contrast.
    if (pix.length < 4 * minArea && edgeMed < 1.5 * edgeMin) { dbg?.(`${at}: small, edge ${edgeMed}`); continue; }
    if (edgeMed < edgeMin) {
      // A low-contrast edge (black paint on black clothes) still counts when the region is
      // exactly one colour and what surrounds it moves a lot while it stays put.
      let moving = 0, far = 0;
      for (const i of [...rings[4], ...rings[5]]) if (!out.data[i]) { moving += change[i]; far++; }
      const moves = far > 0 && moving / far >= 1.25 * staticTol;
      if (!(moves && sd[0] <= uniformTol / 2 && edgeMed >= edgeMin / 4)) { dbg?.(`${at}: weak edge ${edgeMed} (around it moves ${(moving / Math.max(1, far)).toFixed(1)}, sd ${sd[0].toFixed(2)})`); continue; }
    }
    // The edge must hold in every frame of the window: moving flat content covers its own
    // surroundings in some frames, a painted overlay never does.
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
    // A piece of a surface cut off by something in front of it (a wall between hair and the
    // frame's edge) has that surface's colour close by; a paint seldom matches what lies
    // 4-10 px around it this closely.
    let same = 0, around = 0;
    for (let r = 4; r <= 10; r++)
      for (const i of rings[r]) {
        if (out.data[i]) continue;
        around++;
        if (colourDiff(i) <= edgeMin / 4) same++;
      }
    if (around && same / around > surfaceMax) { dbg?.(`${at}: same colour around ${(same / around).toFixed(2)}`); continue; }
    dbg?.(`${at}: painted (edge ${edgeMed}, same colour around ${(same / Math.max(1, around)).toFixed(2)}, body ${core})`);
    for (const i of pix) out.data[i] = 255;
    // Grow back: the flatness test always drops the paint's outermost pixel (ring 1), and
    // codecs blend the next one with the paint colour (ring 2, taken when close and static).
    for (const i of rings[1]) out.data[i] = 255;
    for (const i of rings[2]) if (colourDiff(i) < 60 && change[i] <= staticTol * 2) out.data[i] = 255;
    fillEnclosed(out, pix, change, staticTol);
  }
  }
  return out;
}

/**
 * Static pixels enclosed by a painted region (not reachable from its bounding box's border
 * without crossing it) belong to the overlay: the text on a caption bar, a logo on a plate.
 */
function fillEnclosed(out: Mask, pix: number[], change: Float32Array, staticTol: number): void {
  const w = out.width;
  let x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1;
  for (const i of pix) {
    const x = i % w, y = (i / w) | 0;
    if (x < x0) x0 = x;
    if (x > x1) x1 = x;
    if (y < y0) y0 = y;
    if (y > y1) y1 = y;
  }
  const bw = x1 - x0 + 1, bh = y1 - y0 + 1;
  if (bw < 3 || bh < 3) return;
  const outside = new Uint8Array(bw * bh);
  const stack: number[] = [];
  const at = (x: number, y: number) => (y + y0) * w + x + x0;
  const push = (x: number, y: number) => {
    const k = y * bw + x;
    if (outside[k] || out.data[at(x, y)]) return;
    outside[k] = 1;
    stack.push(k);
  };
  for (let x = 0; x < bw; x++) { push(x, 0); push(x, bh - 1); }
  for (let y = 0; y < bh; y++) { push(0, y); push(bw - 1, y); }
  while (stack.length) {
    const k = stack.pop()!;
    const x = k % bw, y = (k / bw) | 0;
    if (x > 0) push(x - 1, y);
    if (x < bw - 1) push(x + 1, y);
    if (y > 0) push(x, y - 1);
    if (y < bh - 1) push(x, y + 1);
  }
  for (let y = 0; y < bh; y++)
    for (let x = 0; x < bw; x++) {
      const i = at(x, y);
      if (!outside[y * bw + x] && !out.data[i] && change[i] <= staticTol * 2) out.data[i] = 255;
    }
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
