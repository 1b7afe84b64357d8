/**
 * Model swap backends (SimSwap 256/512, GHOST = FaceShifter AEI-Net, inswapper_128): one
 * shared runner driven by the manifest contract.
 *
 * - Identity: the ArcFace embedding (contract.identity.embedder, w600k_r50 at arcface_112_v2)
 *   of each identity photo, averaged; then, per model, the identity converter named in the
 *   manifest (crossface_simswap / crossface_ghost), and the source normalization of the
 *   contract: 'l2', 'none', or 'l2-emap-l2' (inswapper: normalize, multiply by `emap` = the
 *   last 512x512 initializer of the model file, normalize again).
 * - Target: align the frame's five points to the contract template at the crop size, feed
 *   NCHW in the contract's range ([0,1], [-1,1] or ImageNet mean/std) and colour order.
 * - Result: the output image mapped back to 0..255, pasted into the frame with the soft
 *   masks of src/faces/align.ts (hull of the face mesh when present, box otherwise).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { modelError } from '../../errors.js';
import type { RgbFrame } from '../../media/frame.js';
import { estimateSimilarity, isTemplateName, pasteBack, templatePoints, warpAffine, applyAffine, type Affine, type TemplateName } from '../../faces/align.js';
import { l2normalize } from '../../faces/descriptor.js';
import type { Face, Point } from '../../faces/types.js';
import { entriesFor, type TensorSpec } from '../../models/manifest.js';
import { openModel, type OpenedModel } from '../../models/registry.js';
import { ort, type DeviceRequest } from '../../models/session.js';
import { FACE_OVAL } from './topology.js';

const require = createRequire(import.meta.url);

/** The model-backed swap backends and the manifest entries they try, in preference order. */
/**
 * The model files each model backend accepts, in preference order: the manifest's face-swap
 * entries of that family (a new SimSwap or GHOST export is a manifest entry, nothing else).
 */
export function swapModelNames(backend: 'inswapper' | 'simswap' | 'ghost'): string[] {
  return entriesFor('face-swap').filter((e) => e.family === backend).map((e) => e.name);
}

/**
 * `emap` of an inswapper file: the last initializer of shape [512, 512], as float32 row-major.
 * Reads the ONNX protobuf with onnx-proto.
 */
export function readEmap(file: string | Uint8Array): Float32Array {
  const { onnx } = require('onnx-proto') as typeof import('onnx-proto');
  const bytes = typeof file === 'string' ? readFileSync(file) : file;
  let model: any;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw modelError(`${typeof file === 'string' ? file : 'model'}: not a readable ONNX file (${(e as Error).message})`);
  }
  const inits: any[] = model.graph?.initializer ?? [];
  let found: any;
  for (const t of inits) {
    const dims = (t.dims ?? []).map(Number);
    if (dims.length === 2 && dims[0] === 512 && dims[1] === 512) found = t;
  }
  if (!found) throw modelError(`${typeof file === 'string' ? file : 'model'}: no 512x512 initializer (emap) found; is this inswapper_128?`);
  if (found.dataType !== onnx.TensorProto.DataType.FLOAT) throw modelError(`emap initializer '${found.name}' is not float32`);
  if (found.rawData && found.rawData.length) {
    const raw: Uint8Array = found.rawData;
    const copy = new Uint8Array(raw); // aligned copy
    return new Float32Array(copy.buffer, 0, 512 * 512);
  }
  if (found.floatData?.length === 512 * 512) return Float32Array.from(found.floatData);
  throw modelError(`emap initializer '${found.name}' has no data`);
}

/** v (1x512) times M (512x512, row-major): out_j = sum_i v_i M_ij. */
export function vecMat(v: Float32Array, m: Float32Array): Float32Array {
  const n = v.length;
  const out = new Float32Array(m.length / n);
  const cols = out.length;
  for (let i = 0; i < n; i++) {
    const vi = v[i];
    if (!vi) continue;
    const row = i * cols;
    for (let j = 0; j < cols; j++) out[j] += vi * m[row + j];
  }
  return out;
}

/** Image → NCHW float tensor data as a contract's input spec wants it. */
export function toModelInput(crop: RgbFrame, spec: TensorSpec): Float32Array {
  const n = crop.width * crop.height;
  const x = new Float32Array(3 * n);
  const bgr = spec.color === 'BGR';
  const range = spec.range ?? [0, 1];
  const mean = spec.mean ?? [0.485, 0.456, 0.406], std = spec.std ?? [0.229, 0.224, 0.225];
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      const v = crop.data[i * 3 + c] / 255;
      const dc = bgr ? 2 - c : c;
      x[dc * n + i] = range === 'imagenet' ? (v - mean[c]) / std[c] : range[0] + v * (range[1] - range[0]);
    }
  }
  return x;
}

/** NCHW model output → RGB crop, per the output spec's range and colour order. */
export function fromModelOutput(data: Float32Array, size: number, spec: TensorSpec): RgbFrame {
  const n = size * size;
  const out = new Uint8Array(n * 3);
  const bgr = spec.color === 'BGR';
  const range = spec.range === 'imagenet' || !spec.range ? ([0, 1] as [number, number]) : spec.range;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      const sc = bgr ? 2 - c : c;
      const v = ((data[sc * n + i] - range[0]) / (range[1] - range[0])) * 255;
      out[i * 3 + c] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
    }
  }
  return { width: size, height: size, data: out };
}

