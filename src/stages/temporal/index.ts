/**
 * The temporal stage (`temporal`): the streaming stage around the smoother (smoother.ts, where
 * the method is described). Backends (opts.backends.temporal): 'auto' (= 'flow'), 'flow', 'none'.
 */
import { FLICKER_DEFINITION } from '../../metrics/flicker.js';
import type { Logger } from '../../util/log.js';
import { skippedStage, StageStats } from '../kit.js';
import type { FrameItem, RestoreOptions, Stage, StageReport } from '../types.js';
import { remoteSmoother } from '../threads/remote.js';
import { checkChoice, skip, willRun, type StageModule, type StagePlan } from '../module.js';
import { TemporalSmoother, type TemporalOptions, type TemporalPrepared } from './smoother.js';

export { changedRegion, editWeight, prepareTemporal, TemporalSmoother, type TemporalFrameResult, type TemporalOptions, type TemporalPrepared } from './smoother.js';

export const TEMPORAL_BACKENDS = ['auto', 'flow', 'none'] as const;

export interface TemporalStageContext {
  device?: 'auto' | 'cpu' | 'cuda';
  log?: Logger;
  temporal?: TemporalOptions;
}

function mean(xs: number[]): number | undefined {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : undefined;
}
const r4 = (v: number | undefined) => (v === undefined ? undefined : +v.toFixed(4));

async function* plain(input: AsyncIterable<FrameItem>): AsyncGenerator<{ item: FrameItem; pre?: TemporalPrepared }> {
  for await (const item of input) yield { item };
}

/** The temporal stage. See the file comment for the method. */
export async function createTemporalStage(opts: RestoreOptions, ctx: TemporalStageContext = {}): Promise<Stage> {
  const plan = temporalStage.plan(opts, { width: 0, height: 0 }) as StagePlan;
  if (!plan.run) return skippedStage('temporal', plan.reason);
  const smoother = new TemporalSmoother(ctx.temporal);
  // with --workers, the same smoother runs in a worker (frames move there and back)
  const remote = await remoteSmoother(ctx.temporal);
  const stats = new StageStats();
  const before: number[] = [], after: number[] = [], smoothedShares: number[] = [], regionShares: number[] = [], validShares: number[] = [];
  let framesWithRegion = 0, cuts = 0;
  const reason = 'motion-compensated recursive blend of changed regions (faces, holes) with the previous output, gated by forward-backward flow consistency and warp residual';
  return {
    name: 'temporal',
    backend: 'flow',
    async *run(input: AsyncIterable<FrameItem>, runCtx) {
      // (awaited before the first frame, not before the input starts: the actor's worker may be starting)
      const resetting = Promise.resolve((remote ?? smoother).reset());
      resetting.catch(() => undefined);
      // with workers, what does not need the previous output is computed a few frames ahead, in parallel
      for await (const { item, pre } of remote ? remote.prepared(input, smoother.o.flowMaxSide, smoother.o.faceExtent) : plain(input)) {
        if (runCtx?.signal?.aborted) return;
        await resetting;
        const frame = remote && item.frame.data.buffer === item.input.data.buffer ? { ...item.frame, data: item.frame.data.slice() } : item.frame;
        const r = await stats.time(() => (remote ?? smoother).process(frame, item.faces, item.mask, item.base, pre));
        stats.frames++;
        item.frame = r.frame;
        if (r.region > 0) framesWithRegion++;
        if (r.cut) cuts++;
        regionShares.push(r.region);
        if (item.index > 0 || r.flicker !== undefined) {
          smoothedShares.push(r.smoothed);
          validShares.push(r.valid);
        }
        if (r.flicker !== undefined || r.flickerBefore !== undefined) {
          item.values ??= {};
          if (r.flicker !== undefined) {
            item.values.flicker = +r.flicker.toFixed(4);
            after.push(r.flicker);
          }
          if (r.flickerBefore !== undefined) {
            item.values.flickerBefore = +r.flickerBefore.toFixed(4);
            before.push(r.flickerBefore);
          }
        }
        yield item;
      }
    },
    close: async () => void (await remote?.close()),
    report(): StageReport {
      const o = smoother.o;
      const note =
        stats.frames > 0 && framesWithRegion === 0
          ? 'no face or hole regions reached this stage: flicker was measured, nothing was smoothed'
          : undefined;
      return stats.report({
        name: 'temporal',
        backend: 'flow',
        ran: true,
        reason: note ?? reason,
        details: {
          flickerBeforeMean: r4(mean(before)),
          flickerAfterMean: r4(mean(after)),
          smoothedShare: r4(mean(smoothedShares)),
          regionShare: r4(mean(regionShares)),
          validShare: r4(mean(validShares)),
          framesWithRegion,
          cuts,
          strength: o.strength,
          threshold: o.threshold,
          detail: o.detail,
          flowMaxSide: o.flowMaxSide,
          flickerDefinition: FLICKER_DEFINITION,
          ...(note ? { note } : {}),
        },
      });
    },
  };
}


/** The temporal stage's module (src/stages/module.ts). */
export const temporalStage: StageModule = {
  name: 'temporal',
  key: 'temporal',
  flag: '--temporal',
  choices: () => ({ builtin: TEMPORAL_BACKENDS, families: [], models: [] }),
  plan(opts) {
    const want = opts.backends?.temporal ?? 'auto';
    checkChoice(temporalStage, want);
    if (want === 'none') return skip('temporal', 'temporal backend none requested');
    return willRun('temporal', 'flow', want === 'auto' ? 'auto: flow' : 'requested', {});
  },
  open: (_plan, opts, env) => createTemporalStage(opts, { device: env.device, log: env.log }),
};
