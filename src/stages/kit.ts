/**
 * Building blocks for stages: ordered bounded-concurrency map, timing, the per-frame stage and
 * the skipped stage. (The chain that runs stages one after another is pipeline/chain.ts.)
 */
import PQueue from 'p-queue';
import { getPool } from '../workers/pool.js';
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
  facts?: () => StageReport['facts'];
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
      stats.report({ name: opts.name, backend: opts.backend, ran: true, reason: opts.reason, facts: opts.facts?.(), details: opts.details?.() }),
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

