/**
 * Identity similarity: cosine between the identity's descriptor and each frame's face
 * descriptor, before and after the swap, and its summary for report.json.
 */
import type { RgbFrame } from '../media/frame.js';
import type { FaceDescriptor } from '../faces/descriptor.js';
import { cosine } from '../faces/descriptor.js';
import type { Face } from '../faces/types.js';

export { cosine };

/** Keys stages publish per frame in FrameItem.values. */
export const ID_SIM_BEFORE = 'idSimBefore';
export const ID_SIM_AFTER = 'idSimAfter';

export interface IdentitySample {
  index: number;
  before: number;
  after: number;
}

export interface IdentitySummary {
  descriptor: string;
  frames: number;
  meanBefore: number;
  meanAfter: number;
  minAfter: number;
  maxAfter: number;
  /** meanAfter - meanBefore. */
  gain: number;
  framesImproved: number;
  framesWorse: number;
  definition: string;
}

const r4 = (v: number) => Math.round(v * 1e4) / 1e4;

export function summarizeIdentity(samples: IdentitySample[], descriptor: string): IdentitySummary {
  const ok = samples.filter((s) => Number.isFinite(s.before) && Number.isFinite(s.after));
  const n = ok.length;
  const mean = (f: (s: IdentitySample) => number) => (n ? ok.reduce((a, s) => a + f(s), 0) / n : NaN);
  const meanBefore = mean((s) => s.before), meanAfter = mean((s) => s.after);
  return {
    descriptor,
    frames: n,
    meanBefore: r4(meanBefore),
    meanAfter: r4(meanAfter),
    minAfter: r4(n ? Math.min(...ok.map((s) => s.after)) : NaN),
    maxAfter: r4(n ? Math.max(...ok.map((s) => s.after)) : NaN),
    gain: r4(meanAfter - meanBefore),
    framesImproved: ok.filter((s) => s.after > s.before).length,
    framesWorse: ok.filter((s) => s.after < s.before).length,
    definition: `cosine similarity between the identity photos' averaged ${descriptor} descriptor and the largest face's descriptor per frame, before and after the swap (1 = same direction)`,
  };
}

/** Cosine similarity of the identity to one face in a frame. */
export async function faceSimilarity(identity: Float32Array, descriptor: FaceDescriptor, frame: RgbFrame, face: Face): Promise<number> {
  return cosine(identity, await descriptor.describe(frame, face.five));
}

/** The largest face of a list (by box area). */
export function largestFace(faces: Face[] | undefined): Face | undefined {
  if (!faces?.length) return undefined;
  return faces.reduce((a, b) => (b.box.width * b.box.height > a.box.width * a.box.height ? b : a));
}
