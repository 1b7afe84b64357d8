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

const clean = (s: string) => s.replace(/:0$/, '').replace(/^\^/, '');

/**
 * One conversion: the ONNX graph being built, the values computed so far (by TF node name,
 * with their layout: 4-D image tensors are kept NCHW inside), and one method per op family.
 */
class GraphConversion {
  readonly g = new OnnxGraphBuilder('tfjs');
  readonly vals = new Map<string, Val>();
  readonly opCounts: Record<string, number> = {};
  inputName = '';
  inputShape: (number | string)[] = [];
  private readonly byName: Map<string, TfNode>;

  constructor(
    private readonly nodes: TfNode[],
    private readonly weights: Map<string, ConstTensor>,
    private readonly opts: ConvertOptions,
  ) {
    this.byName = new Map(nodes.map((n) => [n.name, n]));
  }

  private constInit(data: Float32Array | Int32Array, dims: number[]): string {
    return data instanceof Int32Array ? this.g.init(undefined, BigInt64Array.from(Array.from(data, (v) => BigInt(v))), dims) : this.g.init(undefined, data, dims);
  }

  /** A constant materialised for use next to a value of the given layout. */
  constFor(c: ConstTensor, other: Val | undefined): Val {
    const { shape, data } = c;
    if (other && other.rank === 4 && other.nchw) {
      if (shape.length === 1 && shape[0] > 1) return { name: this.constInit(data, [shape[0], 1, 1]), rank: 3, nchw: false };
      if (shape.length === 4) {
        const [N, H, W, C] = shape;
        const t = new (data.constructor as any)(data.length);
        for (let n = 0; n < N; n++)
          for (let h = 0; h < H; h++)
            for (let w = 0; w < W; w++) for (let ch = 0; ch < C; ch++) t[((n * C + ch) * H + h) * W + w] = data[((n * H + h) * W + w) * C + ch];
        return { name: this.constInit(t, [N, C, H, W]), rank: 4, nchw: true };
      }
    }
    return { name: this.constInit(data, shape), rank: shape.length, nchw: false };
  }

  get(raw: string): Val {
    const name = clean(raw);
    const v = this.vals.get(name);
    if (v) return v;
    const c = this.weights.get(name);
    const node = this.byName.get(name);
    if (c && (!node || node.op === 'Const')) return { name: '', rank: c.shape.length, nchw: false, konst: c };
    if (node?.op === 'Const' && node.attr?.value?.tensor) {
      const t = node.attr.value.tensor;
      const shape = (t.tensorShape?.dim ?? []).map((d: any) => Number(d.size));
      if (t.floatVal) return { name: '', rank: shape.length, nchw: false, konst: { shape, data: Float32Array.from(t.floatVal.map(Number)) } };
      if (t.intVal) return { name: '', rank: shape.length, nchw: false, konst: { shape, data: Int32Array.from(t.intVal.map(Number)) } };
    }
    throw new TfjsConvertError(`tensor "${name}" is used before it is defined (or its weights are missing)`);
  }

  materialise(v: Val, other?: Val): Val {
    return v.konst ? this.constFor(v.konst, other) : v;
  }

  constOf(raw: string, what: string): ConstTensor {
    const v = this.get(raw);
    if (!v.konst) throw new TfjsConvertError(`${what} must be a constant`);
    return v.konst;
  }

  private padAttrs(n: TfNode, kh: number, kw: number): Record<string, Attr> {
    const padding = b64(n.attr?.padding?.s) ?? 'VALID';
    if (padding === 'SAME') return { auto_pad: attr.string('SAME_UPPER') };
    if (padding === 'VALID') return { pads: attr.ints([0, 0, 0, 0]) };
    if (padding === 'EXPLICIT') {
      const p = ints(n.attr?.explicit_paddings); // NHWC pairs
      return { pads: attr.ints([p[2], p[4], p[3], p[5]]) };
    }
    throw new TfjsConvertError(`${n.name}: padding ${padding} is not supported (kernel ${kh}x${kw})`);
  }

  private spatial(n: TfNode, key: string): [number, number] {
    const s = ints(n.attr?.[key]);
    return s.length === 4 ? [s[1], s[2]] : [1, 1];
  }

  private checkNhwc(n: TfNode): void {
    const df = b64(n.attr?.data_format?.s);
    if (df && df !== 'NHWC') throw new TfjsConvertError(`${n.name}: data_format ${df} is not supported`);
  }

