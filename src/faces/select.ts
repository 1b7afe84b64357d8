/**
 * Target selection: which tracked faces the face stages process.
 * - 'all': every face.
 * - 'largest': the one track with the largest mean face area so far (decided per track, so
 *   the choice does not flip between two similar faces frame to frame).
 * - 'identity': tracks whose face descriptor matches the identity embedding (cosine >=
 *   threshold), judged on the mean of the first `samples` detected (not interpolated) faces
 *   of the track; until then a track is judged on what it has.
 */
import type { RgbFrame } from '../media/frame.js';
import type { Face, Point } from './types.js';

export type TargetMode = 'all' | 'largest' | 'identity';

export interface TargetSelectorOptions {
  mode: TargetMode;
  /** L2-normalized identity descriptor (mode 'identity'). */
  identity?: Float32Array;
  /** Descriptor of a face (same model as `identity`), L2-normalized. */
  describe?: (frame: RgbFrame, five: Point[]) => Promise<Float32Array>;
  /** Cosine similarity a track needs to be the identity. Default 0.5. */
  threshold?: number;
  /** Detected faces per track that are described. Default 3. */
  samples?: number;
}

export interface TrackDecision {
  trackId: number;
  /** Mean cosine similarity to the identity (mode 'identity'). */
  similarity?: number;
  samples: number;
  meanArea: number;
  frames: number;
  selected: boolean;
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

export class TargetSelector {
  private readonly info = new Map<number, { sims: number[]; area: number; frames: number }>();
  readonly threshold: number;
  private readonly samples: number;

  constructor(private readonly opts: TargetSelectorOptions) {
    if (opts.mode === 'identity' && (!opts.identity || !opts.describe)) throw new Error("TargetSelector: mode 'identity' needs identity and describe");
    this.threshold = opts.threshold ?? 0.5;
    this.samples = opts.samples ?? 3;
  }

  /** The faces to process in this frame (faces must carry track ids). */
  async select(frame: RgbFrame, faces: Face[]): Promise<Face[]> {
    for (const f of faces) {
      let t = this.info.get(f.trackId);
      if (!t) this.info.set(f.trackId, (t = { sims: [], area: 0, frames: 0 }));
      t.area += f.box.width * f.box.height;
      t.frames++;
      if (this.opts.mode === 'identity' && !f.interpolated && t.sims.length < this.samples) {
        t.sims.push(dot(await this.opts.describe!(frame, f.five), this.opts.identity!));
      }
    }
    switch (this.opts.mode) {
      case 'all':
        return faces;
      case 'largest': {
        let best: Face | undefined, bestArea = -1;
        for (const f of faces) {
          const t = this.info.get(f.trackId)!;
          const a = t.area / t.frames;
          if (a > bestArea) { bestArea = a; best = f; }
        }
        return best ? [best] : [];
      }
      case 'identity':
        return faces.filter((f) => this.similarity(f.trackId) >= this.threshold);
    }
  }

  private similarity(trackId: number): number {
    const s = this.info.get(trackId)?.sims ?? [];
    return s.length ? s.reduce((a, b) => a + b, 0) / s.length : -1;
  }

  decisions(): TrackDecision[] {
    const all = [...this.info.entries()];
    let largest = -1, la = -1;
    for (const [id, t] of all) if (t.area / t.frames > la) { la = t.area / t.frames; largest = id; }
    return all.map(([trackId, t]) => ({
      trackId,
      ...(this.opts.mode === 'identity' ? { similarity: +this.similarity(trackId).toFixed(4) } : {}),
      samples: t.sims.length,
      meanArea: Math.round(t.area / t.frames),
      frames: t.frames,
      selected: this.opts.mode === 'all' || (this.opts.mode === 'largest' ? trackId === largest : this.similarity(trackId) >= this.threshold),
    }));
  }
}

/**
 * Selector options for `--identity`: tracks whose descriptor (same model as the identity's)
 * has cosine >= threshold with the identity. The default threshold (0.5) is not calibrated for
 * every descriptor; pass the one the descriptor's owner measured.
 */
export function identityTarget(
  identity: { descriptor: Float32Array },
  descriptor: { describe(frame: RgbFrame, five: Point[]): Promise<Float32Array> },
  threshold?: number,
): TargetSelectorOptions {
  return { mode: 'identity', identity: identity.descriptor, describe: (f, five) => descriptor.describe(f, five), threshold };
}
