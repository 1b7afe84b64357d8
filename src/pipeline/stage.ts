/**
 * Building blocks for stages: ordered bounded-concurrency map, timing, the skipped stage, and
 * the stage chain (runStages) that gives each stage its own pump and honest timings.
 */
import PQueue from 'p-queue';
import { CostMeter, costScope, getPool, mainCallbacks, threadCpuMs, trackMainThread } from '../workers/pool.js';
import type { FrameItem, RunContext, Stage, StageReport } from './types.js';

/**
 * Frames a per-frame stage works on at once by default: one more than the workers, so every
 * worker has a frame while the main thread prepares the next (1 = serial with --workers 0).
 */
export function defaultFrameConcurrency(): number {
  const p = getPool();
  return p ? p.size + 1 : 1;
}

/**
 * Map an ordered async stream with at most `concurrency` calls in flight, yielding results in
 * input order. Pulls a new item only when a slot is free, so back-pressure reaches the source.
 */
export async function* mapOrdered<T, R>(
  input: AsyncIterable<T>,
  fn: (item: T) => Promise<R>,
  concurrency = 1,
): AsyncGenerator<R> {
  if (concurrency <= 1) {
    for await (const x of input) yield await fn(x);
    return;
  }
  const queue = new PQueue({ concurrency });
  const pending: Promise<R>[] = [];
  for await (const x of input) {
    const p = queue.add(() => fn(x)) as Promise<R>;
    p.catch(() => undefined); // handled when awaited in order below
    pending.push(p);
    while (pending.length >= concurrency) yield await pending.shift()!;
  }
  while (pending.length) yield await pending.shift()!;
}

/** Accumulates a stage's work time and frame count for the report. */
export class StageStats {
  ms = 0;
  frames = 0;
  async time<T>(fn: () => Promise<T> | T): Promise<T> {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      this.ms += performance.now() - t0;
    }
  }
  report(base: Omit<StageReport, 'frames' | 'ms' | 'msPerFrame'>): StageReport {
    return { ...base, frames: this.frames, ms: Math.round(this.ms), msPerFrame: this.frames ? +(this.ms / this.frames).toFixed(2) : 0 };
  }
}

export interface PerFrameStageOptions {
  name: string;
  backend: string;
  reason?: string;
  concurrency?: number;
  details?: () => Record<string, unknown> | undefined;
  close?: () => Promise<void>;
}

/** A stage that handles each frame on its own. `fn` may mutate and return the item. */
export function perFrameStage(
  opts: PerFrameStageOptions,
  fn: (item: FrameItem, ctx: RunContext) => Promise<FrameItem> | FrameItem,
): Stage {
  const stats = new StageStats();
  return {
    name: opts.name,
    backend: opts.backend,
    run(input, ctx) {
      return mapOrdered(
        input,
        async (item) => {
          const out = await stats.time(() => fn(item, ctx));
          stats.frames++;
          return out;
        },
        opts.concurrency ?? defaultFrameConcurrency(),
      );
    },
    report: () =>
      stats.report({ name: opts.name, backend: opts.backend, ran: true, reason: opts.reason, details: opts.details?.() }),
    close: opts.close,
  };
}

/** A stage that did not run: frames pass through untouched and the report says why. */
export function skippedStage(name: string, reason: string): Stage {
  return {
    name,
    backend: 'none',
    run: (input) => input,
    report: () => ({ name, backend: 'none', ran: false, reason, frames: 0, ms: 0, msPerFrame: 0 }),
  };
}

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
      ...(m.runs ? { modelRunMs: Math.round(m.runMs), modelRuns: m.runs, ratioToModelRun: +(cpuMs / Math.max(1e-3, m.runMs)).toFixed(3) } : {}),
      criticalMs: Math.round(t.criticalMs),
      criticalMsPerFrame: per(t.criticalMs),
    },
  };
}