  activation(x: string, op: string, n: TfNode, extra: Val[]): string {
    const g = this.g;
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
        return g.op('PRelu', [x, this.constFor(a.konst, { name: x, rank: 4, nchw: true }).name]);
      }
      default:
        throw new TfjsConvertError(`${n.name}: fused activation ${op} is not supported`);
    }
  }

  /** Fused ops after a convolution or matmul: an optional BiasAdd, then activations. */
  private fusedTail(n: TfNode, y: string, extra: Val[], addBias: (b: ConstTensor) => string): string {
    let rest = strs(n.attr?.fused_ops);
    if (rest[0] === 'BiasAdd') {
      const b = extra.shift();
      if (!b?.konst) throw new TfjsConvertError(`${n.name}: the bias must be a constant`);
      y = addBias(b.konst);
      rest = rest.slice(1);
    }
    for (const a of rest) y = this.activation(y, a, n, extra);
    return y;
  }

  convLike(n: TfNode, depthwise: boolean, fused: boolean): Val {
    this.checkNhwc(n);
    const x = this.get(n.input![0]);
    if (x.rank !== 4 || !x.nchw) throw new TfjsConvertError(`${n.name}: input is not a 4-D image tensor`);
    const k = this.constOf(n.input![1], `${n.name}: the kernel`);
    const [kh, kw, ci, co] = k.shape;
    const kd = k.data as Float32Array;
    const w = new Float32Array(kd.length);
    let dims: number[];
    let group = 1;
    if (depthwise) {
      // [H, W, C, M] → [C*M, 1, H, W]
      const M = co;
      for (let c = 0; c < ci; c++) for (let m = 0; m < M; m++) for (let y = 0; y < kh; y++) for (let xx = 0; xx < kw; xx++)
        w[((c * M + m) * kh + y) * kw + xx] = kd[((y * kw + xx) * ci + c) * M + m];
      dims = [ci * M, 1, kh, kw];
      group = ci;
    } else {
      // [H, W, I, O] → [O, I, H, W]
      for (let o = 0; o < co; o++) for (let i = 0; i < ci; i++) for (let y = 0; y < kh; y++) for (let xx = 0; xx < kw; xx++)
        w[((o * ci + i) * kh + y) * kw + xx] = kd[((y * kw + xx) * ci + i) * co + o];
      dims = [co, ci, kh, kw];
    }
    const ins = [x.name, this.g.init(undefined, w, dims)];
    const extra = (n.input ?? []).slice(2).filter((s) => !s.startsWith('^')).map((s) => this.get(s));
    let bias: ConstTensor | undefined;
    const [sh, sw] = this.spatial(n, 'strides');
    const [dh, dw] = this.spatial(n, 'dilations');
    const conv = () =>
      this.g.op('Conv', bias ? [...ins, this.g.init(undefined, bias.data as Float32Array, [bias.shape[0]])] : ins, {
        kernel_shape: attr.ints([kh, kw]),
        strides: attr.ints([sh, sw]),
        dilations: attr.ints([dh, dw]),
        group: attr.int(group),
        ...this.padAttrs(n, kh, kw),
      });
    if (!fused) return { name: conv(), rank: 4, nchw: true };
    // the bias goes into the Conv itself
    const fusedOps = strs(n.attr?.fused_ops);
    if (fusedOps[0] === 'BiasAdd') {
      const b = extra.shift();
      if (!b?.konst) throw new TfjsConvertError(`${n.name}: the bias must be a constant`);
      bias = b.konst;
    }
    let y = conv();
    for (const a of fusedOps[0] === 'BiasAdd' ? fusedOps.slice(1) : fusedOps) y = this.activation(y, a, n, extra);
    return { name: y, rank: 4, nchw: true };
  }

  binary(n: TfNode, onnxOp: string): Val {
    const a0 = this.get(n.input![0]), b0 = this.get(n.input![1]);
    if (a0.konst && b0.konst) throw new TfjsConvertError(`${n.name}: constant folding is not supported`);
    const A = a0.konst ? this.constFor(a0.konst, b0) : a0;
    const B = b0.konst ? this.constFor(b0.konst, a0) : b0;
    const rank = Math.max(A.rank, B.rank);
    return { name: this.g.op(onnxOp, [A.name, B.name]), rank, nchw: rank === 4 && (A.nchw || B.nchw) };
  }

  unary(n: TfNode, onnxOp: string, extra: Record<string, any> = {}): Val {
    const x = this.get(n.input![0]);
    return { ...x, name: this.g.op(onnxOp, [this.materialise(x).name], extra), konst: undefined };
  }

  placeholder(n: TfNode): Val {
    if (this.inputName) throw new TfjsConvertError('graphs with more than one input are not supported');
    const dims = (n.attr?.shape?.shape?.dim ?? []).map((d: any) => Number(d.size));
    if (dims.length !== 4) throw new TfjsConvertError(`input ${n.name}: only 4-D NHWC image inputs are supported (got rank ${dims.length})`);
    this.inputName = n.name;
    this.inputShape = dims.map((d: number, i: number) => (d > 0 ? d : i === 0 ? this.opts.batch ?? 'N' : `d${i}`));
    this.g.input(n.name, this.inputShape);
    return { name: this.g.op('Transpose', [n.name], { perm: attr.ints([0, 3, 1, 2]) }), rank: 4, nchw: true };
  }

  act(n: TfNode): Val {
    const x = this.get(n.input![0]);
    return { ...x, konst: undefined, name: this.activation(this.materialise(x).name, n.op, n, []) };
  }

  softmax(n: TfNode): Val {
    const x = this.get(n.input![0]);
    if (x.rank !== 2) throw new TfjsConvertError(`${n.name}: Softmax is supported on rank-2 tensors only`);
    return this.unary(n, 'Softmax', { axis: attr.int(-1) });
  }

  mean(n: TfNode): Val {
    const x = this.get(n.input![0]);
    const axesRaw = Array.from(this.constOf(n.input![1], `${n.name}: reduction indices`).data).map((a) => (a < 0 ? a + x.rank : a));
    const axes = x.rank === 4 && x.nchw ? axesRaw.map((a) => NHWC_TO_NCHW_AXIS[a]) : axesRaw;
    const keep = n.attr?.keep_dims?.b ? 1 : 0;
    const y = this.g.op('ReduceMean', [x.name], { axes: attr.ints(axes), keepdims: attr.int(keep) });
    const rank = keep ? x.rank : x.rank - axes.length;
    // Without keep_dims a reduced NHWC tensor over H and W is [N, C]: same in both layouts.
    if (!keep && x.nchw && !(axesRaw.length === 2 && axesRaw.includes(1) && axesRaw.includes(2)) && rank > 1)
      throw new TfjsConvertError(`${n.name}: Mean over axes ${axesRaw} is not supported`);
    return { name: y, rank, nchw: keep ? x.nchw : false };
  }

  pool(n: TfNode): Val {
    this.checkNhwc(n);
    const x = this.get(n.input![0]);
    const [kh, kw] = this.spatial(n, 'ksize');
    const [sh, sw] = this.spatial(n, 'strides');
    const extra: Record<string, Attr> = n.op === 'AvgPool' ? { count_include_pad: attr.int(0) } : {};
    const name = this.g.op(n.op === 'MaxPool' ? 'MaxPool' : 'AveragePool', [x.name], {
      kernel_shape: attr.ints([kh, kw]),
      strides: attr.ints([sh, sw]),
      ...this.padAttrs(n, kh, kw),
      ...extra,
    });
    return { name, rank: 4, nchw: true };
  }

  concat(n: TfNode): Val {
    const ins = n.input!.filter((s) => !s.startsWith('^'));
    const axisC = this.constOf(ins[ins.length - 1], `${n.name}: the axis`);
    const parts = ins.slice(0, -1).map((s) => this.get(s));
    const ref = parts.find((p) => !p.konst)!;
    let axis = Number(axisC.data[0]);
    if (axis < 0) axis += ref.rank;
    if (ref.rank === 4 && ref.nchw) axis = NHWC_TO_NCHW_AXIS[axis];
    return { name: this.g.op('Concat', parts.map((p) => this.materialise(p, ref).name), { axis: attr.int(axis) }), rank: ref.rank, nchw: ref.nchw };
  }

  matMul(n: TfNode): Val {
    const a = this.get(n.input![0]);
    const bC = this.constOf(n.input![1], `${n.name}: the weight matrix`);
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
    let y = this.g.op('MatMul', [a.name, this.g.init(undefined, B, [r, c])]);
    if (n.op === '_FusedMatMul') {
      const extra = n.input!.slice(2).filter((s) => !s.startsWith('^')).map((s) => this.get(s));
      y = this.fusedTail(n, y, extra, (b) => this.g.op('Add', [y, this.g.init(undefined, b.data as Float32Array, [b.shape[0]])]));
    }
    return { name: y, rank: 2, nchw: false };
  }

  /** Convert one node; undefined for nodes that make no value (constants, no-ops). */
  node(n: TfNode): Val | undefined {
    this.opCounts[n.op] = (this.opCounts[n.op] ?? 0) + 1;
    const handler = OPS[n.op];
    if (handler === null) return undefined;
    if (!handler) throw new TfjsConvertError(`op ${n.op} (node ${n.name}) is not supported by the TF.js graph converter`);
    return handler(this, n);
  }

  /** Name the wanted outputs (back to NHWC where they are images). */
  outputs(wanted: string[]): string[] {
    const outputNames: string[] = [];
    for (const raw of wanted) {
      const name = clean(raw);
      const v = this.vals.get(name);
      if (!v) throw new TfjsConvertError(`output ${raw} is not computed by the graph`);
      let src = v.name;
      if (v.rank === 4 && v.nchw) src = this.g.op('Transpose', [src], { perm: attr.ints([0, 2, 3, 1]) });
      this.g.op('Identity', [src], {}, name);
      this.g.output(name, Array.from({ length: v.rank }, (_, i) => (i === 0 ? 'N' : `d${i}`)));
      outputNames.push(name);
    }
    return outputNames;
  }

  run(): void {
    for (const n of this.nodes) {
      const v = this.node(n);
      if (v) this.vals.set(n.name, v);
    }
  }
}

