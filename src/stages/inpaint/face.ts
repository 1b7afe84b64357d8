/**
 * Face prior of the inpaint stage: where a hole covers part of a tracked face, fill it from
 * the person instead of from the texture around it.
 *
 * 1. From the same track's other frames where that part of the face was visible: each
 *    reference frame's face is warped onto this frame's face mesh (piecewise affine over the
 *    468-point mesh triangles, the mesh swap's warp), so the pixel taken is the same point of
 *    the face, wherever the head and the mouth moved. References are tried in order of mouth
 *    and jaw shape similarity (then time), so an open mouth is taken from an open mouth.
 * 2. With an identity photo, what no reference saw comes from the photo's face, warped the
 *    same way over the skin triangles only: the eye and mouth openings follow this frame's
 *    landmarks, not the photo's (an open mouth is filled with a dark tone from its lips), and
 *    the photo's colours are matched (Lab mean and spread) to the visible skin around the hole.
 * 3. The prior is blended in the gradient domain (the swap's Poisson blend): it keeps its own
 *    gradients and takes the generic fill's and the frame's values on its boundary.
 * What neither gives keeps the generic fill (temporal propagation, then the spatial fill).
 */
import { cloneFrame, type Mask, type RgbFrame } from '../../media/frame.js';
import type { Face } from '../../faces/types.js';
import { labToRgb, meshWarpMap, meshWidth, poissonBlend, rgbToLab, sampleRgb, type MeshSource } from '../swap/mesh.js';
import { INNER_LIPS_RING, meshTopology } from '../swap/topology.js';
import { dilateMask } from './mask.js';

/** Mesh points that describe the mouth and jaw (inner lips, mouth corners, chin, nose tip). */
const SHAPE_POINTS = [...INNER_LIPS_RING, 61, 291, 152, 4, 234, 454];

/** A reference frame of a track: a crop around its face, the mesh in crop pixels, what it shows. */
export interface FaceRef {
  index: number;
  frame: RgbFrame;
  mesh: Float32Array;
  /** 1 where the crop pixel is visible (no hole, away from the hole edge). */
  known: Uint8Array;
  /** Share of the face (mesh triangles) visible. */
  visible: number;
  shape: Float32Array;
}

/** Mouth/jaw shape: the shape points relative to the eyes' midpoint, in units of the eye distance. */
export function faceShape(mesh: Float32Array): Float32Array {
  const ex = (mesh[33 * 3] + mesh[263 * 3]) / 2, ey = (mesh[33 * 3 + 1] + mesh[263 * 3 + 1]) / 2;
  const dx = mesh[263 * 3] - mesh[33 * 3], dy = mesh[263 * 3 + 1] - mesh[33 * 3 + 1];
  const d = Math.max(1e-3, Math.hypot(dx, dy));
  const c = dx / d, s = dy / d; // rotate so the eye line is horizontal
  const out = new Float32Array(SHAPE_POINTS.length * 2);
  SHAPE_POINTS.forEach((p, i) => {
    const x = mesh[p * 3] - ex, y = mesh[p * 3 + 1] - ey;
    out[2 * i] = (c * x + s * y) / d;
    out[2 * i + 1] = (-s * x + c * y) / d;
  });
  return out;
}

export function shapeDistance(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s / (a.length / 2));
}

function meshBox(mesh: Float32Array, margin: number, w: number, h: number) {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (let i = 0; i < 468; i++) {
    x0 = Math.min(x0, mesh[i * 3]); x1 = Math.max(x1, mesh[i * 3]);
    y0 = Math.min(y0, mesh[i * 3 + 1]); y1 = Math.max(y1, mesh[i * 3 + 1]);
  }
  const X0 = Math.max(0, Math.floor(x0 - margin)), Y0 = Math.max(0, Math.floor(y0 - margin));
  const X1 = Math.min(w - 1, Math.ceil(x1 + margin)), Y1 = Math.min(h - 1, Math.ceil(y1 + margin));
  return { x: X0, y: Y0, width: Math.max(0, X1 - X0 + 1), height: Math.max(0, Y1 - Y0 + 1) };
}

