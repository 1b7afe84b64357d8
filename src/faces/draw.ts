/** Drawing faces onto frames for a person to check (the `restore faces --overlay` output). */
import type { RgbFrame } from '../media/frame.js';
import { FACE_OVAL } from './mesh.js';
import type { Face } from './types.js';

const PALETTE: [number, number, number][] = [
  [255, 64, 64], [64, 160, 255], [255, 200, 0], [160, 255, 64], [255, 64, 255], [0, 230, 230], [255, 140, 0], [180, 120, 255],
];

export function trackColor(id: number): [number, number, number] {
  return id < 0 ? [255, 255, 255] : PALETTE[id % PALETTE.length];
}

function put(f: RgbFrame, x: number, y: number, c: readonly number[], a = 1): void {
  const xi = Math.round(x), yi = Math.round(y);
  if (xi < 0 || yi < 0 || xi >= f.width || yi >= f.height) return;
  const o = (yi * f.width + xi) * 3;
  for (let k = 0; k < 3; k++) f.data[o + k] = Math.round(f.data[o + k] * (1 - a) + c[k] * a);
}

export function drawLine(f: RgbFrame, x0: number, y0: number, x1: number, y1: number, c: readonly number[], a = 1): void {
  const n = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0)));
  for (let i = 0; i <= n; i++) put(f, x0 + ((x1 - x0) * i) / n, y0 + ((y1 - y0) * i) / n, c, a);
}

export function drawDot(f: RgbFrame, x: number, y: number, r: number, c: readonly number[]): void {
  for (let dy = -r; dy <= r; dy++) for (let dx = -r; dx <= r; dx++) if (dx * dx + dy * dy <= r * r + 0.5) put(f, x + dx, y + dy, c);
}

/** Boxes (track colour; dashed when interpolated), mesh points, face outline, five points. Mutates `frame`. */
export function drawFaces(frame: RgbFrame, faces: Face[]): RgbFrame {
  const scale = Math.max(1, Math.round(Math.max(frame.width, frame.height) / 512));
  for (const face of faces) {
    const c = trackColor(face.trackId);
    const { x, y, width: w, height: h } = face.box;
    const edges: [number, number, number, number][] = [[x, y, x + w, y], [x + w, y, x + w, y + h], [x + w, y + h, x, y + h], [x, y + h, x, y]];
    for (const [a, b, cc, d] of edges) {
      if (!face.interpolated) drawLine(frame, a, b, cc, d, c);
      else {
        const n = Math.ceil(Math.hypot(cc - a, d - b) / 6);
        for (let i = 0; i < n; i += 2) drawLine(frame, a + ((cc - a) * i) / n, b + ((d - b) * i) / n, a + ((cc - a) * (i + 1)) / n, b + ((d - b) * (i + 1)) / n, c);
      }
    }
    if (face.mesh) {
      for (let i = 0; i < face.mesh.length; i += 3) put(frame, face.mesh[i], face.mesh[i + 1], [0, 255, 0], 0.6);
      for (let k = 0; k < FACE_OVAL.length; k++) {
        const p = FACE_OVAL[k], q = FACE_OVAL[(k + 1) % FACE_OVAL.length];
        drawLine(frame, face.mesh[p * 3], face.mesh[p * 3 + 1], face.mesh[q * 3], face.mesh[q * 3 + 1], [0, 255, 0], 0.5);
      }
    }
    for (const p of face.five) drawDot(frame, p.x, p.y, 1 + scale, c);
  }
  return frame;
}