/** The TF ops the converter knows (null: makes no value), each to a GraphConversion method. */
const OPS: Record<string, ((c: GraphConversion, n: TfNode) => Val) | null> = {
  Const: null,
  NoOp: null,
  Placeholder: (c, n) => c.placeholder(n),
  Identity: (c, n) => c.get(n.input![0]),
  StopGradient: (c, n) => c.get(n.input![0]),
  Conv2D: (c, n) => c.convLike(n, false, false),
  _FusedConv2D: (c, n) => c.convLike(n, false, true),
  DepthwiseConv2dNative: (c, n) => c.convLike(n, true, false),
  FusedDepthwiseConv2dNative: (c, n) => c.convLike(n, true, true),
  BiasAdd: (c, n) => c.binary(n, 'Add'),
  Add: (c, n) => c.binary(n, 'Add'),
  AddV2: (c, n) => c.binary(n, 'Add'),
  Sub: (c, n) => c.binary(n, 'Sub'),
  Mul: (c, n) => c.binary(n, 'Mul'),
  RealDiv: (c, n) => c.binary(n, 'Div'),
  Minimum: (c, n) => c.binary(n, 'Min'),
  Maximum: (c, n) => c.binary(n, 'Max'),
  Relu: (c, n) => c.act(n),
  Relu6: (c, n) => c.act(n),
  Sigmoid: (c, n) => c.act(n),
  Tanh: (c, n) => c.act(n),
  Elu: (c, n) => c.act(n),
  Softmax: (c, n) => c.softmax(n),
  Mean: (c, n) => c.mean(n),
  MaxPool: (c, n) => c.pool(n),
  AvgPool: (c, n) => c.pool(n),
  ConcatV2: (c, n) => c.concat(n),
  MatMul: (c, n) => c.matMul(n),
  _FusedMatMul: (c, n) => c.matMul(n),
};

