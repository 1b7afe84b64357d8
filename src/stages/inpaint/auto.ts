/**
 * `--mask auto`: find painted-over regions in the input itself. A painted overlay is a flat,
 * uniformly coloured area with a hard edge against the content, that either stays put while
 * the content around it moves or moves as one rigid piece that its surroundings do not follow.
 * Per frame, over a window of neighbouring frames:
 *
 * 1. candidates: pixels that are locally flat (3x3 colour range small) and, for a static
 *    paint, static over the window (max colour change small);
 * 2. each 4-connected candidate region is kept only if its colour is uniform over the whole
 *    region (paint is one colour: a luma standard deviation well under 1 after x264, where
 *    real flat surfaces, walls, hair or a dark shirt, show more from shading; this, not the
 *    amount of motion, is what keeps a wall of a nearly still shot out), the pixels 2-3 px
 *    outside it differ from its colour (hard edge, stepped rather than fading as where a
 *    camera clips), and that edge holds in every frame of the window (moving flat content
 *    covers its own surroundings in some frames, a static overlay never does);
 * 3. a region that is flat but not static is a moving paint when the same region is found in
 *    the neighbouring frames moved as one piece, its edge holding there too, and what lies
 *    around it does not move with it (a real object carries its surroundings along, a paint
 *    slides over them);
 * 4. kept regions grow back over the edge pixels that the flatness test dropped and that
 *    codecs blend, each only when it is closer to the paint's colour than to the content just
 *    beyond it; static pixels the region encloses (the text of a caption bar, a logo on a
 *    plate) join it.
 */
import { createMask, type Mask, type RgbFrame } from '../../media/frame.js';

export interface AutoMaskOptions {
  /** Max colour change over the window for a static pixel (default 12). */
  staticTol?: number;
  /** Max 3x3 luma range for a flat pixel (default 12; chroma may vary 2.5 times as much). */
  flatTol?: number;
  /** Smallest region core, pixels (default 16). */
  minArea?: number;
  /** Max luma standard deviation inside a region (default 1.5; 0.9 for a moving one). */
  uniformTol?: number;
  /** Max chroma (Cb, Cr) standard deviation inside a region (default 5). */
  chromaTol?: number;
  /** Min median colour difference just outside a region (default 30). */
  edgeMin?: number;
  /** Max share of the pixels just outside a region that take its colour in any frame of the window (default 0.35). */
  persistMax?: number;
  /** Max share of the pixels 4-10 px outside a region within a quarter of edgeMin of its colour (default 0.2). */
  surfaceMax?: number;
  /** Look for moving paint (default true). */
  moving?: boolean;
  /** Largest motion of a moving paint between consecutive frames, pixels (default 8); it is followed over 4 frames each side. */
  maxMotion?: number;
  /** Receives one line per candidate region with the test that rejected it (tuning aid). */
  debug?: (line: string) => void;
}

interface Planes {
  w: number;
  h: number;
  Y: Float32Array;
  Cb: Float32Array;
  Cr: Float32Array;
}

function planesOf(f: RgbFrame): Planes {
  const { width: w, height: h, data: d } = f;
  const n = w * h;
  const Y = new Float32Array(n), Cb = new Float32Array(n), Cr = new Float32Array(n);
  for (let i = 0, j = 0; i < n; i++, j += 3) {
    Y[i] = 0.299 * d[j] + 0.587 * d[j + 1] + 0.114 * d[j + 2];
    Cb[i] = 0.564 * (d[j + 2] - Y[i]);
    Cr[i] = 0.713 * (d[j] - Y[i]);
  }
  return { w, h, Y, Cb, Cr };
}

