/**
 * The batch on many machines: one BullMQ job per video on a Redis queue, taken by
 * `restore worker` processes that share the --out folder (see queue-worker.ts).
 *
 * The controller side lives here: enqueue (discover and hash exactly as the one-machine batch,
 * one job per video whose id is derived from where it goes and what it is made from, so the same
 * work enqueued twice is one job), the counts of a batch, waiting for it, and writing its index
 * from what the queue and the output folder say.
 *
 * Who writes what: the controller alone writes batch-manifest.json, the index and the history
 * (under the folder's lock); a worker writes only its video's folder, renamed into place whole,
 * with the hashes it was made from in `<slug>/result.json`. That file is what makes the manifest
 * and the queue agree: a video whose folder holds the same hashes is done, whoever did it.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Queue, type Job, type JobsOptions, type RedisOptions } from 'bullmq';
import { Redis } from 'ioredis';
import PQueue from 'p-queue';
import { queueError, RestoreError, usageError } from '../errors.js';
import { ensureWritableDir } from '../media/encode.js';
import type { Logger } from '../util/log.js';
import { silentLogger } from '../util/log.js';
import type { QueueProgressEvent } from '../pipeline/progress.js';
import type { RestoreOptions } from '../stages/types.js';
import { discoverJobs } from './discover.js';
import { hashValue } from './hash.js';
import { DEFAULT_THRESHOLDS, readHistory, type Thresholds } from './history.js';
import { loadBatchManifest, ManifestStore, type ManifestVideo } from './manifest.js';
import {
  errorLine,
  finishedWith,
  hashesOf,
  manifestEntryOf,
  planVideo,
  takeLock,
  writeBatchOutputs,
  type BatchSummary,
  type VideoHashes,
  type VideoPlan,
} from './runner.js';

export const DEFAULT_QUEUE_NAME = 'restore-batch';
export const JOB_NAME = 'video';
/** Ended jobs are kept this long, so that enqueueing the same work again finds them. */
export const KEEP_ENDED_S = 30 * 24 * 3600;

/** Where the queue is: parsed from `redis://[user:password@]HOST:PORT[/DB]` (`rediss://` for TLS). */
export interface QueueTarget {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls: boolean;
  /** The address without the password, for messages. */
  display: string;
  name: string;
}

export function parseQueueUrl(url: string, name = DEFAULT_QUEUE_NAME): QueueTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw usageError(`--queue must look like redis://HOST:PORT[/DB] (got "${url}")`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw usageError(`--queue must be a redis:// or rediss:// address (got "${url}")`);
  const db = u.pathname && u.pathname !== '/' ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0 || db > 1024) throw usageError(`--queue: the database must be a number, as in redis://HOST:6379/2 (got "${u.pathname.slice(1)}")`);
  const port = u.port ? Number(u.port) : 6379;
  if (!u.hostname) throw usageError(`--queue: no host in "${url}"`);
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw usageError(`--queue-name must hold letters, digits, '.', '_' or '-' (got "${name}")`);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  return {
    host,
    port,
    db,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    tls: u.protocol === 'rediss:',
    display: `${u.protocol}//${u.hostname}:${port}/${db}`,
    name,
  };
}

/** ioredis options; `worker` connections wait through a Redis restart instead of failing commands. */
export function connectionOf(t: QueueTarget, kind: 'worker' | 'client'): RedisOptions {
  return {
    host: t.host,
    port: t.port,
    db: t.db,
    ...(t.username ? { username: t.username } : {}),
    ...(t.password ? { password: t.password } : {}),
    ...(t.tls ? { tls: {} } : {}),
    // BullMQ requires null for workers (blocking commands); the controller retries too, so that a
    // restarting Redis delays it instead of failing it.
    maxRetriesPerRequest: null,
    retryStrategy: (times: number) => Math.min(200 * times, kind === 'worker' ? 5000 : 2000),
    ...(kind === 'client' ? { enableOfflineQueue: true } : {}),
  };
}

