/**
 * TensorFlow.js layers-model → ONNX converter (the project's own), for the RDN/ESRGAN weights
 * that ship in @upscalerjs/esrgan-* (MIT). Supported Keras layers: InputLayer, Conv2D (any
 * kernel, stride, dilation; 'same'/'valid'; linear/relu activation), Activation
 * (relu/linear/sigmoid/tanh), Concatenate, Add, UpSampling2D (nearest), PixelShuffle*
 * (depth-to-space, NHWC = ONNX DCR) and MultiplyBeta (x0.2, the RRDN 'thick' models).
 * The graph is rewritten NHWC → NCHW: input `input` [N,3,H,W], output `output` [N,3,sH,sW];
 * values keep the source model's range (0-255 for RDN).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { modelError } from '../errors.js';
import type { ModelEntry } from './manifest.js';
import { attr, OnnxGraphBuilder } from './onnx-builder.js';

interface KerasLayer {
  class_name: string;
  name: string;
  config: Record<string, any>;
  inbound_nodes: any[];
}

interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: unknown;
}

export interface TfjsModelJson {
  format?: string;
  modelTopology: { model_config: { class_name: string; config: { layers: KerasLayer[]; input_layers: any[]; output_layers: any[] } } };
  weightsManifest: { paths: string[]; weights: WeightSpec[] }[];
}

/** Read a TF.js layers model (model.json + shards) into its topology and named float32 weights. */
export function readTfjsModel(modelJson: string): { model: TfjsModelJson; weights: Map<string, { data: Float32Array; shape: number[] }> } {
  const model = JSON.parse(readFileSync(modelJson, 'utf8')) as TfjsModelJson;
  const weights = new Map<string, { data: Float32Array; shape: number[] }>();
  for (const group of model.weightsManifest) {
    const bufs = group.paths.map((p) => readFileSync(path.join(path.dirname(modelJson), p)));
    const all = Buffer.concat(bufs);
    let off = 0;
    for (const w of group.weights) {
      if (w.dtype !== 'float32' || w.quantization) throw modelError(`${modelJson}: weight ${w.name} is ${w.dtype}${w.quantization ? ' (quantized)' : ''}; only float32 is supported`);
      const n = w.shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(n);
      const bytes = all.subarray(off, off + n * 4);
      if (bytes.length !== n * 4) throw modelError(`${modelJson}: weight shards are truncated at ${w.name}`);
      new Uint8Array(data.buffer).set(bytes);
      off += n * 4;
      weights.set(w.name, { data, shape: w.shape });
    }
  }
  return { model, weights };
}

/** NHWC axis → NCHW axis. */
function nchwAxis(axis: number, rank = 4): number {
  const a = axis < 0 ? axis + rank : axis;
  return [0, 2, 3, 1][a];
}

/** HWIO kernel → OIHW. */
function hwioToOihw(k: Float32Array, [kh, kw, ci, co]: number[]): Float32Array {
  const out = new Float32Array(k.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < ci; i++)
        for (let o = 0; o < co; o++) out[((o * ci + i) * kh + y) * kw + x] = k[((y * kw + x) * ci + i) * co + o];
  return out;
}

export interface ConvertOptions {
  /** Graph/producer label. */
  label?: string;
}

