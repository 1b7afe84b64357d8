/**
 * A direct, slow reference evaluation of a TFLite graph in TypeScript: NHWC, float64, one
 * loop nest per op, written from the ops' definitions (not from the ONNX converter). Used by
 * tests as the second, independent computation the converted ONNX model is checked against.
 */
import { samePads } from './convert.js';
import { parseTflite, type TfliteModel } from './model.js';

export interface RefTensor {
  shape: number[];
  data: Float64Array;
}

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

function pads(padding: string, inSize: number, k: number, stride: number, dil = 1): number {
  return padding === 'SAME' ? samePads(inSize, k, stride, dil)[0] : 0;
}

function outSize(padding: string, inSize: number, k: number, stride: number, dil = 1): number {
  const eff = (k - 1) * dil + 1;
  return padding === 'SAME' ? Math.ceil(inSize / stride) : Math.floor((inSize - eff) / stride) + 1;
}

function act(x: number, a: string | undefined): number {
  switch (a ?? 'NONE') {
    case 'NONE': return x;
    case 'RELU': return x > 0 ? x : 0;
    case 'RELU6': return x < 0 ? 0 : x > 6 ? 6 : x;
    case 'TANH': return Math.tanh(x);
    default: throw new Error(`reference: activation ${a}`);
  }
}

function conv(x: RefTensor, w: Float64Array, wShape: number[], bias: Float64Array | undefined, o: any, depthwise: boolean): RefTensor {
  const [n, H, W, C] = x.shape;
  const KH = wShape[1], KW = wShape[2];
  const OC = depthwise ? wShape[3] : wShape[0];
  const mult = depthwise ? OC / C : 1;
  const sh = o.strideH || 1, sw = o.strideW || 1, dh = o.dilationH || 1, dw = o.dilationW || 1;
  const OH = outSize(o.padding, H, KH, sh, dh), OW = outSize(o.padding, W, KW, sw, dw);
  const pt = pads(o.padding, H, KH, sh, dh), pl = pads(o.padding, W, KW, sw, dw);
  const out = new Float64Array(n * OH * OW * OC);
  const xd = x.data;
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < OH; oy++) {
      for (let ox = 0; ox < OW; ox++) {
        const ob = ((b * OH + oy) * OW + ox) * OC;
        for (let oc = 0; oc < OC; oc++) {
          let s = bias ? bias[oc] : 0;
          for (let ky = 0; ky < KH; ky++) {
            const iy = oy * sh - pt + ky * dh;
            if (iy < 0 || iy >= H) continue;
            for (let kx = 0; kx < KW; kx++) {
              const ix = ox * sw - pl + kx * dw;
              if (ix < 0 || ix >= W) continue;
              const ib = ((b * H + iy) * W + ix) * C;
              if (depthwise) {
                const ic = Math.floor(oc / mult);
                s += xd[ib + ic] * w[(ky * KW + kx) * OC + oc];
              } else {
                const wb = ((oc * KH + ky) * KW + kx) * C;
                for (let ic = 0; ic < C; ic++) s += xd[ib + ic] * w[wb + ic];
              }
            }
          }
          out[ob + oc] = act(s, o.activation);
        }
      }
    }
  }
  return { shape: [n, OH, OW, OC], data: out };
}

function pool(x: RefTensor, o: any, kind: 'max' | 'avg'): RefTensor {
  const [n, H, W, C] = x.shape;
  const OH = outSize(o.padding, H, o.filterH, o.strideH), OW = outSize(o.padding, W, o.filterW, o.strideW);
  const pt = pads(o.padding, H, o.filterH, o.strideH), pl = pads(o.padding, W, o.filterW, o.strideW);
  const out = new Float64Array(n * OH * OW * C);
  for (let b = 0; b < n; b++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) for (let c = 0; c < C; c++) {
    let m = -Infinity, s = 0, cnt = 0;
    for (let ky = 0; ky < o.filterH; ky++) {
      const iy = oy * o.strideH - pt + ky;
      if (iy < 0 || iy >= H) continue;
      for (let kx = 0; kx < o.filterW; kx++) {
        const ix = ox * o.strideW - pl + kx;
        if (ix < 0 || ix >= W) continue;
        const v = x.data[((b * H + iy) * W + ix) * C + c];
        if (v > m) m = v;
        s += v; cnt++;
      }
    }
    out[((b * OH + oy) * OW + ox) * C + c] = act(kind === 'max' ? m : s / cnt, o.activation);
  }
  return { shape: [n, OH, OW, C], data: out };
}

