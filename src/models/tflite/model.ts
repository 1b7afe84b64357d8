/**
 * TFLite model reader: the flatbuffer (schema "TFL3") turned into plain objects, with the
 * options of the operators the converter understands decoded. Field ids follow TensorFlow
 * Lite's schema.fbs (Model, SubGraph, Tensor, Operator, OperatorCode, Buffer and the options
 * tables of the ops below).
 */
import { FbTable, fileIdentifier, rootTable } from './flatbuffer.js';

/** BuiltinOperator codes (schema.fbs) for the names we report; the rest print as their number. */
export const BUILTIN_OPS: Record<number, string> = {
  0: 'ADD', 1: 'AVERAGE_POOL_2D', 2: 'CONCATENATION', 3: 'CONV_2D', 4: 'DEPTHWISE_CONV_2D', 5: 'DEPTH_TO_SPACE',
  6: 'DEQUANTIZE', 8: 'FLOOR', 9: 'FULLY_CONNECTED', 14: 'LOGISTIC', 17: 'MAX_POOL_2D', 18: 'MUL', 19: 'RELU',
  21: 'RELU6', 22: 'RESHAPE', 23: 'RESIZE_BILINEAR', 25: 'SOFTMAX', 28: 'TANH', 32: 'CUSTOM', 34: 'PAD', 39: 'TRANSPOSE',
  40: 'MEAN', 41: 'SUB', 42: 'DIV', 43: 'SQUEEZE', 45: 'STRIDED_SLICE', 49: 'SPLIT', 53: 'CAST', 54: 'PRELU',
  55: 'MAXIMUM', 57: 'MINIMUM', 60: 'PADV2', 65: 'SLICE', 67: 'TRANSPOSE_CONV', 70: 'EXPAND_DIMS', 83: 'PACK',
  96: 'RESIZE_NEAREST_NEIGHBOR', 97: 'LEAKY_RELU', 99: 'MIRROR_PAD', 116: 'HARD_SWISH', 124: 'DENSIFY',
};

export const TENSOR_TYPES: Record<number, string> = {
  0: 'float32', 1: 'float16', 2: 'int32', 3: 'uint8', 4: 'int64', 5: 'string', 6: 'bool', 7: 'int16', 9: 'int8',
};

export type Padding = 'SAME' | 'VALID';
export type Activation = 'NONE' | 'RELU' | 'RELU_N1_TO_1' | 'RELU6' | 'TANH' | 'SIGN_BIT';
const ACTIVATIONS: Activation[] = ['NONE', 'RELU', 'RELU_N1_TO_1', 'RELU6', 'TANH', 'SIGN_BIT'];

export interface TfliteTensor {
  index: number;
  name: string;
  shape: number[];
  type: string;
  /** Constant data decoded to numbers (float16 widened to float32), when the tensor has a buffer. */
  data?: Float32Array | Int32Array;
  /** Tensor has sparsity parameters (DENSIFY models). */
  sparse: boolean;
}

export interface ConvOptions { padding: Padding; strideW: number; strideH: number; dilationW: number; dilationH: number; activation: Activation; depthMultiplier?: number }
export interface PoolOptions { padding: Padding; strideW: number; strideH: number; filterW: number; filterH: number; activation: Activation }

export interface TfliteOperator {
  index: number;
  op: string;
  opcode: number;
  inputs: number[];
  outputs: number[];
  /** Decoded options (only for ops the converter understands). */
  options: Record<string, any>;
}

export interface TfliteModel {
  version: number;
  description?: string;
  tensors: TfliteTensor[];
  operators: TfliteOperator[];
  inputs: number[];
  outputs: number[];
}

export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

function decodeData(type: string, bytes: Uint8Array): Float32Array | Int32Array | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (type) {
    case 'float32': {
      const n = bytes.byteLength >> 2;
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
      return out;
    }
    case 'float16': {
      const n = bytes.byteLength >> 1;
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
      return out;
    }
    case 'int32': {
      const n = bytes.byteLength >> 2;
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getInt32(i * 4, true);
      return out;
    }
    case 'int64': {
      const n = bytes.byteLength >> 3;
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = Number(view.getBigInt64(i * 8, true));
      return out;
    }
    default:
      return undefined;
  }
}

