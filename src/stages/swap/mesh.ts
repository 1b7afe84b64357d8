/**
 * The embedded `mesh` identity swap: a classical swap that needs no model file.
 *
 * 1. Piecewise-affine warp of the identity photo's face onto the frame's face over the
 *    468-point face-mesh triangles (z-buffered with the mesh depth, so triangles turned away
 *    from the camera do not overwrite visible ones). The eye and mouth openings are left out
 *    of the warp: the frame keeps its own eyes and mouth, open or closed.
 * 2. Colour and lighting matched to the frame: Lab mean and standard deviation of the warped
 *    face transferred to the frame face's statistics, separately for the upper face (above
 *    the nose tip) and the lower face with a smooth ramp between them, smoothed over time per track.
 * 3. Gradient-domain (Poisson) blend inside the warped region: the result keeps the warped
 *    face's gradients and takes the frame's values at the region boundary (solved as a
 *    harmonic membrane on a coarse grid, upsampled, then refined by SOR at full resolution),
 *    so there is no seam at the hull.
 */
import type { RgbFrame } from '../../media/frame.js';
import type { Face } from '../../faces/types.js';
import { meshTopology } from './topology.js';

/** The identity photo prepared for warping: a pyramid of face crops with the mesh in each. */
export interface MeshSource {
  levels: { frame: RgbFrame; mesh: Float32Array; faceWidth: number }[];
}

/** Width of the face (mesh x extent) in pixels. */
export function meshWidth(mesh: Float32Array): number {
  let x0 = Infinity, x1 = -Infinity;
  for (let i = 0; i < 468; i++) {
    x0 = Math.min(x0, mesh[i * 3]);
    x1 = Math.max(x1, mesh[i * 3]);
  }
  return x1 - x0;
}

/** Area-average downscale by an integer-free factor (box filter over each destination pixel's footprint). */
function downscale(src: RgbFrame, width: number, height: number): RgbFrame {
  const out = new Uint8Array(width * height * 3);
  const sx = src.width / width, sy = src.height / height;
  for (let y = 0; y < height; y++) {
    const y0 = y * sy, y1 = (y + 1) * sy;
    for (let x = 0; x < width; x++) {
      const x0 = x * sx, x1 = (x + 1) * sx;
      let r = 0, g = 0, b = 0, wsum = 0;
      for (let yy = Math.floor(y0); yy < Math.ceil(y1); yy++) {
        const wy = Math.min(yy + 1, y1) - Math.max(yy, y0);
        if (wy <= 0 || yy >= src.height) continue;
        for (let xx = Math.floor(x0); xx < Math.ceil(x1); xx++) {
          const wx = Math.min(xx + 1, x1) - Math.max(xx, x0);
          if (wx <= 0 || xx >= src.width) continue;
          const w = wx * wy;
          const o = (yy * src.width + xx) * 3;
          r += src.data[o] * w; g += src.data[o + 1] * w; b += src.data[o + 2] * w;
          wsum += w;
        }
      }
      const o = (y * width + x) * 3;
      out[o] = Math.round(r / wsum); out[o + 1] = Math.round(g / wsum); out[o + 2] = Math.round(b / wsum);
    }
  }
  return { width, height, data: out };
}

/**
 * Prepare the identity photo: crop around its face (mesh box + 25 % margin) and build halving
 * levels down to a ~48 px face, so each frame samples a level close to its own face size.
 */
