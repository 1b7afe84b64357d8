/**
 * The batch runner: discover → hash → skip what is done and unchanged → run the rest with a
 * p-queue worker pool → index.json / index.html / history.jsonl / JUnit.
 *
 * Safety against a kill at any moment:
 *  - each video runs into a staging folder `<out>/.partial/<slug>/`; only when its run finished
 *    is the whole folder renamed to `<out>/<slug>/` (so no half-written video, thumbnail or report
 *    ever sits under a final name), and only then is the manifest entry marked done;
 *  - the manifest, index, history and JUnit files are written atomically (temp + rename);
 *  - a lock file keeps two batches off one output folder; a stale lock (dead pid) is taken over,
 *    and staging leftovers of a killed batch are removed at start.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import PQueue from 'p-queue';
import { EXIT, isRestoreError, RestoreError, usageError } from '../errors.js';
import { ensureWritableDir, writeFileAtomic } from '../media/encode.js';
import type { Logger } from '../util/log.js';
import { silentLogger } from '../util/log.js';
import { defaultOptions, runRestore, toolVersion, type RunHooks, type RunResult } from '../pipeline/run.js';
import type { RestoreOptions } from '../stages/types.js';
import { discoverJobs, type BatchJob } from './discover.js';
import { hashFile, hashValue, shortHash } from './hash.js';
import {
  appendHistory,
  compareRun,
  compareVideo,
  DEFAULT_THRESHOLDS,
  historyVideoOf,
  readHistory,
  type HistoryRecord,
  type HistoryVideo,
  type Thresholds,
} from './history.js';
import { historySeries, writeIndex, type BatchCounts, type BatchIndex, type IndexRow } from './index-report.js';
import { writeJUnit } from './junit.js';
import { loadBatchManifest, MANIFEST_FILE, ManifestStore, type ManifestVideo } from './manifest.js';
import { metricsOf } from './metrics.js';
import { writeRunReports } from '../report/write.js';
import { exists, LOCK_FILE, OUTPUT_NAME, rel, REPORT_SUBDIR, RESULT_FILE, STAGING_DIR, type BatchSummary } from './layout.js';
import { writeBatchOutputs } from './outputs.js';

export interface BatchRunOptions {
  /** Output folder: one sub-folder per video, plus the manifest, index and history. */
  out: string;
  /** Single-run options applied to every video (input/out/reportDir/reference/mask/identity are per video). */
  run?: Partial<RestoreOptions>;
  /** Videos processed at once (default 1). */
  concurrency?: number;
  /** Redo every video even when done and unchanged. */
  force?: boolean;
  /** Write a JUnit XML file here. */
  junit?: string;
  thresholds?: Partial<Thresholds>;
  signal?: AbortSignal;
  log?: Logger;
  /** Called when a video starts / ends (progress lines). */
  onVideo?(e: VideoEvent): void;
  /** The single-video run (tests may wrap it); default runRestore. */
  runOne?: (opts: RestoreOptions, hooks: RunHooks) => Promise<RunResult>;
}

export interface VideoEvent {
  phase: 'start' | 'done' | 'failed' | 'skipped';
  id: string;
  index: number;
  total: number;
  error?: string;
  row?: IndexRow;
}

/** Keys of RestoreOptions that locate files or steer the console, not the result. */
const NOT_SETTINGS = new Set(['input', 'out', 'reportDir', 'reference', 'identity', 'json', 'quiet', 'progress', 'concurrency']);

/** The settings that decide a video's result (hashed for resume; shown in the index). */
export function settingsOf(o: RestoreOptions): Record<string, unknown> {
  const s: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (NOT_SETTINGS.has(k) || v === undefined) continue;
    if (k === 'mask') {
      if (v === 'auto') s.mask = 'auto';
      continue;
    }
    if (k === 'backends') {
      const b: Record<string, string> = {};
      for (const [bk, bv] of Object.entries(v as Record<string, string | undefined>)) if (bv !== undefined) b[bk] = bv;
      s.backends = b;
      continue;
    }
    s[k] = v;
  }
  s.toolVersion = toolVersion;
  return s;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e: any) {
    return e?.code === 'EPERM';
  }
}

