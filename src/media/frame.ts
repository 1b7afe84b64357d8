/** In-memory image types shared by every stage. */

/** Packed RGB24, row-major, `data.length === width * height * 3`. */
export interface RgbFrame {
  width: number;
  height: number;
  data: Uint8Array;
}

/** One byte per pixel, row-major; 255 = hole (to be filled), 0 = keep. Values between are soft. */
export interface Mask {
  width: number;
  height: number;
  data: Uint8Array;
}

export function createFrame(width: number, height: number, fill = 0): RgbFrame {
  const data = new Uint8Array(width * height * 3);
  if (fill) data.fill(fill);
  return { width, height, data };
}

export function cloneFrame(f: RgbFrame): RgbFrame {
  return { width: f.width, height: f.height, data: new Uint8Array(f.data) };
}

export function createMask(width: number, height: number): Mask {
  return { width, height, data: new Uint8Array(width * height) };
}

export function maskCoverage(m: Mask): number {
  let n = 0;
  for (let i = 0; i < m.data.length; i++) if (m.data[i] >= 128) n++;
  return n / m.data.length;
}

/** BT.601 luma, as a float per pixel (0..255). */
export function lumaBt601(f: RgbFrame): Float32Array {
  const n = f.width * f.height;
  const y = new Float32Array(n);
  const d = f.data;
  for (let i = 0, j = 0; i < n; i++, j += 3) y[i] = 0.299 * d[j] + 0.587 * d[j + 1] + 0.114 * d[j + 2];
  return y;
}
