/**
 * Dense optical flow written in the project: pyramidal, iterative (warping) Lucas-Kanade
 * with a weighted structure tensor, on luma planes.
 *
 * Convention: the flow f maps `prev` onto `next`: prev(x) ≈ next(x + f(x)).
 *
 * Each pyramid level refines the upsampled coarser flow with a few warp-and-solve steps:
 * `next` is warped by the current flow, and per pixel the 2x2 normal equations of the
 * linearised brightness constancy are accumulated over a box window (weighted by the
 * per-pixel validity, so hole pixels of an inpainting mask do not pull the flow) and
 * solved with a small Tikhonov term. Pixels whose window holds too little valid
 * texture take their flow from a membrane (Laplace) interpolation of the confident
 * ones, and a light confidence-weighted smoothing removes isolated outliers.
 */
import { laplaceFill } from './laplace.js';

export interface FlowField {
  width: number;
  height: number;
  /** Horizontal and vertical displacement, pixels, per pixel of `prev`. */
  u: Float32Array;
  v: Float32Array;
}

export interface FlowOptions {
  width: number;
  height: number;
  /** Pyramid levels (default: until the short side is <= 12 px, at most 6). */
  levels?: number;
  /** Warp-and-solve iterations per level (default 4; 2 on levels above 40k pixels). */
  iterations?: number;
  /** Box window radius of the structure tensor (default 2, a 5x5 window). */
  radius?: number;
  /** Per-pixel validity of `prev` / `next` (0 = ignore, e.g. inpainting holes; any nonzero = valid). */
  validPrev?: Uint8Array;
  validNext?: Uint8Array;
  /**
   * Estimate on a downscaled copy (e.g. 0.5) and upsample the flow: the cost falls with the
   * square of the factor. Default 1.
   */
  scale?: number;
}

/** One flow's inputs (what a worker needs to compute it): the two planes, their size, optionally their valid pixels. */
export interface FlowJob {
  prev: Float32Array;
  next: Float32Array;
  width: number;
  height: number;
  validPrev?: Uint8Array;
  validNext?: Uint8Array;
}

/** The flow of a FlowJob (estimateFlow; the same in any thread). */
export function flowOfJob(j: FlowJob): FlowField {
  return estimateFlow(j.prev, j.next, { width: j.width, height: j.height, validPrev: j.validPrev, validNext: j.validNext });
}

/** Estimate the flow from `prev` to `next` (luma planes, 0..255, width*height each). */
export function estimateFlow(prev: Float32Array, next: Float32Array, opts: FlowOptions): FlowField {
  const { width, height } = opts;
  if (prev.length !== width * height || next.length !== width * height) throw new Error('estimateFlow: plane size does not match width*height');
  const scale = opts.scale ?? 1;
  if (scale < 1) {
    const w2 = Math.max(4, Math.round(width * scale));
    const h2 = Math.max(4, Math.round(height * scale));
    const p = resizePlane(prev, width, height, w2, h2);
    const q = resizePlane(next, width, height, w2, h2);
    const vp = opts.validPrev ? resizeValid(opts.validPrev, width, height, w2, h2) : undefined;
    const vn = opts.validNext ? resizeValid(opts.validNext, width, height, w2, h2) : undefined;
    const f = estimateFlow(p, q, { ...opts, width: w2, height: h2, scale: 1, validPrev: vp, validNext: vn });
    return upsampleFlow(f, width, height);
  }

  const maxLevels = opts.levels ?? 6;
  const iterations = opts.iterations ?? 4;
  const radius = opts.radius ?? 2;
  // Pyramids (level 0 = full size), slightly blurred so gradients are well behaved.
  // Validity is eroded past the blur and gradient support, so an overlay's hard edge
  // cannot leak into the valid pixels around it.
  const P0: Level[] = [{ w: width, h: height, a: blur5(prev, width, height), b: blur5(next, width, height), va: erode(validFloat(opts.validPrev, width * height), width, height, 3), vb: erode(validFloat(opts.validNext, width * height), width, height, 3) }];
  while (P0.length < maxLevels) {
    const l = P0[P0.length - 1];
    if (Math.min(l.w, l.h) <= 12 * 2 - 1) break;
    P0.push(downLevel(l));
  }

  let u: Float32Array = new Float32Array(0);
  let v: Float32Array = new Float32Array(0);
  for (let li = P0.length - 1; li >= 0; li--) {
    const L = P0[li];
    if (li === P0.length - 1) {
      u = new Float32Array(L.w * L.h);
      v = new Float32Array(L.w * L.h);
    } else {
      const up = upsampleFlow({ width: P0[li + 1].w, height: P0[li + 1].h, u, v }, L.w, L.h);
      u = up.u;
      v = up.v;
    }
    // Large levels start close to the answer (the coarser ones did the big steps): fewer iterations.
    refineLevel(L, u, v, opts.iterations ?? (L.w * L.h > 40000 ? 2 : iterations), radius);
  }
  return { width, height, u, v };
}