/** Broadcasting binary op over NumPy-style right-aligned shapes. */
function broadcast(a: RefTensor, b: RefTensor, f: (x: number, y: number) => number): RefTensor {
  const rank = Math.max(a.shape.length, b.shape.length);
  const as = [...Array(rank - a.shape.length).fill(1), ...a.shape];
  const bs = [...Array(rank - b.shape.length).fill(1), ...b.shape];
  const os = as.map((v, i) => Math.max(v, bs[i]));
  const out = new Float64Array(size(os));
  const idx = new Array(rank).fill(0);
  for (let k = 0; k < out.length; k++) {
    let r = k;
    for (let d = rank - 1; d >= 0; d--) { idx[d] = r % os[d]; r = Math.floor(r / os[d]); }
    let ai = 0, bi = 0;
    for (let d = 0; d < rank; d++) {
      ai = ai * as[d] + (as[d] === 1 ? 0 : idx[d]);
      bi = bi * bs[d] + (bs[d] === 1 ? 0 : idx[d]);
    }
    out[k] = f(a.data[ai], b.data[bi]);
  }
  return { shape: os, data: out };
}

function resizeBilinear(x: RefTensor, oh: number, ow: number, o: any): RefTensor {
  const [n, H, W, C] = x.shape;
  const out = new Float64Array(n * oh * ow * C);
  const coord = (i: number, inS: number, outS: number) => {
    if (o.alignCorners && outS > 1) return (i * (inS - 1)) / (outS - 1);
    if (o.halfPixelCenters) return (i + 0.5) * (inS / outS) - 0.5;
    return i * (inS / outS);
  };
  for (let b = 0; b < n; b++) for (let y = 0; y < oh; y++) for (let xx = 0; xx < ow; xx++) {
    const sy = coord(y, H, oh), sx = coord(xx, W, ow);
    const y0f = Math.floor(sy), x0f = Math.floor(sx);
    const y0 = Math.max(0, Math.min(H - 1, y0f)), y1 = Math.max(0, Math.min(H - 1, y0f + 1));
    const x0 = Math.max(0, Math.min(W - 1, x0f)), x1 = Math.max(0, Math.min(W - 1, x0f + 1));
    const fy = sy - y0f, fx = sx - x0f;
    for (let c = 0; c < C; c++) {
      const g = (yy: number, xq: number) => x.data[((b * H + yy) * W + xq) * C + c];
      const top = g(y0, x0) * (1 - fx) + g(y0, x1) * fx;
      const bot = g(y1, x0) * (1 - fx) + g(y1, x1) * fx;
      out[((b * oh + y) * ow + xx) * C + c] = top * (1 - fy) + bot * fy;
    }
  }
  return { shape: [n, oh, ow, C], data: out };
}

