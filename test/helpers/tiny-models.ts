/**
 * Tiny ONNX models with a real model family's tensor names, shapes and value ranges and a
 * known function inside, so tests can prove pre/post-processing (range, channel order,
 * template, paste-back, tiling) right. They never count as quality.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { attr, OnnxGraphBuilder } from '../../src/models/onnx-builder.js';
import { seededRandom } from '../../src/pipeline/degrade.js';

type Dim = number | string;

/** Deterministic uniform numbers in [-1,1) (the project's seeded generator, rescaled). */
export function seeded(seed: number): () => number {
  const r = seededRandom(seed);
  return () => r() * 2 - 1;
}

/** `n` deterministic floats in [-1,1) (weights of tiny models, fake descriptors). */
export function seededFloats(seed: number, n: number): Float32Array {
  return Float32Array.from({ length: n }, seeded(seed));
}

export interface AffineImageOptions {
  inputName?: string;
  outputName?: string;
  /** Input dims, e.g. [1,3,256,256] or [1,3,'h','w']. */
  dims: Dim[];
  /** Per-channel multiplier A[c] and offset B[c]: out[c] = A[c]*x[c] + B[c] (after upsampling). */
  a: [number, number, number];
  b: [number, number, number];
  /** Nearest-neighbour upscale factor applied first (super-resolution shape). */
  scale?: number;
  /** Add an optional-style second input `weight` (float64 [1]): out = A*x + B*weight. */
  weightInput?: string;
  /** Output dims (default: input dims scaled). */
  outDims?: Dim[];
}

/** Nearest-neighbour upscale by an integer factor `s` (pixel (x, y) of the output reads (x/s, y/s)). */
function nearestUpscale(g: OnnxGraphBuilder, x: string, s: number): string {
  return g.op('Resize', [x, g.float([], [0]), g.float([1, 1, s, s], [4])], {
    mode: attr.string('nearest'),
    coordinate_transformation_mode: attr.string('asymmetric'),
    nearest_mode: attr.string('floor'),
  });
}

/** out[c] = A[c] * up(x)[c] + B[c] (* weight): encodes channel order and value range. */
export function affineImageModel(o: AffineImageOptions): Uint8Array {
  const g = new OnnxGraphBuilder('affine');
  const x = g.input(o.inputName ?? 'input', o.dims);
  let y = x;
  const s = o.scale ?? 1;
  if (s !== 1) {
    y = nearestUpscale(g, y, s);
  }
  y = g.op('Mul', [y, g.float(o.a, [1, 3, 1, 1])]);
  let bias = g.float(o.b, [1, 3, 1, 1]);
  if (o.weightInput) {
    const w = g.input(o.weightInput, [1], 'double');
    const wf = g.op('Cast', [w], { to: attr.int(1) });
    bias = g.op('Mul', [bias, wf]);
  }
  y = g.op('Add', [y, bias]);
  const outDims = o.outDims ?? o.dims.map((d, i) => (i >= 2 ? (typeof d === 'number' ? d * s : `${d}${s}`) : d));
  g.op('Identity', [y], {}, o.outputName ?? 'output');
  g.output(o.outputName ?? 'output', outDims);
  return g.toBytes();
}

export interface MarkerOptions {
  inputName?: string;
  size: number;
  /** Points (crop pixels) where the output is white; black elsewhere. */
  points: { x: number; y: number }[];
  /** Half-width of each square mark. */
  radius?: number;
  range: [number, number];
  weightInput?: string;
  /** Batch dimension (default 1; a string makes it free). */
  batch?: number | string;
}

/** Ignores its input (x*0) and outputs white squares at `points` on black, in `range`. */
export function markerModel(o: MarkerOptions): Uint8Array {
  const g = new OnnxGraphBuilder('marks');
  const S = o.size;
  const x = g.input(o.inputName ?? 'input', [o.batch ?? 1, 3, S, S]);
  const pat = new Float32Array(3 * S * S).fill(o.range[0]);
  const r = o.radius ?? 3;
  for (const p of o.points) {
    for (let y = Math.round(p.y) - r; y <= Math.round(p.y) + r; y++)
      for (let xx = Math.round(p.x) - r; xx <= Math.round(p.x) + r; xx++) {
        if (y < 0 || xx < 0 || y >= S || xx >= S) continue;
        for (let c = 0; c < 3; c++) pat[c * S * S + y * S + xx] = o.range[1];
      }
  }
  let y = g.op('Mul', [x, g.float([0], [])]);
  y = g.op('Add', [y, g.float(pat, [1, 3, S, S])]);
  if (o.weightInput) {
    const w = g.input(o.weightInput, [1], 'double');
    y = g.op('Add', [y, g.op('Mul', [g.op('Cast', [w], { to: attr.int(1) }), g.float([0], [])])]);
  }
  g.op('Identity', [y], {}, 'output');
  g.output('output', [o.batch ?? 1, 3, S, S]);
  return g.toBytes();
}

export interface ConvNetOptions {
  /** Number of 3x3 conv layers (receptive-field radius = layers). */
  layers: number;
  channels?: number;
  /** Nearest upscale at the end (then one more 3x3 conv at high resolution unless 1). */
  scale?: number;
  seed?: number;
  inputName?: string;
}

/** A random fully convolutional net (ReLU between convs) with a known receptive field. */
export function convNetModel(o: ConvNetOptions): { bytes: Uint8Array; radius: number } {
  const g = new OnnxGraphBuilder('convnet');
  const rnd = seeded(o.seed ?? 1);
  const C = o.channels ?? 8;
  let y = g.input(o.inputName ?? 'input', [1, 3, 'h', 'w']);
  let cin = 3;
  for (let i = 0; i < o.layers; i++) {
    const cout = i === o.layers - 1 && (o.scale ?? 1) === 1 ? 3 : C;
    const w = Float32Array.from({ length: cout * cin * 9 }, () => rnd() * (1.5 / Math.sqrt(cin * 9)));
    const b = Float32Array.from({ length: cout }, () => rnd() * 0.05);
    y = g.op('Conv', [y, g.float(w, [cout, cin, 3, 3]), g.float(b, [cout])], { kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 1, 1, 1]) });
    if (i < o.layers - 1) y = g.op('Relu', [y]);
    cin = cout;
  }
  let radius = o.layers;
  const s = o.scale ?? 1;
  if (s !== 1) {
    y = nearestUpscale(g, y, s);
    const w = Float32Array.from({ length: 3 * cin * 9 }, () => rnd() * (1.5 / Math.sqrt(cin * 9)));
    y = g.op('Conv', [y, g.float(w, [3, cin, 3, 3]), g.float([0.5, 0.5, 0.5], [3])], { kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 1, 1, 1]) });
    radius += 1; // one high-res pixel, < 1 low-res pixel
  }
  g.op('Identity', [y], {}, 'output');
  g.output('output', [1, 3, 'oh', 'ow']);
  return { bytes: g.toBytes(), radius };
}

/** Write bytes to dir/file (creating dir); returns the path. */
export function writeModel(dir: string, file: string, bytes: Uint8Array): string {
  mkdirSync(dir, { recursive: true });
  const p = path.join(dir, file);
  writeFileSync(p, bytes);
  return p;
}