interface Level {
  w: number;
  h: number;
  a: Float32Array;
  b: Float32Array;
  va: Float32Array;
  vb: Float32Array;
}

function validFloat(v: Uint8Array | undefined, n: number): Float32Array {
  const out = new Float32Array(n);
  if (!v) out.fill(1);
  else for (let i = 0; i < n; i++) out[i] = v[i] ? 1 : 0;
  return out;
}

/** Separable [1 4 6 4 1]/16 blur with replicated borders. */
export function blur5(src: Float32Array, w: number, h: number): Float32Array {
  const tmp = new Float32Array(w * h);
  const out = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    const r = y * w;
    for (let x = 0; x < w; x++) {
      const x0 = x > 1 ? x - 2 : 0, x1 = x > 0 ? x - 1 : 0, x3 = x < w - 1 ? x + 1 : w - 1, x4 = x < w - 2 ? x + 2 : w - 1;
      tmp[r + x] = (src[r + x0] + 4 * src[r + x1] + 6 * src[r + x] + 4 * src[r + x3] + src[r + x4]) * 0.0625;
    }
  }
  for (let y = 0; y < h; y++) {
    const y0 = (y > 1 ? y - 2 : 0) * w, y1 = (y > 0 ? y - 1 : 0) * w, y3 = (y < h - 1 ? y + 1 : h - 1) * w, y4 = (y < h - 2 ? y + 2 : h - 1) * w;
    const r = y * w;
    for (let x = 0; x < w; x++) out[r + x] = (tmp[y0 + x] + 4 * tmp[y1 + x] + 6 * tmp[r + x] + 4 * tmp[y3 + x] + tmp[y4 + x]) * 0.0625;
  }
  return out;
}

/** Halve a level: blur then take every other sample; validity is averaged, and kept only where (nearly) whole. */
function downLevel(l: Level): Level {
  const w2 = (l.w + 1) >> 1, h2 = (l.h + 1) >> 1;
  const ba = blur5(l.a, l.w, l.h), bb = blur5(l.b, l.w, l.h);
  const a = new Float32Array(w2 * h2), b = new Float32Array(w2 * h2), va = new Float32Array(w2 * h2), vb = new Float32Array(w2 * h2);
  for (let y = 0; y < h2; y++) {
    const sy = Math.min(2 * y, l.h - 1), sy1 = Math.min(sy + 1, l.h - 1);
    for (let x = 0; x < w2; x++) {
      const sx = Math.min(2 * x, l.w - 1), sx1 = Math.min(sx + 1, l.w - 1);
      const i = y * w2 + x;
      const s = sy * l.w + sx;
      a[i] = ba[s];
      b[i] = bb[s];
      const qa = (l.va[s] + l.va[sy * l.w + sx1] + l.va[sy1 * l.w + sx] + l.va[sy1 * l.w + sx1]) * 0.25;
      const qb = (l.vb[s] + l.vb[sy * l.w + sx1] + l.vb[sy1 * l.w + sx] + l.vb[sy1 * l.w + sx1]) * 0.25;
      va[i] = qa > 0.99 ? 1 : 0;
      vb[i] = qb > 0.99 ? 1 : 0;
    }
  }
  return { w: w2, h: h2, a, b, va: erode(va, w2, h2, 1), vb: erode(vb, w2, h2, 1) };
}

