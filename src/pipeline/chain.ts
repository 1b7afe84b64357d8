/**
 * The stage chain: runStages pumps each stage's output through a bounded Channel (stages run
 * at once on different frames when there are workers) and gives each stage honest timings.
 */
import { CostMeter, costScope, getPool, mainCallbacks, threadCpuMs, trackMainThread } from '../workers/pool.js';
import type { FrameItem, RunContext, Stage, StageReport } from '../stages/types.js';

/**
 * An ordered stream between two stages. With `ahead` > 0 a pump pulls up to `ahead` items
 * from upstream in its own async context while the consumer works (bounded memory); with 0 it
 * pulls on demand (the serial path). `onBlock(true|false)` tells when its consumer starts and
 * stops waiting on it (runStages derives the critical path from that).
 */
export class Channel<T> implements AsyncIterable<T> {
  blocked = false;
  private readonly buf: IteratorResult<T>[] = [];
  private failed?: { e: unknown };
  private wakeConsumer?: () => void;
  private wakePump?: () => void;
  private started = false;
  private stopped = false;
  private readonly it: AsyncIterator<T>;

  constructor(
    input: AsyncIterable<T>,
    private readonly ahead: number,
    private readonly scope?: CostMeter,
    private readonly onBlock?: () => void,
  ) {
    this.it = input[Symbol.asyncIterator]();
  }

  private async pump(): Promise<void> {
    try {
      while (!this.stopped) {
        while (this.buf.length >= this.ahead && !this.stopped) await new Promise<void>((r) => (this.wakePump = r));
        if (this.stopped) break;
        const r = await this.it.next();
        this.buf.push(r);
        this.wakeConsumer?.();
        if (r.done) break;
      }
    } catch (e) {
      this.failed = { e };
      this.wakeConsumer?.();
    }
  }

  private async pull(): Promise<IteratorResult<T>> {
    if (this.ahead <= 0) return this.scope ? costScope.run(this.scope, () => this.it.next()) : this.it.next();
    if (!this.started) {
      this.started = true;
      if (this.scope) costScope.run(this.scope, () => void this.pump());
      else void this.pump();
    }
    while (!this.buf.length && !this.failed) await new Promise<void>((r) => (this.wakeConsumer = r));
    if (this.buf.length) {
      const r = this.buf.shift()!;
      this.wakePump?.();
      return r;
    }
    throw this.failed!.e;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    try {
      for (;;) {
        this.blocked = true;
        this.onBlock?.();
        let r: IteratorResult<T>;
        try {
          r = await this.pull();
        } finally {
          this.blocked = false;
          this.onBlock?.();
        }
        if (r.done) return;
        yield r.value;
      }
    } finally {
      this.stopped = true;
      this.wakePump?.();
      await this.it.return?.(undefined);
    }
  }
}

/** What runStages measured for one stage. */
export interface StageMeasure {
  /** Work done for the stage in workers (busy time) and its raw model runs. */
  meter: CostMeter;
  /** Wall time the stage was on the critical path. */
  criticalMs: number;
}

/**
 * Chain the stages over `source`. Each stage's output goes through a Channel: with workers,
 * each stage is pumped in its own async context `ahead` frames ahead (stages run at once, on
 * different frames); without, frames are pulled on demand as before. `reports()` adds to each
 * stage report its CPU time (main thread + workers), raw model time and critical-path time.
 *
 * Critical path: while the final consumer (the encoder loop) waits, follow the chain of waiting
 * consumers upstream; the first stage that is not itself waiting on its input holds the
 * pipeline, and the time is its. (Decode holds it when every stage waits.) The critical times
 * add up to at most the run's wall time.
 */