export async function takeLock(outDir: string): Promise<() => Promise<void>> {
  const file = path.join(outDir, LOCK_FILE);
  const mine = JSON.stringify({ pid: process.pid, host: os.hostname(), startedAt: new Date().toISOString() });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await fs.writeFile(file, mine, { flag: 'wx' });
      return async () => {
        await fs.rm(file, { force: true });
      };
    } catch (e: any) {
      if (e?.code !== 'EEXIST') throw e;
      let held: { pid?: number; host?: string } = {};
      try {
        held = JSON.parse(await fs.readFile(file, 'utf8'));
      } catch {
        /* torn lock file: stale */
      }
      if (held.pid && held.host === os.hostname() && held.pid !== process.pid && isAlive(held.pid)) {
        throw usageError(`another batch (pid ${held.pid}) is writing to ${outDir}`, 'wait for it to finish or choose another --out');
      }
      await fs.rm(file, { force: true });
    }
  }
  throw usageError(`cannot lock ${outDir}`, 'remove its .batch.lock if no batch is running');
}


function prefixed(log: Logger, id: string): Logger {
  return { info: (m) => log.info(`[${id}] ${m}`), warn: (m) => log.warn(`[${id}] ${m}`), debug: (m) => log.debug(`[${id}] ${m}`) };
}

/** One line for a failure, and its kind (RestoreError kinds, else 'internal'). */
export function errorLine(e: unknown): { error: string; kind: string } {
  if (isRestoreError(e)) return { error: e.toLine(), kind: e.kind };
  const msg = (e as Error)?.message ?? String(e);
  return { error: `internal error: ${msg.split('\n')[0]}`, kind: 'internal' };
}

/** A discovered video with its effective single-run options and the settings that decide its result. */
export interface VideoPlan {
  job: BatchJob;
  /** out/reportDir point at the default staging folder; runIntoFinal re-points them at its own. */
  runOpts: RestoreOptions;
  settings: Record<string, unknown>;
}

/** What decides whether a finished video may be kept: its input, its companions, its settings. */
export interface VideoHashes {
  inputHash: string;
  pairHash: string;
  settingsHash: string;
}

/** `<out>/<slug>/result.json`: who finished a video from what, and its numbers. */
export interface VideoRecord extends VideoHashes {
  id: string;
  slug: string;
  finishedAt: string;
  metrics: ReturnType<typeof metricsOf>;
  /** host:pid of the process that made it. */
  by: string;
  jobId?: string;
}

export function planVideo(job: BatchJob, outDir: string, run: Partial<RestoreOptions> = {}): VideoPlan {
  const runOpts = defaultOptions({
    ...stripUndefined(run),
    ...stripUndefined(job.options ?? {}),
    backends: { ...stripUndefined(run.backends ?? {}), ...stripUndefined(job.options?.backends ?? {}) },
    input: job.input,
    out: path.join(outDir, STAGING_DIR, job.slug, OUTPUT_NAME),
    reportDir: path.join(outDir, STAGING_DIR, job.slug, REPORT_SUBDIR),
    reference: job.reference ?? run.reference,
    mask: job.mask ?? run.mask,
    identity: job.identity ?? run.identity,
    json: false,
    quiet: true,
    progress: false,
  } as Partial<RestoreOptions> & { input: string });
  return { job, runOpts, settings: settingsOf(runOpts) };
}

/** Content hashes of a video's input and companions, and the hash of its settings. */
export async function hashesOf(plan: Pick<VideoPlan, 'runOpts' | 'settings'>, signal?: AbortSignal): Promise<VideoHashes> {
  const { runOpts } = plan;
  const inputHash = await hashFile(runOpts.input, signal);
  const companion = async (p?: string) => (p && p !== 'auto' ? hashFile(p, signal) : p);
  const pairHash = hashValue({
    reference: await companion(runOpts.reference),
    mask: await companion(runOpts.mask),
    identity: await Promise.all((runOpts.identity ?? []).map((p) => hashFile(p, signal))),
  });
  return { inputHash, pairHash, settingsHash: hashValue(plan.settings) };
}