/** Erode a 0/1 validity plane by a square of radius r (no-op when all valid). */
function erode(v: Float32Array, w: number, h: number, r: number): Float32Array {
  let all = true;
  for (let i = 0; i < v.length; i++) if (v[i] < 1) { all = false; break; }
  if (all) return v;
  const tmp = new Float32Array(v.length), m = new Float32Array(v.length);
  boxMean(v, w, h, r, tmp, m);
  for (let i = 0; i < m.length; i++) m[i] = m[i] > 0.999 ? 1 : 0;
  return m;
}

/** Box mean of radius r with replicated borders (separable running sums); returns `out`. */
export function boxMean(src: Float32Array, w: number, h: number, r: number, tmp = new Float32Array(w * h), out = new Float32Array(w * h)): Float32Array {
  boxMeanMulti([src], w, h, r, [tmp], [out]);
  return out;
}

/** boxMean over several planes at once (one pass per row for all of them). */
function boxMeanMulti(srcs: Float32Array[], w: number, h: number, r: number, tmps: Float32Array[], outs: Float32Array[]): void {
  const m = srcs.length;
  const k = 1 / (2 * r + 1);
  const wm = w - 1, hm = h - 1;
  for (let c = 0; c < m; c++) {
    const src = srcs[c], tmp = tmps[c];
    for (let y = 0; y < h; y++) {
      const row = y * w;
      let s = 0;
      for (let d = -r; d <= r; d++) s += src[row + (d < 0 ? 0 : d > wm ? wm : d)];
      // the same running sum in three spans, so the wide middle one needs no clamping
      const xa = Math.min(w, r), xb = Math.max(xa, w - r - 1);
      const first = src[row], last = src[row + wm];
      for (let x = 0; x < xa; x++) {
        tmp[row + x] = s * k;
        const add = x + r + 1;
        s += (add > wm ? last : src[row + add]) - first;
      }
      for (let x = xa; x < xb; x++) {
        tmp[row + x] = s * k;
        s += src[row + x + r + 1] - src[row + x - r];
      }
      for (let x = xb; x < w; x++) {
        tmp[row + x] = s * k;
        const sub = x - r;
        s += last - src[row + (sub < 0 ? 0 : sub)];
      }
    }
  }
  if (multiAcc.length < m * w) multiAcc = new Float64Array(m * w);
  const acc = multiAcc;
  acc.fill(0, 0, m * w);
  for (let c = 0; c < m; c++) {
    const tmp = tmps[c], o = c * w;
    for (let d = -r; d <= r; d++) {
      const rr = (d < 0 ? 0 : d > hm ? hm : d) * w;
      for (let x = 0; x < w; x++) acc[o + x] += tmp[rr + x];
    }
  }
  for (let y = 0; y < h; y++) {
    const row = y * w;
    const add = y + r + 1, sub = y - r;
    const ra = (add > hm ? hm : add) * w, rs = (sub < 0 ? 0 : sub) * w;
    for (let c = 0; c < m; c++) {
      const tmp = tmps[c], out = outs[c], o = c * w;
      for (let x = 0; x < w; x++) {
        out[row + x] = acc[o + x] * k;
        acc[o + x] += tmp[ra + x] - tmp[rs + x];
      }
    }
  }
}
let multiAcc = new Float64Array(0);

