/**
 * TensorFlow.js GRAPH-model (model.json + weight shards) → ONNX converter.
 *
 * Covers the op set of the small convolutional graph models that ship in npm (MobileNet-style
 * face descriptors such as @vladmandic/human's faceres): Conv2D, DepthwiseConv2dNative, their
 * fused forms, MatMul/_FusedMatMul, element-wise arithmetic, Relu/Relu6/Sigmoid/Tanh/Elu,
 * Mean, Max/AvgPool, ConcatV2, Softmax, Identity. Activations of rank 4 are kept in NCHW
 * inside the ONNX graph (ONNX Conv is NCHW); the NHWC input is transposed once at the entry
 * and 4-D outputs are transposed back, so the ONNX model has the same interface as the
 * TF.js one. Weights stored as float16 or uint8/uint16-quantized are expanded to float32.
 * Any op outside this set is refused with its name, never silently skipped.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { OnnxGraphBuilder, attr, type Attr } from '../onnx-builder.js';

interface TfNode {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, any>;
}

interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string; scale?: number; min?: number; original_dtype?: string };
}

export interface TfjsGraphModelJson {
  format?: string;
  modelTopology: { node: TfNode[] };
  weightsManifest: { paths: string[]; weights: WeightSpec[] }[];
  signature?: { inputs?: Record<string, any>; outputs?: Record<string, any> };
}

export interface ConstTensor {
  shape: number[];
  data: Float32Array | Int32Array;
}

export class TfjsConvertError extends Error {}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** Decode the weight shards of a manifest into named tensors. `readShard` returns one shard's bytes. */
export function decodeWeights(manifest: TfjsGraphModelJson['weightsManifest'], readShard: (p: string) => Uint8Array): Map<string, ConstTensor> {
  const out = new Map<string, ConstTensor>();
  for (const group of manifest) {
    const parts = group.paths.map(readShard);
    const total = parts.reduce((a, p) => a + p.byteLength, 0);
    const buf = new Uint8Array(total);
    let o = 0;
    for (const p of parts) {
      buf.set(p, o);
      o += p.byteLength;
    }
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    let off = 0;
    for (const w of group.weights) {
      const n = prod(w.shape);
      const q = w.quantization;
      if (q) {
        const f = new Float32Array(n);
        if (q.dtype === 'float16') {
          for (let i = 0; i < n; i++) f[i] = halfToFloat(dv.getUint16(off + 2 * i, true));
          off += 2 * n;
        } else if (q.dtype === 'uint8' || q.dtype === 'uint16') {
          const bytes = q.dtype === 'uint8' ? 1 : 2;
          const scale = q.scale ?? 1, min = q.min ?? 0;
          for (let i = 0; i < n; i++) f[i] = (bytes === 1 ? dv.getUint8(off + i) : dv.getUint16(off + 2 * i, true)) * scale + min;
          off += bytes * n;
        } else {
          throw new TfjsConvertError(`weight ${w.name}: quantization ${q.dtype} is not supported`);
        }
        out.set(w.name, { shape: w.shape, data: f });
      } else if (w.dtype === 'float32') {
        const f = new Float32Array(n);
        for (let i = 0; i < n; i++) f[i] = dv.getFloat32(off + 4 * i, true);
        off += 4 * n;
        out.set(w.name, { shape: w.shape, data: f });
      } else if (w.dtype === 'int32') {
        const f = new Int32Array(n);
        for (let i = 0; i < n; i++) f[i] = dv.getInt32(off + 4 * i, true);
        off += 4 * n;
        out.set(w.name, { shape: w.shape, data: f });
      } else {
        throw new TfjsConvertError(`weight ${w.name}: dtype ${w.dtype} is not supported`);
      }
    }
    if (off !== total) throw new TfjsConvertError(`weight shards hold ${total} bytes, the manifest describes ${off}`);
  }
  return out;
}

const b64 = (s: string | undefined) => (s === undefined ? undefined : Buffer.from(s, 'base64').toString('utf8'));
const ints = (a: any): number[] => (a?.list?.i ?? []).map((v: string | number) => Number(v));
const strs = (a: any): string[] => (a?.list?.s ?? []).map((v: string) => b64(v)!);

/** A value in the ONNX graph: its name, rank, and whether a rank-4 value is stored NCHW. */
interface Val {
  name: string;
  rank: number;
  nchw: boolean;
  /** Set for constants (kept so they can be re-laid-out where they are used). */
  konst?: ConstTensor;
}