export interface SwapModelFiles {
  /** Swap model file (default: the manifest location). */
  model?: string;
  /** ArcFace file (default: arcface_w600k_r50 from the manifest). */
  embedder?: string;
  /** Identity converter file (crossface_*), when the model needs one. */
  converter?: string;
}

export interface SwapModel {
  readonly name: string;
  readonly crop: number;
  readonly template: TemplateName;
  readonly provider: string;
  /** ArcFace embedding of a face (L2-normalized), from the embedder named in the manifest. */
  embed(frame: RgbFrame, five: Point[]): Promise<Float32Array>;
  /** The model's source latent for an (averaged) ArcFace embedding. */
  sourceLatent(arcface: Float32Array): Promise<Float32Array>;
  /** Aligned crop of a face, at the model's template and size. */
  align(frame: RgbFrame, five: Point[]): { crop: RgbFrame; matrix: Affine };
  /** Run the model on an aligned crop; returns the swapped crop (and the raw outputs). */
  runCrop(crop: RgbFrame, latent: Float32Array): Promise<{ image: RgbFrame; outputs: Record<string, ort.Tensor> }>;
  /** Align, run, paste back. */
  swapFace(frame: RgbFrame, face: Face, latent: Float32Array): Promise<RgbFrame>;
}

/** Open a swap model with its embedder and converter, each checked against its contract. */
export async function openSwapModel(
  name: string,
  opts: { device?: DeviceRequest; log?: (m: string) => void; files?: SwapModelFiles } = {},
): Promise<SwapModel> {
  const files = opts.files ?? {};
  const m: OpenedModel = await openModel(name, { device: opts.device, log: opts.log, file: files.model });
  const c = m.entry.contract;
  const crop = c.crop;
  const template = c.template;
  if (!crop || !template || !isTemplateName(template)) throw modelError(`manifest entry ${name}: the contract needs a crop size and a known template`);
  const target = m.inputs.target, source = m.inputs.source, image = m.outputs.image;
  if (!target || !source || !image) throw modelError(`manifest entry ${name}: the contract needs 'target', 'source' inputs and an 'image' output`);
  const norm = source.spec.normalize ?? 'l2';
  const embedderName = c.identity?.embedder ?? 'arcface_w600k_r50';
  const embedder = await openModel(embedderName, { device: opts.device, log: opts.log, file: files.embedder });
  const converterName = c.identity?.converter;
  let converter: OpenedModel | undefined;
  if (converterName) {
    try {
      converter = await openModel(converterName, { device: opts.device, log: opts.log, file: files.converter });
    } catch (e) {
      throw modelError(
        `${name} needs the identity converter ${converterName} to map ArcFace embeddings into its identity space: ${(e as Error).message}`,
        `restore models add <file.onnx> --as ${converterName}`,
        e,
      );
    }
  }
  let emap: Float32Array | undefined;
  if (norm === 'l2-emap-l2') emap = readEmap(m.path);
  const embSpec = embedder.inputs.image;
  const embSize = embedder.entry.contract.crop ?? 112;
  const embTemplate = (embedder.entry.contract.template ?? 'arcface_112_v2') as TemplateName;

  const align = (frame: RgbFrame, five: Point[]) => {
    const matrix = estimateSimilarity(five, templatePoints(template, crop));
    return { crop: warpAffine(frame, matrix, crop, crop), matrix };
  };
  const runCrop = async (img: RgbFrame, latent: Float32Array) => {
    const feeds: Record<string, ort.Tensor> = {
      [target.name]: new ort.Tensor('float32', toModelInput(img, target.spec), [1, 3, crop, crop]),
      [source.name]: new ort.Tensor('float32', latent, [1, latent.length]),
    };
    const outputs = (await m.session.run(feeds)) as Record<string, ort.Tensor>;
    return { image: fromModelOutput(outputs[image.name].data as Float32Array, crop, image.spec), outputs };
  };
  return {
    name: m.entry.name,
    crop,
    template,
    provider: m.provider,
    align,
    runCrop,
    async embed(frame, five) {
      const mat = estimateSimilarity(five, templatePoints(embTemplate, embSize));
      const c2 = warpAffine(frame, mat, embSize, embSize);
      const res = await embedder.session.run({
        [embSpec.name]: new ort.Tensor('float32', toModelInput(c2, embSpec.spec), [1, 3, embSize, embSize]),
      });
      return l2normalize(res[embedder.outputs.embedding.name].data as Float32Array);
    },
    async sourceLatent(arcface) {
      let v = l2normalize(arcface);
      if (converter) {
        const res = await converter.session.run({ [converter.inputs.embedding.name]: new ort.Tensor('float32', v, [1, v.length]) });
        v = Float32Array.from(res[converter.outputs.embedding.name].data as Float32Array);
      }
      if (norm === 'l2') return l2normalize(v);
      if (norm === 'l2-emap-l2') return l2normalize(vecMat(l2normalize(v), emap!));
      return v;
    },
    async swapFace(frame, face, latent) {
      const { crop: cimg, matrix } = align(frame, face.five);
      const { image: out } = await runCrop(cimg, latent);
      if (face.mesh) {
        const hull = FACE_OVAL.map((i) => applyAffine(matrix, { x: face.mesh![i * 3], y: face.mesh![i * 3 + 1] }));
        return pasteBack(frame, out, matrix, { mask: 'hull', hull });
      }
      return pasteBack(frame, out, matrix, { mask: 'box' });
    },
  };
}