function refineLevel(L: Level, u: Float32Array, v: Float32Array, iterations: number, radius: number): void {
  const { w, h, a, b, va, vb } = L;
  const n = w * h;
  // every plane below is written whole before it is read: reused from call to call (no garbage)
  const planes = refineScratch(n);
  const [bw, wgt, pxx, pxy, pyy, pxt, pyt, sxx, sxy, syy, sxt, syt, sw, conf, gxA, gyA] = planes; // bw: next warped
  const tmps = planes.slice(16, 22);
  // Tikhonov term, in (grey levels per pixel)^2: keeps textureless windows near the prior.
  const lambda = 1;
  // Below this smaller eigenvalue (mean squared gradient, grey levels²/px²) a window is too flat to trust.
  const confMin = 4;
  // Gradients of prev (inverse-compositional style): the tensor depends on the weights only.
  for (let y = 0; y < h; y++) {
    const ym = (y > 0 ? y - 1 : y) * w, yp = (y < h - 1 ? y + 1 : y) * w, row = y * w;
    const ky = yp - ym === 2 * w ? 0.5 : 1;
    for (let x = 0; x < w; x++) {
      const xm = x > 0 ? x - 1 : x, xp = x < w - 1 ? x + 1 : x;
      gxA[row + x] = (a[row + xp] - a[row + xm]) * (xp - xm === 2 ? 0.5 : 1);
      gyA[row + x] = (a[yp + x] - a[ym + x]) * ky;
    }
  }
  const unknown = new Uint8Array(n);
  for (let it = 0; it < iterations; it++) {
    // Warp next by the current flow (bilinear, clamped) and the validity of next (nearest).
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const i = y * w + x;
        const fx = x + u[i], fy = y + v[i];
        const inside = fx >= 0 && fy >= 0 && fx <= w - 1 && fy <= h - 1;
        const cx = fx < 0 ? 0 : fx > w - 1 ? w - 1 : fx;
        const cy = fy < 0 ? 0 : fy > h - 1 ? h - 1 : fy;
        const x0 = cx | 0, y0 = cy | 0; // cx, cy >= 0
        const x1 = x0 < w - 1 ? x0 + 1 : x0, y1 = y0 < h - 1 ? y0 + 1 : y0;
        const ax = cx - x0, ay = cy - y0;
        const r0 = y0 * w, r1 = y1 * w;
        bw[i] = (b[r0 + x0] * (1 - ax) + b[r0 + x1] * ax) * (1 - ay) + (b[r1 + x0] * (1 - ax) + b[r1 + x1] * ax) * ay;
        const vn = vb[(ay < 0.5 ? r0 : r1) + (ax < 0.5 ? x0 : x1)];
        wgt[i] = inside ? va[i] * vn : 0;
      }
    }
    for (let i = 0; i < n; i++) {
      const gx = gxA[i], gy = gyA[i];
      const gt = bw[i] - a[i];
      const wi = wgt[i];
      pxx[i] = wi * gx * gx;
      pxy[i] = wi * gx * gy;
      pyy[i] = wi * gy * gy;
      pxt[i] = wi * gx * gt;
      pyt[i] = wi * gy * gt;
    }
    boxMeanMulti([pxx, pxy, pyy, pxt, pyt, wgt], w, h, radius, tmps, [sxx, sxy, syy, sxt, syt, sw]);
    for (let i = 0; i < n; i++) {
      const A = sxx[i] + lambda + 1e-3, B = sxy[i], C = syy[i] + lambda + 1e-3;
      const det = A * C - B * B;
      const du = -(C * sxt[i] - B * syt[i]) / det;
      const dv = -(A * syt[i] - B * sxt[i]) / det;
      // Clamp a single step to 1 px: larger steps are the coarser levels' job.
      u[i] += du > 1 ? 1 : du < -1 ? -1 : du;
      v[i] += dv > 1 ? 1 : dv < -1 ? -1 : dv;
      // Confidence: smaller eigenvalue of the tensor, relative to the window's validity.
      const tr = sxx[i] + syy[i];
      const disc = Math.sqrt(Math.max(0, (sxx[i] - syy[i]) * (sxx[i] - syy[i]) + 4 * B * B));
      conf[i] = sw[i] > 0.3 ? (0.5 * (tr - disc)) / sw[i] : 0;
      unknown[i] = conf[i] < confMin || va[i] === 0 ? 1 : 0;
    }
    smoothFlow(u, v, w, h, conf, unknown, radius);
  }
  // Where the window saw (almost) no valid texture, interpolate the flow from the confident pixels.
  let nUnknown = 0;
  for (let i = 0; i < n; i++) nUnknown += unknown[i];
  if (nUnknown > 0 && nUnknown < n) laplaceFill([u, v], w, h, unknown, { sweeps: 4, coarseSweeps: 30 });
}

