/**
 * The run's plan: every stage module (src/stages/index.ts) plans first — bad option values
 * throw there, before anything is opened — then the stages are opened in order with one
 * environment and one set of shared services (one face analyzer, one face descriptor).
 */
import { FaceAnalyzer } from '../faces/analyzer.js';
import { createDescriptor, type FaceDescriptor } from '../faces/descriptor.js';
import type { VideoInfo } from '../media/probe.js';
import type { DeviceRequest } from '../models/session.js';
import { STAGES } from '../stages/index.js';
import { skippedStage } from '../stages/kit.js';
import type { PlanVideo, Size, StageEnv, StageModule, StagePlan, StageServices } from '../stages/module.js';
import type { RestoreOptions, Stage } from '../stages/types.js';
import type { Logger } from '../util/log.js';

export interface PlannedStage {
  module: StageModule<any>;
  plan: StagePlan<any>;
}

/** What the plan needs of the probed video, and the output size the run decided. */
export function videoForPlan(video: VideoInfo, target?: Size): PlanVideo {
  return { width: video.width, height: video.height, target, colour: video.colour, pixFmt: video.pixFmt };
}

/**
 * Plan every stage (in run order). `only` keeps those stages and plans the others as not part
 * of this run (e.g. `degrade --swap-identity` runs faces + swap). Throws the first bad option.
 */
export async function planStages(opts: RestoreOptions, video: PlanVideo, only?: readonly string[]): Promise<PlannedStage[]> {
  const planned: PlannedStage[] = [];
  for (const module of STAGES) {
    const plan: StagePlan<any> =
      only && !only.includes(module.name) ? { stage: module.name, run: false, reason: 'not part of this run' } : await module.plan(opts, video);
    planned.push({ module, plan });
  }
  return planned;
}

/**
 * One face analyzer and one descriptor per run, made on first use. Stages may leave them
 * loading while the first frames are decoded (awaiting them where they need them); a failure
 * goes to `onFailure` at once (the run stops with that error instead of at the first use).
 */
export function createServices(device: DeviceRequest, log: Logger, onFailure?: (e: unknown) => void): StageServices {
  let analyzer: Promise<FaceAnalyzer> | undefined;
  let descriptor: Promise<FaceDescriptor> | undefined;
  const watched = <T>(p: Promise<T>): Promise<T> => {
    p.catch((e) => onFailure?.(e));
    return p;
  };
  return {
    analyzer: () => (analyzer ??= watched(FaceAnalyzer.create({ device, log: (m) => log.debug(m) }))),
    descriptor: () => (descriptor ??= watched(createDescriptor({ device, log: (m) => log.debug(m) }))),
  };
}

/** Open the planned stages in order; a stage that does not run is a skipped stage saying why. */
export async function openStages(planned: PlannedStage[], opts: RestoreOptions, env: StageEnv): Promise<Stage[]> {
  const stages: Stage[] = [];
  try {
    for (const { module, plan } of planned) {
      const t0 = performance.now();
      stages.push(plan.run ? await module.open(plan, opts, env) : skippedStage(plan.stage, plan.reason));
      if (plan.run) env.log.debug(`start-up: ${plan.stage} opened in ${(performance.now() - t0).toFixed(0)} ms`);
    }
  } catch (e) {
    for (const s of stages) await s.close?.().catch(() => undefined);
    throw e;
  }
  return stages;
}
