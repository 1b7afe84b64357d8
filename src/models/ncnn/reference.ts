/**
 * A direct, slow reference evaluation of an ncnn graph in TypeScript: CHW blobs, float64, one
 * loop nest per layer, written from the layers' definitions in ncnn (not from the ONNX
 * converter). Tests check the converted ONNX model against it, on tiny project-built ncnn files
 * and on the real Real-ESRGAN files when they are installed.
 */
import { param, paramArray, type NcnnLayer, type NcnnModel } from './model.js';
import { convShape } from './convert.js';

export interface Blob {
  c: number;
  h: number;
  w: number;
  data: Float64Array;
}

const blobOf = (c: number, h: number, w: number): Blob => ({ c, h, w, data: new Float64Array(c * h * w) });

function activate(v: number, type: number, p: number[]): number {
  switch (type) {
    case 0: return v;
    case 1: return v > 0 ? v : 0;
    case 2: return v > 0 ? v : v * p[0];
    case 3: return v < p[0] ? p[0] : v > p[1] ? p[1] : v;
    case 4: return 1 / (1 + Math.exp(-v));
    default: throw new Error(`reference: activation type ${type}`);
  }
}

function convolution(l: NcnnLayer, x: Blob): Blob {
  const s = convShape(l);
  if (s.cin !== x.c) throw new Error(`reference: ${l.name} expects ${s.cin} channels, got ${x.c}`);
  const [pt, pl, pb, pr] = s.pads;
  const OH = Math.floor((x.h + pt + pb - (s.dh * (s.kh - 1) + 1)) / s.sh) + 1;
  const OW = Math.floor((x.w + pl + pr - (s.dw * (s.kw - 1) + 1)) / s.sw) + 1;
  const y = blobOf(s.out, OH, OW);
  const w = l.weights.weight;
  const b = l.weights.bias;
  const act = param(l, 9, 0);
  const ap = paramArray(l, 10);
  for (let o = 0; o < s.out; o++) {
    for (let oy = 0; oy < OH; oy++) {
      for (let ox = 0; ox < OW; ox++) {
        let sum = b ? b[o] : 0;
        for (let i = 0; i < s.cin; i++) {
          for (let ky = 0; ky < s.kh; ky++) {
            const iy = oy * s.sh - pt + ky * s.dh;
            if (iy < 0 || iy >= x.h) continue;
            for (let kx = 0; kx < s.kw; kx++) {
              const ix = ox * s.sw - pl + kx * s.dw;
              if (ix < 0 || ix >= x.w) continue;
              sum += x.data[(i * x.h + iy) * x.w + ix] * w[((o * s.cin + i) * s.kh + ky) * s.kw + kx];
            }
          }
        }
        y.data[(o * OH + oy) * OW + ox] = activate(sum, act, ap);
      }
    }
  }
  return y;
}

function map(x: Blob, f: (v: number, c: number) => number): Blob {
  const y = blobOf(x.c, x.h, x.w);
  const n = x.h * x.w;
  for (let c = 0; c < x.c; c++) for (let i = 0; i < n; i++) y.data[c * n + i] = f(x.data[c * n + i], c);
  return y;
}

function sameShape(l: NcnnLayer, xs: Blob[]) {
  for (const x of xs) if (x.c !== xs[0].c || x.h !== xs[0].h || x.w !== xs[0].w) throw new Error(`reference: ${l.name} inputs differ in shape`);
}

function binary(l: NcnnLayer, a: Blob, b: Blob | number): Blob {
  const op = param(l, 0, 0);
  const f: Record<number, (x: number, y: number) => number> = {
    0: (x, y) => x + y,
    1: (x, y) => x - y,
    2: (x, y) => x * y,
    3: (x, y) => x / y,
    4: (x, y) => Math.max(x, y),
    5: (x, y) => Math.min(x, y),
    7: (x, y) => y - x,
    8: (x, y) => y / x,
  };
  const fn = f[op];
  if (!fn) throw new Error(`reference: BinaryOp ${op}`);
  if (typeof b === 'number') return map(a, (v) => fn(v, b));
  sameShape(l, [a, b]);
  const y = blobOf(a.c, a.h, a.w);
  for (let i = 0; i < y.data.length; i++) y.data[i] = fn(a.data[i], b.data[i]);
  return y;
}