/** Keep a track frame as a reference: its face crop (mesh box + 2 px), mesh and visibility. */
export function makeFaceRef(index: number, frame: RgbFrame, mask: Mask, mesh: Float32Array, guard = 1.5): FaceRef {
  const box = meshBox(mesh, 2, frame.width, frame.height);
  const { x: X0, y: Y0, width: bw, height: bh } = box;
  const data = new Uint8Array(bw * bh * 3);
  for (let y = 0; y < bh; y++) data.set(frame.data.subarray(((Y0 + y) * frame.width + X0) * 3, ((Y0 + y) * frame.width + X0 + bw) * 3), y * bw * 3);
  const grown = guard > 0 ? dilateMask(mask, guard) : mask;
  const known = new Uint8Array(bw * bh);
  for (let y = 0; y < bh; y++) for (let x = 0; x < bw; x++) known[y * bw + x] = grown.data[(Y0 + y) * frame.width + X0 + x] >= 128 ? 0 : 1;
  const local = new Float32Array(mesh.length);
  for (let i = 0; i < mesh.length; i += 3) {
    local[i] = mesh[i] - X0;
    local[i + 1] = mesh[i + 1] - Y0;
    local[i + 2] = mesh[i + 2];
  }
  const map = meshWarpMap(local, local, meshTopology().triangles, { x: 0, y: 0, width: bw, height: bh });
  let face = 0, vis = 0;
  for (let k = 0; k < bw * bh; k++) if (map.inR[k]) { face++; vis += known[k]; }
  return { index, frame: { width: bw, height: bh, data }, mesh: local, known, visible: face ? vis / face : 0, shape: faceShape(mesh) };
}

/**
 * The mesh points inside a hole were not seen: the face-mesh model guesses them from the
 * paint (a black box reads as an open mouth). Replace them with the points of `prior` (the
 * identity's mesh, or a track frame's where that part was visible) mapped by the affine
 * transform that fits the prior's visible points onto this frame's.
 */
export function completeMesh(mesh: Float32Array, mask: Mask, prior: Float32Array, guard = 1): { mesh: Float32Array; replaced: number } {
  const W = mask.width, H = mask.height;
  const hidden = (x: number, y: number) => {
    for (let dy = -guard; dy <= guard; dy++)
      for (let dx = -guard; dx <= guard; dx++) {
        const xx = Math.round(x) + dx, yy = Math.round(y) + dy;
        if (xx >= 0 && yy >= 0 && xx < W && yy < H && mask.data[yy * W + xx] >= 128) return true;
      }
    return false;
  };
  const hid = new Uint8Array(468);
  let nh = 0;
  for (let i = 0; i < 468; i++) if (hidden(mesh[i * 3], mesh[i * 3 + 1])) { hid[i] = 1; nh++; }
  if (!nh || 468 - nh < 30) return { mesh, replaced: 0 };
  // least squares: [x y 1] A = [X Y] over the visible points (normal equations, 3x3)
  const M = new Float64Array(9), bx = new Float64Array(3), by = new Float64Array(3);
  let zs = 0, zp = 0;
  for (let i = 0; i < 468; i++) {
    if (hid[i]) continue;
    const v = [prior[i * 3], prior[i * 3 + 1], 1];
    for (let r = 0; r < 3; r++) {
      for (let c = 0; c < 3; c++) M[r * 3 + c] += v[r] * v[c];
      bx[r] += v[r] * mesh[i * 3];
      by[r] += v[r] * mesh[i * 3 + 1];
    }
    zs += Math.abs(mesh[i * 3 + 2]);
    zp += Math.abs(prior[i * 3 + 2]);
  }
  const solve = (b: Float64Array) => {
    const a = Array.from(M), y = Array.from(b);
    for (let c = 0; c < 3; c++) {
      let p = c;
      for (let r = c + 1; r < 3; r++) if (Math.abs(a[r * 3 + c]) > Math.abs(a[p * 3 + c])) p = r;
      for (let k = 0; k < 3; k++) [a[c * 3 + k], a[p * 3 + k]] = [a[p * 3 + k], a[c * 3 + k]];
      [y[c], y[p]] = [y[p], y[c]];
      const d = a[c * 3 + c] || 1e-9;
      for (let r = 0; r < 3; r++) {
        if (r === c) continue;
        const f = a[r * 3 + c] / d;
        for (let k = 0; k < 3; k++) a[r * 3 + k] -= f * a[c * 3 + k];
        y[r] -= f * y[c];
      }
    }
    return [y[0] / (a[0] || 1e-9), y[1] / (a[4] || 1e-9), y[2] / (a[8] || 1e-9)];
  };
  const ax = solve(bx), ay = solve(by);
  const zk = zp > 0 ? zs / zp : 1;
  const out = Float32Array.from(mesh);
  for (let i = 0; i < 468; i++) {
    if (!hid[i]) continue;
    const x = prior[i * 3], y = prior[i * 3 + 1];
    out[i * 3] = ax[0] * x + ax[1] * y + ax[2];
    out[i * 3 + 1] = ay[0] * x + ay[1] * y + ay[2];
    out[i * 3 + 2] = prior[i * 3 + 2] * zk;
  }
  return { mesh: out, replaced: nh };
}

