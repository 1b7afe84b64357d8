/**
 * The upscale stage's module (src/stages/module.ts): built-in resamplers and embedded models,
 * plus every upscale family and model of the manifest (families.ts picks among them), so a new
 * SwinIR or Real-ESRGAN export is a manifest entry.
 */
import { checkChoice, familiesOf, modelNamesOf, skip, willRun, type Size, type StageModule } from '../module.js';
import { backendForQuality, chooseUpscaleBackend, createUpscaleStage, UPSCALE_BACKENDS, upscaleTarget } from './index.js';

export const upscaleStage: StageModule<{ target: Size }> = {
  name: 'upscale',
  key: 'upscale',
  flag: '--upscale',
  choices: () => ({ builtin: UPSCALE_BACKENDS, families: familiesOf('upscale'), models: modelNamesOf('upscale') }),
  async plan(opts, video) {
    checkChoice(upscaleStage, opts.backends?.upscale);
    const requested = backendForQuality(opts.backends?.upscale ?? 'auto', opts.quality);
    if (requested === 'none') return skip('upscale', 'upscale backend none requested');
    const target = video.target ?? upscaleTarget(opts, video);
    if (!target) return skip('upscale', 'no --scale or --size given');
    if (target.width === video.width && target.height === video.height) return skip('upscale', `output size equals the input size (${target.width}x${target.height})`);
    // the choice reads the manifest and the models folder only: a missing model fails here, before any stage opens
    const choice = await chooseUpscaleBackend(requested, Math.max(target.width / video.width, target.height / video.height));
    return willRun('upscale', choice.entry?.name ?? choice.backend, choice.reason, { target });
  },
  open: (plan, opts, env) =>
    createUpscaleStage(opts, {
      device: env.device,
      log: env.log,
      targetSize: plan.params.target,
      inputSize: { width: env.video.width, height: env.video.height },
      colour: env.video.colour,
      pixFmt: env.video.pixFmt,
    }),
};
