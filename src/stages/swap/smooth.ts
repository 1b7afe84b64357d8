/**
 * Fallback temporal smoothing of the largest face's mesh, for when the swap stage has to find
 * faces itself (no faces stage ran before it). The previous smoothed mesh is carried onto the
 * current frame by the least-squares similarity between the previous and current raw meshes,
 * then blended with the current raw mesh: rigid motion has no lag, landmark jitter is damped.
 */
import { applyAffine, estimateSimilarity } from '../../faces/align.js';
import type { Face, Point } from '../../faces/types.js';

const meshPoints = (m: Float32Array): Point[] => Array.from({ length: m.length / 3 }, (_, i) => ({ x: m[i * 3], y: m[i * 3 + 1] }));

/** `next(raw)` returns this frame's smoothed mesh; `alpha` is the weight of the raw mesh (1 = off). */
export function meshSmoother(alpha = 0.5) {
  let prevRaw: Float32Array | undefined;
  let prevSmooth: Float32Array | undefined;
  return {
    reset() {
      prevRaw = prevSmooth = undefined;
    },
    next(raw: Float32Array): Float32Array {
      if (!prevRaw || !prevSmooth || alpha >= 1) {
        prevRaw = raw;
        prevSmooth = raw;
        return raw;
      }
      const T = estimateSimilarity(meshPoints(prevRaw), meshPoints(raw));
      const s = Math.sqrt(Math.abs(T[0] * T[4] - T[1] * T[3]));
      const out = new Float32Array(raw.length);
      for (let i = 0; i < raw.length; i += 3) {
        const p = applyAffine(T, { x: prevSmooth[i], y: prevSmooth[i + 1] });
        out[i] = alpha * raw[i] + (1 - alpha) * p.x;
        out[i + 1] = alpha * raw[i + 1] + (1 - alpha) * p.y;
        out[i + 2] = alpha * raw[i + 2] + (1 - alpha) * prevSmooth[i + 2] * s;
      }
      prevRaw = raw;
      prevSmooth = out;
      return out;
    },
  };
}

/** Smooth the largest face of a frame's own detections (others pass unchanged). */
export function smoothLargest(faces: Face[], smoother: ReturnType<typeof meshSmoother>): Face[] {
  if (!faces.length) {
    smoother.reset();
    return faces;
  }
  let k = 0;
  faces.forEach((f, i) => {
    if (f.box.width * f.box.height > faces[k].box.width * faces[k].box.height) k = i;
  });
  const main = faces[k];
  if (!main.mesh) {
    smoother.reset();
    return faces;
  }
  const out = faces.slice();
  out[k] = { ...main, trackId: main.trackId >= 0 ? main.trackId : 0, mesh: smoother.next(main.mesh) };
  return out;
}