/**
 * Shift the completed (hidden) mesh points by the offset, within ±`range` px, that best
 * aligns the identity's warped face with the visible face around the hole (sum of squared
 * luma differences after removing the mean difference, over visible face pixels 1-6 px from
 * the hole): the affine fit of the visible points places the hidden mouth and chin only roughly.
 */
export function registerHidden(frame: RgbFrame, mask: Mask, observed: Float32Array, completed: Float32Array, identity: MeshSource, range = 2): { mesh: Float32Array; residual: number } {
  const W = frame.width, H = frame.height;
  const topo = meshTopology();
  const box = meshBox(completed, 3, W, H);
  const { x: X0, y: Y0, width: bw, height: bh } = box;
  const n = bw * bh;
  if (bw < 8 || bh < 8) return { mesh: completed, residual: Infinity };
  const hole = new Uint8Array(n);
  for (let y = 0; y < bh; y++) for (let x = 0; x < bw; x++) hole[y * bw + x] = mask.data[(Y0 + y) * W + X0 + x] >= 128 ? 255 : 0;
  const near = dilateMask({ width: bw, height: bh, data: hole }, 6);
  const lvlFor = (m: Float32Array) => {
    const tw = meshWidth(m);
    let lvl = identity.levels[0];
    for (const l of identity.levels) if (l.faceWidth >= tw * 0.9) lvl = l;
    return lvl;
  };
  const lvl = lvlFor(completed);
  const yf = new Float32Array(n);
  for (let k = 0; k < n; k++) {
    const o = ((Y0 + Math.floor(k / bw)) * W + X0 + (k % bw)) * 3;
    yf[k] = 0.299 * frame.data[o] + 0.587 * frame.data[o + 1] + 0.114 * frame.data[o + 2];
  }
  const moved = new Uint8Array(468);
  for (let i = 0; i < 468; i++) moved[i] = completed[i * 3] !== observed[i * 3] || completed[i * 3 + 1] !== observed[i * 3 + 1] ? 1 : 0;
  const rgb = new Float32Array(3);
  let best = completed, bestCost = Infinity;
  for (let dy = -range; dy <= range; dy++)
    for (let dx = -range; dx <= range; dx++) {
      const m = Float32Array.from(completed);
      for (let i = 0; i < 468; i++) if (moved[i]) { m[i * 3] += dx; m[i * 3 + 1] += dy; }
      const map = meshWarpMap(m, lvl.mesh, topo.skinTriangles, box);
      let s = 0, s2 = 0, c = 0;
      for (let k = 0; k < n; k++) {
        if (hole[k] || !near.data[k] || !map.inR[k]) continue;
        sampleRgb(lvl.frame, map.sx[k], map.sy[k], rgb, 0);
        const d = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] - yf[k];
        s += d; s2 += d * d; c++;
      }
      if (c < 16) continue;
      const cost = s2 / c - (s / c) ** 2 + 0.5 * (dx * dx + dy * dy);
      if (cost < bestCost) { bestCost = cost; best = m; }
    }
  return { mesh: best, residual: Math.sqrt(bestCost) };
}

