/**
 * Face-mesh (MediaPipe face_landmark, 468 points) helpers: the rotated square ROI from a
 * detection, landmark index sets, and the 5 alignment points derived from the mesh.
 */
import { applyAffine, type Affine } from './align.js';
import type { Box, Point } from './types.js';

export const MESH_INPUT = 192;
export const MESH_POINTS = 468;

/** Eye contours (subject's right eye appears on the image left in a frontal, unmirrored view). */
export const RIGHT_EYE = [33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246];
export const LEFT_EYE = [263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466];
/** Mesh point 4 (on the tip, above point 1 at the lobule) matched hand-marked nose tips best: 1.6 px vs 5.1 px. */
export const NOSE_TIP = 4;
export const MOUTH_RIGHT = 61;
export const MOUTH_LEFT = 291;
/** Face outline (silhouette), in order around the face. */
export const FACE_OVAL = [
  10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176, 149, 150, 136,
  172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
];
export const LIPS_OUTER = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185];

export function meshPoint(mesh: Float32Array, i: number): Point {
  return { x: mesh[i * 3], y: mesh[i * 3 + 1] };
}

function centroid(mesh: Float32Array, idx: number[]): Point {
  let x = 0, y = 0;
  for (const i of idx) { x += mesh[i * 3]; y += mesh[i * 3 + 1]; }
  return { x: x / idx.length, y: y / idx.length };
}

/** The five alignment points (right eye, left eye, nose tip, right mouth corner, left mouth corner) from a mesh. */
export function fiveFromMesh(mesh: Float32Array): Point[] {
  return [centroid(mesh, RIGHT_EYE), centroid(mesh, LEFT_EYE), meshPoint(mesh, NOSE_TIP), meshPoint(mesh, MOUTH_RIGHT), meshPoint(mesh, MOUTH_LEFT)];
}

/**
 * Five points from BlazeFace keypoints alone (eyes, nose tip, mouth centre): the mouth corners
 * are placed on the line through the mouth centre parallel to the eyes, 0.8x the half eye
 * distance to each side (the ratio of the arcface templates). Used when no mesh ran.
 */
export function fiveFromKeypoints(kps: Point[]): Point[] {
  const [re, le, nose, mouth] = kps;
  const dx = (le.x - re.x) / 2, dy = (le.y - re.y) / 2;
  const k = 0.83;
  return [re, le, nose, { x: mouth.x - dx * k, y: mouth.y - dy * k }, { x: mouth.x + dx * k, y: mouth.y + dy * k }];
}

export interface Roi {
  cx: number;
  cy: number;
  /** Side of the square in frame pixels. */
  size: number;
  /** Rotation in radians (the eyes' angle; the crop is rotated so the eyes are level). */
  angle: number;
}

/** MediaPipe's detection → ROI: box centre, eyes levelled, long side x 1.5, square. */
export function roiFromDetection(box: Box, rightEye: Point, leftEye: Point, scale = 1.5): Roi {
  const angle = Math.atan2(leftEye.y - rightEye.y, leftEye.x - rightEye.x);
  return { cx: box.x + box.width / 2, cy: box.y + box.height / 2, size: Math.max(box.width, box.height) * scale, angle };
}

/** ROI from a previous mesh (tracking without re-detection): its bounds, rotated by the eye angle. */
export function roiFromMesh(mesh: Float32Array, scale = 1.5): Roi {
  const re = centroid(mesh, RIGHT_EYE), le = centroid(mesh, LEFT_EYE);
  const angle = Math.atan2(le.y - re.y, le.x - re.x);
  const c = Math.cos(-angle), s = Math.sin(-angle);
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (let i = 0; i < MESH_POINTS; i++) {
    const x = mesh[i * 3], y = mesh[i * 3 + 1];
    const u = c * x - s * y, v = s * x + c * y;
    x0 = Math.min(x0, u); x1 = Math.max(x1, u); y0 = Math.min(y0, v); y1 = Math.max(y1, v);
  }
  const uc = (x0 + x1) / 2, vc = (y0 + y1) / 2;
  // rotate the centre back
  const cb = Math.cos(angle), sb = Math.sin(angle);
  return { cx: cb * uc - sb * vc, cy: sb * uc + cb * vc, size: Math.max(x1 - x0, y1 - y0) * scale, angle };
}

/** Affine mapping frame pixels → ROI crop pixels (size x size crop, pixel centres on integers). */
export function roiMatrix(roi: Roi, size: number): Affine {
  const k = size / roi.size;
  const c = Math.cos(-roi.angle) * k, s = Math.sin(-roi.angle) * k;
  // crop = R(-angle) * k * (p - centre) + (size-1)/2 ... using continuous centre size/2 - 0.5
  const h = size / 2 - 0.5;
  return [c, -s, h - (c * roi.cx - s * roi.cy), s, c, h - (s * roi.cx + c * roi.cy)];
}

/**
 * The face outline (FACE_OVAL mesh points) mapped by `m` (e.g. the frame → crop matrix of
 * alignFace), for pasteBack's 'hull' mask. The forehead points are pushed out by `forehead`
 * (fraction of the outline height) since the mesh stops at the hairline.
 */
export function faceOutline(mesh: Float32Array, m?: Affine, forehead = 0): Point[] {
  const pts = FACE_OVAL.map((i) => ({ x: mesh[i * 3], y: mesh[i * 3 + 1] }));
  if (forehead > 0) {
    const cx = pts.reduce((a, p) => a + p.x, 0) / pts.length, cy = pts.reduce((a, p) => a + p.y, 0) / pts.length;
    const top = fiveFromMesh(mesh);
    // "up" = from the mouth centre towards the eye centre
    const ux = (top[0].x + top[1].x) / 2 - (top[3].x + top[4].x) / 2, uy = (top[0].y + top[1].y) / 2 - (top[3].y + top[4].y) / 2;
    const ul = Math.hypot(ux, uy) || 1;
    const h = Math.max(...pts.map((p) => Math.hypot(p.x - cx, p.y - cy))) * 2;
    for (const p of pts) {
      const along = ((p.x - cx) * ux + (p.y - cy) * uy) / ul;
      if (along > 0) { p.x += (ux / ul) * forehead * h * (along / (h / 2)); p.y += (uy / ul) * forehead * h * (along / (h / 2)); }
    }
  }
  return m ? pts.map((p) => applyAffine(m, p)) : pts;
}
