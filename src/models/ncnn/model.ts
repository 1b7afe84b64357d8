/**
 * Reading ncnn models: the `.param` text graph and the `.bin` weights that follow it layer by
 * layer. Format facts (from ncnn's documentation of the param and bin formats):
 * - `.param`: magic `7767517`, then `layer_count blob_count`, then one line per layer:
 *   `Type Name n_in n_out in_blobs... out_blobs... id=value...`. An id <= -23300 marks an
 *   array parameter `-(id+23300)=count,v1,v2,...`.
 * - `.bin`: each layer's weights in layer order. A "tagged" blob (convolution kernels) starts
 *   with a 4-byte tag: 0x01306B47 = fp16 (data padded to 4 bytes), 0 = fp32; untagged blobs
 *   (biases, PReLU slopes) are plain fp32.
 * Only the layers the converter supports are read (see WEIGHTS); others fail with their name.
 */
import { modelError } from '../../errors.js';
import { halfToFloat } from '../tflite/model.js';

export type ParamValue = number | number[];

export interface NcnnLayer {
  type: string;
  name: string;
  inputs: string[];
  outputs: string[];
  params: Map<number, ParamValue>;
  /** Weight blobs by role ('weight', 'bias', 'slope'), fp32. */
  weights: Record<string, Float32Array>;
}

export interface NcnnModel {
  layers: NcnnLayer[];
  /** Blobs made by Input layers. */
  inputs: string[];
  /** Blobs no layer consumes (the graph outputs). */
  outputs: string[];
}

export const NCNN_MAGIC = 7767517;
export const TAG_FP16 = 0x01306b47;

/** Integer/float parameter `id` of a layer, or `def`. */
export function param(l: NcnnLayer, id: number, def: number): number {
  const v = l.params.get(id);
  if (v === undefined) return def;
  if (Array.isArray(v)) throw modelError(`ncnn layer ${l.name}: parameter ${id} is an array, expected a number`);
  return v;
}

/** Array parameter `id` (written as id -23300-id in the file), or `def`. */
export function paramArray(l: NcnnLayer, id: number, def: number[] = []): number[] {
  const v = l.params.get(id);
  if (v === undefined) return def;
  return Array.isArray(v) ? v : [v];
}

/** Parse `.param` text into layers (without weights). */
export function parseNcnnParam(text: string, file = 'param'): NcnnLayer[] {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
  if (Number(lines[0]) !== NCNN_MAGIC) throw modelError(`${file}: not an ncnn text .param (magic ${lines[0]?.slice(0, 16)}, expected ${NCNN_MAGIC})`);
  const [layerCount] = lines[1].split(/\s+/).map(Number);
  const layers: NcnnLayer[] = [];
  for (const line of lines.slice(2)) {
    const tok = line.split(/\s+/);
    const [type, name] = tok;
    const nIn = Number(tok[2]);
    const nOut = Number(tok[3]);
    if (!Number.isInteger(nIn) || !Number.isInteger(nOut)) throw modelError(`${file}: malformed layer line '${line.slice(0, 80)}'`);
    const inputs = tok.slice(4, 4 + nIn);
    const outputs = tok.slice(4 + nIn, 4 + nIn + nOut);
    const params = new Map<number, ParamValue>();
    for (const kv of tok.slice(4 + nIn + nOut)) {
      const eq = kv.indexOf('=');
      if (eq < 0) throw modelError(`${file}: layer ${name}: malformed parameter '${kv}'`);
      const id = Number(kv.slice(0, eq));
      const v = kv.slice(eq + 1);
      if (id <= -23300) {
        const [count, ...vals] = v.split(',').map(Number);
        if (vals.length !== count) throw modelError(`${file}: layer ${name}: array parameter ${kv} has ${vals.length} values, says ${count}`);
        params.set(-id - 23300, vals);
      } else params.set(id, Number(v));
    }
    layers.push({ type, name, inputs, outputs, params, weights: {} });
  }
  if (layers.length !== layerCount) throw modelError(`${file}: ${layers.length} layer lines, the header says ${layerCount}`);
  return layers;
}

/** The weight blobs a layer type reads from the .bin, in order: [role, count, tagged]. */
const WEIGHTS: Record<string, (l: NcnnLayer) => [string, number, boolean][]> = {
  Convolution: (l) => {
    if (param(l, 8, 0) !== 0) throw modelError(`ncnn layer ${l.name}: int8 convolution is not supported`);
    const w: [string, number, boolean][] = [['weight', param(l, 6, 0), true]];
    if (param(l, 5, 0)) w.push(['bias', param(l, 0, 0), false]);
    return w;
  },
  PReLU: (l) => [['slope', param(l, 0, 0), false]],
};

/** Layer types without weights that the converter understands. */
export const WEIGHTLESS = new Set(['Input', 'Split', 'Concat', 'ReLU', 'Sigmoid', 'Eltwise', 'BinaryOp', 'Interp', 'PixelShuffle']);

/** Read the weights of `layers` from the .bin bytes, in layer order. */
export function readNcnnWeights(layers: NcnnLayer[], bin: Uint8Array, file = 'bin'): void {
  const view = new DataView(bin.buffer, bin.byteOffset, bin.byteLength);
  let off = 0;
  const need = (n: number, what: string) => {
    if (off + n > bin.byteLength) throw modelError(`${file}: truncated at ${what} (needs ${n} bytes at offset ${off} of ${bin.byteLength})`);
  };
  const fp32 = (n: number, what: string) => {
    need(n * 4, what);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = view.getFloat32(off + i * 4, true);
    off += n * 4;
    return out;
  };
  for (const l of layers) {
    const spec = WEIGHTS[l.type];
    if (!spec) {
      if (!WEIGHTLESS.has(l.type)) throw modelError(`${file}: ncnn layer ${l.name} of type ${l.type} is not supported by the ncnn converter`);
      continue;
    }
    for (const [role, n, tagged] of spec(l)) {
      const what = `${l.name} ${role}`;
      if (!tagged) {
        l.weights[role] = fp32(n, what);
        continue;
      }
      need(4, what);
      const tag = view.getUint32(off, true);
      off += 4;
      if (tag === TAG_FP16) {
        need(n * 2, what);
        const out = new Float32Array(n);
        for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(off + i * 2, true));
        off += Math.ceil((n * 2) / 4) * 4;
        l.weights[role] = out;
      } else if (tag === 0) {
        l.weights[role] = fp32(n, what);
      } else {
        throw modelError(`${file}: ${what} has storage tag 0x${tag.toString(16)} (int8 or quantized); only fp16 and fp32 weights are supported`);
      }
    }
  }
  if (off !== bin.byteLength) throw modelError(`${file}: ${bin.byteLength - off} bytes left after the last layer's weights (.param and .bin do not belong together)`);
}

/** Parse a `.param` text and its `.bin` into a model. */
export function parseNcnn(paramText: string, bin: Uint8Array, names: { param?: string; bin?: string } = {}): NcnnModel {
  const layers = parseNcnnParam(paramText, names.param);
  readNcnnWeights(layers, bin, names.bin);
  const consumed = new Set(layers.flatMap((l) => l.inputs));
  const inputs = layers.filter((l) => l.type === 'Input').flatMap((l) => l.outputs);
  const outputs = layers.flatMap((l) => l.outputs).filter((b) => !consumed.has(b));
  return { layers, inputs, outputs };
}

/** Round-to-nearest-even float → IEEE half bits (for writing fp16 .bin files). */
export function floatToHalf(v: number): number {
  const f = new Float32Array([v]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // a carry rounds up into the exponent
  return sign | h;
}