export interface FaceFillResult {
  frame: RgbFrame;
  /** Hole pixels inside the face. */
  facePixels: number;
  fromTrack: number;
  fromIdentity: number;
  /** Face hole pixels neither gave (left to the generic fill). */
  left: number;
  /** RMS luma residual of the registered identity face against the visible face around the hole. */
  residual?: number;
  /** The identity prior was not used on this frame (residual too high). */
  rejected?: boolean;
}

export interface FaceFillState {
  still?: boolean;
  prev?: { frame: RgbFrame; filled: Uint8Array };
  mesh?: Float32Array;
  observed?: Float32Array;
  transfer?: { scale: number; offset: number }[];
}

export interface FaceFillOptions {
  identity?: MeshSource;
  /** Track pixels are used only when they cover at least this share of the face hole (default 0.1). */
  minTrackShare?: number;
  /** Weight of the identity's pixels against the generic fill's (default 0.6: measured on the dev clips, 0.6 gains 0.5 dB over 1 on the face holes and halves the worst frame's loss). */
  identityWeight?: number;
  /** Per-face state kept across frames (temporal smoothing of the mesh and the colour transfer). */
  state?: FaceFillState;
  /** Weight of the previous frame in that smoothing (default 0.7). */
  smoothing?: number;
  /**
   * The hole pixels another frame showed, which the generic fill took from there (temporal
   * propagation): kept. The prior fills what no frame showed. (On the held-out painting pan, a
   * rigid motion, the propagated face hole scored 22.9 dB and the prior over it 20.6.)
   */
  seen?: Mask;
  /** Replace the mesh points inside the hole by the prior's (default true). */
  completeMesh?: boolean;
  /** References whose mouth/jaw shape is further than this (eye-distance units, RMS) are not used (default 0.12). */
  maxShapeDistance?: number;
  /**
   * The identity prior is not used on a frame where the registered identity face differs from
   * the visible face around the hole by more than this RMS luma (default 9; measured on the dev
   * clips: frames that gained had 6-7, frames that lost 11-14).
   */
  maxResidual?: number;
}

/**
 * Reference frames of the faces seen so far, bounded: at most `max` (default 12) kept, one
 * every `stride` frames (default 3); when full, the one whose mouth shape is closest to another
 * kept reference goes (the bank keeps the variety of expressions, not the most recent).
 */
export class FaceBank {
  private refs: (FaceRef & { cx: number; cy: number; size: number })[] = [];
  private last = -Infinity;
  constructor(private readonly max = 12, private readonly stride = 3) {}
  get size(): number {
    return this.refs.length;
  }
  add(index: number, frame: RgbFrame, mask: Mask, face: Face): void {
    if (!face.mesh || index - this.last < this.stride) return;
    this.last = index;
    const r = makeFaceRef(index, frame, mask, face.mesh);
    this.refs.push({ ...r, cx: face.box.x + face.box.width / 2, cy: face.box.y + face.box.height / 2, size: Math.max(face.box.width, face.box.height) });
    if (this.refs.length <= this.max) return;
    let drop = 0, best = Infinity;
    for (let i = 0; i < this.refs.length; i++)
      for (let j = 0; j < this.refs.length; j++) {
        if (i === j) continue;
        const d = shapeDistance(this.refs[i].shape, this.refs[j].shape) + 0.01 * this.refs[i].visible;
        if (d < best) { best = d; drop = this.refs[i].visible <= this.refs[j].visible ? i : j; }
      }
    this.refs.splice(drop, 1);
  }
  /** The kept references of the face at `face`'s place (same person), other than frame `index`. */
  near(face: Face, index: number): FaceRef[] {
    const cx = face.box.x + face.box.width / 2, cy = face.box.y + face.box.height / 2;
    return this.refs.filter((r) => r.index !== index && Math.hypot(r.cx - cx, r.cy - cy) < 0.5 * r.size);
  }
}