export const sameHashes = (a: Partial<VideoHashes> | undefined, b: VideoHashes) =>
  !!a && a.inputHash === b.inputHash && a.pairHash === b.pairHash && a.settingsHash === b.settingsHash;

/** The record of a finished video folder whose output and report are there (any hashes), or undefined. */
export async function readRecord(outDir: string, slug: string): Promise<VideoRecord | undefined> {
  const dir = path.join(outDir, slug);
  try {
    const rec = JSON.parse(await fs.readFile(path.join(dir, RESULT_FILE), 'utf8')) as VideoRecord;
    if (!rec || typeof rec.inputHash !== 'string') return undefined;
    if (!(await exists(path.join(dir, REPORT_SUBDIR, 'report.json'))) || !(await exists(path.join(dir, OUTPUT_NAME)))) return undefined;
    return rec;
  } catch {
    return undefined;
  }
}

/** The record of `slug` when it was made from exactly these hashes (done, unchanged), else undefined. */
export async function finishedWith(outDir: string, slug: string, h: VideoHashes): Promise<VideoRecord | undefined> {
  const rec = await readRecord(outDir, slug);
  return rec && sameHashes(rec, h) ? rec : undefined;
}

export interface RunIntoFinalOptions {
  /** The staging folder (hidden, under --out); default `<out>/.partial/<slug>`. */
  stageDir?: string;
  runOne?: (opts: RestoreOptions, hooks: RunHooks) => Promise<RunResult>;
  signal?: AbortSignal;
  log?: Logger;
  onProgress?: RunHooks['onProgress'];
  /**
   * Never replace a finished folder made from the same hashes (queue workers: a late duplicate
   * loses). The one-machine batch replaces it (it holds the folder's lock and decided to redo).
   */
  keepFinished?: boolean;
  jobId?: string;
}

/**
 * Run one video into a staging folder and, when whole, rename the folder to `<out>/<slug>/`.
 * 'kept': another process finished the same work first; its folder stays, ours is dropped.
 * Throws the run's error (the staging folder removed).
 */
export async function runIntoFinal(
  plan: VideoPlan,
  outDir: string,
  hashes: VideoHashes,
  o: RunIntoFinalOptions = {},
): Promise<{ outcome: 'done' | 'kept'; record: VideoRecord }> {
  const { job } = plan;
  const finalDir = path.join(outDir, job.slug);
  const stageDir = o.stageDir ?? path.join(outDir, STAGING_DIR, job.slug);
  const runOpts = { ...plan.runOpts, out: path.join(stageDir, OUTPUT_NAME), reportDir: path.join(stageDir, REPORT_SUBDIR) };
  await fs.rm(stageDir, { recursive: true, force: true });
  await fs.mkdir(stageDir, { recursive: true });
  const drop = () => fs.rm(stageDir, { recursive: true, force: true }).catch(() => undefined);
  try {
    const result = await (o.runOne ?? runRestore)(runOpts, { signal: o.signal, log: o.log, onProgress: o.onProgress });
    // The run is whole: point its report at the final location, then swap the folder in.
    // (re-rendered with the report writer so that json, csv and html all name the final path).
    const report = { ...result.report, output: { ...result.report.output, path: path.join(finalDir, OUTPUT_NAME) } };
    await writeRunReports(report, result.reportDir);
    const record: VideoRecord = {
      id: job.id,
      slug: job.slug,
      ...hashes,
      finishedAt: new Date().toISOString(),
      metrics: metricsOf(result.report),
      by: `${os.hostname()}:${process.pid}`,
      ...(o.jobId ? { jobId: o.jobId } : {}),
    };
    await writeFileAtomic(path.join(stageDir, RESULT_FILE), JSON.stringify(record, null, 2) + '\n');
    if (o.keepFinished) {
      const there = await finishedWith(outDir, job.slug, hashes);
      if (there) {
        await drop();
        return { outcome: 'kept', record: there };
      }
    }
    const trash = path.join(outDir, `.trash-${job.slug}-${process.pid}-${shortHash(stageDir, 6)}`);
    if (await exists(finalDir)) await fs.rename(finalDir, trash).catch((e) => (e?.code === 'ENOENT' ? undefined : Promise.reject(e)));
    try {
      await fs.rename(stageDir, finalDir);
    } catch (e: any) {
      // A non-empty folder took the final name between our check and our rename: never overwrite it.
      if (!o.keepFinished || (e?.code !== 'ENOTEMPTY' && e?.code !== 'EEXIST')) throw e;
      await drop();
      const there = await readRecord(outDir, job.slug);
      if (there) return { outcome: 'kept', record: there };
      throw e;
    } finally {
      await fs.rm(trash, { recursive: true, force: true });
    }
    return { outcome: 'done', record };
  } catch (e) {
    await drop();
    throw e;
  }
}