export function prepareMeshSource(photo: RgbFrame, face: Face): MeshSource {
  if (!face.mesh) throw new Error('prepareMeshSource: the identity face has no mesh');
  const m = face.mesh;
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (let i = 0; i < 468; i++) {
    x0 = Math.min(x0, m[i * 3]); x1 = Math.max(x1, m[i * 3]);
    y0 = Math.min(y0, m[i * 3 + 1]); y1 = Math.max(y1, m[i * 3 + 1]);
  }
  const mx = (x1 - x0) * 0.25, my = (y1 - y0) * 0.25;
  const cx0 = Math.max(0, Math.floor(x0 - mx)), cy0 = Math.max(0, Math.floor(y0 - my));
  const cx1 = Math.min(photo.width, Math.ceil(x1 + mx)), cy1 = Math.min(photo.height, Math.ceil(y1 + my));
  const w = cx1 - cx0, h = cy1 - cy0;
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) data.set(photo.data.subarray(((cy0 + y) * photo.width + cx0) * 3, ((cy0 + y) * photo.width + cx0 + w) * 3), y * w * 3);
  let frame: RgbFrame = { width: w, height: h, data };
  let mesh = new Float32Array(m.length);
  for (let i = 0; i < m.length; i += 3) {
    mesh[i] = m[i] - cx0;
    mesh[i + 1] = m[i + 1] - cy0;
    mesh[i + 2] = m[i + 2];
  }
  const levels: MeshSource['levels'] = [{ frame, mesh, faceWidth: meshWidth(mesh) }];
  while (levels[levels.length - 1].faceWidth > 96 && frame.width > 32 && frame.height > 32) {
    const nw = Math.max(1, Math.round(frame.width / 2)), nh = Math.max(1, Math.round(frame.height / 2));
    const fx = nw / frame.width, fy = nh / frame.height;
    frame = downscale(frame, nw, nh);
    const next = new Float32Array(mesh.length);
    for (let i = 0; i < mesh.length; i += 3) {
      next[i] = (mesh[i] + 0.5) * fx - 0.5;
      next[i + 1] = (mesh[i + 1] + 0.5) * fy - 0.5;
      next[i + 2] = mesh[i + 2] * fx;
    }
    mesh = next;
    levels.push({ frame, mesh, faceWidth: meshWidth(mesh) });
  }
  return { levels };
}

// ---------------------------------------------------------------------------------------------
// Colour: sRGB ↔ CIE Lab (D65)

const SRGB_TO_LIN = new Float32Array(256);
for (let i = 0; i < 256; i++) {
  const c = i / 255;
  SRGB_TO_LIN[i] = c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
}
const fLab = (t: number) => (t > 216 / 24389 ? Math.cbrt(t) : (t * 24389) / 27 / 116 + 16 / 116);
const fInv = (t: number) => (t * t * t > 216 / 24389 ? t * t * t : (116 * t - 16) * (27 / 24389));
const linToSrgb = (c: number) => {
  const v = c <= 0.0031308 ? 12.92 * c : 1.055 * Math.pow(Math.max(c, 0), 1 / 2.4) - 0.055;
  return v * 255;
};

/** RGB (0..255 floats) → Lab, in place on a 3-vector. */
export function rgbToLab(r: number, g: number, b: number, out: Float64Array): void {
  const lr = SRGB_TO_LIN[Math.max(0, Math.min(255, Math.round(r)))];
  const lg = SRGB_TO_LIN[Math.max(0, Math.min(255, Math.round(g)))];
  const lb = SRGB_TO_LIN[Math.max(0, Math.min(255, Math.round(b)))];
  const X = (0.4124564 * lr + 0.3575761 * lg + 0.1804375 * lb) / 0.95047;
  const Y = 0.2126729 * lr + 0.7151522 * lg + 0.072175 * lb;
  const Z = (0.0193339 * lr + 0.119192 * lg + 0.9503041 * lb) / 1.08883;
  const fx = fLab(X), fy = fLab(Y), fz = fLab(Z);
  out[0] = 116 * fy - 16;
  out[1] = 500 * (fx - fy);
  out[2] = 200 * (fy - fz);
}

export function labToRgb(L: number, a: number, bb: number, out: Float64Array): void {
  const fy = (L + 16) / 116, fx = fy + a / 500, fz = fy - bb / 200;
  const X = fInv(fx) * 0.95047, Y = fInv(fy), Z = fInv(fz) * 1.08883;
  const lr = 3.2404542 * X - 1.5371385 * Y - 0.4985314 * Z;
  const lg = -0.969266 * X + 1.8760108 * Y + 0.041556 * Z;
  const lb = 0.0556434 * X - 0.2040259 * Y + 1.0572252 * Z;
  out[0] = linToSrgb(lr); out[1] = linToSrgb(lg); out[2] = linToSrgb(lb);
}

// ---------------------------------------------------------------------------------------------

/** Per-track state that keeps colour statistics steady across frames. */
export interface MeshSwapState {
  /** Smoothed per-region Lab transfer: [region][channel] = {scale, offset}. */
  transfer?: { scale: number; offset: number }[][];
}