/** Convert a TF.js graph model (parsed JSON and decoded weights) to ONNX bytes. */
export function convertTfjsGraph(model: TfjsGraphModelJson, weights: Map<string, ConstTensor>, opts: ConvertOptions = {}): ConvertResult {
  if (model.format && model.format !== 'graph-model') throw new TfjsConvertError(`not a TF.js graph model (format "${model.format}")`);
  const c = new GraphConversion(model.modelTopology.node, weights, opts);
  c.run();
  if (!c.inputName) throw new TfjsConvertError('the graph has no input (Placeholder)');
  const wanted = opts.outputs ?? Object.keys(model.signature?.outputs ?? {}).map((k) => model.signature!.outputs![k].name ?? k);
  if (!wanted.length) throw new TfjsConvertError('no outputs named (the model has no signature)');
  const outputNames = c.outputs(wanted);
  return { bytes: c.g.toBytes({ opset: 13, producer: 'restore tfjs-graph converter' }), inputName: c.inputName, inputShape: c.inputShape, outputNames, opCounts: c.opCounts };
}

/** Read a model.json and its shards from disk and convert. */
export function convertTfjsGraphFile(modelJsonPath: string, opts: ConvertOptions = {}): ConvertResult {
  const model = JSON.parse(readFileSync(modelJsonPath, 'utf8')) as TfjsGraphModelJson;
  const dir = path.dirname(modelJsonPath);
  const weights = decodeWeights(model.weightsManifest, (p) => new Uint8Array(readFileSync(path.join(dir, p))));
  return convertTfjsGraph(model, weights, opts);
}