/**
 * Confidence-weighted box average of the flow (radius r). Dense Lucas-Kanade sums each
 * pixel's residual over a window that its neighbours warped with their own flow, which
 * leaves flow variations finer than the window uncorrected; averaging over the same
 * window after each step removes them.
 */
function smoothFlow(u: Float32Array, v: Float32Array, w: number, h: number, conf: Float32Array, unknown: Uint8Array, r: number): void {
  const n = w * h;
  const [c, cu, cv, tmp, sc, su, sv, tmp2, tmp3] = scratch(n, 9);
  for (let i = 0; i < n; i++) {
    const ci = unknown[i] ? 1e-3 : Math.min(conf[i], 100) + 1e-3;
    c[i] = ci;
    cu[i] = ci * u[i];
    cv[i] = ci * v[i];
  }
  boxMeanMulti([c, cu, cv], w, h, r, [tmp, tmp2, tmp3], [sc, su, sv]);
  for (let i = 0; i < n; i++) {
    u[i] = su[i] / sc[i];
    v[i] = sv[i] / sc[i];
  }
}

let refineBufs: Float32Array[] = [];
/** refineLevel's 22 planes of n samples (one set per thread, valid until its next call). */
function refineScratch(n: number): Float32Array[] {
  if (!refineBufs.length || refineBufs[0].length < n) refineBufs = Array.from({ length: 22 }, () => new Float32Array(n));
  return refineBufs.map((b) => (b.length === n ? b : b.subarray(0, n)));
}

let scratchBufs: Float32Array[] = [];
/** Reusable scratch planes of at least n samples (valid until the next call). */
function scratch(n: number, count: number): Float32Array[] {
  if (!scratchBufs.length || scratchBufs[0].length < n || scratchBufs.length < count) {
    scratchBufs = Array.from({ length: Math.max(count, scratchBufs.length) }, () => new Float32Array(n));
  }
  return scratchBufs.slice(0, count).map((b) => (b.length === n ? b : b.subarray(0, n)));
}

/** Resize a flow field (bilinear), scaling the vectors with the size. */
export function upsampleFlow(f: FlowField, w: number, h: number): FlowField {
  const sx = w / f.width, sy = h / f.height;
  return { width: w, height: h, u: resizePlane(f.u, f.width, f.height, w, h, sx), v: resizePlane(f.v, f.width, f.height, w, h, sy) };
}