export interface MeshSwapOptions {
  /** Colour transfer: 'lab' (default) or 'none'. */
  colour?: 'lab' | 'none';
  /** Blend: 'poisson' (default), 'alpha' (feathered) or 'paste' (hard paste; both for comparison). */
  blend?: 'poisson' | 'alpha' | 'paste';
  /** Temporal smoothing of the colour transfer, 0 = none, 0.9 = slow (default 0.7). */
  smoothing?: number;
  state?: MeshSwapState;
}

export interface MeshSwapResult {
  frame: RgbFrame;
  /** Pixels replaced. */
  pixels: number;
  /** Bounding box of the replaced region. */
  box: { x: number; y: number; width: number; height: number };
  /** Replaced pixels within `box` (1 = replaced), row-major box.width x box.height. */
  mask: Uint8Array;
}

/**
 * Swap the face with mesh `targetMesh` (frame pixels, 468 x xyz) in `frame` for the identity
 * in `source`. Returns a new frame; pixels outside the face region are untouched.
 */
export function meshSwap(frame: RgbFrame, targetMesh: Float32Array, source: MeshSource, opts: MeshSwapOptions = {}): MeshSwapResult {
  const topo = meshTopology();
  const tri = topo.skinTriangles;
  const W = frame.width, H = frame.height;
  // source level: the smallest whose face is at least as wide as the target's
  const tw = meshWidth(targetMesh);
  let lvl = source.levels[0];
  for (const l of source.levels) if (l.faceWidth >= tw * 0.9) lvl = l;
  const S = lvl.frame, sm = lvl.mesh;

  // region box in the frame (+2 px for the Poisson boundary ring)
  let bx0 = Infinity, by0 = Infinity, bx1 = -Infinity, by1 = -Infinity;
  for (let i = 0; i < 468; i++) {
    bx0 = Math.min(bx0, targetMesh[i * 3]); bx1 = Math.max(bx1, targetMesh[i * 3]);
    by0 = Math.min(by0, targetMesh[i * 3 + 1]); by1 = Math.max(by1, targetMesh[i * 3 + 1]);
  }
  const X0 = Math.max(0, Math.floor(bx0) - 2), Y0 = Math.max(0, Math.floor(by0) - 2);
  const X1 = Math.min(W - 1, Math.ceil(bx1) + 2), Y1 = Math.min(H - 1, Math.ceil(by1) + 2);
  const out = new Uint8Array(frame.data);
  const empty = { frame: { width: W, height: H, data: out }, pixels: 0, box: { x: 0, y: 0, width: 0, height: 0 }, mask: new Uint8Array(0) };
  if (!(X1 > X0 + 2 && Y1 > Y0 + 2)) return empty;
  const bw = X1 - X0 + 1, bh = Y1 - Y0 + 1, n = bw * bh;

  // 1. rasterize the warp with a z-buffer
  const g = new Float32Array(n * 3); // warped source RGB
  // upper/lower face weight: 0 above the nose tip, 1 below, a smooth ramp over 30 % of the face height between
  const noseY = targetMesh[1 * 3 + 1];
  const ramp = Math.max(2, 0.3 * (by1 - by0));
  const lowerW = (y: number) => {
    const t = Math.max(0, Math.min(1, 0.5 + (y - noseY) / ramp));
    return t * t * (3 - 2 * t);
  };
  const region = new Float32Array(n); // lower-face weight
  const map = meshWarpMap(targetMesh, sm, tri, { x: X0, y: Y0, width: bw, height: bh });
  const inR = map.inR;
  for (let k = 0; k < n; k++) {
    if (!inR[k]) continue;
    region[k] = lowerW(Math.floor(k / bw) + Y0);
    sampleRgb(S, map.sx[k], map.sy[k], g, k);
  }
  // keep the outermost ring of the box out of the region so every region pixel has 4 neighbours
  for (let x = 0; x < bw; x++) { inR[x] = 0; inR[(bh - 1) * bw + x] = 0; }
  for (let y = 0; y < bh; y++) { inR[y * bw] = 0; inR[y * bw + bw - 1] = 0; }
  let pixels = 0;
  for (let k = 0; k < n; k++) pixels += inR[k];
  if (pixels < 16) return empty;

  // 2. colour transfer in Lab, per region (upper/lower face)
  if ((opts.colour ?? 'lab') === 'lab') {
    const lab = new Float64Array(3);
    const sum = [0, 1].map(() => ({ n: 0, s: [0, 0, 0], ss: [0, 0, 0], t: [0, 0, 0], tt: [0, 0, 0] }));
    const gLab = new Float32Array(n * 3);
    const tl = new Float64Array(3);
    for (let y = 0; y < bh; y++) {
      for (let x = 0; x < bw; x++) {
        const k = y * bw + x;
        if (!inR[k]) continue;
        const wl = region[k];
        rgbToLab(g[k * 3], g[k * 3 + 1], g[k * 3 + 2], lab);
        gLab[k * 3] = lab[0]; gLab[k * 3 + 1] = lab[1]; gLab[k * 3 + 2] = lab[2];
        const o = ((y + Y0) * W + (x + X0)) * 3;
        rgbToLab(frame.data[o], frame.data[o + 1], frame.data[o + 2], tl);
        for (let r = 0; r < 2; r++) {
          const st = sum[r];
          const w = r ? wl : 1 - wl;
          if (w <= 0) continue;
          for (let ch = 0; ch < 3; ch++) {
            st.s[ch] += w * lab[ch]; st.ss[ch] += w * lab[ch] * lab[ch];
            st.t[ch] += w * tl[ch]; st.tt[ch] += w * tl[ch] * tl[ch];
          }
          st.n += w;
        }
      }
    }
    const transfer = sum.map((st) =>
      [0, 1, 2].map((ch) => {
        if (st.n < 8) return { scale: 1, offset: 0 };
        const ms = st.s[ch] / st.n, mt = st.t[ch] / st.n;
        const sd = Math.sqrt(Math.max(1e-6, st.ss[ch] / st.n - ms * ms)), td = Math.sqrt(Math.max(1e-6, st.tt[ch] / st.n - mt * mt));
        // bounded contrast change: keep the identity's own texture, match the frame's level
        const scale = Math.max(0.6, Math.min(1.6, td / sd));
        return { scale, offset: mt - ms * scale };
      }),
    );
    const state = opts.state;
    const a = opts.smoothing ?? 0.7;
    if (state?.transfer && a > 0) {
      for (let r = 0; r < 2; r++)
        for (let ch = 0; ch < 3; ch++) {
          const p = state.transfer[r][ch], q = transfer[r][ch];
          q.scale = a * p.scale + (1 - a) * q.scale;
          q.offset = a * p.offset + (1 - a) * q.offset;
        }
    }
    if (state) state.transfer = transfer;
    const rgb = new Float64Array(3);
    for (let k = 0; k < n; k++) {
      if (!inR[k]) continue;
      const wl = region[k];
      const up = transfer[0], lo = transfer[1];
      const sc = (ch: number) => up[ch].scale * (1 - wl) + lo[ch].scale * wl;
      const of = (ch: number) => up[ch].offset * (1 - wl) + lo[ch].offset * wl;
      labToRgb(gLab[k * 3] * sc(0) + of(0), gLab[k * 3 + 1] * sc(1) + of(1), gLab[k * 3 + 2] * sc(2) + of(2), rgb);
      g[k * 3] = rgb[0]; g[k * 3 + 1] = rgb[1]; g[k * 3 + 2] = rgb[2];
    }
  }

  // 3. blend
  const fr = (k: number, ch: number) => frame.data[((Math.floor(k / bw) + Y0) * W + (k % bw) + X0) * 3 + ch];
  const result = new Float32Array(n * 3);
  if ((opts.blend ?? 'poisson') === 'poisson') {
    poissonBlend(inR, g, fr, bw, bh, result);
  } else if (opts.blend === 'paste') {
    result.set(g);
  } else {
    const alpha = featherMask(inR, bw, bh, Math.max(2, Math.round(tw * 0.06)));
    for (let k = 0; k < n; k++) for (let ch = 0; ch < 3; ch++) result[k * 3 + ch] = g[k * 3 + ch] * alpha[k] + fr(k, ch) * (1 - alpha[k]);
  }
  for (let y = 0; y < bh; y++) {
    for (let x = 0; x < bw; x++) {
      const k = y * bw + x;
      if (!inR[k]) continue;
      const o = ((y + Y0) * W + (x + X0)) * 3;
      for (let ch = 0; ch < 3; ch++) {
        const v = result[k * 3 + ch];
        out[o + ch] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
      }
    }
  }
  return { frame: { width: W, height: H, data: out }, pixels, box: { x: X0, y: Y0, width: bw, height: bh }, mask: inR };
}

