/**
 * The pipeline's stage order and the factory of each stage. Order (see README "Design"):
 * inpaint (on the degraded input) → upscale → faces (detect, track, align) → restore-face
 * → swap → temporal. A stage that cannot or need not run is a skippedStage saying why.
 */
import { usageError } from '../errors.js';
import { FaceAnalyzer } from '../faces/analyzer.js';
import { createDescriptor } from '../faces/descriptor.js';
import { loadIdentity } from '../faces/identity.js';
import { identityTarget, type TargetSelectorOptions } from '../faces/select.js';
import { createFacesStage } from '../stages/faces.js';
import { createInpaintStage } from '../stages/inpaint/index.js';
import { createRestoreFaceStage } from '../stages/restore-face.js';
import { createSwapStage } from '../stages/swap/index.js';
import { createTemporalStage } from '../stages/temporal/index.js';
import { createUpscaleStage } from '../stages/upscale/index.js';
import type { RestoreOptions, RunContext, Stage } from '../stages/types.js';
import { skippedStage } from '../stages/kit.js';
import { FACES_MODES } from './backends.js';

export interface StageBuildContext extends RunContext {
  /** Output size the upscale stage must reach, when upscaling was asked for (or implied by the reference). */
  targetSize?: { width: number; height: number };
}

export async function buildStages(opts: RestoreOptions, ctx: StageBuildContext): Promise<Stage[]> {
  const device = opts.device;
  const log = ctx.log;
  const inputSize = { width: ctx.video.width, height: ctx.video.height };
  const stages: Stage[] = [];
  const which = opts.backends.faces ?? 'all';
  if (!(FACES_MODES as readonly string[]).includes(which)) throw usageError(`--faces must be one of ${FACES_MODES.join(', ')} (got "${which}")`);
  // One analyzer for the inpaint face prior, the faces stage and the swap stage (which also reads the identity photo with it).
  let analyzer: FaceAnalyzer | undefined;
  if (which !== 'none') analyzer = await FaceAnalyzer.create({ device, log: (m) => log.debug(m) });
  stages.push(
    opts.mask
      ? await createInpaintStage(opts, { device, log, video: ctx.video, reportDir: ctx.reportDir, signal: ctx.signal, analyzer })
      : skippedStage('inpaint', 'no --mask given (use --mask FILE or --mask auto)'),
  );
  stages.push(await createUpscaleStage(opts, { device, log, targetSize: ctx.targetSize, inputSize, colour: ctx.video.colour, pixFmt: ctx.video.pixFmt }));
  if (which === 'none') stages.push(skippedStage('faces', '--faces none: faces are neither detected nor restored'));
  else {
    let target: TargetSelectorOptions = { mode: which === 'largest' ? 'largest' : 'all' };
    analyzer ??= await FaceAnalyzer.create({ device, log: (m) => log.debug(m) });
    if (which === 'identity') {
      if (!opts.identity?.length) throw usageError('--faces identity needs --identity PHOTO');
      // Only the tracks whose face matches the identity photo are restored and swapped.
      const descriptor = await createDescriptor({ device, log: (m) => log.debug(m) });
      const identity = await loadIdentity(opts.identity, { analyzer, descriptor, identityFace: opts.identityFace });
      target = identityTarget(identity, descriptor);
    }
    stages.push(await createFacesStage(opts, { device, log, target, analyzer }));
  }
  stages.push(await createRestoreFaceStage(opts, { device, log }));
  stages.push(await createSwapStage({ ...opts, analyzer }, ctx));
  stages.push(await createTemporalStage(opts, { device, log }));
  return stages;
}
