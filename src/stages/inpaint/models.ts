/**
 * `mat` and `lama` backends: run a pretrained inpainting model on a context window around
 * each hole. Holes are grouped into connected components; each component's bounding box is
 * widened by a context margin and merged with any box it overlaps; each box is resized to
 * the model's input (512), run, resized back, and only the hole pixels (plus a 2 px
 * feathered edge) are composited into the frame. Value ranges and the mask polarity come
 * from the manifest contract (MAT: image [-1,1], mask 1 = keep, latent z; LaMa: image
 * [0,1], mask 1 = hole, output [0,255]), so a new model of either family is a manifest entry.
 */
import sharp from 'sharp';
import { cloneFrame, type Mask, type RgbFrame } from '../../media/frame.js';
import { openModel, type OpenedModel } from '../../models/registry.js';
import { ort } from '../../models/session.js';
import { modelError } from '../../errors.js';
import { clamp255 } from './harmonic.js';

export interface PixelRect { x: number; y: number; w: number; h: number }

export interface ModelInpainter {
  name: string;
  family: string;
  provider: string;
  size: number;
  /** Number of model runs so far. */
  runs: number;
  fill(frame: RgbFrame, mask: Mask): Promise<RgbFrame>;
}

/** Bounding boxes of the 8-connected hole components (mask >= 128). */
export function holeBoxes(mask: Mask): PixelRect[] {
  const { width: w, height: h } = mask;
  const seen = new Uint8Array(w * h);
  const boxes: PixelRect[] = [];
  const stack: number[] = [];
  for (let s = 0; s < w * h; s++) {
    if (seen[s] || mask.data[s] < 128) continue;
    let x0 = w, y0 = h, x1 = -1, y1 = -1;
    stack.push(s);
    seen[s] = 1;
    while (stack.length) {
      const i = stack.pop()!;
      const x = i % w, y = (i / w) | 0;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
      for (let dy = -1; dy <= 1; dy++)
        for (let dx = -1; dx <= 1; dx++) {
          const xx = x + dx, yy = y + dy;
          if (xx < 0 || yy < 0 || xx >= w || yy >= h) continue;
          const j = yy * w + xx;
          if (!seen[j] && mask.data[j] >= 128) { seen[j] = 1; stack.push(j); }
        }
    }
    boxes.push({ x: x0, y: y0, w: x1 - x0 + 1, h: y1 - y0 + 1 });
  }
  return boxes;
}

/** Widen each box to a square context window (hole size + margin on each side), clamp to the frame, and merge overlaps. */
export function contextBoxes(boxes: PixelRect[], width: number, height: number, opts: { context?: number; minSide?: number } = {}): PixelRect[] {
  const ctxF = opts.context ?? 1.0;
  const minSide = opts.minSide ?? 64;
  const sq = (b: PixelRect): PixelRect => {
    let side = Math.max(b.w, b.h) * (1 + 2 * ctxF);
    side = Math.min(Math.max(side, minSide), Math.max(width, height));
    const sw = Math.min(Math.round(side), width), sh = Math.min(Math.round(side), height);
    const cx = b.x + b.w / 2, cy = b.y + b.h / 2;
    const x = Math.min(Math.max(0, Math.round(cx - sw / 2)), width - sw);
    const y = Math.min(Math.max(0, Math.round(cy - sh / 2)), height - sh);
    return { x, y, w: sw, h: sh };
  };
  let out = boxes.map(sq);
  for (let changed = true; changed; ) {
    changed = false;
    for (let i = 0; i < out.length && !changed; i++)
      for (let j = i + 1; j < out.length && !changed; j++) {
        const a = out[i], b = out[j];
        if (a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h) {
          const x = Math.min(a.x, b.x), y = Math.min(a.y, b.y);
          const merged = sq({ x, y, w: Math.max(a.x + a.w, b.x + b.w) - x, h: Math.max(a.y + a.h, b.y + b.h) - y });
          // The union must stay inside the merged window even when clamping shrank it.
          merged.x = Math.min(merged.x, x);
          merged.y = Math.min(merged.y, y);
          merged.w = Math.max(merged.w, Math.max(a.x + a.w, b.x + b.w) - merged.x);
          merged.h = Math.max(merged.h, Math.max(a.y + a.h, b.y + b.h) - merged.y);
          out = [...out.slice(0, i), merged, ...out.slice(i + 1, j), ...out.slice(j + 1)];
          changed = true;
        }
      }
  }
  return out;
}

function crop(f: RgbFrame, b: PixelRect): Buffer {
  const out = Buffer.alloc(b.w * b.h * 3);
  for (let y = 0; y < b.h; y++) out.set(f.data.subarray(3 * ((b.y + y) * f.width + b.x), 3 * ((b.y + y) * f.width + b.x + b.w)), 3 * y * b.w);
  return out;
}

function cropMask(m: Mask, b: PixelRect): Buffer {
  const out = Buffer.alloc(b.w * b.h);
  for (let y = 0; y < b.h; y++) out.set(m.data.subarray((b.y + y) * m.width + b.x, (b.y + y) * m.width + b.x + b.w), y * b.w);
  return out;
}

async function resizeRaw(data: Buffer, w: number, h: number, ch: 1 | 3, W: number, H: number, kernel: 'cubic' | 'linear' | 'nearest'): Promise<Buffer> {
  if (w === W && h === H) return data;
  let img = sharp(data, { raw: { width: w, height: h, channels: ch } }).resize(W, H, { kernel: kernel === 'linear' ? 'linear' : kernel === 'nearest' ? 'nearest' : 'cubic', fit: 'fill' });
  // One-channel raw input comes out as sRGB unless told otherwise.
  if (ch === 1) img = img.toColourspace('b-w');
  const out = await img.raw().toBuffer();
  if (out.length !== W * H * ch) throw new Error(`resize: got ${out.length} bytes, expected ${W * H * ch}`);
  return out;
}