/** Detect the painted mask of `frames[t]` from the window `frames` (at least 2 frames). */
export function detectPaintedMask(frames: RgbFrame[], t: number, opts: AutoMaskOptions = {}): Mask {
  const f = frames[t];
  const { width: w, height: h } = f;
  const n = w * h;
  const staticTol = opts.staticTol ?? 12;
  const flatTol = opts.flatTol ?? 12;
  const minArea = opts.minArea ?? 16;
  const uniformTol = opts.uniformTol ?? 1.5;
  const chromaTol = opts.chromaTol ?? 5;
  const edgeMin = opts.edgeMin ?? 30;
  const persistMax = opts.persistMax ?? 0.35;
  const surfaceMax = opts.surfaceMax ?? 0.2;
  const maxMotion = opts.maxMotion ?? 8;
  const dbg = opts.debug;
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
  const { Y, Cb, Cr } = planesOf(f);
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
  const flat = new Uint8Array(n); // 2: flat within a third of flatTol, 1: within flatTol, 0: not flat
  for (let y = 1; y < h - 1; y++)
    for (let x = 1; x < w - 1; x++) {
      const i = y * w + x;
      const r = Math.max(range3(Y, i), range3(Cb, i) / 2.5, range3(Cr, i) / 2.5);
      flat[i] = r <= flatTol / 3 ? 2 : r <= flatTol ? 1 : 0;
    }
  const cand = new Uint8Array(n);
  const label = new Int32Array(n);
  const stack: number[] = [];
  const ring = new Int32Array(n); // BFS stamp per component
  const seed = new Int32Array(n); // the region pixel a ring pixel was reached from
  const dist = new Uint8Array(n); // its ring (distance from the region)
  let comp = 0;
  const colourDiffIn = (e: Uint8Array, i: number, mean: number[]) => Math.max(Math.abs(e[3 * i] - mean[0]), Math.abs(e[3 * i + 1] - mean[1]), Math.abs(e[3 * i + 2] - mean[2]));
  const pixelDist = (i: number, j: number) => Math.max(Math.abs(d[3 * i] - d[3 * j]), Math.abs(d[3 * i + 1] - d[3 * j + 1]), Math.abs(d[3 * i + 2] - d[3 * j + 2]));
  /** The pixel `k` times as far from q's seed as q is, in q's direction (clamped to the frame). */
  const outward = (q: number, k: number) => {
    const s = seed[q];
    const sx = s % w, sy = (s / w) | 0, qx = q % w, qy = (q / w) | 0;
    const x = Math.min(w - 1, Math.max(0, sx + Math.round((qx - sx) * k)));
    const y = Math.min(h - 1, Math.max(0, sy + Math.round((qy - sy) * k)));
    return y * w + x;
  };

  /** Judge one candidate region; true when it is a paint (and then it is written to `out`). */
  const judge = (pix: number[], id: number, mode: 'static' | 'moving'): boolean => {
    if (pix.length < minArea) return false;
    const mean = [0, 0, 0];
    for (const i of pix) for (let c = 0; c < 3; c++) mean[c] += d[3 * i + c];
    for (let c = 0; c < 3; c++) mean[c] /= pix.length;
    const sd = [Y, Cb, Cr].map((p) => {
      let s1 = 0, s2 = 0;
      for (const i of pix) { s1 += p[i]; s2 += p[i] * p[i]; }
      return Math.sqrt(Math.max(0, s2 / pix.length - (s1 / pix.length) ** 2));
    });
    // A moving paint has no staticness to vouch for it: it must be as exact as paint is. The
    // luma here is computed from the decoded RGB, whose chroma was upsampled: across a saturated
    // paint's edge pixels that error reaches the luma, so a saturated colour gets up to a third more.
    const meanCb = 0.564 * (mean[2] - (0.299 * mean[0] + 0.587 * mean[1] + 0.114 * mean[2]));
    const meanCr = 0.713 * (mean[0] - (0.299 * mean[0] + 0.587 * mean[1] + 0.114 * mean[2]));
    const saturation = Math.min(1, Math.hypot(meanCb, meanCr) / 90);
    const uTol = (mode === 'moving' ? uniformTol * 0.6 : uniformTol) * (1 + saturation / 3);
    const at = `${mode} region ${pix.length}px at ${pix[0] % w},${(pix[0] / w) | 0} colour ${mean.map((v) => Math.round(v)).join('/')} sd ${sd.map((v) => v.toFixed(2)).join('/')}`;
    // (chroma: codecs share it between 2x2 pixels, so a paint's chroma bleeds at its edge)
    const uniform = sd[0] <= uTol && sd[1] <= chromaTol && sd[2] <= chromaTol;
    if (!uniform) { dbg?.(`${at}: not uniform`); return false; }
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
    if (core < minArea / 4) { dbg?.(`${at}: no body (${core} px ${depth} px deep)`); return false; }
    // Rings by BFS (8-neighbour steps) up to distance 10 outside the region.
    const rings: number[][] = [pix];
    const stamp = id + 1;
    for (const i of pix) { ring[i] = stamp; seed[i] = i; dist[i] = 0; }
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
            seed[j] = seed[i];
            dist[j] = r;
            next.push(j);
          }
      }
      rings.push(next);
    }
    const colourDiff = (i: number) => colourDiffIn(d, i, mean);
    // Pixels already flagged (a paint this region touches) say nothing about its own edge.
    const near = [...rings[2], ...rings[3]].filter((i) => !out.data[i]);
    const edge = near.map(colourDiff).sort((a, b) => a - b);
    const edgeMed = edge.length ? edge[edge.length >> 1] : 0;
    // Flat black or white is also where a camera clips (a black shirt, a dark background, a
    // blown-out window): clipping fades into the content over a few pixels, a paint steps.
    // Looking outward from the region along each direction, over 6 px: a paint's edge makes at
    // least half of the rise in one step; a fade spreads it (a clipped area is soft when more than
    // a third of its directions fade). Judged per direction, so a paint
    // half on dark clothes, half on a bright ground, is not taken for a fade. A clipped area
    // at the frame's edge is a letterbox bar, a dark background or a blown-out sky.
    // (near black or white by luma: a dark blue-black background, 4/3/19, is as dark as a clip)
    const meanY0 = 0.299 * mean[0] + 0.587 * mean[1] + 0.114 * mean[2];
    const clipped = (mean.every((v) => v <= 24) && meanY0 <= 16) || (mean.every((v) => v >= 231) && meanY0 >= 240);
    // set when the region is clipped-looking and steps in every direction it was judged in
    let stepsEverywhere = false;
    if (clipped) {
      if (touches) { dbg?.(`${at}: clipped area at the frame's edge`); return false; }
      let soft = 0, judged = 0;
      for (const q of rings[1]) {
        if (out.data[q]) continue;
        let prev = 0, jump = 0, total = 0;
        for (let r = 1; r <= 6; r++) {
          const v = colourDiff(outward(q, r));
          jump = Math.max(jump, v - prev);
          prev = v;
          total = v;
        }
        if (total < 8) continue; // nothing to fade into
        judged++;
        if (jump < 0.5 * total) soft++;
      }
      if (judged && soft > judged / 3) { dbg?.(`${at}: soft edge of a clipped area (${soft} of ${judged} directions fade)`); return false; }
      dbg?.(`${at}: clipped, hard edge (${soft} of ${judged} directions fade)`);
      stepsEverywhere = judged >= 16 && soft === 0;
    }
    // Next to a paint already found, codecs bleed its colour into the content: a region there
    // needs twice the contrast.
    const nextToPaint = [1, 2, 3].some((r) => rings[r].some((i) => out.data[i]));
    if (nextToPaint && edgeMed < 2 * edgeMin) { dbg?.(`${at}: next to a paint, edge ${edgeMed.toFixed(1)}`); return false; }
    // Small flat patches are common in real content (a fold of a shirt): they need more contrast.
    if (pix.length < 4 * minArea && edgeMed < 1.5 * edgeMin) { dbg?.(`${at}: small, edge ${edgeMed.toFixed(1)}`); return false; }
    if (edgeMed < edgeMin) {
      // A low-contrast edge (black paint on black clothes) still counts when the region is
      // exactly one colour and what surrounds it moves a lot while it stays put (or, for a
      // moving black or white paint, with half of edgeMin, when the motion tests below find it
      // moving over its surroundings).
      let moving = 0, far = 0;
      for (const i of [...rings[4], ...rings[5]]) if (!out.data[i]) { moving += change[i]; far++; }
      const moves = mode === 'moving' ? clipped : far > 0 && moving / far >= 1.25 * staticTol;
      // Or, still, when it is exactly one colour at the end of the range and steps in every
      // direction (white paint on a pale wall: a blown-out area fades into its surroundings).
      const exactStep = mode === 'static' && stepsEverywhere && sd[0] <= uniformTol / 6 && edgeMed >= edgeMin / 4;
      if (!exactStep && !(moves && sd[0] <= uniformTol / 2 && edgeMed >= (mode === 'moving' ? edgeMin / 2 : edgeMin / 4))) { dbg?.(`${at}: weak edge ${edgeMed.toFixed(1)} (around it moves ${(moving / Math.max(1, far)).toFixed(1)})`); return false; }
    }
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
    if (around && same / around > surfaceMax) { dbg?.(`${at}: same colour around ${(same / around).toFixed(2)}`); return false; }
    // Content "takes the region's colour" when it comes within the region's own noise of it
    // (at least 6, at most half of edgeMin): dark clothes next to a black paint do not.
    const takeTol = Math.min(edgeMin / 2, Math.max(6, 3 * sd[0] + 3));
    const similarShare = (e: Uint8Array, dx: number, dy: number) => {
      let similar = 0, k = 0;
      for (const i of near) {
        const x = (i % w) + dx, y = ((i / w) | 0) + dy;
        if (x < 0 || y < 0 || x >= w || y >= h) continue;
        k++;
        if (colourDiffIn(e, y * w + x, mean) < takeTol) similar++;
      }
      return similar / Math.max(1, k);
    };
    if (mode === 'static') {
      // The edge must hold in every frame of the window: moving flat content covers its own
      // surroundings in some frames, a painted overlay never does.
      let worst = 0;
      for (let s = 0; s < frames.length && worst <= persistMax; s++) worst = Math.max(worst, similarShare(frames[s].data, 0, 0));
      if (worst > persistMax) { dbg?.(`${at}: edge not persistent ${worst.toFixed(2)} (edge ${edgeMed.toFixed(1)})`); return false; }
    } else {
      const why = movingPaint(pix, mean, rings, similarShare);
      if (why) { dbg?.(`${at}: ${why}`); return false; }
    }
    dbg?.(`${at}: painted (edge ${edgeMed.toFixed(1)}, same colour around ${(same / Math.max(1, around)).toFixed(2)}, body ${core})`);
    for (const i of pix) out.data[i] = 255;
    // Grow back. The flatness test drops the paint's pixels that codecs ring or blend: first
    // those within 3 px of the region and close to its colour and luma (connected to it;
    // static, for a static paint), then up to two pixels more (an antialiased or blended edge)
    // each where it is closer to the paint than to the content 2 px further out, in colour and clearly in luma
    // (codecs share chroma across the edge: a pixel just outside a saturated paint takes some of
    // its colour and is still content; luma is not subsampled, so it keeps its own luma).
    const growTol = Math.min(edgeMed / 2, Math.max(16, 6 * Math.max(...sd)));
    const meanY = 0.299 * mean[0] + 0.587 * mean[1] + 0.114 * mean[2];
    const growTolY = Math.max(10, 4 * sd[0]);
    const touchesOut = (q: number) => {
      const x = q % w, y = (q / w) | 0;
      return (x > 0 && out.data[q - 1] === 255) || (x < w - 1 && out.data[q + 1] === 255) || (y > 0 && out.data[q - w] === 255) || (y < h - 1 && out.data[q + w] === 255);
    };
    for (let r = 1; r <= 3; r++)
      for (const q of rings[r]) {
        if (out.data[q] || (mode === 'static' && change[q] > staticTol * 2)) continue;
        if (colourDiff(q) <= growTol && Math.abs(Y[q] - meanY) <= growTolY && touchesOut(q)) out.data[q] = 255;
      }
    for (let step = 0; step < 2; step++) {
      const blend: number[] = [];
      for (let r = 1; r <= 5; r++)
        for (const q of rings[r]) {
          if (out.data[q] || !touchesOut(q)) continue;
          const o = outward(q, (r + 2) / r);
          if (colourDiff(q) <= pixelDist(q, o) && Math.abs(Y[q] - meanY) < 0.5 * Math.abs(Y[q] - Y[o])) blend.push(q);
        }
      for (const q of blend) out.data[q] = 255;
    }
    if (mode === 'static') fillEnclosed(out, pix, change, staticTol);
    return true;
  };

  /**
   * A flat region that is not static: a paint when, in the neighbouring frames, the same region
   * turns up moved as one piece (at least 95% of its pixels within its noise of its colour), its
   * edge holds there, and the content around it does not move along with it. Returns the reason
   * it is not, or '' when it is.
   */
  const movingPaint = (pix: number[], mean: number[], rings: number[][], similarShare: (e: Uint8Array, dx: number, dy: number) => number): string => {
    const neighbours = [t - 1, t + 1, t - 2, t + 2, t - 3, t + 3, t - 4, t + 4].filter((s) => s >= 0 && s < frames.length);
    if (neighbours.length < 2) return 'moving: too few neighbouring frames';
    // a sample of the region for the search, all of it for the check
    const step = Math.max(1, Math.floor(pix.length / 160));
    const sample = pix.filter((_, k) => k % step === 0);
    const tol = 10;
    const around = [...rings[3], ...rings[4], ...rings[5], ...rings[6]].filter((i) => !out.data[i]);
    const stamp = ring[pix[0]];
    /** q lies within 2 px of the region moved by (dx, dy). */
    const nearMoved = (q: number, dx: number, dy: number) => {
      const x = (q % w) - dx, y = ((q / w) | 0) - dy;
      if (x < 0 || y < 0 || x >= w || y >= h) return false;
      const j = y * w + x;
      return ring[j] === stamp && dist[j] <= 2;
    };
    let movedFrames = 0, followed = 0, why = '';
    // the next frames each side are searched over maxMotion; the further ones around where the
    // velocity found there puts the region (3 px + 1 px per frame of distance)
    let vx = 0, vy = 0, vn = 0;
    for (const s of neighbours) {
      const e = frames[s].data;
      const dt = s - t;
      const near1 = Math.abs(dt) === 1;
      const D = near1 || !vn ? Math.min(32, maxMotion * Math.abs(dt)) : 3 + Math.abs(dt);
      const cx = near1 || !vn ? 0 : Math.round((vx / vn) * dt), cy = near1 || !vn ? 0 : Math.round((vy / vn) * dt);
      const share = (list: number[], dx: number, dy: number) => {
        let k = 0, hit = 0;
        for (const i of list) {
          const x = (i % w) + dx, y = ((i / w) | 0) + dy;
          if (x < 0 || y < 0 || x >= w || y >= h) continue;
          k++;
          if (colourDiffIn(e, y * w + x, mean) <= tol) hit++;
        }
        return k >= 0.8 * list.length ? hit / k : 0;
      };
      let best = -1, bx = 0, by = 0;
      for (let dy = cy - D; dy <= cy + D; dy++)
        for (let dx = cx - D; dx <= cx + D; dx++) {
          const v = share(sample, dx, dy);
          if (v > best || (v === best && Math.abs(dx) + Math.abs(dy) < Math.abs(bx) + Math.abs(by))) { best = v; bx = dx; by = dy; }
        }
      if (near1) { vx += bx * dt; vy += by * dt; vn++; }
      if (best < 0.9) return `moving: not found in frame ${s - t >= 0 ? '+' : ''}${s - t} (best ${best.toFixed(2)})`;
      if (share(pix, bx, by) < 0.95) return `moving: not rigid in frame ${s - t >= 0 ? '+' : ''}${s - t}`;
      if (similarShare(e, bx, by) > persistMax) return `moving: edge not persistent in frame ${s - t >= 0 ? '+' : ''}${s - t}`;
      if (bx === 0 && by === 0) continue;
      movedFrames++;
      // The content around: does it follow the region (a real object and its surroundings) or
      // stay behind (a paint sliding over it)?
      // (pixels the paint covers in that frame, at either place, say nothing)
      let follow = 0, stay = 0, k = 0;
      for (const i of around) {
        const x = i % w, y = (i / w) | 0;
        const xx = x + bx, yy = y + by;
        if (xx < 0 || yy < 0 || xx >= w || yy >= h || nearMoved(i, bx, by)) continue;
        const j = yy * w + xx;
        const c = (a: Uint8Array, p: number, b: Uint8Array, q: number) => Math.max(Math.abs(a[3 * p] - b[3 * q]), Math.abs(a[3 * p + 1] - b[3 * q + 1]), Math.abs(a[3 * p + 2] - b[3 * q + 2]));
        follow += c(d, i, e, j);
        stay += c(d, i, e, i);
        k++;
      }
      follow /= Math.max(1, k);
      stay /= Math.max(1, k);
      if (follow < 0.5 * stay) { followed++; why = `the content around moves with it (frame ${s - t >= 0 ? '+' : ''}${s - t}: ${follow.toFixed(1)} moved, ${stay.toFixed(1)} still)`; }
    }
    // (the content may move like the paint in one pair of frames by chance; a real object
    // carries it along in most)
    // (a region that is still in most of the frames around is content that shifted by a pixel)
    if (2 * movedFrames < neighbours.length) return `moving: moves in ${movedFrames} of ${neighbours.length} frames only`;
    if (2 * followed > movedFrames) return `moving: in ${followed} of ${movedFrames} frames ${why}`;
    return '';
  };

  // Passes: static paint with the tolerances as given, then a third of them over what the first
  // left (which separates a paint from flat content of a similar colour that touches it, a black
  // box on black clothes, merged into one non-uniform region by the first pass); then the same
  // two for moving paint.
  const passes: { f: number; mode: 'static' | 'moving' }[] = [{ f: 1, mode: 'static' }, { f: 1 / 3, mode: 'static' }];
  if (opts.moving ?? true) passes.push({ f: 1, mode: 'moving' }, { f: 1 / 3, mode: 'moving' });
  for (const { f: k, mode } of passes) {
    cand.fill(0);
    for (let i = 0; i < n; i++) {
      if (out.data[i] || flat[i] < (k < 1 ? 2 : 1)) continue;
      // (a moving paint's middle can be static: the part every position of it covers)
      if (mode === 'moving' || change[i] <= staticTol * k) cand[i] = 1;
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
        if (x > 0 && cand[i - 1] && label[i - 1] < 0) { label[i - 1] = comp; stack.push(i - 1); }
        if (x < w - 1 && cand[i + 1] && label[i + 1] < 0) { label[i + 1] = comp; stack.push(i + 1); }
        if (y > 0 && cand[i - w] && label[i - w] < 0) { label[i - w] = comp; stack.push(i - w); }
        if (y < h - 1 && cand[i + w] && label[i + w] < 0) { label[i + w] = comp; stack.push(i + w); }
      }
      judge(pix, comp++, mode);
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

/**
 * Frame k's auto mask from its own detection and its neighbours' (frames k-1 and k+1): a static
 * overlay is in the neighbouring frames too, and an I-frame's ringing can hide a paint's edge
 * column in one frame (a pixel missed once would be copied into the others by the fill). A
 * neighbour's pixel joins only where frame k did not change there (a moving paint's old place
 * is content again).
 */
export function uniteWithNeighbours(frame: RgbFrame, own: Mask, neighbours: { frame: RgbFrame; mask: Mask }[], tol = 24): Mask {
  const m = createMask(own.width, own.height);
  m.data.set(own.data);
  const d = frame.data;
  for (const nb of neighbours) {
    const e = nb.frame.data, r = nb.mask.data;
    for (let i = 0; i < r.length; i++) {
      if (!r[i] || m.data[i]) continue;
      const c = Math.max(Math.abs(d[3 * i] - e[3 * i]), Math.abs(d[3 * i + 1] - e[3 * i + 1]), Math.abs(d[3 * i + 2] - e[3 * i + 2]));
      if (c <= tol) m.data[i] = 255;
    }
  }
  return m;
}

/**
 * The auto masks of a whole (short, in-memory) clip as the inpaint stage makes them: each
 * frame's detection over the frames `radius` each side, united with its two neighbours'.
 */
export function autoMaskSequence(frames: RgbFrame[], radius = 16, opts: AutoMaskOptions = {}): Mask[] {
  const raw = frames.map((_, j) => {
    const lo = Math.max(0, j - radius), hi = Math.min(frames.length, j + radius + 1);
    return detectPaintedMask(frames.slice(lo, hi), j - lo, opts);
  });
  return frames.map((f, k) =>
    uniteWithNeighbours(f, raw[k], [k - 1, k + 1].filter((j) => j >= 0 && j < frames.length).map((j) => ({ frame: frames[j], mask: raw[j] }))),
  );
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