const NHWC_TO_NCHW_AXIS = [0, 2, 3, 1];

export interface ConvertOptions {
  /** Fixed input shape (NHWC) when the placeholder's batch is dynamic; default keeps 'N'. */
  batch?: number | 'N';
  /** Output tensor names to export (TF.js names, with or without ':0'); default: the signature's outputs. */
  outputs?: string[];
}

export interface ConvertResult {
  bytes: Uint8Array;
  inputName: string;
  inputShape: (number | string)[];
  outputNames: string[];
  opCounts: Record<string, number>;
}

/** Convert a TF.js graph model (parsed JSON and decoded weights) to ONNX bytes. */
export function convertTfjsGraph(model: TfjsGraphModelJson, weights: Map<string, ConstTensor>, opts: ConvertOptions = {}): ConvertResult {
  if (model.format && model.format !== 'graph-model') throw new TfjsConvertError(`not a TF.js graph model (format "${model.format}")`);
  const nodes = model.modelTopology.node;
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const g = new OnnxGraphBuilder('tfjs');
  const vals = new Map<string, Val>();
  const opCounts: Record<string, number> = {};
  const clean = (s: string) => s.replace(/:0$/, '').replace(/^\^/, '');

  let inputName = '';
  let inputShape: (number | string)[] = [];

  const constInit = (data: Float32Array | Int32Array, dims: number[]) =>
    data instanceof Int32Array ? g.init(undefined, BigInt64Array.from(Array.from(data, (v) => BigInt(v))), dims) : g.init(undefined, data, dims);

  /** A constant materialised for use next to a value of the given layout. */
  const constFor = (c: ConstTensor, other: Val | undefined): Val => {
    const { shape, data } = c;
    if (other && other.rank === 4 && other.nchw) {
      if (shape.length === 1 && shape[0] > 1) return { name: constInit(data, [shape[0], 1, 1]), rank: 3, nchw: false };
      if (shape.length === 4) {
        const [N, H, W, C] = shape;
        const t = new (data.constructor as any)(data.length);
        for (let n = 0; n < N; n++)
          for (let h = 0; h < H; h++)
            for (let w = 0; w < W; w++) for (let ch = 0; ch < C; ch++) t[((n * C + ch) * H + h) * W + w] = data[((n * H + h) * W + w) * C + ch];
        return { name: constInit(t, [N, C, H, W]), rank: 4, nchw: true };
      }
    }
    return { name: constInit(data, shape), rank: shape.length, nchw: false };
  };

  const get = (raw: string): Val => {
    const name = clean(raw);
    const v = vals.get(name);
    if (v) return v;
    const c = weights.get(name);
    const node = byName.get(name);
    if (c && (!node || node.op === 'Const')) return { name: '', rank: c.shape.length, nchw: false, konst: c };
    if (node?.op === 'Const' && node.attr?.value?.tensor) {
      const t = node.attr.value.tensor;
      const shape = (t.tensorShape?.dim ?? []).map((d: any) => Number(d.size));
      if (t.floatVal) return { name: '', rank: shape.length, nchw: false, konst: { shape, data: Float32Array.from(t.floatVal.map(Number)) } };
      if (t.intVal) return { name: '', rank: shape.length, nchw: false, konst: { shape, data: Int32Array.from(t.intVal.map(Number)) } };
    }
    throw new TfjsConvertError(`tensor "${name}" is used before it is defined (or its weights are missing)`);
  };
  const materialise = (v: Val, other?: Val): Val => (v.konst ? constFor(v.konst, other) : v);
  const constOf = (raw: string, what: string): ConstTensor => {
    const v = get(raw);
    if (!v.konst) throw new TfjsConvertError(`${what} must be a constant`);
    return v.konst;
  };

  const padAttrs = (n: TfNode, kh: number, kw: number): Record<string, Attr> => {
    const padding = b64(n.attr?.padding?.s) ?? 'VALID';
    if (padding === 'SAME') return { auto_pad: attr.string('SAME_UPPER') };
    if (padding === 'VALID') return { pads: attr.ints([0, 0, 0, 0]) };
    if (padding === 'EXPLICIT') {
      const p = ints(n.attr?.explicit_paddings); // NHWC pairs
      return { pads: attr.ints([p[2], p[4], p[3], p[5]]) };
    }
    throw new TfjsConvertError(`${n.name}: padding ${padding} is not supported (kernel ${kh}x${kw})`);
  };
  const spatial = (n: TfNode, key: string) => {
    const s = ints(n.attr?.[key]);
    return s.length === 4 ? [s[1], s[2]] : [1, 1];
  };
  const checkNhwc = (n: TfNode) => {
    const df = b64(n.attr?.data_format?.s);
    if (df && df !== 'NHWC') throw new TfjsConvertError(`${n.name}: data_format ${df} is not supported`);
  };

  const activation = (x: string, op: string, n: TfNode, extra: Val[]): string => {
    switch (op) {
      case 'Relu':
        return g.op('Relu', [x]);
      case 'Relu6':
        return g.op('Clip', [x, g.float([0], []), g.float([6], [])]);
      case 'Elu':
        return g.op('Elu', [x], { alpha: attr.float(1) });
      case 'Sigmoid':
        return g.op('Sigmoid', [x]);
      case 'Tanh':
        return g.op('Tanh', [x]);
      case 'LeakyRelu':
        return g.op('LeakyRelu', [x], { alpha: attr.float(n.attr?.leakyrelu_alpha?.f ?? 0.2) });
      case 'Prelu': {
        const a = extra[0];
        if (!a?.konst) throw new TfjsConvertError(`${n.name}: Prelu alpha must be a constant`);
        return g.op('PRelu', [x, constFor(a.konst, { name: x, rank: 4, nchw: true }).name]);
      }
      default:
        throw new TfjsConvertError(`${n.name}: fused activation ${op} is not supported`);
    }
  };

  const convLike = (n: TfNode, depthwise: boolean, fused: boolean): Val => {
    checkNhwc(n);
    const x = get(n.input![0]);
    if (x.rank !== 4 || !x.nchw) throw new TfjsConvertError(`${n.name}: input is not a 4-D image tensor`);
    const k = constOf(n.input![1], `${n.name}: the kernel`);
    const [kh, kw, ci, co] = k.shape;
    const kd = k.data as Float32Array;
    let w: Float32Array;
    let dims: number[];
    let group = 1;
    if (depthwise) {
      // [H, W, C, M] → [C*M, 1, H, W]
      const M = co;
      w = new Float32Array(kd.length);
      for (let c = 0; c < ci; c++) for (let m = 0; m < M; m++) for (let y = 0; y < kh; y++) for (let xx = 0; xx < kw; xx++)
        w[((c * M + m) * kh + y) * kw + xx] = kd[((y * kw + xx) * ci + c) * M + m];
      dims = [ci * M, 1, kh, kw];
      group = ci;
    } else {
      // [H, W, I, O] → [O, I, H, W]
      w = new Float32Array(kd.length);
      for (let o = 0; o < co; o++) for (let i = 0; i < ci; i++) for (let y = 0; y < kh; y++) for (let xx = 0; xx < kw; xx++)
        w[((o * ci + i) * kh + y) * kw + xx] = kd[((y * kw + xx) * ci + i) * co + o];
      dims = [co, ci, kh, kw];
    }
    const ins = [x.name, g.init(undefined, w, dims)];
    const fusedOps = fused ? strs(n.attr?.fused_ops) : [];
    const extra = (n.input ?? []).slice(2).filter((s) => !s.startsWith('^')).map(get);
    let rest = fusedOps;
    if (rest[0] === 'BiasAdd') {
      const b = extra.shift();
      if (!b?.konst) throw new TfjsConvertError(`${n.name}: the bias must be a constant`);
      ins.push(g.init(undefined, b.konst.data as Float32Array, [b.konst.shape[0]]));
      rest = rest.slice(1);
    }
    const [sh, sw] = spatial(n, 'strides');
    const [dh, dw] = spatial(n, 'dilations');
    let y = g.op('Conv', ins, {
      kernel_shape: attr.ints([kh, kw]),
      strides: attr.ints([sh, sw]),
      dilations: attr.ints([dh, dw]),
      group: attr.int(group),
      ...padAttrs(n, kh, kw),
    });
    for (const a of rest) y = activation(y, a, n, extra);
    return { name: y, rank: 4, nchw: true };
  };

  const binary = (n: TfNode, onnxOp: string): Val => {
    const a0 = get(n.input![0]), b0 = get(n.input![1]);
    if (a0.konst && b0.konst) throw new TfjsConvertError(`${n.name}: constant folding is not supported`);
    const A = a0.konst ? constFor(a0.konst, b0) : a0;
    const B = b0.konst ? constFor(b0.konst, a0) : b0;
    const rank = Math.max(A.rank, B.rank);
    return { name: g.op(onnxOp, [A.name, B.name]), rank, nchw: rank === 4 && (A.nchw || B.nchw) };
  };

  const unary = (n: TfNode, onnxOp: string, extra: Record<string, any> = {}): Val => {
    const x = get(n.input![0]);
    return { ...x, name: g.op(onnxOp, [materialise(x).name], extra), konst: undefined };
  };

  for (const n of nodes) {
    opCounts[n.op] = (opCounts[n.op] ?? 0) + 1;
    let v: Val | undefined;
    switch (n.op) {
      case 'Const':
      case 'NoOp':
        continue;
      case 'Placeholder': {
        if (inputName) throw new TfjsConvertError('graphs with more than one input are not supported');
        const dims = (n.attr?.shape?.shape?.dim ?? []).map((d: any) => Number(d.size));
        if (dims.length !== 4) throw new TfjsConvertError(`input ${n.name}: only 4-D NHWC image inputs are supported (got rank ${dims.length})`);
        inputName = n.name;
        inputShape = dims.map((d: number, i: number) => (d > 0 ? d : i === 0 ? opts.batch ?? 'N' : `d${i}`));
        g.input(n.name, inputShape);
        v = { name: g.op('Transpose', [n.name], { perm: attr.ints([0, 3, 1, 2]) }), rank: 4, nchw: true };
        break;
      }
      case 'Identity':
      case 'StopGradient':
        v = get(n.input![0]);
        break;
      case 'Conv2D':
        v = convLike(n, false, false);
        break;
      case '_FusedConv2D':
        v = convLike(n, false, true);
        break;
      case 'DepthwiseConv2dNative':
        v = convLike(n, true, false);
        break;
      case 'FusedDepthwiseConv2dNative':
        v = convLike(n, true, true);
        break;
      case 'BiasAdd':
      case 'Add':
      case 'AddV2':
        v = binary(n, 'Add');
        break;
      case 'Sub':
        v = binary(n, 'Sub');
        break;
      case 'Mul':
        v = binary(n, 'Mul');
        break;
      case 'RealDiv':
        v = binary(n, 'Div');
        break;
      case 'Minimum':
        v = binary(n, 'Min');
        break;
      case 'Maximum':
        v = binary(n, 'Max');
        break;
      case 'Relu':
      case 'Sigmoid':
      case 'Tanh':
      case 'Elu': {
        const x = get(n.input![0]);
        v = { ...x, konst: undefined, name: activation(materialise(x).name, n.op, n, []) };
        break;
      }
      case 'Relu6': {
        const x = get(n.input![0]);
        v = { ...x, konst: undefined, name: activation(materialise(x).name, 'Relu6', n, []) };
        break;
      }
      case 'Softmax': {
        const x = get(n.input![0]);
        if (x.rank !== 2) throw new TfjsConvertError(`${n.name}: Softmax is supported on rank-2 tensors only`);
        v = unary(n, 'Softmax', { axis: attr.int(-1) });
        break;
      }
      case 'Mean': {
        const x = get(n.input![0]);
        const axesRaw = Array.from(constOf(n.input![1], `${n.name}: reduction indices`).data).map((a) => (a < 0 ? a + x.rank : a));
        const axes = x.rank === 4 && x.nchw ? axesRaw.map((a) => NHWC_TO_NCHW_AXIS[a]) : axesRaw;
        const keep = n.attr?.keep_dims?.b ? 1 : 0;
        const y = g.op('ReduceMean', [x.name], { axes: attr.ints(axes), keepdims: attr.int(keep) });
        const rank = keep ? x.rank : x.rank - axes.length;
        // Without keep_dims a reduced NHWC tensor over H and W is [N, C]: same in both layouts.
        if (!keep && x.nchw && !(axesRaw.length === 2 && axesRaw.includes(1) && axesRaw.includes(2)) && rank > 1)
          throw new TfjsConvertError(`${n.name}: Mean over axes ${axesRaw} is not supported`);
        v = { name: y, rank, nchw: keep ? x.nchw : false };
        break;
      }
      case 'MaxPool':
      case 'AvgPool': {
        checkNhwc(n);
        const x = get(n.input![0]);
        const [kh, kw] = spatial(n, 'ksize');
        const [sh, sw] = spatial(n, 'strides');
        const extra: Record<string, Attr> = n.op === 'AvgPool' ? { count_include_pad: attr.int(0) } : {};
        v = {
          name: g.op(n.op === 'MaxPool' ? 'MaxPool' : 'AveragePool', [x.name], {
            kernel_shape: attr.ints([kh, kw]),
            strides: attr.ints([sh, sw]),
            ...padAttrs(n, kh, kw),
            ...extra,
          }),
          rank: 4,
          nchw: true,
        };
        break;
      }
      case 'ConcatV2': {
        const ins = n.input!.filter((s) => !s.startsWith('^'));
        const axisC = constOf(ins[ins.length - 1], `${n.name}: the axis`);
        const parts = ins.slice(0, -1).map((s) => get(s));
        const ref = parts.find((p) => !p.konst)!;
        let axis = Number(axisC.data[0]);
        if (axis < 0) axis += ref.rank;
        if (ref.rank === 4 && ref.nchw) axis = NHWC_TO_NCHW_AXIS[axis];
        v = { name: g.op('Concat', parts.map((p) => materialise(p, ref).name), { axis: attr.int(axis) }), rank: ref.rank, nchw: ref.nchw };
        break;
      }
      case 'MatMul':
      case '_FusedMatMul': {
        const a = get(n.input![0]);
        const bC = constOf(n.input![1], `${n.name}: the weight matrix`);
        if (a.rank !== 2) throw new TfjsConvertError(`${n.name}: MatMul is supported on rank-2 inputs only`);
        const ta = !!n.attr?.transpose_a?.b, tb = !!n.attr?.transpose_b?.b;
        if (ta) throw new TfjsConvertError(`${n.name}: transpose_a is not supported`);
        let B = bC.data as Float32Array;
        let [r, c] = bC.shape;
        if (tb) {
          const t = new Float32Array(B.length);
          for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) t[j * r + i] = B[i * c + j];
          B = t;
          [r, c] = [c, r];
        }
        let y = g.op('MatMul', [a.name, g.init(undefined, B, [r, c])]);
        if (n.op === '_FusedMatMul') {
          const extra = n.input!.slice(2).filter((s) => !s.startsWith('^')).map(get);
          let rest = strs(n.attr?.fused_ops);
          if (rest[0] === 'BiasAdd') {
            const b = extra.shift();
            if (!b?.konst) throw new TfjsConvertError(`${n.name}: the bias must be a constant`);
            y = g.op('Add', [y, g.init(undefined, b.konst.data as Float32Array, [b.konst.shape[0]])]);
            rest = rest.slice(1);
          }
          for (const act of rest) y = activation(y, act, n, extra);
        }
        v = { name: y, rank: 2, nchw: false };
        break;
      }
      default:
        throw new TfjsConvertError(`op ${n.op} (node ${n.name}) is not supported by the TF.js graph converter`);
    }
    vals.set(n.name, v!);
  }
  if (!inputName) throw new TfjsConvertError('the graph has no input (Placeholder)');

  const wanted = opts.outputs ?? Object.keys(model.signature?.outputs ?? {}).map((k) => model.signature!.outputs![k].name ?? k);
  if (!wanted.length) throw new TfjsConvertError('no outputs named (the model has no signature)');
  const outputNames: string[] = [];
  for (const raw of wanted) {
    const name = clean(raw);
    const v = vals.get(name);
    if (!v) throw new TfjsConvertError(`output ${raw} is not computed by the graph`);
    let src = v.name;
    if (v.rank === 4 && v.nchw) src = g.op('Transpose', [src], { perm: attr.ints([0, 2, 3, 1]) });
    const outName = name;
    g.op('Identity', [src], {}, outName);
    g.output(outName, Array.from({ length: v.rank }, (_, i) => (i === 0 ? 'N' : `d${i}`)));
    outputNames.push(outName);
  }
  return { bytes: g.toBytes({ opset: 13, producer: 'restore tfjs-graph converter' }), inputName, inputShape, outputNames, opCounts };
}

/** Read a model.json and its shards from disk and convert. */
export function convertTfjsGraphFile(modelJsonPath: string, opts: ConvertOptions = {}): ConvertResult {
  const model = JSON.parse(readFileSync(modelJsonPath, 'utf8')) as TfjsGraphModelJson;
  const dir = path.dirname(modelJsonPath);
  const weights = decodeWeights(model.weightsManifest, (p) => new Uint8Array(readFileSync(path.join(dir, p))));
  return convertTfjsGraph(model, weights, opts);
}