/** Evaluate the graph on one CHW input; returns every output blob by ncnn name. */
export function evaluateNcnn(model: NcnnModel, input: Blob): Record<string, Blob> {
  const blobs = new Map<string, Blob>();
  for (const l of model.layers) {
    const xs = l.inputs.map((b) => {
      const v = blobs.get(b);
      if (!v) throw new Error(`reference: ${l.name} reads ${b} before it exists`);
      return v;
    });
    let y: Blob;
    switch (l.type) {
      case 'Input':
        y = input;
        break;
      case 'Split':
        for (const o of l.outputs) blobs.set(o, xs[0]);
        continue;
      case 'Concat': {
        const axis = param(l, 0, 0);
        if (axis !== 0 && axis !== -3) throw new Error(`reference: Concat axis ${axis}`);
        const c = xs.reduce((s, x) => s + x.c, 0);
        y = blobOf(c, xs[0].h, xs[0].w);
        let off = 0;
        for (const x of xs) {
          if (x.h !== y.h || x.w !== y.w) throw new Error(`reference: ${l.name} concat of different sizes`);
          y.data.set(x.data, off);
          off += x.data.length;
        }
        break;
      }
      case 'Convolution':
        y = convolution(l, xs[0]);
        break;
      case 'PReLU': {
        const s = l.weights.slope;
        y = map(xs[0], (v, c) => (v > 0 ? v : v * (s.length === 1 ? s[0] : s[c])));
        break;
      }
      case 'ReLU': {
        const slope = param(l, 0, 0);
        y = map(xs[0], (v) => (v > 0 ? v : v * slope));
        break;
      }
      case 'Sigmoid':
        y = map(xs[0], (v) => 1 / (1 + Math.exp(-v)));
        break;
      case 'Eltwise': {
        sameShape(l, xs);
        const op = param(l, 0, 1);
        const coeffs = paramArray(l, 1);
        y = blobOf(xs[0].c, xs[0].h, xs[0].w);
        for (let i = 0; i < y.data.length; i++) {
          let v = op === 1 ? 0 : op === 0 ? 1 : -Infinity;
          xs.forEach((x, k) => {
            const a = x.data[i];
            if (op === 1) v += (coeffs.length ? coeffs[k] : 1) * a;
            else if (op === 0) v *= a;
            else v = Math.max(v, a);
          });
          y.data[i] = v;
        }
        break;
      }
      case 'BinaryOp':
        y = binary(l, xs[0], param(l, 1, 0) ? param(l, 2, 0) : xs[1]);
        break;
      case 'Interp': {
        if (param(l, 0, 0) !== 1) throw new Error('reference: Interp is nearest only');
        const x = xs[0];
        const OH = Math.floor(x.h * param(l, 1, 1));
        const OW = Math.floor(x.w * param(l, 2, 1));
        y = blobOf(x.c, OH, OW);
        for (let c = 0; c < x.c; c++)
          for (let oy = 0; oy < OH; oy++) {
            const iy = Math.min(x.h - 1, Math.floor((oy * x.h) / OH));
            for (let ox = 0; ox < OW; ox++) {
              const ix = Math.min(x.w - 1, Math.floor((ox * x.w) / OW));
              y.data[(c * OH + oy) * OW + ox] = x.data[(c * x.h + iy) * x.w + ix];
            }
          }
        break;
      }
      case 'PixelShuffle': {
        const r = param(l, 0, 1);
        const mode = param(l, 1, 0);
        const x = xs[0];
        const oc = x.c / (r * r);
        y = blobOf(oc, x.h * r, x.w * r);
        for (let p = 0; p < oc; p++)
          for (let i = 0; i < r; i++)
            for (let j = 0; j < r; j++) {
              const q = mode === 0 ? p * r * r + i * r + j : (i * r + j) * oc + p;
              for (let yy = 0; yy < x.h; yy++)
                for (let xx = 0; xx < x.w; xx++) y.data[(p * y.h + yy * r + i) * y.w + xx * r + j] = x.data[(q * x.h + yy) * x.w + xx];
            }
        break;
      }
      default:
        throw new Error(`reference: layer type ${l.type}`);
    }
    blobs.set(l.outputs[0], y);
  }
  return Object.fromEntries(model.outputs.map((o) => [o, blobs.get(o)!]));
}