/** Evaluate the graph on the given inputs (in TFLite layout); returns the outputs by name. */
export function evaluateTflite(modelOrBuf: TfliteModel | Uint8Array, inputs: Float32Array[] | Float64Array[]): Record<string, RefTensor> {
  const m = modelOrBuf instanceof Uint8Array ? parseTflite(modelOrBuf) : modelOrBuf;
  const T = m.tensors;
  const vals = new Map<number, RefTensor>();
  for (const t of T) if (t.data) vals.set(t.index, { shape: t.shape, data: Float64Array.from(t.data) });
  m.inputs.forEach((i, k) => vals.set(i, { shape: T[i].shape, data: Float64Array.from(inputs[k]) }));
  const get = (i: number) => {
    const v = vals.get(i);
    if (!v) throw new Error(`reference: tensor ${T[i].name} has no value`);
    return v;
  };
  for (const o of m.operators) {
    const opt = o.options;
    let y: RefTensor;
    switch (o.op) {
      case 'DEQUANTIZE': y = get(o.inputs[0]); break;
      case 'CONV_2D':
      case 'DEPTHWISE_CONV_2D': {
        const w = get(o.inputs[1]);
        const b = o.inputs[2] !== undefined && o.inputs[2] >= 0 ? get(o.inputs[2]).data : undefined;
        y = conv(get(o.inputs[0]), w.data, w.shape, b, opt, o.op === 'DEPTHWISE_CONV_2D');
        break;
      }
      case 'MAX_POOL_2D': y = pool(get(o.inputs[0]), opt, 'max'); break;
      case 'AVERAGE_POOL_2D': y = pool(get(o.inputs[0]), opt, 'avg'); break;
      case 'RELU': { const x = get(o.inputs[0]); y = { shape: x.shape, data: x.data.map((v) => (v > 0 ? v : 0)) }; break; }
      case 'RELU6': { const x = get(o.inputs[0]); y = { shape: x.shape, data: x.data.map((v) => act(v, 'RELU6')) }; break; }
      case 'LOGISTIC': { const x = get(o.inputs[0]); y = { shape: x.shape, data: x.data.map((v) => 1 / (1 + Math.exp(-v))) }; break; }
      case 'PRELU': y = broadcast(get(o.inputs[0]), get(o.inputs[1]), (v, a) => (v >= 0 ? v : v * a)); break;
      case 'ADD': { const r = broadcast(get(o.inputs[0]), get(o.inputs[1]), (a, b) => a + b); y = { shape: r.shape, data: r.data.map((v) => act(v, opt.activation)) }; break; }
      case 'PAD': {
        const x = get(o.inputs[0]);
        const p = Array.from(get(o.inputs[1]).data);
        const rank = x.shape.length;
        const os = x.shape.map((s, d) => s + p[d * 2] + p[d * 2 + 1]);
        const data = new Float64Array(size(os));
        const idx = new Array(rank).fill(0);
        for (let k = 0; k < x.data.length; k++) {
          let r = k;
          for (let d = rank - 1; d >= 0; d--) { idx[d] = r % x.shape[d]; r = Math.floor(r / x.shape[d]); }
          let oi = 0;
          for (let d = 0; d < rank; d++) oi = oi * os[d] + idx[d] + p[d * 2];
          data[oi] = x.data[k];
        }
        y = { shape: os, data };
        break;
      }
      case 'RESHAPE': {
        const x = get(o.inputs[0]);
        const shape = T[o.outputs[0]].shape;
        if (size(shape) !== x.data.length) throw new Error('reference: reshape size mismatch');
        y = { shape, data: x.data };
        break;
      }
      case 'CONCATENATION': {
        const xs = o.inputs.map(get);
        const rank = xs[0].shape.length;
        const axis = opt.axis < 0 ? opt.axis + rank : opt.axis;
        const outer = size(xs[0].shape.slice(0, axis));
        const inner = size(xs[0].shape.slice(axis + 1));
        const os = xs[0].shape.slice();
        os[axis] = xs.reduce((a, x) => a + x.shape[axis], 0);
        const data = new Float64Array(size(os));
        let o2 = 0;
        for (let a = 0; a < outer; a++) for (const x of xs) {
          const len = x.shape[axis] * inner;
          data.set(x.data.subarray(a * len, (a + 1) * len), o2);
          o2 += len;
        }
        y = { shape: os, data };
        break;
      }
      case 'RESIZE_BILINEAR': {
        const [oh, ow] = Array.from(get(o.inputs[1]).data);
        y = resizeBilinear(get(o.inputs[0]), oh, ow, opt);
        break;
      }
      default:
        throw new Error(`reference interpreter: op ${o.op} is outside the ops it evaluates`);
    }
    vals.set(o.outputs[0], y);
  }
  const out: Record<string, RefTensor> = {};
  for (const i of m.outputs) out[T[i].name] = get(i);
  return out;
}
