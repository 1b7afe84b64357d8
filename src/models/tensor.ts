/**
 * Image ↔ tensor by contract: value range ([-1,1], [0,1], [0,255], ImageNet mean/std), colour
 * order (RGB/BGR) and layout (NCHW/NHWC), shared by every model stage so no stage hand-rolls
 * its own normalization.
 */
import type { RgbFrame } from '../media/frame.js';
import type { TensorSpec } from './manifest.js';

const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];

/** Per-channel (RGB order) linear map u8 → model value: v = u * k[c] + o[c]. */
function forwardMap(spec: Pick<TensorSpec, 'range' | 'mean' | 'std'>): { k: number[]; o: number[] } {
  const r = spec.range ?? [0, 1];
  if (r === 'imagenet') {
    const mean = spec.mean ?? IMAGENET_MEAN;
    const std = spec.std ?? IMAGENET_STD;
    return { k: std.map((s) => 1 / (255 * s)), o: mean.map((m, c) => -m / std[c]) };
  }
  const [a, b] = r;
  const k = (b - a) / 255;
  return { k: [k, k, k], o: [a, a, a] };
}

/** Packed RGB24 → float32 tensor data per the spec (batch 1). */
export function imageToTensor(img: RgbFrame, spec: Pick<TensorSpec, 'range' | 'mean' | 'std' | 'color' | 'layout'>): Float32Array {
  const { width: w, height: h, data } = img;
  const n = w * h;
  const out = new Float32Array(3 * n);
  const { k, o } = forwardMap(spec);
  const bgr = spec.color === 'BGR';
  const nhwc = spec.layout === 'NHWC';
  for (let i = 0, j = 0; i < n; i++, j += 3) {
    for (let c = 0; c < 3; c++) {
      const dc = bgr ? 2 - c : c; // destination channel
      const v = data[j + c] * k[c] + o[c];
      if (nhwc) out[i * 3 + dc] = v;
      else out[dc * n + i] = v;
    }
  }
  return out;
}

/** Float tensor data (batch 1) per the spec → packed RGB24 (clamped, rounded). */
export function tensorToImage(t: ArrayLike<number>, width: number, height: number, spec: Pick<TensorSpec, 'range' | 'mean' | 'std' | 'color' | 'layout'>): RgbFrame {
  const n = width * height;
  if (t.length < 3 * n) throw new Error(`tensor has ${t.length} values, expected 3x${height}x${width}`);
  const out = new Uint8Array(3 * n);
  const { k, o } = forwardMap(spec);
  const bgr = spec.color === 'BGR';
  const nhwc = spec.layout === 'NHWC';
  for (let i = 0, j = 0; i < n; i++, j += 3) {
    for (let c = 0; c < 3; c++) {
      const sc = bgr ? 2 - c : c;
      const v = nhwc ? t[i * 3 + sc] : t[sc * n + i];
      const u = Math.round((v - o[c]) / k[c]);
      out[j + c] = u < 0 ? 0 : u > 255 ? 255 : u;
    }
  }
  return { width, height, data: out };
}