/** Bilinear resize of a float plane (pixel-centre aligned), values multiplied by `mul`. */
export function resizePlane(src: Float32Array, w: number, h: number, w2: number, h2: number, mul = 1): Float32Array {
  const out = new Float32Array(w2 * h2);
  if (w2 < w / 2 || h2 < h / 2) {
    // Strong reduction: box-average first so it does not alias.
    const fx = Math.floor(w / w2), fy = Math.floor(h / h2);
    if (fx >= 2 || fy >= 2) {
      const bw = Math.floor(w / Math.max(1, fx)), bh = Math.floor(h / Math.max(1, fy));
      const box = new Float32Array(bw * bh);
      const k = 1 / (Math.max(1, fx) * Math.max(1, fy));
      for (let y = 0; y < bh; y++)
        for (let x = 0; x < bw; x++) {
          let s = 0;
          for (let dy = 0; dy < Math.max(1, fy); dy++) for (let dx = 0; dx < Math.max(1, fx); dx++) s += src[(y * Math.max(1, fy) + dy) * w + x * Math.max(1, fx) + dx];
          box[y * bw + x] = s * k;
        }
      return resizePlane(box, bw, bh, w2, h2, mul);
    }
  }
  const rx = w / w2, ry = h / h2;
  // the columns' taps and weights, once (the same numbers as per pixel)
  const cx0 = new Int32Array(w2), cx1 = new Int32Array(w2), cax = new Float64Array(w2);
  for (let x = 0; x < w2; x++) {
    const fx = Math.min(Math.max((x + 0.5) * rx - 0.5, 0), w - 1);
    const x0 = Math.floor(fx);
    cx0[x] = x0;
    cx1[x] = Math.min(x0 + 1, w - 1);
    cax[x] = fx - x0;
  }
  if (w2 >= w && h2 >= h) {
    // Enlarging: each source row is interpolated across once (in doubles, the same sums as
    // per pixel) and shared by the output rows between it and the next: about 1.2-1.3x faster.
    let rowA = new Float64Array(w2), rowB = new Float64Array(w2), ia = -1, ib = -1;
    const across = (r: number, dst: Float64Array) => {
      const b = r * w;
      for (let x = 0; x < w2; x++) {
        const ax = cax[x];
        dst[x] = src[b + cx0[x]] * (1 - ax) + src[b + cx1[x]] * ax;
      }
    };
    for (let y = 0; y < h2; y++) {
      const fy = Math.min(Math.max((y + 0.5) * ry - 0.5, 0), h - 1);
      const y0 = Math.floor(fy), y1 = Math.min(y0 + 1, h - 1), ay = fy - y0;
      if (ia !== y0) {
        if (ib === y0) {
          [rowA, rowB] = [rowB, rowA];
          ia = y0;
          ib = -1;
        } else {
          across(y0, rowA);
          ia = y0;
        }
      }
      if (ib !== y1) {
        across(y1, rowB);
        ib = y1;
      }
      const o = y * w2, by = 1 - ay;
      for (let x = 0; x < w2; x++) out[o + x] = mul * (rowA[x] * by + rowB[x] * ay);
    }
    return out;
  }
  for (let y = 0; y < h2; y++) {
    const fy = Math.min(Math.max((y + 0.5) * ry - 0.5, 0), h - 1);
    const y0 = Math.floor(fy), y1 = Math.min(y0 + 1, h - 1), ay = fy - y0;
    const r0 = y0 * w, r1 = y1 * w, o = y * w2;
    for (let x = 0; x < w2; x++) {
      const x0 = cx0[x], x1 = cx1[x], ax = cax[x];
      out[o + x] = mul * ((src[r0 + x0] * (1 - ax) + src[r0 + x1] * ax) * (1 - ay) + (src[r1 + x0] * (1 - ax) + src[r1 + x1] * ax) * ay);
    }
  }
  return out;
}

export function resizeValid(v: Uint8Array, w: number, h: number, w2: number, h2: number): Uint8Array {
  const f = new Float32Array(w * h);
  for (let i = 0; i < f.length; i++) f[i] = v[i] ? 1 : 0;
  const r = resizePlane(f, w, h, w2, h2);
  const out = new Uint8Array(w2 * h2);
  for (let i = 0; i < out.length; i++) out[i] = r[i] > 0.99 ? 1 : 0;
  return out;
}

/** Sample a plane bilinearly at (x, y) with clamped borders. */
export function sampleBilinear(p: Float32Array, w: number, h: number, x: number, y: number): number {
  const cx = x < 0 ? 0 : x > w - 1 ? w - 1 : x;
  const cy = y < 0 ? 0 : y > h - 1 ? h - 1 : y;
  const x0 = Math.floor(cx), y0 = Math.floor(cy);
  const x1 = x0 < w - 1 ? x0 + 1 : x0, y1 = y0 < h - 1 ? y0 + 1 : y0;
  const ax = cx - x0, ay = cy - y0;
  return (p[y0 * w + x0] * (1 - ax) + p[y0 * w + x1] * ax) * (1 - ay) + (p[y1 * w + x0] * (1 - ax) + p[y1 * w + x1] * ax) * ay;
}

/** Mean end-point error between two flows over the pixels where `where` (optional) is nonzero. */
export function endPointError(a: FlowField, b: FlowField, where?: Uint8Array): number {
  let s = 0, k = 0;
  for (let i = 0; i < a.u.length; i++) {
    if (where && !where[i]) continue;
    s += Math.hypot(a.u[i] - b.u[i], a.v[i] - b.v[i]);
    k++;
  }
  return k ? s / k : 0;
}