/**
 * Piecewise-affine correspondence of a frame's face mesh `targetMesh` to `sourceMesh` over
 * `triangles`, z-buffered with the target mesh depth (triangles turned away do not overwrite
 * visible ones), for the pixels of `box`: inR[k] = 1 where a triangle covers box pixel k, and
 * (sx, sy) its position in the source.
 */
export function meshWarpMap(
  targetMesh: Float32Array,
  sourceMesh: Float32Array,
  triangles: ArrayLike<number>,
  box: { x: number; y: number; width: number; height: number },
): { inR: Uint8Array; sx: Float32Array; sy: Float32Array } {
  const { x: X0, y: Y0, width: bw, height: bh } = box;
  const X1 = X0 + bw - 1, Y1 = Y0 + bh - 1, n = bw * bh;
  const zbuf = new Float32Array(n).fill(Infinity);
  const inR = new Uint8Array(n);
  const sxs = new Float32Array(n), sys = new Float32Array(n);
  const sm = sourceMesh, tri = triangles;
  for (let t = 0; t < tri.length; t += 3) {
    const a = tri[t], b = tri[t + 1], c = tri[t + 2];
    const ax = targetMesh[a * 3], ay = targetMesh[a * 3 + 1], az = targetMesh[a * 3 + 2];
    const bxx = targetMesh[b * 3], byy = targetMesh[b * 3 + 1], bz = targetMesh[b * 3 + 2];
    const cxx = targetMesh[c * 3], cyy = targetMesh[c * 3 + 1], cz = targetMesh[c * 3 + 2];
    const det = (byy - cyy) * (ax - cxx) + (cxx - bxx) * (ay - cyy);
    if (Math.abs(det) < 1e-6) continue;
    const sax = sm[a * 3], say = sm[a * 3 + 1], sbx = sm[b * 3], sby = sm[b * 3 + 1], scx = sm[c * 3], scy = sm[c * 3 + 1];
    const tx0 = Math.max(X0, Math.floor(Math.min(ax, bxx, cxx))), tx1 = Math.min(X1, Math.ceil(Math.max(ax, bxx, cxx)));
    const ty0 = Math.max(Y0, Math.floor(Math.min(ay, byy, cyy))), ty1 = Math.min(Y1, Math.ceil(Math.max(ay, byy, cyy)));
    for (let y = ty0; y <= ty1; y++) {
      for (let x = tx0; x <= tx1; x++) {
        const l1 = ((byy - cyy) * (x - cxx) + (cxx - bxx) * (y - cyy)) / det;
        const l2 = ((cyy - ay) * (x - cxx) + (ax - cxx) * (y - cyy)) / det;
        const l3 = 1 - l1 - l2;
        if (l1 < -1e-4 || l2 < -1e-4 || l3 < -1e-4) continue;
        const k = (y - Y0) * bw + (x - X0);
        const z = l1 * az + l2 * bz + l3 * cz;
        if (z >= zbuf[k]) continue;
        zbuf[k] = z;
        inR[k] = 1;
        sxs[k] = l1 * sax + l2 * sbx + l3 * scx;
        sys[k] = l1 * say + l2 * sby + l3 * scy;
      }
    }
  }
  return { inR, sx: sxs, sy: sys };
}