/**
 * Fill the face part of the holes of a frame. `filled`: the frame with its holes already
 * filled by the generic method (the boundary values of the blend); `mask`: the holes;
 * `mesh`: the frame's face mesh; `refs`: other frames of the same track.
 */
export function faceHoleFill(filled: RgbFrame, mask: Mask, observed: Float32Array, refs: FaceRef[], opts: FaceFillOptions = {}): FaceFillResult {
  const W = filled.width, H = filled.height;
  // The landmarks under the hole come from the identity's face, else from the track frame
  // that shows most of the face.
  let prior: Float32Array | undefined = opts.identity?.levels[0].mesh;
  if (!prior && refs.length) prior = refs.reduce((a, b) => (b.visible > a.visible ? b : a)).mesh;
  let mesh = prior && (opts.completeMesh ?? true) ? completeMesh(observed, mask, prior).mesh : observed;
  let residual: number | undefined;
  let identitySource = opts.identity;
  if (opts.identity && mesh !== observed) {
    ({ mesh, residual } = registerHidden(filled, mask, observed, mesh, opts.identity));
    if (residual > (opts.maxResidual ?? 9)) identitySource = undefined;
  }
  // Temporal steadiness: the mesh (its completed points jump by whole pixels with the
  // registration) follows the previous frame's of the same face exponentially while the
  // face holds still; a face that moves takes the new mesh at once.
  const state = opts.state;
  if (state) {
    const a = opts.smoothing ?? 0.7;
    if (state.mesh) {
      let move = 0;
      for (let i = 0; i < 468; i++) move += Math.hypot(observed[i * 3] - state.observed![i * 3], observed[i * 3 + 1] - state.observed![i * 3 + 1]);
      move /= 468;
      state.still = move < 0.05 * meshWidth(observed);
      if (state.still) {
        const m = new Float32Array(mesh.length);
        for (let i = 0; i < mesh.length; i++) m[i] = a * state.mesh[i] + (1 - a) * mesh[i];
        mesh = m;
      }
    }
    state.mesh = mesh;
    state.observed = observed;
  }
  const topo = meshTopology();
  const box = meshBox(mesh, 3, W, H);
  const { x: X0, y: Y0, width: bw, height: bh } = box;
  const none = { frame: filled, facePixels: 0, fromTrack: 0, fromIdentity: 0, left: 0 };
  if (bw < 8 || bh < 8) return none;
  const n = bw * bh;
  const self = meshWarpMap(mesh, mesh, topo.triangles, box);
  const hole = new Uint8Array(n);
  // the face hole pixels the prior is asked for: those no other frame showed
  const need = new Uint8Array(n);
  let facePixels = 0, open = 0;
  for (let y = 0; y < bh; y++)
    for (let x = 0; x < bw; x++) {
      const k = y * bw + x, p = (Y0 + y) * W + X0 + x;
      if (mask.data[p] < 128) continue;
      hole[k] = 1;
      if (!self.inR[k]) continue;
      facePixels++;
      if (opts.seen && opts.seen.data[p] >= 128) continue;
      need[k] = 1;
      open++;
    }
  if (facePixels < 4 || open < 4) return { ...none, facePixels, left: facePixels };
  const g = new Float32Array(n * 3);
  const have = new Uint8Array(n);
  let fromTrack = 0, fromIdentity = 0;
  const idPix = new Uint8Array(n);
  // 1. the track's frames that saw the pixel, most similar mouth first
  const shape = faceShape(mesh);
  const maxD = opts.maxShapeDistance ?? 0.12;
  const order = refs
    .map((r) => ({ r, d: shapeDistance(shape, r.shape) }))
    .filter((o) => o.d <= maxD)
    .sort((a, b) => a.d - b.d);
  for (const { r } of order) {
    if (fromTrack === open) break;
    const map = meshWarpMap(mesh, r.mesh, topo.triangles, box);
    const rw = r.frame.width, rh = r.frame.height;
    for (let k = 0; k < n; k++) {
      if (!need[k] || have[k] || !map.inR[k]) continue;
      const sx = map.sx[k], sy = map.sy[k];
      const ix = Math.floor(sx), iy = Math.floor(sy);
      if (ix < 0 || iy < 0 || ix + 1 >= rw || iy + 1 >= rh) continue;
      const o = iy * rw + ix;
      if (!r.known[o] || !r.known[o + 1] || !r.known[o + rw] || !r.known[o + rw + 1]) continue;
      sampleRgb(r.frame, sx, sy, g, k);
      have[k] = 1;
      fromTrack++;
    }
  }
  // A few scattered pixels seen elsewhere (the edge of a static box on a head that sways) do
  // not make a face: patches of them only add seams and shimmer to the generic fill.
  if (fromTrack < (opts.minTrackShare ?? 0.1) * open) {
    fromTrack = 0;
    have.fill(0);
  }
  // 2. the identity photo, over the skin; the openings follow this frame's landmarks
  if (identitySource && fromTrack < open) {
    const levels = identitySource.levels;
    const tw = meshWidth(mesh);
    let lvl = levels[0];
    for (const l of levels) if (l.faceWidth >= tw * 0.9) lvl = l;
    const skin = meshWarpMap(mesh, lvl.mesh, topo.skinTriangles, box);
    const idAll = new Float32Array(n * 3);
    for (let k = 0; k < n; k++) if (skin.inR[k]) sampleRgb(lvl.frame, skin.sx[k], skin.sy[k], idAll, k);
    // colour transfer from the visible skin near the hole (Lab mean and spread)
    const near = dilateMask({ width: bw, height: bh, data: hole.map((v) => (v ? 255 : 0)) }, Math.max(3, tw * 0.2));
    const a = new Float64Array(3), b = new Float64Array(3);
    const st = { n: 0, s: [0, 0, 0], ss: [0, 0, 0], t: [0, 0, 0], tt: [0, 0, 0] };
    for (let k = 0; k < n; k++) {
      if (hole[k] || !skin.inR[k] || !near.data[k]) continue;
      const y = Math.floor(k / bw), x = k % bw;
      const o = ((Y0 + y) * W + X0 + x) * 3;
      rgbToLab(idAll[k * 3], idAll[k * 3 + 1], idAll[k * 3 + 2], a);
      rgbToLab(filled.data[o], filled.data[o + 1], filled.data[o + 2], b);
      st.n++;
      for (let c = 0; c < 3; c++) { st.s[c] += a[c]; st.ss[c] += a[c] * a[c]; st.t[c] += b[c]; st.tt[c] += b[c] * b[c]; }
    }
    const tr = [0, 1, 2].map((c) => {
      if (st.n < 8) return { scale: 1, offset: 0 };
      const ms = st.s[c] / st.n, mt = st.t[c] / st.n;
      const sd = Math.sqrt(Math.max(1e-6, st.ss[c] / st.n - ms * ms)), td = Math.sqrt(Math.max(1e-6, st.tt[c] / st.n - mt * mt));
      const scale = Math.max(0.6, Math.min(1.6, td / sd));
      return { scale, offset: mt - ms * scale };
    });
    if (state) {
      const a = opts.smoothing ?? 0.7;
      if (state.transfer) tr.forEach((t, c) => { t.scale = a * state.transfer![c].scale + (1 - a) * t.scale; t.offset = a * state.transfer![c].offset + (1 - a) * t.offset; });
      state.transfer = tr;
    }
    const rgb = new Float64Array(3);
    let lipSum = 0, lipN = 0;
    const lipRgb = [0, 0, 0];
    for (let k = 0; k < n; k++) {
      if (!skin.inR[k]) continue;
      rgbToLab(idAll[k * 3], idAll[k * 3 + 1], idAll[k * 3 + 2], a);
      labToRgb(a[0] * tr[0].scale + tr[0].offset, a[1] * tr[1].scale + tr[1].offset, a[2] * tr[2].scale + tr[2].offset, rgb);
      idAll[k * 3] = rgb[0]; idAll[k * 3 + 1] = rgb[1]; idAll[k * 3 + 2] = rgb[2];
      if (need[k] && !have[k]) {
        g[k * 3] = rgb[0]; g[k * 3 + 1] = rgb[1]; g[k * 3 + 2] = rgb[2];
        have[k] = 1;
        idPix[k] = 1;
        fromIdentity++;
      }
    }
    // openings (this frame's mouth and eyes) inside the hole: a dark tone from the lips around
    const lipsIdx = new Set(INNER_LIPS_RING);
    for (const p of lipsIdx) {
      const x = Math.round(mesh[p * 3]) - X0, y = Math.round(mesh[p * 3 + 1]) - Y0;
      if (x < 0 || y < 0 || x >= bw || y >= bh) continue;
      const k = y * bw + x;
      const src = skin.inR[k] ? idAll : null;
      if (!src) continue;
      for (let c = 0; c < 3; c++) lipRgb[c] += src[k * 3 + c];
      lipN++;
      lipSum++;
    }
    if (lipSum) {
      for (let k = 0; k < n; k++) {
        if (!need[k] || have[k] || skin.inR[k]) continue;
        for (let c = 0; c < 3; c++) g[k * 3 + c] = (lipRgb[c] / lipN) * 0.4;
        have[k] = 1;
        idPix[k] = 1;
        fromIdentity++;
      }
    }
  }
  const rejected = !!opts.identity && !identitySource;
  if (!fromTrack && !fromIdentity) return { ...none, facePixels, left: facePixels, residual, rejected };
  // 3. gradient-domain blend into the generic fill; the identity's pixels are a guess of what
  // the hole hides (the mouth may be open under it), mixed with the generic fill by weight
  const wId = opts.identityWeight ?? 0.6;
  if (wId < 1) {
    for (let k = 0; k < n; k++) {
      if (!have[k] || !idPix[k]) continue;
      for (let c = 0; c < 3; c++) g[k * 3 + c] = wId * g[k * 3 + c] + (1 - wId) * filled.data[((Math.floor(k / bw) + Y0) * W + (k % bw) + X0) * 3 + c];
    }
  }
  const inR = new Uint8Array(n);
  for (let k = 0; k < n; k++) inR[k] = have[k];
  for (let x = 0; x < bw; x++) { inR[x] = 0; inR[(bh - 1) * bw + x] = 0; }
  for (let y = 0; y < bh; y++) { inR[y * bw] = 0; inR[y * bw + bw - 1] = 0; }
  const fr = (k: number, ch: number) => filled.data[((Math.floor(k / bw) + Y0) * W + (k % bw) + X0) * 3 + ch];
  const result = new Float32Array(n * 3);
  poissonBlend(inR, g, fr, bw, bh, result);
  const out = cloneFrame(filled);
  // While the face holds still, the filled pixels also follow the previous frame's (what is
  // invented must not shimmer from frame to frame).
  const prev = state?.still && state.prev && state.prev.frame.width === W && state.prev.frame.height === H ? state.prev : undefined;
  const b = opts.smoothing ?? 0.7;
  const filledNow = new Uint8Array(W * H);
  for (let k = 0; k < n; k++) {
    if (!inR[k]) continue;
    const p = (Math.floor(k / bw) + Y0) * W + (k % bw) + X0, o = p * 3;
    filledNow[p] = 1;
    for (let c = 0; c < 3; c++) {
      let v = result[k * 3 + c];
      if (prev && prev.filled[p]) v = b * prev.frame.data[o + c] + (1 - b) * v;
      out.data[o + c] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
    }
  }
  if (state) state.prev = { frame: out, filled: filledNow };
  return { frame: out, facePixels, fromTrack, fromIdentity, left: facePixels - fromTrack - fromIdentity, residual, rejected };
}
