/**
 * Upscale backends named by the manifest instead of by code: `--upscale-backend rrdn` (a
 * family) or `--upscale-backend realesrgan_x4fast_ncnn` (one model) selects the upscale
 * entries of that family or name. New model families therefore need a manifest entry, not a
 * new case in the stage.
 */
import { entriesFor, type ModelEntry } from '../../models/manifest.js';

/** Upscale entries whose family or name is `backend`, in manifest order. */
export function manifestCandidates(backend: string): ModelEntry[] {
  return entriesFor('upscale').filter((e) => e.family === backend || e.name === backend);
}

/** The manifest's upscale families (for help texts). */
export function upscaleFamilies(): string[] {
  return [...new Set(entriesFor('upscale').map((e) => e.family))];
}
