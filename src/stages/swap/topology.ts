/**
 * Face-mesh topology for the `mesh` swap: MediaPipe's canonical 468-point face-mesh
 * triangulation and the index rings of the eyes and inner lips.
 *
 * The triangulation is public data that ships in npm inside @vladmandic/human
 * (src/face/facemeshcoords.ts, `TRI468`, MIT); it is read from the installed package at
 * run time and validated (800-1000 triangles over indices 0..467; the shipped one has 880), not copied into this repo.
 * The eye and inner-lip rings are MediaPipe's published landmark indices.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { modelError } from '../../errors.js';
import { humanPackageRoot } from '../../util/paths.js';

/** Upper and lower lid of each eye (MediaPipe rings `*EyeUpper0` + `*EyeLower0`). */
export const RIGHT_EYE_RING = [246, 161, 160, 159, 158, 157, 173, 33, 7, 163, 144, 145, 153, 154, 155, 133];
export const LEFT_EYE_RING = [466, 388, 387, 386, 385, 384, 398, 263, 249, 390, 373, 374, 380, 381, 382, 362];
/** Inner lip contour (upper and lower, shared corners 78 and 308). */
export const INNER_LIPS_RING = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 95, 88, 178, 87, 14, 317, 402, 318, 324];
/** Face oval (MediaPipe silhouette), clockwise from the top of the forehead. */
export const FACE_OVAL = [
  10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93,
  234, 127, 162, 21, 54, 103, 67, 109,
];

export interface MeshTopology {
  /** Triangles as vertex index triples (flat). */
  triangles: Uint16Array;
  /** Triangles that cover the eye openings and the mouth opening (excluded from the swap). */
  holeTriangles: Uint16Array;
  /** Triangles the swap warps (all minus holes). */
  skinTriangles: Uint16Array;
  source: string;
}

let cached: MeshTopology | undefined;

/** Parse `export const NAME: number[] = [ ... ];` from a TypeScript source text. */
export function parseNumberArray(text: string, name: string): number[] {
  const start = text.indexOf(`export const ${name}`);
  if (start < 0) return [];
  const open = text.indexOf('[', text.indexOf('=', start));
  const close = text.indexOf(']', open);
  if (open < 0 || close < 0) return [];
  return text
    .slice(open + 1, close)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
}

export function meshTopology(): MeshTopology {
  if (cached) return cached;
  let file: string;
  try {
    file = path.join(humanPackageRoot(), 'src', 'face', 'facemeshcoords.ts');
  } catch {
    throw modelError('the face-mesh triangulation is not available: npm package @vladmandic/human is not installed', 'run npm install');
  }
  let tri: number[];
  try {
    tri = parseNumberArray(readFileSync(file, 'utf8'), 'TRI468');
  } catch (e) {
    throw modelError(`cannot read the face-mesh triangulation from ${file}`, 'reinstall @vladmandic/human', e);
  }
  if (tri.length % 3 !== 0 || tri.length < 800 * 3 || tri.length > 1000 * 3 || tri.some((v) => !Number.isInteger(v) || v < 0 || v >= 468)) {
    throw modelError(`${file}: TRI468 does not look like the MediaPipe 468-point face-mesh triangulation (${tri.length / 3} triangles)`);
  }
  const inRing = (ring: number[]) => {
    const s = new Set(ring);
    return (a: number, b: number, c: number) => s.has(a) && s.has(b) && s.has(c);
  };
  const hole = [inRing(RIGHT_EYE_RING), inRing(LEFT_EYE_RING), inRing(INNER_LIPS_RING)];
  const holes: number[] = [];
  const skin: number[] = [];
  for (let t = 0; t < tri.length; t += 3) {
    const [a, b, c] = [tri[t], tri[t + 1], tri[t + 2]];
    (hole.some((h) => h(a, b, c)) ? holes : skin).push(a, b, c);
  }
  cached = { triangles: Uint16Array.from(tri), holeTriangles: Uint16Array.from(holes), skinTriangles: Uint16Array.from(skin), source: file };
  return cached;
}