/** Bilinear RGB sample of `S` at (sx, sy) (clamped to the image) into out[3k..3k+2]. */
export function sampleRgb(S: RgbFrame, sx: number, sy: number, out: Float32Array, k: number): void {
  const ix = Math.max(0, Math.min(S.width - 2, Math.floor(sx))), iy = Math.max(0, Math.min(S.height - 2, Math.floor(sy)));
  const fx = Math.max(0, Math.min(1, sx - ix)), fy = Math.max(0, Math.min(1, sy - iy));
  const o00 = (iy * S.width + ix) * 3, o10 = o00 + 3, o01 = o00 + S.width * 3, o11 = o01 + 3;
  for (let ch = 0; ch < 3; ch++) {
    out[k * 3 + ch] = (S.data[o00 + ch] * (1 - fx) + S.data[o10 + ch] * fx) * (1 - fy) + (S.data[o01 + ch] * (1 - fx) + S.data[o11 + ch] * fx) * fy;
  }
}

/** Distance-based feather (0 outside, 1 deeper than `r` px inside), by repeated erosion. */
function featherMask(inR: Uint8Array, w: number, h: number, r: number): Float32Array {
  const d = new Float32Array(w * h);
  let cur = Uint8Array.from(inR);
  for (let step = 1; step <= r; step++) {
    const next = new Uint8Array(w * h);
    for (let y = 1; y < h - 1; y++)
      for (let x = 1; x < w - 1; x++) {
        const k = y * w + x;
        if (cur[k] && cur[k - 1] && cur[k + 1] && cur[k - w] && cur[k + w]) next[k] = 1;
        if (cur[k]) d[k] = step;
      }
    cur = next;
  }
  for (let k = 0; k < w * h; k++) d[k] = Math.min(1, d[k] / r);
  return d;
}