/** Run a batch over `dir`. Never throws for a single video's failure; throws RestoreError for batch-level problems. */
export async function runBatch(dir: string, opts: BatchRunOptions): Promise<BatchSummary> {
  const t0 = performance.now();
  const startedAt = new Date().toISOString();
  const runId = `${startedAt.replace(/[:.]/g, '-')}-${process.pid}`;
  const log = opts.log ?? silentLogger;
  const outDir = path.resolve(opts.out);
  const root = path.resolve(dir);
  const thresholds: Thresholds = { ...DEFAULT_THRESHOLDS, ...opts.thresholds };
  const concurrency = Math.max(1, Math.floor(opts.concurrency ?? 1));
  const runOne = opts.runOne ?? runRestore;
  if (outDir === root) throw usageError('--out must not be the batch folder itself', 'use a sub-folder or another folder');

  const jobs = await discoverJobs(root, { exclude: [outDir] });
  if (!jobs.length) throw usageError(`${dir}: no videos found (${['.mp4', '.mov', '.mkv', '.webm', '.avi', '.m4v'].join(' ')})`, 'or list them in restore-batch.json');

  await ensureWritableDir(outDir);
  const unlock = await takeLock(outDir);
  try {
    // Leftovers of a killed batch: staging folders and temp files never reached a final name.
    await fs.rm(path.join(outDir, STAGING_DIR), { recursive: true, force: true });
    for (const f of await fs.readdir(outDir)) {
      if (/\.partial-\d+-[0-9a-f]+/.test(f) || f.startsWith('.trash-')) await fs.rm(path.join(outDir, f), { recursive: true, force: true });
    }
    const store = new ManifestStore(outDir, await loadBatchManifest(outDir, (m) => log.warn(m)));
    const history = await readHistory(outDir);

    // Per-video effective options; entries for videos no longer present are kept in the manifest
    // (their folders too) but leave the index.
    const plans = jobs.map((job) => planVideo(job, outDir, opts.run));
    for (const { job } of plans) {
      const prev = store.data.videos[job.id];
      store.data.videos[job.id] = manifestEntryOf(prev, { job });
    }
    await store.save();

    const resumed = new Set<string>();
    const processed = new Set<string>();
    let started = 0;
    const queue = new PQueue({ concurrency });
    const abortAll = () => queue.clear();
    opts.signal?.addEventListener('abort', abortAll, { once: true });

    const work = async (plan: (typeof plans)[number], index: number) => {
      const { job } = plan;
      if (opts.signal?.aborted) return;
      const entry = store.data.videos[job.id]!;
      const finalDir = path.join(outDir, job.slug);
      let hashes: VideoHashes;
      try {
        hashes = await hashesOf(plan, opts.signal);
      } catch (e) {
        if (opts.signal?.aborted) return;
        const { error, kind } = errorLine(e);
        await store.update(job.id, (v) => Object.assign(v, { state: 'failed', error, errorKind: kind, finishedAt: new Date().toISOString(), inputHash: undefined, metrics: undefined }));
        processed.add(job.id);
        opts.onVideo?.({ phase: 'failed', id: job.id, index, total: jobs.length, error });
        return;
      }
      const unchanged = entry.state === 'done' && sameHashes(entry, hashes);
      if (!opts.force && unchanged && (await exists(path.join(finalDir, REPORT_SUBDIR, 'report.json'))) && (await exists(path.join(finalDir, OUTPUT_NAME)))) {
        resumed.add(job.id);
        opts.onVideo?.({ phase: 'skipped', id: job.id, index, total: jobs.length });
        return;
      }
      // Finished by a queue worker (or a run whose manifest write was lost): its folder says so.
      const record = opts.force ? undefined : await finishedWith(outDir, job.slug, hashes);
      if (record) {
        await store.update(job.id, (v) => Object.assign(v, { state: 'done', ...hashes, finishedAt: record.finishedAt, metrics: record.metrics, error: undefined, errorKind: undefined }));
        resumed.add(job.id);
        opts.onVideo?.({ phase: 'skipped', id: job.id, index, total: jobs.length });
        return;
      }

      await store.update(job.id, (v) =>
        Object.assign(v, {
          state: 'running',
          ...hashes,
          startedAt: new Date().toISOString(),
          finishedAt: undefined,
          error: undefined,
          errorKind: undefined,
          attempts: (v.attempts ?? 0) + 1,
        }),
      );
      started++;
      opts.onVideo?.({ phase: 'start', id: job.id, index, total: jobs.length });
      try {
        const { record } = await runIntoFinal(plan, outDir, hashes, { runOne, signal: opts.signal, log: prefixed(log, job.id) });
        const metrics = record.metrics;
        await store.update(job.id, (v) => Object.assign(v, { state: 'done', finishedAt: new Date().toISOString(), metrics }));
        processed.add(job.id);
        opts.onVideo?.({ phase: 'done', id: job.id, index, total: jobs.length });
      } catch (e) {
        if (opts.signal?.aborted) {
          await store.update(job.id, (v) => Object.assign(v, { state: 'pending', finishedAt: undefined }));
          return;
        }
        const { error, kind } = errorLine(e);
        if (!isRestoreError(e)) log.debug(`[${job.id}] ${(e as Error)?.stack ?? e}`);
        await store.update(job.id, (v) =>
          Object.assign(v, { state: 'failed', error, errorKind: kind, finishedAt: new Date().toISOString(), metrics: undefined }),
        );
        processed.add(job.id);
        opts.onVideo?.({ phase: 'failed', id: job.id, index, total: jobs.length, error });
      }
    };
    plans.forEach((p, i) => void queue.add(() => work(p, i)));
    await queue.onIdle();
    opts.signal?.removeEventListener('abort', abortAll);
    await fs.rmdir(path.join(outDir, STAGING_DIR)).catch(() => undefined); // only when empty
    if (opts.signal?.aborted) {
      throw new RestoreError('interrupted', `interrupted: ${processed.size} of ${jobs.length} videos finished; rerun the same command to continue`);
    }
    const wallMs = Math.round(performance.now() - t0);

    return await writeBatchOutputs({
      root,
      outDir,
      runId,
      startedAt,
      entries: plans.map((p) => store.data.videos[p.job.id]!),
      settings: plans.map((p) => p.settings),
      resumed,
      processed,
      wallMs,
      history,
      thresholds,
      concurrency,
      junit: opts.junit,
      videosPerMinute: started ? +((processed.size / wallMs) * 60000).toFixed(3) : undefined,
    });
  } finally {
    await unlock();
  }
}

export { writeBatchOutputs, type BatchOutputsInput } from './outputs.js';
export { LOCK_FILE, OUTPUT_NAME, REPORT_SUBDIR, RESULT_FILE, STAGING_DIR, type BatchSummary } from './layout.js';

export type { BatchJob };

/** The manifest entry of a planned video (kept state and attempts from `prev`). */
export function manifestEntryOf(prev: ManifestVideo | undefined, p: Pick<VideoPlan, 'job'>): ManifestVideo {
  const { job } = p;
  return {
    ...prev,
    id: job.id,
    slug: job.slug,
    input: job.input,
    reference: job.reference,
    mask: job.mask,
    identity: job.identity,
    state: prev?.state ?? 'pending',
    out: `${job.slug}/${OUTPUT_NAME}`,
    reportDir: `${job.slug}/${REPORT_SUBDIR}`,
    attempts: prev?.attempts ?? 0,
  };
}
