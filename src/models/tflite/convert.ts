/**
 * TFLite → ONNX converter for the convolutional graphs MediaPipe ships (BlazeFace detectors,
 * face mesh): DEQUANTIZE (fp16 weights, folded to fp32 initializers), CONV_2D,
 * DEPTHWISE_CONV_2D, RELU, RELU6, PRELU, ADD, PAD, MAX_POOL_2D, AVERAGE_POOL_2D, RESHAPE,
 * CONCATENATION, RESIZE_BILINEAR, LOGISTIC.
 *
 * Layout: inside the ONNX graph 4-D activations are NCHW (what ONNX Runtime's conv kernels
 * want); the model's external inputs and outputs keep the TFLite layout and names (input
 * [1,H,W,3] NHWC; outputs as TFLite declares them), so callers feed the same tensors the
 * TFLite model takes. Transposes are inserted only at the boundary and before RESHAPE /
 * CONCATENATION of non-4-D tensors, where NHWC element order matters.
 *
 * SAME padding is made explicit (TFLite pads the extra pixel at the bottom/right).
 */
import { OnnxGraphBuilder, attr } from '../onnx-builder.js';
import { parseTflite, type TfliteModel, type TfliteOperator, type TfliteTensor } from './model.js';

/** Bumped whenever the converter's output changes; part of the conversion cache key. */
export const CONVERTER_VERSION = 1;

export const SUPPORTED_OPS = [
  'DEQUANTIZE', 'CONV_2D', 'DEPTHWISE_CONV_2D', 'RELU', 'RELU6', 'PRELU', 'ADD', 'PAD', 'MAX_POOL_2D',
  'AVERAGE_POOL_2D', 'RESHAPE', 'CONCATENATION', 'RESIZE_BILINEAR', 'LOGISTIC',
] as const;

export class UnsupportedOpError extends Error {
  constructor(readonly op: string, label: string, where: string) {
    super(`${label}: TFLite op ${op} is not supported by the converter (${where}); supported: ${SUPPORTED_OPS.join(', ')}`);
    this.name = 'UnsupportedOpError';
  }
}

const NHWC_TO_NCHW = [0, 3, 1, 2];
const NCHW_TO_NHWC = [0, 2, 3, 1];

/** SAME padding as TFLite computes it: [begin, end] with the extra pixel at the end. */
export function samePads(inSize: number, k: number, stride: number, dilation = 1): [number, number] {
  const out = Math.ceil(inSize / stride);
  const eff = (k - 1) * dilation + 1;
  const total = Math.max((out - 1) * stride + eff - inSize, 0);
  const begin = Math.floor(total / 2);
  return [begin, total - begin];
}

interface Val {
  name: string;
  /** 'nchw': a 4-D activation stored transposed; 'plain': TFLite order. */
  layout: 'nchw' | 'plain';
}

export interface ConvertOptions {
  label?: string;
  /** Extra text for the model's doc string (e.g. the source hash). */
  docString?: string;
}

export interface ConvertResult {
  onnx: Uint8Array;
  model: TfliteModel;
  inputs: { name: string; shape: number[] }[];
  outputs: { name: string; shape: number[] }[];
  ops: Record<string, number>;
}

/** Throws UnsupportedOpError naming the first op the converter cannot handle. */
export function checkSupported(model: TfliteModel, label = 'model'): void {
  for (const op of model.operators) {
    if (!(SUPPORTED_OPS as readonly string[]).includes(op.op)) {
      throw new UnsupportedOpError(op.op, label, `operator #${op.index}`);
    }
  }
  for (const t of model.tensors) {
    if (t.sparse) throw new UnsupportedOpError('DENSIFY (sparse weights)', label, `tensor ${t.name}`);
  }
}

