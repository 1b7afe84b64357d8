/**
 * The pipeline's stage order and the factory of each stage. Order (see README "Design"):
 * inpaint (on the degraded input) → upscale → faces (detect, track, align) → restore-face
 * → swap → temporal. A stage that cannot or need not run is a skippedStage saying why.
 */
import { createRestoreFaceStage } from '../stages/restore-face.js';
import { createSwapStage } from '../stages/swap/index.js';
import { createUpscaleStage } from '../stages/upscale/index.js';
import type { RestoreOptions, RunContext, Stage } from './types.js';
import { skippedStage } from './stage.js';

export interface StageBuildContext extends RunContext {
  /** Output size the upscale stage must reach, when upscaling was asked for (or implied by the reference). */
  targetSize?: { width: number; height: number };
}

export async function buildStages(opts: RestoreOptions, ctx: StageBuildContext): Promise<Stage[]> {
  const device = opts.device;
  const log = ctx.log;
  const inputSize = { width: ctx.video.width, height: ctx.video.height };
  const stages: Stage[] = [];
  stages.push(opts.mask ? skippedStage('inpaint', 'inpainting backend not built yet') : skippedStage('inpaint', 'no --mask given'));
  stages.push(await createUpscaleStage(opts, { device, log, targetSize: ctx.targetSize, inputSize }));
  stages.push(await createRestoreFaceStage(opts, { device, log }));
  stages.push(await createSwapStage(opts, ctx));
  return stages;
}