const padding = (v: number): Padding => (v === 1 ? 'VALID' : 'SAME');
const act = (v: number): Activation => ACTIVATIONS[v] ?? 'NONE';

function decodeOptions(op: string, t: FbTable | undefined): Record<string, any> {
  if (!t) return {};
  switch (op) {
    case 'CONV_2D':
      return { padding: padding(t.i8(0)), strideW: t.i32(1), strideH: t.i32(2), activation: act(t.i8(3)), dilationW: t.i32(4, 1), dilationH: t.i32(5, 1) } satisfies ConvOptions;
    case 'DEPTHWISE_CONV_2D':
      return {
        padding: padding(t.i8(0)), strideW: t.i32(1), strideH: t.i32(2), depthMultiplier: t.i32(3), activation: act(t.i8(4)),
        dilationW: t.i32(5, 1), dilationH: t.i32(6, 1),
      } satisfies ConvOptions;
    case 'MAX_POOL_2D':
    case 'AVERAGE_POOL_2D':
      return { padding: padding(t.i8(0)), strideW: t.i32(1), strideH: t.i32(2), filterW: t.i32(3), filterH: t.i32(4), activation: act(t.i8(5)) } satisfies PoolOptions;
    case 'ADD':
    case 'SUB':
    case 'MUL':
    case 'DIV':
      return { activation: act(t.i8(0)) };
    case 'CONCATENATION':
      return { axis: t.i32(0), activation: act(t.i8(1)) };
    case 'RESHAPE':
      return { newShape: t.i32s(0) };
    case 'RESIZE_BILINEAR':
      return { alignCorners: t.bool(2), halfPixelCenters: t.bool(3) };
    case 'RESIZE_NEAREST_NEIGHBOR':
      return { alignCorners: t.bool(0), halfPixelCenters: t.bool(1) };
    default:
      return {};
  }
}

export function parseTflite(buf: Uint8Array, label = 'model'): TfliteModel {
  const id = fileIdentifier(buf);
  if (id !== 'TFL3') throw new Error(`${label}: not a TFLite flatbuffer (file identifier "${id}", expected "TFL3")`);
  const model = rootTable(buf);
  const version = model.u32(0);
  const opcodes = model.tables(1).map((oc) => {
    // builtin_code (field 3, int32) supersedes deprecated_builtin_code (field 0, int8) in newer files.
    const deprecated = oc.i8(0);
    const code = Math.max(deprecated, oc.i32(3));
    return { code, custom: oc.string(1) };
  });
  const subgraphs = model.tables(2);
  if (subgraphs.length !== 1) throw new Error(`${label}: ${subgraphs.length} subgraphs; only single-subgraph models are supported`);
  const buffers = model.tables(4).map((b) => {
    const data = b.bytes(0);
    if (!data && b.u64(1) > 1n) {
      // Buffer stored outside the flatbuffer (offset/size fields, models > 2 GB)
      const off = Number(b.u64(1)), size = Number(b.u64(2));
      return buf.subarray(off, off + size);
    }
    return data;
  });
  const sg = subgraphs[0];
  const tensors: TfliteTensor[] = sg.tables(0).map((t, index) => {
    const type = TENSOR_TYPES[t.i8(1)] ?? `type${t.i8(1)}`;
    const bytes = buffers[t.u32(2)];
    return {
      index,
      name: t.string(3) ?? `t${index}`,
      shape: t.i32s(0),
      type,
      data: bytes && bytes.byteLength ? decodeData(type, bytes) : undefined,
      sparse: t.has(6),
    };
  });
  const operators: TfliteOperator[] = sg.tables(3).map((o, index) => {
    const oc = opcodes[o.u32(0)];
    const op = oc.code === 32 ? `CUSTOM(${oc.custom ?? '?'})` : BUILTIN_OPS[oc.code] ?? `BUILTIN_${oc.code}`;
    return { index, op, opcode: oc.code, inputs: o.i32s(1), outputs: o.i32s(2), options: decodeOptions(op, o.table(4)) };
  });
  return { version, description: model.string(3), tensors, operators, inputs: sg.i32s(1), outputs: sg.i32s(2) };
}