export function runStages(
  stages: Stage[],
  source: AsyncIterable<FrameItem>,
  ctx: RunContext,
  opts: { ahead?: number } = {},
): { stream: AsyncIterable<FrameItem>; reports(): StageReport[]; decodeCriticalMs(): number } {
  const ahead = opts.ahead ?? (getPool() ? 2 : 0);
  trackMainThread();
  const cpu0 = threadCpuMs();
  const wall0 = mainCallbacks.wallMs;
  const timings = stages.map((): StageMeasure => ({ meter: new CostMeter(), criticalMs: 0 }));
  const channels: Channel<FrameItem>[] = [];
  let holder = -2; // -2 nobody (the consumer is not waiting), -1 decode, k stage k
  let since = performance.now();
  let decodeCritical = 0;
  const onBlock = () => {
    const now = performance.now();
    if (holder >= 0) timings[holder].criticalMs += now - since;
    else if (holder === -1) decodeCritical += now - since;
    since = now;
    // channels[0] is decode's output (stage 0's input), channels[k + 1] is stage k's output
    let k = channels.length - 1;
    if (!channels[k].blocked) holder = -2;
    else {
      while (k > 0 && channels[k - 1].blocked) k--;
      holder = k - 1;
    }
  };
  let stream: AsyncIterable<FrameItem> = new Channel(source, ahead, undefined, onBlock);
  channels.push(stream as Channel<FrameItem>);
  stages.forEach((s, k) => {
    const ch = new Channel(s.run(stream, ctx), ahead, timings[k].meter, onBlock);
    channels.push(ch);
    stream = ch;
  });
  return {
    stream,
    decodeCriticalMs: () => decodeCritical,
    reports: () => {
      // main-thread callbacks are timed by the wall clock: scale them by the share of that
      // time the thread really ran (other processes can hold the cores)
      const wall = mainCallbacks.wallMs - wall0;
      const share = wall > 0 ? Math.min(1, (threadCpuMs() - cpu0) / wall) : 1;
      return stages.map((s, k) => withCosts(s.report(), timings[k], share));
    },
  };
}

/** The models' input preparation of a stage, and its ratio to the raw model time without it. */
function inputPrep(m: CostMeter, cpuMs: number, runMs: number, mainShare: number) {
  const prep = m.prepMs + m.prepMainMs * mainShare;
  return { inputPrepMs: Math.round(prep), ratioWithoutInputPrep: +((cpuMs - prep) / Math.max(1e-3, runMs)).toFixed(3) };
}

/**
 * A stage report with honest times: `cpuMs` = the stage's main-thread time (the callbacks run
 * in its context) + its tasks' busy time in workers;
 * `ms`/`msPerFrame` become that CPU time; `criticalMs` is its wall time on the critical path.
 */
export function withCosts(r: StageReport, t: StageMeasure, mainShare = 1): StageReport {
  if (!r.ran) return r;
  const m = t.meter;
  const mainMs = m.mainMs * mainShare;
  const cpuMs = mainMs + m.workerMs;
  // model runs and input preparation: CPU time in workers; on the main thread wall time, scaled
  // as the rest of the main thread's time (the ratio then compares like with like)
  const runMs = m.runMs + m.runMainMs * mainShare;
  const per = (x: number) => (r.frames ? +(x / r.frames).toFixed(2) : 0);
  return {
    ...r,
    ms: Math.round(cpuMs),
    msPerFrame: per(cpuMs),
    timing: {
      mainMs: Math.round(mainMs),
      workerMs: Math.round(m.workerMs),
      workerWallMs: Math.round(m.workerWallMs),
      mainShare: +mainShare.toFixed(3),
      workerTasks: m.tasks,
      ...(m.runs ? { modelRunMs: Math.round(runMs), modelRuns: m.runs, ratioToModelRun: +(cpuMs / Math.max(1e-3, runMs)).toFixed(3) } : {}),
      ...(m.runs && m.prepMs + m.prepMainMs > 0 ? inputPrep(m, cpuMs, runMs, mainShare) : {}),
      // the stage's in-order step in a worker (an actor's calls): no number of cores runs it
      // faster than one frame per orderedWallMsPerFrame
      ...(m.orderedCalls ? { orderedMs: Math.round(m.orderedMs), orderedMsPerFrame: per(m.orderedMs), orderedWallMsPerFrame: per(m.orderedWallMs) } : {}),
      criticalMs: Math.round(t.criticalMs),
      criticalMsPerFrame: per(t.criticalMs),
    },
  };
}