const unreachable = (t: QueueTarget, why: string): RestoreError =>
  queueError(`cannot reach the job queue at ${t.display}: ${why}`, 'start Redis there (redis-server, see README "Scale-out") or fix --queue');

/** Connect once, fail fast with one line: Redis missing, refusing, too old or read-only. */
export async function checkQueue(t: QueueTarget, timeoutMs = 4000): Promise<{ version: string; evictionPolicy?: string }> {
  const r = new Redis({
    ...connectionOf(t, 'client'),
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  let lastError: any;
  r.on('error', (e) => (lastError = e)); // the cause; connect() rejects with only 'Connection is closed'
  try {
    await r.connect();
    const info = String(await r.info('server'));
    const version = /redis_version:([^\r\n]+)/.exec(info)?.[1] ?? 'unknown';
    if (Number(version.split('.')[0]) < 5) throw queueError(`the job queue at ${t.display} runs Redis ${version}; BullMQ needs 5 or later`, 'install a newer redis-server');
    let evictionPolicy: string | undefined;
    try {
      const cfg = (await r.config('GET', 'maxmemory-policy')) as string[];
      evictionPolicy = cfg[1];
    } catch {
      /* CONFIG may be disabled on managed Redis */
    }
    return { version, evictionPolicy };
  } catch (e: any) {
    if (e?.name === 'RestoreError') throw e;
    const msg = String(lastError?.code ?? lastError?.message ?? e?.message ?? e).split('\n')[0]!;
    const why = /ECONNREFUSED/.test(msg) ? 'connection refused' : /ENOTFOUND|EAI_AGAIN/.test(msg) ? `unknown host ${t.host}` : /timeout|ETIMEDOUT/i.test(msg) ? `no answer within ${timeoutMs / 1000} s` : msg;
    throw unreachable(t, why);
  } finally {
    r.disconnect();
  }
}

export function openQueue(t: QueueTarget): Queue<QueueJobData> {
  const q = new Queue<QueueJobData>(t.name, { connection: connectionOf(t, 'client') });
  q.on('error', () => undefined); // connection errors: commands wait and retry (see connectionOf)
  return q;
}

/** What a job carries: everything a worker on another machine needs, with absolute shared paths. */
export interface QueueJobData {
  v: 1;
  id: string;
  slug: string;
  /** The --out folder (absolute; the same path on every machine). */
  out: string;
  runOpts: RestoreOptions;
  hashes: VideoHashes;
  queuedAt: string;
}

/** What a worker's job returns. */
export interface QueueJobResult {
  outcome: 'done' | 'kept' | 'already-done';
  id: string;
  slug: string;
  by: string;
  finishedAt: string;
}

/**
 * The job id: the same destination made from the same input, companions and settings is the same
 * job. (The destination is in it because two videos with identical bytes are still two outputs.)
 */
export function jobIdOf(outDir: string, slug: string, h: VideoHashes): string {
  return `v${hashValue({ out: outDir, slug, ...h }).slice(0, 40)}`;
}

export interface QueueBatchOptions {
  out: string;
  run?: Partial<RestoreOptions>;
  queue: QueueTarget;
  log?: Logger;
  signal?: AbortSignal;
}

export interface EnqueueOptions extends QueueBatchOptions {
  /** Tries per video before it is marked failed (default 3). */
  attempts?: number;
  /** Delay before the first retry, ms; doubles with each retry (default 10 000). */
  backoffMs?: number;
  /** Put videos that failed in the queue back (otherwise an enqueue leaves them failed). */
  retryFailed?: boolean;
  onHashed?(done: number, total: number): void;
}

export interface EnqueueSummary {
  queue: string;
  videos: number;
  /** New jobs put on the queue. */
  added: number;
  /** Already waiting or running in the queue: not added again. */
  queued: number;
  /** Already finished (by any worker or a one-machine batch) with the same hashes. */
  done: number;
  /** Failed in the queue and left failed (see --retry-failed). */
  failed: number;
  /** Failed jobs put back by --retry-failed. */
  retried: number;
  /** Could not be hashed (missing or unreadable input): not queued, marked failed. */
  unreadable: number;
  jobIds: Record<string, string>;
}

async function planBatch(dir: string, o: QueueBatchOptions): Promise<{ root: string; outDir: string; plans: VideoPlan[] }> {
  const outDir = path.resolve(o.out);
  const root = path.resolve(dir);
  if (outDir === root) throw usageError('--out must not be the batch folder itself', 'use a sub-folder or another folder');
  const jobs = await discoverJobs(root, { exclude: [outDir] });
  if (!jobs.length) throw usageError(`${dir}: no videos found (.mp4 .mov .mkv .webm .avi .m4v)`, 'or list them in restore-batch.json');
  return { root, outDir, plans: jobs.map((j) => planVideo(j, outDir, o.run)) };
}


/** Map over items with at most `n` at once, in order. */
async function mapLimit<T, R>(items: T[], n: number, fn: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const q = new PQueue({ concurrency: n });
  return Promise.all(items.map((x, i) => q.add(() => fn(x, i)) as Promise<R>));
}

/** Enqueue one job per video that is not done; the same work twice is one job. */
export async function enqueueBatch(dir: string, o: EnqueueOptions): Promise<EnqueueSummary> {
  const log = o.log ?? silentLogger;
  const attempts = o.attempts ?? 3;
  if (!Number.isInteger(attempts) || attempts < 1 || attempts > 100) throw usageError(`--attempts must be an integer in [1, 100] (got ${attempts})`);
  const { outDir, plans } = await planBatch(dir, o);
  const info = await checkQueue(o.queue);
  if (info.evictionPolicy && info.evictionPolicy !== 'noeviction') log.warn(`Redis at ${o.queue.display} has maxmemory-policy ${info.evictionPolicy}: it may drop jobs under memory pressure; set it to noeviction`);
  await ensureWritableDir(outDir);
  const unlock = await takeLock(outDir);
  const queue = openQueue(o.queue);
  try {
    const store = await storeWith(outDir, plans, log);
    const s: EnqueueSummary = { queue: `${o.queue.display} ${o.queue.name}`, videos: plans.length, added: 0, queued: 0, done: 0, failed: 0, retried: 0, unreadable: 0, jobIds: {} };
    let hashed = 0;
    const now = new Date().toISOString();
    const toAdd: { name: string; data: QueueJobData; opts: JobsOptions }[] = [];
    await mapLimit(plans, 2, async (p) => {
      const { job } = p;
      let hashes: VideoHashes;
      try {
        hashes = await hashesOf(p, o.signal);
      } catch (e) {
        if (o.signal?.aborted) throw e;
        const { error, kind } = errorLine(e);
        Object.assign(store.data.videos[job.id]!, { state: 'failed', error, errorKind: kind, finishedAt: now, jobId: undefined });
        s.unreadable++;
        return;
      } finally {
        o.onHashed?.(++hashed, plans.length);
      }
      const jobId = jobIdOf(outDir, job.slug, hashes);
      s.jobIds[job.id] = jobId;
      const entry = store.data.videos[job.id]!;
      Object.assign(entry, hashes, { jobId });
      const record = await finishedWith(outDir, job.slug, hashes);
      if (record) {
        // Done before this enqueue (no queuedAt): the index shows it as carried over, not redone.
        Object.assign(entry, { state: 'done', finishedAt: record.finishedAt, metrics: record.metrics, error: undefined, errorKind: undefined, queuedAt: undefined });
        s.done++;
        return;
      }
      const state = await queue.getJobState(jobId);
      if (state === 'failed') {
        if (o.retryFailed) {
          const j = await queue.getJob(jobId);
          await j?.retry('failed');
          Object.assign(entry, { state: 'pending', error: undefined, errorKind: undefined, queuedAt: now });
          s.retried++;
        } else {
          const j = await queue.getJob(jobId);
          Object.assign(entry, { state: 'failed', error: j?.failedReason ?? entry.error, attempts: j?.attemptsMade ?? entry.attempts });
          s.failed++;
        }
        return;
      }
      if (state === 'completed') {
        // The queue says done but the folder does not hold that result (removed or replaced since): redo.
        await queue.remove(jobId).catch(() => undefined);
      } else if (state !== 'unknown') {
        Object.assign(entry, { state: 'pending' });
        s.queued++;
        return;
      }
      toAdd.push({
        name: JOB_NAME,
        data: { v: 1, id: job.id, slug: job.slug, out: outDir, runOpts: p.runOpts, hashes, queuedAt: now },
        opts: {
          jobId,
          attempts,
          backoff: { type: 'exponential', delay: o.backoffMs ?? 10_000 },
          removeOnComplete: { age: KEEP_ENDED_S },
          removeOnFail: { age: KEEP_ENDED_S },
        },
      });
      Object.assign(entry, { state: 'pending', queuedAt: now, startedAt: undefined, finishedAt: undefined, error: undefined, errorKind: undefined, metrics: undefined });
    });
    for (let i = 0; i < toAdd.length; i += 500) await queue.addBulk(toAdd.slice(i, i + 500));
    s.added = toAdd.length;
    await store.save();
    return s;
  } finally {
    await queue.close().catch(() => undefined);
    await unlock();
  }
}

/** How the videos of one batch stand (the counts the progress bar shows). */
export type QueueCounts = Omit<QueueProgressEvent, 'etaS' | 'unreachable'>;

/** The folder's manifest with an entry for every planned video (kept state from earlier runs). */
async function storeWith(outDir: string, plans: VideoPlan[], log: Logger): Promise<ManifestStore> {
  const store = new ManifestStore(outDir, await loadBatchManifest(outDir, (m) => log.warn(m)));
  for (const p of plans) store.data.videos[p.job.id] = manifestEntryOf(store.data.videos[p.job.id], p);
  return store;
}

export interface VideoQueueState {
  entry: ManifestVideo;
  state: 'done' | 'running' | 'waiting' | 'failed' | 'missing';
  job?: Job<QueueJobData, QueueJobResult>;
}

/**
 * The state of each manifest entry, from its job; a folder is read only where the queue cannot
 * tell (no job, or a completed one when `verify`: the index reads the result anyway).
 */
async function statesOf(outDir: string, queue: Queue<QueueJobData>, entries: ManifestVideo[], verify: boolean): Promise<VideoQueueState[]> {
  return mapLimit(entries, 64, async (entry): Promise<VideoQueueState> => {
    const h = entry.inputHash && entry.pairHash && entry.settingsHash ? (entry as unknown as VideoHashes) : undefined;
    const job = entry.jobId && verify ? ((await queue.getJob(entry.jobId)) as Job<QueueJobData, QueueJobResult> | undefined) : undefined;
    const st = entry.jobId ? (job ? await job.getState() : verify ? 'unknown' : await queue.getJobState(entry.jobId)) : 'unknown';
    if (st === 'active') return { entry, state: 'running', job };
    if (st === 'failed') return { entry, state: 'failed', job };
    if (st === 'completed' && !verify) return { entry, state: 'done', job };
    if (st === 'completed' || st === 'unknown') {
      if (h && (await finishedWith(outDir, entry.slug, h))) return { entry, state: 'done', job };
      return { entry, state: entry.state === 'failed' && !entry.jobId ? 'failed' : 'missing', job };
    }
    return { entry, state: 'waiting', job };
  });
}

function countsOf(states: VideoQueueState[]): QueueCounts {
  const c: QueueCounts = { videos: states.length, done: 0, running: 0, waiting: 0, failed: 0, missing: 0 };
  for (const s of states) c[s.state]++;
  return c;
}

export interface BatchStatus extends QueueCounts {
  queue: string;
  /** Every job of the queue (all batches), by BullMQ state. */
  all: Record<string, number>;
}

/** The batch's videos: those of the manifest in `out` that an enqueue gave a job (or that are done). */
async function batchEntries(outDir: string): Promise<ManifestVideo[]> {
  const m = await loadBatchManifest(outDir);
  return Object.values(m.videos).filter((v) => v.jobId || v.state === 'done' || v.state === 'failed');
}

export async function queueStatus(o: { out?: string; queue: QueueTarget }): Promise<BatchStatus> {
  await checkQueue(o.queue);
  const queue = openQueue(o.queue);
  try {
    const all = await queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed');
    const counts = o.out ? countsOf(await statesOf(path.resolve(o.out), queue, await batchEntries(path.resolve(o.out)), false)) : { videos: 0, done: 0, running: 0, waiting: 0, failed: 0, missing: 0 };
    return { queue: `${o.queue.display} ${o.queue.name}`, ...counts, all };
  } finally {
    await queue.close().catch(() => undefined);
  }
}

export interface WaitTick extends QueueCounts {
  elapsedMs: number;
  /** Seconds left at the rate videos ended since waiting began; undefined until one ended. */
  etaS?: number;
  /** Set while Redis does not answer (it restarts, or the network is down). */
  unreachable?: string;
}

/**
 * Poll the batch's counts until nothing is waiting or running (Ctrl-C: `signal`). A Redis that
 * stops answering is waited for (the jobs are in its append-only file) up to `giveUpMs`.
 */
export async function waitForBatch(o: {
  out: string;
  queue: QueueTarget;
  /** Only these videos (ids) of the manifest: the ones just enqueued; default every entry with a job. */
  only?: Iterable<string>;
  signal?: AbortSignal;
  pollMs?: number;
  giveUpMs?: number;
  onTick?(t: WaitTick): void;
}): Promise<QueueCounts> {
  const outDir = path.resolve(o.out);
  const queue = openQueue(o.queue);
  const t0 = Date.now();
  let ended0: number | undefined;
  let downSince: number | undefined;
  try {
    const only = o.only ? new Set(o.only) : undefined;
    const entries = (await batchEntries(outDir)).filter((e) => !only || only.has(e.id));
    for (;;) {
      if (o.signal?.aborted) throw new RestoreError('interrupted', 'interrupted while waiting; the workers go on: `restore batch ... --queue ... --status` shows them');
      let c: QueueCounts;
      try {
        c = countsOf(await withTimeout(statesOf(outDir, queue, entries, false), 5000));
        downSince = undefined;
      } catch (e: any) {
        downSince ??= Date.now();
        if (Date.now() - downSince > (o.giveUpMs ?? 300_000)) throw unreachable(o.queue, `no answer for ${Math.round((Date.now() - downSince) / 1000)} s`);
        o.onTick?.({ videos: entries.length, done: 0, running: 0, waiting: 0, failed: 0, missing: 0, elapsedMs: Date.now() - t0, unreachable: String(e?.message ?? e).split('\n')[0] });
        await sleep(o.pollMs ?? 1000, o.signal);
        continue;
      }
      const ended = c.done + c.failed + c.missing;
      ended0 ??= ended;
      const elapsedMs = Date.now() - t0;
      const rate = (ended - ended0) / Math.max(1, elapsedMs);
      const left = c.waiting + c.running;
      o.onTick?.({ ...c, elapsedMs, ...(rate > 0 ? { etaS: Math.round(left / rate / 1000) } : {}) });
      if (left === 0) return c;
      await sleep(o.pollMs ?? 1000, o.signal);
    }
  } finally {
    await queue.close().catch(() => undefined);
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((r) => {
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      r();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`Redis did not answer within ${ms / 1000} s`)), ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e) => (clearTimeout(t), reject(e)),
    );
  });
}