/** Deterministic N(0,1) samples (Box-Muller on a xorshift). */
function normals(n: number, seed = 1): Float32Array {
  let a = seed >>> 0 || 1;
  const u = () => {
    a ^= a << 13; a >>>= 0; a ^= a >>> 17; a ^= a << 5; a >>>= 0;
    return (a + 0.5) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return out;
}

/** Open an inpainting model from the manifest (`mat_places512`, `mat_ffhq512`, `lama`, ...). */
export async function openModelInpainter(name: string, opts: { device?: 'auto' | 'cpu' | 'cuda'; log?: (m: string) => void; file?: string } = {}): Promise<ModelInpainter> {
  const m: OpenedModel = await openModel(name, opts);
  const family = m.entry.family;
  const img = m.inputs.image, msk = m.inputs.mask, lat = m.inputs.latent;
  const outT = m.outputs.image ?? Object.values(m.outputs)[0];
  if (!img || !msk || !outT) throw modelError(`model ${name} (${m.path}): needs an image and a mask input and an image output`);
  const size = m.entry.contract.crop ?? 512;
  const inRange = (img.spec.range as [number, number] | undefined) ?? [0, 1];
  const outRange = (outT.spec.range as [number, number] | undefined) ?? inRange;
  const holeIsOne = (msk.spec.polarity ?? (family === 'mat' ? 'keep=1' : 'hole=1')) === 'hole=1';
  const latent = lat ? normals(Number(lat.dims[1]) > 0 ? Number(lat.dims[1]) : 512) : undefined;
  const self: ModelInpainter = {
    name,
    family,
    provider: m.provider,
    size,
    runs: 0,
    async fill(frame, mask) {
      const out = cloneFrame(frame);
      const boxes = contextBoxes(holeBoxes(mask), frame.width, frame.height);
      const S = size, N = S * S;
      for (const b of boxes) {
        const rgb = await resizeRaw(crop(frame, b), b.w, b.h, 3, S, S, 'cubic');
        const hole = await resizeRaw(cropMask(mask, b), b.w, b.h, 1, S, S, 'linear');
        const x = new Float32Array(3 * N), mk = new Float32Array(N);
        for (let i = 0; i < N; i++) {
          const isHole = hole[i] > 0; // any overlap with the hole counts as hole at model size
          mk[i] = isHole === holeIsOne ? 1 : 0;
          for (let c = 0; c < 3; c++) {
            // Hole pixels are blanked (zero in the model's range), as the reference code feeds them.
            x[c * N + i] = isHole ? 0 : inRange[0] + (rgb[3 * i + c] / 255) * (inRange[1] - inRange[0]);
          }
        }
        const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {
          [img.name]: new ort.Tensor('float32', x, [1, 3, S, S]),
          [msk.name]: new ort.Tensor('float32', mk, [1, 1, S, S]),
        };
        if (lat && latent) feeds[lat.name] = new ort.Tensor('float32', latent, [1, latent.length]);
        let y: Float32Array;
        try {
          const res = await m.session.run(feeds);
          y = res[outT.name].data as Float32Array;
        } catch (e) {
          throw modelError(`model ${name} (${m.path}) failed on a ${b.w}x${b.h} crop: ${(e as Error).message.split('\n')[0].slice(0, 160)}`);
        }
        self.runs++;
        const back = Buffer.alloc(3 * N);
        for (let i = 0; i < N; i++)
          for (let c = 0; c < 3; c++) back[3 * i + c] = clamp255(((y[c * N + i] - outRange[0]) / (outRange[1] - outRange[0])) * 255);
        const res = await resizeRaw(back, S, S, 3, b.w, b.h, 'cubic');
        // Feathered alpha: 1 on hole pixels, falling to 0 over 2 px outside.
        const alpha = featherAlpha(cropMask(mask, b), b.w, b.h, 2);
        for (let yy = 0; yy < b.h; yy++)
          for (let xx = 0; xx < b.w; xx++) {
            const a = alpha[yy * b.w + xx];
            if (a <= 0) continue;
            const o = 3 * ((b.y + yy) * frame.width + b.x + xx);
            for (let c = 0; c < 3; c++) out.data[o + c] = clamp255(out.data[o + c] * (1 - a) + res[3 * (yy * b.w + xx) + c] * a);
          }
      }
      return out;
    },
  };
  return self;
}

/** 1 inside the hole, 1 - d/(r+1) at Chebyshev distance d <= r outside it, else 0. */
export function featherAlpha(hole: Uint8Array, w: number, h: number, r: number): Float32Array {
  const a = new Float32Array(w * h);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      if (hole[y * w + x] >= 128) { a[y * w + x] = 1; continue; }
      let d = Infinity;
      for (let dy = -r; dy <= r; dy++)
        for (let dx = -r; dx <= r; dx++) {
          const xx = x + dx, yy = y + dy;
          if (xx < 0 || yy < 0 || xx >= w || yy >= h || hole[yy * w + xx] < 128) continue;
          d = Math.min(d, Math.max(Math.abs(dx), Math.abs(dy)));
        }
      if (d <= r) a[y * w + x] = 1 - d / (r + 1);
    }
  return a;
}
