/**
 * The stages, in run order (README "Design"): inpaint (on the degraded input) → upscale →
 * faces (detect, track, align) → restore-face → swap → temporal. Each is a StageModule
 * (module.ts): the pipeline plans them all, then opens them. Adding a stage is one module here.
 */
import { facesStage } from './faces.js';
import { inpaintStage } from './inpaint/index.js';
import type { StageModule } from './module.js';
import { restoreFaceStage } from './restore-face.js';
import { swapStage } from './swap/index.js';
import { temporalStage } from './temporal/index.js';
import { upscaleStage } from './upscale/module.js';

export const STAGES: readonly StageModule<any>[] = [inpaintStage, upscaleStage, facesStage, restoreFaceStage, swapStage, temporalStage];

export function stageModule(key: string): StageModule<any> {
  const m = STAGES.find((s) => s.key === key);
  if (!m) throw new Error(`no stage '${key}'`);
  return m;
}
