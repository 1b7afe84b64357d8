/**
 * The upscale stage's module (src/stages/module.ts): built-in resamplers and embedded models,
 * plus every upscale family and model of the manifest (families.ts picks among them), so a new
 * SwinIR or Real-ESRGAN export is a manifest entry.
 */
import { checkChoice, familiesOf, modelNamesOf, skip, willRun, type StageModule } from '../module.js';
import { createUpscaleStage, planUpscale, UPSCALE_BACKENDS, type UpscalePlan } from './index.js';

export const upscaleStage: StageModule<Exclude<UpscalePlan, { skip: string }>> = {
  name: 'upscale',
  key: 'upscale',
  flag: '--upscale',
  choices: () => ({ builtin: UPSCALE_BACKENDS, families: familiesOf('upscale'), models: modelNamesOf('upscale') }),
  async plan(opts, video) {
    checkChoice(upscaleStage, opts.backends?.upscale);
    const p = await planUpscale(opts, video, video.target);
    if ('skip' in p) return skip('upscale', p.skip);
    return willRun('upscale', p.choice.entry?.name ?? p.choice.backend, p.choice.reason, p);
  },
  open: (plan, opts, env) =>
    createUpscaleStage(
      opts,
      {
        device: env.device,
        log: env.log,
        targetSize: plan.params.target,
        inputSize: { width: env.video.width, height: env.video.height },
        colour: env.video.colour,
        pixFmt: env.video.pixFmt,
      },
      plan.params,
    ),
};
