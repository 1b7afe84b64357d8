/**
 * Writing ncnn `.param` + `.bin` files: how tests build tiny models in the same format as the
 * Real-ESRGAN files (fp16-tagged kernels, fp32 biases and slopes) to check the converter
 * against the reference interpreter without the optional package.
 */
import { floatToHalf, NCNN_MAGIC, TAG_FP16 } from './model.js';

/** One weight blob: 'fp16' / 'fp32' are tagged (kernels); 'raw' is untagged fp32 (bias, slope). */
export type NcnnWeight = { data: Float32Array | number[]; storage: 'fp16' | 'fp32' | 'raw' };

export class NcnnWriter {
  private lines: string[] = [];
  private blobs = new Set<string>();
  private chunks: Uint8Array[] = [];

  /** Add a layer; `params` by ncnn id (arrays are written as -23300-id). */
  layer(type: string, name: string, inputs: string[], outputs: string[], params: Record<number, number | number[]> = {}, weights: NcnnWeight[] = []): this {
    for (const b of [...inputs, ...outputs]) this.blobs.add(b);
    const kv = Object.entries(params).map(([k, v]) => (Array.isArray(v) ? `${-23300 - Number(k)}=${v.length},${v.map(fmt).join(',')}` : `${k}=${fmt(v)}`));
    this.lines.push([type, name, inputs.length, outputs.length, ...inputs, ...outputs, ...kv].join(' '));
    for (const w of weights) this.chunks.push(encode(w));
    return this;
  }

  toFiles(): { param: string; bin: Uint8Array } {
    const param = [String(NCNN_MAGIC), `${this.lines.length} ${this.blobs.size}`, ...this.lines, ''].join('\n');
    const total = this.chunks.reduce((s, c) => s + c.length, 0);
    const bin = new Uint8Array(total);
    let off = 0;
    for (const c of this.chunks) {
      bin.set(c, off);
      off += c.length;
    }
    return { param, bin };
  }
}

/** Integers as integers, other numbers in exponent form (as ncnn's tools write floats). */
function fmt(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toExponential(6);
}

function encode(w: NcnnWeight): Uint8Array {
  const n = w.data.length;
  if (w.storage === 'fp16') {
    const out = new Uint8Array(4 + Math.ceil((n * 2) / 4) * 4);
    const v = new DataView(out.buffer);
    v.setUint32(0, TAG_FP16, true);
    for (let i = 0; i < n; i++) v.setUint16(4 + i * 2, floatToHalf(w.data[i]), true);
    return out;
  }
  const tagged = w.storage === 'fp32';
  const out = new Uint8Array((tagged ? 4 : 0) + n * 4);
  const v = new DataView(out.buffer);
  for (let i = 0; i < n; i++) v.setFloat32((tagged ? 4 : 0) + i * 4, w.data[i], true);
  return out;
}
