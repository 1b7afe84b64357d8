/**
 * The pipeline's stage order and the factory of each stage. Order (see README "Design"):
 * inpaint (on the degraded input) → upscale → faces (detect, track, align) → restore-face
 * → swap → temporal. A stage that cannot or need not run is a skippedStage saying why.
 */
import { createFacesStage } from '../stages/faces.js';
import { createInpaintStage } from '../stages/inpaint/index.js';
import { createRestoreFaceStage } from '../stages/restore-face.js';
import { createSwapStage } from '../stages/swap/index.js';
import { createTemporalStage } from '../stages/temporal.js';
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
  stages.push(
    opts.mask
      ? await createInpaintStage(opts, { device, log, video: ctx.video, reportDir: ctx.reportDir, signal: ctx.signal })
      : skippedStage('inpaint', 'no --mask given (use --mask FILE or --mask auto)'),
  );
  stages.push(await createUpscaleStage(opts, { device, log, targetSize: ctx.targetSize, inputSize }));
  stages.push(
    opts.backends.faces === 'none'
      ? skippedStage('faces', '--faces none: faces are neither detected nor restored')
      : await createFacesStage(opts, { device, log, target: { mode: opts.backends.faces === 'largest' ? 'largest' : 'all' } }),
  );
  stages.push(await createRestoreFaceStage(opts, { device, log }));
  stages.push(await createSwapStage(opts, ctx));
  stages.push(await createTemporalStage(opts, { device, log }));
  return stages;
}