export function convertTflite(buf: Uint8Array, opts: ConvertOptions = {}): ConvertResult {
  const label = opts.label ?? 'model';
  const model = parseTflite(buf, label);
  checkSupported(model, label);
  const g = new OnnxGraphBuilder(label);
  const T = model.tensors;
  const vals = new Map<number, Val>();
  /** Constant data per tensor (model constants and folded DEQUANTIZE outputs). */
  const consts = new Map<number, Float32Array | Int32Array>();
  for (const t of T) if (t.data) consts.set(t.index, t.data);

  const ops: Record<string, number> = {};
  for (const o of model.operators) ops[o.op] = (ops[o.op] ?? 0) + 1;

  // External inputs (NHWC) → NCHW inside.
  for (const i of model.inputs) {
    const t = T[i];
    g.input(t.name, t.shape, 'float');
    if (t.shape.length === 4) vals.set(i, { name: g.op('Transpose', [t.name], { perm: attr.ints(NHWC_TO_NCHW) }), layout: 'nchw' });
    else vals.set(i, { name: t.name, layout: 'plain' });
  }

  const constF = (i: number): Float32Array => {
    const d = consts.get(i);
    if (!d) throw new Error(`${label}: tensor ${T[i].name} was expected to be constant`);
    return d instanceof Float32Array ? d : Float32Array.from(d);
  };
  const constI = (i: number): number[] => {
    const d = consts.get(i);
    if (!d) throw new Error(`${label}: tensor ${T[i].name} was expected to be constant`);
    return Array.from(d, (v) => Math.round(v));
  };

  /** ONNX value of a tensor in NCHW (4-D) layout, materializing constants. */
  const nchw = (i: number): string => {
    const v = vals.get(i);
    if (v) return v.layout === 'nchw' ? v.name : g.op('Transpose', [v.name], { perm: attr.ints(NHWC_TO_NCHW) });
    const t = T[i];
    const d = constF(i);
    if (t.shape.length === 4) {
      const [n, h, w, c] = t.shape;
      const out = new Float32Array(d.length);
      for (let a = 0; a < n; a++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) {
        out[((a * c + k) * h + y) * w + x] = d[((a * h + y) * w + x) * c + k];
      }
      return g.init(undefined, out, [n, c, h, w]);
    }
    // Lower-rank constant broadcast against NHWC: its last axis is channels → [C,1,1].
    const c = t.shape.length ? t.shape[t.shape.length - 1] : 1;
    if (d.length !== c) throw new Error(`${label}: cannot broadcast constant ${t.name} of shape [${t.shape}] in NCHW`);
    return g.init(undefined, d, c === 1 ? [1] : [c, 1, 1]);
  };
  /** ONNX value of a tensor in TFLite order. */
  const plain = (i: number): string => {
    const v = vals.get(i);
    if (v) return v.layout === 'plain' ? v.name : g.op('Transpose', [v.name], { perm: attr.ints(NCHW_TO_NHWC) });
    return g.init(undefined, constF(i), T[i].shape);
  };
  const is4d = (i: number) => T[i].shape.length === 4;
  const activation = (x: string, a: string | undefined, where: string): string => {
    switch (a ?? 'NONE') {
      case 'NONE': return x;
      case 'RELU': return g.op('Relu', [x]);
      case 'RELU6': return g.op('Clip', [x, g.float([0], []), g.float([6], [])]);
      case 'TANH': return g.op('Tanh', [x]);
      default: throw new UnsupportedOpError(`fused activation ${a}`, label, where);
    }
  };
  const set = (o: TfliteOperator, name: string, layout: Val['layout']) => vals.set(o.outputs[0], { name, layout });

  for (const o of model.operators) {
    const where = `operator #${o.index} ${o.op}`;
    const [i0, i1, i2] = o.inputs;
    const opt = o.options;
    switch (o.op) {
      case 'DEQUANTIZE': {
        const d = consts.get(i0);
        if (!d) throw new UnsupportedOpError('DEQUANTIZE of a non-constant tensor', label, where);
        if (T[i0].type !== 'float16' && T[i0].type !== 'float32') throw new UnsupportedOpError(`DEQUANTIZE of ${T[i0].type}`, label, where);
        consts.set(o.outputs[0], d);
        break;
      }
      case 'CONV_2D':
      case 'DEPTHWISE_CONV_2D': {
        const wt = T[i1];
        const w = constF(i1);
        const [, ih, iw, ic] = T[i0].shape;
        let dims: number[];
        let data: Float32Array;
        let group = 1;
        if (o.op === 'CONV_2D') {
          const [O, KH, KW, I] = wt.shape; // OHWI → OIHW
          data = new Float32Array(w.length);
          for (let a = 0; a < O; a++) for (let y = 0; y < KH; y++) for (let x = 0; x < KW; x++) for (let c = 0; c < I; c++) {
            data[((a * I + c) * KH + y) * KW + x] = w[((a * KH + y) * KW + x) * I + c];
          }
          dims = [O, I, KH, KW];
          if (I !== ic) throw new Error(`${label}: ${where}: weight channels ${I} != input channels ${ic}`);
        } else {
          const [, KH, KW, OC] = wt.shape; // 1HWO → O1HW, group = input channels
          data = new Float32Array(w.length);
          for (let y = 0; y < KH; y++) for (let x = 0; x < KW; x++) for (let c = 0; c < OC; c++) {
            data[(c * KH + y) * KW + x] = w[(y * KW + x) * OC + c];
          }
          dims = [OC, 1, KH, KW];
          group = ic;
        }
        const KH = dims[2], KW = dims[3];
        const sh = opt.strideH || 1, sw = opt.strideW || 1, dh = opt.dilationH || 1, dw = opt.dilationW || 1;
        const [pt, pb] = opt.padding === 'SAME' ? samePads(ih, KH, sh, dh) : [0, 0];
        const [pl, pr] = opt.padding === 'SAME' ? samePads(iw, KW, sw, dw) : [0, 0];
        const inputs = [nchw(i0), g.init(undefined, data, dims)];
        if (i2 !== undefined && i2 >= 0) inputs.push(g.init(undefined, constF(i2), [dims[0]]));
        const y = g.op('Conv', inputs, {
          kernel_shape: attr.ints([KH, KW]), strides: attr.ints([sh, sw]), dilations: attr.ints([dh, dw]),
          pads: attr.ints([pt, pl, pb, pr]), group: attr.int(group),
        });
        set(o, activation(y, opt.activation, where), 'nchw');
        break;
      }
      case 'MAX_POOL_2D':
      case 'AVERAGE_POOL_2D': {
        const [, ih, iw] = T[i0].shape;
        const [pt, pb] = opt.padding === 'SAME' ? samePads(ih, opt.filterH, opt.strideH) : [0, 0];
        const [pl, pr] = opt.padding === 'SAME' ? samePads(iw, opt.filterW, opt.strideW) : [0, 0];
        const attrs = {
          kernel_shape: attr.ints([opt.filterH, opt.filterW]), strides: attr.ints([opt.strideH, opt.strideW]), pads: attr.ints([pt, pl, pb, pr]),
          ...(o.op === 'AVERAGE_POOL_2D' ? { count_include_pad: attr.int(0) } : {}),
        };
        const y = g.op(o.op === 'MAX_POOL_2D' ? 'MaxPool' : 'AveragePool', [nchw(i0)], attrs);
        set(o, activation(y, opt.activation, where), 'nchw');
        break;
      }
      case 'RELU':
      case 'RELU6':
      case 'LOGISTIC': {
        const v = vals.get(i0);
        const x = v ? v.name : plain(i0);
        const layout = v?.layout ?? 'plain';
        const y = o.op === 'RELU' ? g.op('Relu', [x]) : o.op === 'LOGISTIC' ? g.op('Sigmoid', [x]) : activation(x, 'RELU6', where);
        set(o, y, layout);
        break;
      }
      case 'PRELU': {
        if (!is4d(i0)) throw new UnsupportedOpError('PRELU on a non-4-D tensor', label, where);
        set(o, g.op('PRelu', [nchw(i0), nchw(i1)]), 'nchw');
        break;
      }
      case 'ADD': {
        const out4 = T[o.outputs[0]].shape.length === 4;
        const y = out4 ? g.op('Add', [nchw(i0), nchw(i1)]) : g.op('Add', [plain(i0), plain(i1)]);
        set(o, activation(y, opt.activation, where), out4 ? 'nchw' : 'plain');
        break;
      }
      case 'PAD': {
        const p = constI(i1); // [rank, 2] in TFLite axis order
        const rank = T[i0].shape.length;
        if (rank === 4) {
          const begin = NHWC_TO_NCHW.map((a) => p[a * 2]);
          const end = NHWC_TO_NCHW.map((a) => p[a * 2 + 1]);
          set(o, g.op('Pad', [nchw(i0), g.int64([...begin, ...end])], { mode: attr.string('constant') }), 'nchw');
        } else {
          const begin = Array.from({ length: rank }, (_, a) => p[a * 2]);
          const end = Array.from({ length: rank }, (_, a) => p[a * 2 + 1]);
          set(o, g.op('Pad', [plain(i0), g.int64([...begin, ...end])], { mode: attr.string('constant') }), 'plain');
        }
        break;
      }
      case 'RESHAPE': {
        const shape = T[o.outputs[0]].shape.length ? T[o.outputs[0]].shape : opt.newShape?.length ? opt.newShape : constI(i1);
        const y = g.op('Reshape', [plain(i0), g.int64(shape)]);
        set(o, y, 'plain');
        // A reshape to 4-D leaves the value in TFLite order; later ops transpose it when they need NCHW.
        break;
      }
      case 'CONCATENATION': {
        const rank = T[o.outputs[0]].shape.length;
        const axis = opt.axis < 0 ? opt.axis + rank : opt.axis;
        const all4 = rank === 4 && o.inputs.every((i) => vals.get(i)?.layout === 'nchw' || !vals.has(i));
        const y = all4
          ? g.op('Concat', o.inputs.map(nchw), { axis: attr.int(NHWC_TO_NCHW.indexOf(axis)) })
          : g.op('Concat', o.inputs.map(plain), { axis: attr.int(axis) });
        set(o, activation(y, opt.activation, where), all4 ? 'nchw' : 'plain');
        break;
      }
      case 'RESIZE_BILINEAR': {
        const [oh, ow] = constI(i1);
        const [n, , , c] = T[i0].shape;
        const mode = opt.alignCorners ? 'align_corners' : opt.halfPixelCenters ? 'half_pixel' : 'asymmetric';
        const y = g.op('Resize', [nchw(i0), '', '', g.int64([n, c, oh, ow])], {
          mode: attr.string('linear'), coordinate_transformation_mode: attr.string(mode),
        });
        set(o, y, 'nchw');
        break;
      }
      default:
        throw new UnsupportedOpError(o.op, label, where);
    }
  }

  // Outputs keep TFLite's names and layout.
  for (const i of model.outputs) {
    const t = T[i];
    g.op('Identity', [plain(i)], {}, t.name);
    g.output(t.name, t.shape, 'float');
  }
  return {
    onnx: g.toBytes({ opset: 13, producer: 'restore tflite2onnx', docString: opts.docString ?? `converted from ${label}` }),
    model,
    inputs: model.inputs.map((i) => ({ name: T[i].name, shape: T[i].shape })),
    outputs: model.outputs.map((i) => ({ name: T[i].name, shape: T[i].shape })),
    ops,
  };
}

export type { TfliteTensor };
