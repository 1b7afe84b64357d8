/** The simple classical fill: each hole pixel becomes the harmonic (Laplace) interpolation of the hole's border. */
import { cloneFrame, type Mask, type RgbFrame } from '../../media/frame.js';
import { laplaceFill } from '../../flow/laplace.js';

/** Split an RGB frame into three float planes. */
export function toPlanes(f: RgbFrame): [Float32Array, Float32Array, Float32Array] {
  const n = f.width * f.height;
  const r = new Float32Array(n), g = new Float32Array(n), b = new Float32Array(n);
  for (let i = 0, j = 0; i < n; i++, j += 3) {
    r[i] = f.data[j];
    g[i] = f.data[j + 1];
    b[i] = f.data[j + 2];
  }
  return [r, g, b];
}

/** Fill the hole pixels (mask >= 128) of `frame` with a membrane interpolation; returns a new frame. */
export function harmonicFill(frame: RgbFrame, mask: Mask): RgbFrame {
  const out = cloneFrame(frame);
  const n = frame.width * frame.height;
  const unknown = new Uint8Array(n);
  let any = false;
  for (let i = 0; i < n; i++) if (mask.data[i] >= 128) { unknown[i] = 1; any = true; }
  if (!any) return out;
  const planes = toPlanes(frame);
  laplaceFill(planes, frame.width, frame.height, unknown, { sweeps: 16 });
  for (let i = 0, j = 0; i < n; i++, j += 3) {
    if (!unknown[i]) continue;
    out.data[j] = clamp255(planes[0][i]);
    out.data[j + 1] = clamp255(planes[1][i]);
    out.data[j + 2] = clamp255(planes[2][i]);
  }
  return out;
}

export const clamp255 = (v: number) => (v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v));