/** Convert a TF.js layers model.json (with its shards beside it) to ONNX bytes. */
export function convertTfjsLayers(modelJson: string, opts: ConvertOptions = {}): Uint8Array {
  const { model, weights } = readTfjsModel(modelJson);
  const cfg = model.modelTopology.model_config;
  if (!['Functional', 'Model'].includes(cfg.class_name)) throw modelError(`${modelJson}: ${cfg.class_name} models are not supported (Functional only)`);
  const layers = cfg.config.layers;
  if (cfg.config.input_layers.length !== 1 || cfg.config.output_layers.length !== 1) {
    throw modelError(`${modelJson}: only single-input single-output models are supported`);
  }
  const g = new OnnxGraphBuilder(opts.label ?? 'tfjs');
  const tensor = new Map<string, string>(); // keras layer name → ONNX tensor name (NCHW)
  const weight = (layer: string, kind: string) => {
    const w = weights.get(`${layer}/${kind}`) ?? [...weights.entries()].find(([k]) => k.endsWith(`/${layer}/${kind}`))?.[1];
    return w;
  };
  const inputsOf = (l: KerasLayer): string[] => {
    if (l.inbound_nodes.length !== 1) throw modelError(`${modelJson}: layer ${l.name} is shared (${l.inbound_nodes.length} calls); not supported`);
    return (l.inbound_nodes[0] as any[]).map((ref) => {
      const t = tensor.get(ref[0]);
      if (!t) throw modelError(`${modelJson}: layer ${l.name} uses ${ref[0]} before it is defined`);
      return t;
    });
  };
  const activation = (x: string, act: string | undefined, where: string): string => {
    switch (act ?? 'linear') {
      case 'linear':
        return x;
      case 'relu':
        return g.op('Relu', [x]);
      case 'sigmoid':
        return g.op('Sigmoid', [x]);
      case 'tanh':
        return g.op('Tanh', [x]);
      default:
        throw modelError(`${modelJson}: activation '${act}' in ${where} is not supported`);
    }
  };

  for (const l of layers) {
    const c = l.config;
    switch (l.class_name) {
      case 'InputLayer': {
        const shape = c.batch_input_shape as (number | null)[];
        if (shape.length !== 4) throw modelError(`${modelJson}: input ${l.name} has rank ${shape.length}; only images (rank 4) are supported`);
        const ch = shape[3] ?? 3;
        tensor.set(l.name, g.input('input', ['n', ch, 'h', 'w']));
        break;
      }
      case 'Conv2D': {
        const [x] = inputsOf(l);
        if (c.data_format && c.data_format !== 'channels_last') throw modelError(`${modelJson}: ${l.name} is ${c.data_format}`);
        if ((c.groups ?? 1) !== 1) throw modelError(`${modelJson}: grouped conv ${l.name} is not supported`);
        const k = weight(l.name, 'kernel');
        if (!k) throw modelError(`${modelJson}: no kernel weights for ${l.name}`);
        const [kh, kw] = k.shape;
        const [sh, sw] = c.strides ?? [1, 1];
        const [dh, dw] = c.dilation_rate ?? [1, 1];
        let pads = [0, 0, 0, 0];
        if (c.padding === 'same') {
          if (sh !== 1 || sw !== 1) throw modelError(`${modelJson}: strided 'same' conv ${l.name} needs input-size-dependent padding; not supported`);
          const th = dh * (kh - 1);
          const tw = dw * (kw - 1);
          pads = [Math.floor(th / 2), Math.floor(tw / 2), th - Math.floor(th / 2), tw - Math.floor(tw / 2)];
        } else if (c.padding !== 'valid') throw modelError(`${modelJson}: padding '${c.padding}' in ${l.name} is not supported`);
        const wName = g.float(hwioToOihw(k.data, k.shape), [k.shape[3], k.shape[2], kh, kw], `${l.name}.weight`);
        const ins = [x, wName];
        if (c.use_bias !== false) {
          const b = weight(l.name, 'bias');
          if (!b) throw modelError(`${modelJson}: no bias weights for ${l.name}`);
          ins.push(g.float(b.data, [b.data.length], `${l.name}.bias`));
        }
        const y = g.op('Conv', ins, {
          kernel_shape: attr.ints([kh, kw]),
          strides: attr.ints([sh, sw]),
          dilations: attr.ints([dh, dw]),
          pads: attr.ints(pads),
        });
        tensor.set(l.name, activation(y, c.activation, l.name));
        break;
      }
      case 'Activation': {
        const [x] = inputsOf(l);
        tensor.set(l.name, activation(x, c.activation, l.name));
        break;
      }
      case 'ReLU': {
        const [x] = inputsOf(l);
        if (c.max_value != null || (c.negative_slope ?? 0) !== 0 || (c.threshold ?? 0) !== 0) throw modelError(`${modelJson}: parametrized ReLU ${l.name} is not supported`);
        tensor.set(l.name, g.op('Relu', [x]));
        break;
      }
      case 'Concatenate': {
        const xs = inputsOf(l);
        tensor.set(l.name, g.op('Concat', xs, { axis: attr.int(nchwAxis(c.axis ?? -1)) }));
        break;
      }
      case 'Add': {
        const xs = inputsOf(l);
        let y = xs[0];
        for (let i = 1; i < xs.length; i++) y = g.op('Add', [y, xs[i]]);
        tensor.set(l.name, y);
        break;
      }
      case 'UpSampling2D': {
        const [x] = inputsOf(l);
        if ((c.interpolation ?? 'nearest') !== 'nearest') throw modelError(`${modelJson}: ${c.interpolation} upsampling in ${l.name} is not supported`);
        const [fh, fw] = c.size;
        const scales = g.float([1, 1, fh, fw], [4]);
        const roi = g.float([], [0]);
        tensor.set(
          l.name,
          g.op('Resize', [x, roi, scales], {
            mode: attr.string('nearest'),
            coordinate_transformation_mode: attr.string('asymmetric'),
            nearest_mode: attr.string('floor'),
          }),
        );
        break;
      }
      default: {
        const shuffle = /^PixelShuffle(\d+)x$/.exec(l.class_name);
        if (shuffle) {
          const [x] = inputsOf(l);
          tensor.set(l.name, g.op('DepthToSpace', [x], { blocksize: attr.int(+shuffle[1]), mode: attr.string('DCR') }));
          break;
        }
        if (l.class_name === 'MultiplyBeta') {
          const [x] = inputsOf(l);
          // upscalerjs registers the layer with a fixed beta of 0.2; the saved config states it too
          const beta = typeof c.beta === 'number' ? c.beta : 0.2;
          tensor.set(l.name, g.op('Mul', [x, g.float([beta], [])]));
          break;
        }
        throw modelError(`${modelJson}: layer ${l.name} of type ${l.class_name} is not supported by the TF.js converter`);
      }
    }
  }
  const outLayer = cfg.config.output_layers[0][0] as string;
  const last = tensor.get(outLayer);
  if (!last) throw modelError(`${modelJson}: output layer ${outLayer} not found`);
  g.op('Identity', [last], {}, 'output');
  g.output('output', ['n', 3, 'oh', 'ow']);
  return g.toBytes({ producer: 'restore tfjs-layers converter', docString: `converted from ${path.basename(path.dirname(modelJson))}/${path.basename(modelJson)}` });
}

/** Registry hook: convert an embedded manifest entry (source.converter === 'tfjs-layers'). */
export async function convertEmbeddedEntry(entry: ModelEntry, sourceFile: string): Promise<Uint8Array> {
  return convertTfjsLayers(sourceFile, { label: entry.name });
}