export interface QueueIndexOptions extends QueueBatchOptions {
  junit?: string;
  thresholds?: Partial<Thresholds>;
}

/** Write index.html/json, a history line and JUnit from what is done and failed now. */
export async function indexFromQueue(dir: string, o: QueueIndexOptions): Promise<BatchSummary> {
  const log = o.log ?? silentLogger;
  const { root, outDir, plans } = await planBatch(dir, o);
  await checkQueue(o.queue);
  const startedAt = new Date().toISOString();
  const runId = `${startedAt.replace(/[:.]/g, '-')}-${process.pid}`;
  await ensureWritableDir(outDir);
  const unlock = await takeLock(outDir);
  const queue = openQueue(o.queue);
  try {
    const store = await storeWith(outDir, plans, log);
    const entries = plans.map((p) => store.data.videos[p.job.id]!);
    const states = await statesOf(outDir, queue, entries, true);
    const resumed = new Set<string>();
    const processed = new Set<string>();
    let first = Infinity;
    let last = 0;
    const workers = new Set<string>(); // the processes that finished this run's videos
    for (const { entry, state, job } of states) {
      const queuedAt = entry.queuedAt;
      if (state === 'done') {
        const rec = (await finishedWith(outDir, entry.slug, entry as unknown as VideoHashes))!;
        Object.assign(entry, { state: 'done', finishedAt: rec.finishedAt, metrics: rec.metrics, error: undefined, errorKind: undefined });
        if (job) entry.attempts = Math.max(1, job.attemptsStarted ?? job.attemptsMade ?? 1);
        if (!queuedAt || rec.finishedAt < queuedAt) resumed.add(entry.id);
        else {
          processed.add(entry.id);
          workers.add(rec.by);
        }
      } else if (state === 'failed') {
        const error = job?.failedReason ? job.failedReason.split('\n')[0] : (entry.error ?? 'failed');
        Object.assign(entry, { state: 'failed', error, errorKind: /^internal error/.test(error) ? 'internal' : 'input', metrics: undefined });
        if (job) {
          entry.attempts = job.attemptsMade;
          if (job.finishedOn) entry.finishedAt = new Date(job.finishedOn).toISOString();
        }
        processed.add(entry.id);
      } else {
        Object.assign(entry, { state: state === 'running' ? 'running' : 'pending' });
      }
      if (processed.has(entry.id)) {
        if (queuedAt) first = Math.min(first, Date.parse(queuedAt));
        if (entry.finishedAt) last = Math.max(last, Date.parse(entry.finishedAt));
      }
    }
    await store.save();
    const wallMs = Number.isFinite(first) && last > first ? last - first : 0;
    return await writeBatchOutputs({
      root,
      outDir,
      runId,
      startedAt,
      entries,
      settings: plans.map((p) => p.settings),
      resumed,
      processed,
      wallMs,
      history: await readHistory(outDir),
      thresholds: { ...DEFAULT_THRESHOLDS, ...o.thresholds },
      // Shown as the index's concurrency: how many worker processes finished this run's videos.
      concurrency: workers.size,
      junit: o.junit,
      videosPerMinute: wallMs > 0 ? +((processed.size / wallMs) * 60000).toFixed(3) : undefined,
    });
  } finally {
    await queue.close().catch(() => undefined);
    await unlock();
  }
}

/** Remove a finished folder's staging leftovers of dead processes on this host (see queue-processor). */
export async function removeStaleStaging(stagingRoot: string, slug: string, host: string, alive: (pid: number) => boolean): Promise<void> {
  let names: string[];
  try {
    names = await fs.readdir(stagingRoot);
  } catch {
    return;
  }
  for (const n of names) {
    const [s, h, pid] = n.split('@');
    if (s === slug && h === host && pid && !alive(Number(pid))) await fs.rm(path.join(stagingRoot, n), { recursive: true, force: true });
  }
}