/**
 * Poisson blend with the guidance gradients of `g` inside region `inR`, Dirichlet values from
 * the frame on the outer boundary. Solved as f = g + m, m harmonic with m = frame - g at the
 * boundary (zero guidance across the boundary): coarse solve, bilinear upsample, fine SOR.
 */
export function poissonBlend(
  inR: Uint8Array,
  g: Float32Array,
  frameAt: (k: number, ch: number) => number,
  w: number,
  h: number,
  result: Float32Array,
): void {
  const n = w * h;
  // boundary values b_q = frame_q - mean(g_p over region neighbours p)
  const isB = new Uint8Array(n);
  const bval = new Float32Array(n * 3);
  for (let y = 1; y < h - 1; y++) {
    for (let x = 1; x < w - 1; x++) {
      const k = y * w + x;
      if (inR[k]) continue;
      let cnt = 0, a0 = 0, a1 = 0, a2 = 0;
      for (let j = 0; j < 4; j++) {
        const q = j === 0 ? k - 1 : j === 1 ? k + 1 : j === 2 ? k - w : k + w;
        if (!inR[q]) continue;
        cnt++;
        a0 += g[q * 3]; a1 += g[q * 3 + 1]; a2 += g[q * 3 + 2];
      }
      if (!cnt) continue;
      isB[k] = 1;
      bval[k * 3] = frameAt(k, 0) - a0 / cnt;
      bval[k * 3 + 1] = frameAt(k, 1) - a1 / cnt;
      bval[k * 3 + 2] = frameAt(k, 2) - a2 / cnt;
    }
  }
  const m = new Float32Array(n * 3);
  // coarse level
  const s = Math.max(1, Math.ceil(Math.max(w, h) / 48));
  if (s > 1) {
    const cw = Math.ceil(w / s), chh = Math.ceil(h / s), cn = cw * chh;
    const known = new Uint8Array(cn), unknown = new Uint8Array(cn);
    const cv = new Float32Array(cn * 3), cc = new Float32Array(cn);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const k = y * w + x, c = Math.floor(y / s) * cw + Math.floor(x / s);
        if (isB[k]) {
          known[c] = 1;
          cc[c]++;
          for (let ch = 0; ch < 3; ch++) cv[c * 3 + ch] += bval[k * 3 + ch];
        } else if (inR[k]) unknown[c] = 1;
      }
    for (let c = 0; c < cn; c++) {
      if (known[c]) {
        unknown[c] = 0;
        for (let ch = 0; ch < 3; ch++) cv[c * 3 + ch] /= cc[c];
      }
    }
    // init unknowns with the mean of the known values
    const mean = [0, 0, 0];
    let kn = 0;
    for (let c = 0; c < cn; c++) if (known[c]) { kn++; for (let ch = 0; ch < 3; ch++) mean[ch] += cv[c * 3 + ch]; }
    for (let ch = 0; ch < 3; ch++) mean[ch] /= Math.max(1, kn);
    for (let c = 0; c < cn; c++) if (!known[c]) for (let ch = 0; ch < 3; ch++) cv[c * 3 + ch] = mean[ch];
    const omega = 1.85;
    const iters = 6 * Math.max(cw, chh);
    for (let it = 0; it < iters; it++) {
      for (let y = 0; y < chh; y++)
        for (let x = 0; x < cw; x++) {
          const c = y * cw + x;
          if (!unknown[c]) continue;
          let cnt = 0, a0 = 0, a1 = 0, a2 = 0;
          if (x > 0 && (known[c - 1] || unknown[c - 1])) { cnt++; a0 += cv[(c - 1) * 3]; a1 += cv[(c - 1) * 3 + 1]; a2 += cv[(c - 1) * 3 + 2]; }
          if (x < cw - 1 && (known[c + 1] || unknown[c + 1])) { cnt++; a0 += cv[(c + 1) * 3]; a1 += cv[(c + 1) * 3 + 1]; a2 += cv[(c + 1) * 3 + 2]; }
          if (y > 0 && (known[c - cw] || unknown[c - cw])) { cnt++; a0 += cv[(c - cw) * 3]; a1 += cv[(c - cw) * 3 + 1]; a2 += cv[(c - cw) * 3 + 2]; }
          if (y < chh - 1 && (known[c + cw] || unknown[c + cw])) { cnt++; a0 += cv[(c + cw) * 3]; a1 += cv[(c + cw) * 3 + 1]; a2 += cv[(c + cw) * 3 + 2]; }
          if (!cnt) continue;
          cv[c * 3] += omega * (a0 / cnt - cv[c * 3]);
          cv[c * 3 + 1] += omega * (a1 / cnt - cv[c * 3 + 1]);
          cv[c * 3 + 2] += omega * (a2 / cnt - cv[c * 3 + 2]);
        }
    }
    // bilinear upsample into m
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const k = y * w + x;
        if (!inR[k]) continue;
        const fx = Math.max(0, Math.min(cw - 1, (x + 0.5) / s - 0.5)), fy = Math.max(0, Math.min(chh - 1, (y + 0.5) / s - 0.5));
        const ix = Math.min(cw - 2, Math.floor(fx)), iy = Math.min(chh - 2, Math.floor(fy));
        const ax = Math.max(0, ix), ay = Math.max(0, iy);
        const tx = fx - ax, ty = fy - ay;
        const bx = Math.min(cw - 1, ax + 1), by = Math.min(chh - 1, ay + 1);
        for (let ch = 0; ch < 3; ch++) {
          m[k * 3 + ch] =
            (cv[(ay * cw + ax) * 3 + ch] * (1 - tx) + cv[(ay * cw + bx) * 3 + ch] * tx) * (1 - ty) +
            (cv[(by * cw + ax) * 3 + ch] * (1 - tx) + cv[(by * cw + bx) * 3 + ch] * tx) * ty;
        }
      }
  }
  for (let k = 0; k < n; k++) if (isB[k]) for (let ch = 0; ch < 3; ch++) m[k * 3 + ch] = bval[k * 3 + ch];
  // fine SOR: Dirichlet at boundary pixels, Neumann where a neighbour is neither
  const fineIters = s > 1 ? 4 * s + 20 : 6 * Math.max(w, h);
  const use = new Uint8Array(n);
  for (let k = 0; k < n; k++) use[k] = inR[k] || isB[k] ? 1 : 0;
  let count = 0;
  for (let k = 0; k < n; k++) if (inR[k]) count++;
  const idx = new Int32Array(count);
  for (let k = 0, j = 0; k < n; k++) if (inR[k]) idx[j++] = k;
  for (let it = 0; it < fineIters; it++) {
    for (let j = 0; j < idx.length; j++) {
      const k = idx[j];
      // region pixels never touch the bbox border (cleared above), so k±1 and k±w are in range
      let cnt = 0, r = 0, gg = 0, b = 0;
      if (use[k - 1]) { cnt++; r += m[(k - 1) * 3]; gg += m[(k - 1) * 3 + 1]; b += m[(k - 1) * 3 + 2]; }
      if (use[k + 1]) { cnt++; r += m[(k + 1) * 3]; gg += m[(k + 1) * 3 + 1]; b += m[(k + 1) * 3 + 2]; }
      if (use[k - w]) { cnt++; r += m[(k - w) * 3]; gg += m[(k - w) * 3 + 1]; b += m[(k - w) * 3 + 2]; }
      if (use[k + w]) { cnt++; r += m[(k + w) * 3]; gg += m[(k + w) * 3 + 1]; b += m[(k + w) * 3 + 2]; }
      if (!cnt) continue;
      m[k * 3] += 1.7 * (r / cnt - m[k * 3]);
      m[k * 3 + 1] += 1.7 * (gg / cnt - m[k * 3 + 1]);
      m[k * 3 + 2] += 1.7 * (b / cnt - m[k * 3 + 2]);
    }
  }
  for (let k = 0; k < n; k++) {
    if (!inR[k]) continue;
    for (let ch = 0; ch < 3; ch++) result[k * 3 + ch] = g[k * 3 + ch] + m[k * 3 + ch];
  }
}
