/**
 * A small ONNX graph writer on top of onnx-proto. Used by the project's converters
 * (TFLite → ONNX, TF.js → ONNX) and by tests that build tiny models with a real model's
 * tensor names, shapes and ranges and a known function inside.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
// onnx-proto is CommonJS; its namespace holds the generated protobuf classes.
const { onnx } = require('onnx-proto') as typeof import('onnx-proto');

export type ElemType = 'float' | 'double' | 'int64' | 'int32' | 'float16' | 'uint8' | 'bool';
const ELEM: Record<ElemType, number> = {
  float: onnx.TensorProto.DataType.FLOAT,
  uint8: onnx.TensorProto.DataType.UINT8,
  int32: onnx.TensorProto.DataType.INT32,
  int64: onnx.TensorProto.DataType.INT64,
  bool: onnx.TensorProto.DataType.BOOL,
  float16: onnx.TensorProto.DataType.FLOAT16,
  double: onnx.TensorProto.DataType.DOUBLE,
};

/** An attribute value with its ONNX type made explicit (1 vs 1.0 cannot be told apart in JS). */
export type Attr =
  | { int: number }
  | { ints: number[] }
  | { float: number }
  | { floats: number[] }
  | { string: string }
  | { tensor: { data: Float32Array | BigInt64Array | Int32Array; dims: number[] } };

export const attr = {
  int: (v: number): Attr => ({ int: v }),
  ints: (v: number[]): Attr => ({ ints: v }),
  float: (v: number): Attr => ({ float: v }),
  floats: (v: number[]): Attr => ({ floats: v }),
  string: (v: string): Attr => ({ string: v }),
};

type Dim = number | string;

function tensorProto(name: string, data: Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array, dims: number[]) {
  const t: any = { name, dims };
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof Float32Array) t.dataType = ELEM.float;
  else if (data instanceof Float64Array) t.dataType = ELEM.double;
  else if (data instanceof BigInt64Array) t.dataType = ELEM.int64;
  else if (data instanceof Int32Array) t.dataType = ELEM.int32;
  else t.dataType = ELEM.uint8;
  t.rawData = bytes; // raw little-endian bytes
  return t;
}

function valueInfo(name: string, type: ElemType, dims: Dim[]) {
  return {
    name,
    type: {
      tensorType: {
        elemType: ELEM[type],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

export class OnnxGraphBuilder {
  private nodes: any[] = [];
  private inputs: any[] = [];
  private outputs: any[] = [];
  private inits: any[] = [];
  private counter = 0;
  private names = new Set<string>();

  constructor(readonly graphName = 'graph') {}

  /** A fresh tensor name with the given prefix. */
  fresh(prefix: string): string {
    let n: string;
    do n = `${prefix}_${this.counter++}`;
    while (this.names.has(n));
    this.names.add(n);
    return n;
  }

  input(name: string, dims: Dim[], type: ElemType = 'float'): string {
    this.names.add(name);
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  output(name: string, dims: Dim[], type: ElemType = 'float'): string {
    this.outputs.push(valueInfo(name, type, dims));
    return name;
  }

  /** A constant tensor; returns its name. */
  init(name: string | undefined, data: Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array, dims: number[]): string {
    const n = name ?? this.fresh('const');
    this.names.add(n);
    this.inits.push(tensorProto(n, data, dims));
    return n;
  }

  /** Shorthand for an int64 constant (shapes, axes, pads). */
  int64(values: number[], name?: string): string {
    return this.init(name, BigInt64Array.from(values.map((v) => BigInt(v))), [values.length]);
  }

  /** Shorthand for a float constant. */
  float(values: number[] | Float32Array, dims: number[], name?: string): string {
    return this.init(name, values instanceof Float32Array ? values : Float32Array.from(values), dims);
  }

  /**
   * Add a node. `outputs` may be a count (fresh names are made) or explicit names.
   * Returns the output names.
   */
  node(op: string, inputs: string[], outputs: number | string[] = 1, attrs: Record<string, Attr> = {}, domain?: string): string[] {
    const outs = typeof outputs === 'number' ? Array.from({ length: outputs }, () => this.fresh(op.toLowerCase())) : outputs;
    for (const o of outs) this.names.add(o);
    const attribute = Object.entries(attrs).map(([name, a]) => {
      if ('int' in a) return { name, type: onnx.AttributeProto.AttributeType.INT, i: a.int };
      if ('ints' in a) return { name, type: onnx.AttributeProto.AttributeType.INTS, ints: a.ints };
      if ('float' in a) return { name, type: onnx.AttributeProto.AttributeType.FLOAT, f: a.float };
      if ('floats' in a) return { name, type: onnx.AttributeProto.AttributeType.FLOATS, floats: a.floats };
      if ('string' in a) return { name, type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode(a.string) };
      return { name, type: onnx.AttributeProto.AttributeType.TENSOR, t: tensorProto(name, a.tensor.data, a.tensor.dims) };
    });
    this.nodes.push({ opType: op, input: inputs, output: outs, name: this.fresh(`n_${op}`), attribute, ...(domain ? { domain } : {}) });
    return outs;
  }

  /** Single-output node; returns its output name. */
  op(op: string, inputs: string[], attrs: Record<string, Attr> = {}, outName?: string): string {
    return this.node(op, inputs, outName ? [outName] : 1, attrs)[0];
  }

  /** Serialize to ONNX bytes. */
  toBytes(opts: { opset?: number; producer?: string; docString?: string } = {}): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 7,
      producerName: opts.producer ?? 'restore',
      docString: opts.docString ?? '',
      opsetImport: [{ domain: '', version: opts.opset ?? 13 }],
      graph: {
        name: this.graphName,
        node: this.nodes,
        input: this.inputs,
        output: this.outputs,
        initializer: this.inits,
      } as any,
    });
    return onnx.ModelProto.encode(model).finish();
  }
}
