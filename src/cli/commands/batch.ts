/**
 * `restore batch <dir> --out <dir>`: every video of a folder, resumable, with an index report,
 * a history across runs and an optional JUnit file. The work lives in src/batch/; this module
 * merges the options (defaults < --config file < command line), prints, and picks the exit code.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { EXIT, usageError } from '../../errors.js';
import { createLogger, type Logger } from '../../util/log.js';
import type { RestoreOptions } from '../../stages/types.js';
import { runBatch, type BatchSummary } from '../../batch/runner.js';
import { DEFAULT_QUEUE_NAME, enqueueBatch, indexFromQueue, parseQueueUrl, queueStatus, waitForBatch } from '../../batch/queue.js';
import { createQueueBar } from '../../pipeline/progress.js';
import { DEFAULT_THRESHOLDS } from '../../batch/history.js';
import { parseNumber, printJson, runAction, signalController } from '../util.js';
import type { CliKit } from '../util.js';

export interface BatchOptions {
  /** Output folder (required). */
  out: string;
  /** JSON file holding single-run options and/or batch options; its relative paths are relative to it. */
  config?: string;
  /** Videos processed at once (default 1). */
  concurrency?: number;
  force?: boolean;
  junit?: string;
  /** PSNR drop (dB) flagged as a regression (default 0.5). */
  regressionThreshold?: number;
  /** SSIM drop flagged as a regression (default 0.01). */
  ssimThreshold?: number;
  json?: boolean;
  quiet?: boolean;
  /** Single-run options given on the command line (only those the user set; they win over --config). */
  run?: Partial<RestoreOptions>;
  signal?: AbortSignal;
  log?: Logger;
  /** Scale-out: enqueue on this Redis (redis://HOST:PORT[/DB]) instead of running here. */
  queue?: string;
  queueName?: string;
  /** With queue: show progress until every job ended, then write the index. */
  wait?: boolean;
  /** With queue: print the counts and exit. */
  status?: boolean;
  /** With queue: write the index from what is done now. */
  index?: boolean;
  /** With queue: tries per video (default 3). */
  attempts?: number;
  /** With queue: seconds before the first retry (default 10), doubling. */
  backoff?: number;
  retryFailed?: boolean;
}

const BATCH_KEYS = new Set(['concurrency', 'force', 'junit', 'regressionThreshold', 'ssimThreshold', 'attempts', 'backoff']);
const BACKEND_KEYS: Record<string, string> = { inpaint: 'inpaint', upscale: 'upscale', restoreFace: 'restore-face', 'restore-face': 'restore-face', swap: 'swap', temporal: 'temporal' };
const RUN_KEYS = new Set([
  'identity', 'identityFace', 'reference', 'mask', 'maskDilate', 'scale', 'size', 'crf', 'preset', 'device', 'backends',
  'frameConcurrency', 'maxFrames', 'thumbnails',
]);

function stripUndefined<T extends Record<string, any>>(o: T): Partial<T> {
  const r: Record<string, any> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) r[k] = v;
  return r as Partial<T>;
}

/** Read a --config file: { "crf": 20, "upscale": "rdn", "identity": "ann.jpg", "concurrency": 2, ... }. */
export async function readBatchConfig(file: string): Promise<{ run: Partial<RestoreOptions>; batch: Partial<BatchOptions> }> {
  let j: any;
  try {
    j = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (e: any) {
    if (e?.code === 'ENOENT') throw usageError(`${file}: config file not found`);
    throw usageError(`${file}: not valid JSON (${e?.message ?? e})`, 'fix the config file');
  }
  if (!j || typeof j !== 'object' || Array.isArray(j)) throw usageError(`${file}: expected a JSON object of options`);
  const base = path.dirname(path.resolve(file));
  const abs = (p: unknown) => (typeof p === 'string' && p !== 'auto' ? path.resolve(base, p) : p);
  const run: Record<string, any> = {};
  const batch: Record<string, any> = {};
  const backends: Record<string, string> = {};
  for (const [k, v] of Object.entries(j)) {
    if (k.startsWith('$') || k === 'comment') continue;
    if (BATCH_KEYS.has(k)) batch[k] = k === 'junit' ? abs(v) : v;
    else if (k in BACKEND_KEYS) backends[BACKEND_KEYS[k]!] = String(v);
    else if (k === 'backends' && v && typeof v === 'object') Object.assign(backends, v);
    else if (RUN_KEYS.has(k)) {
      if (k === 'identity') run.identity = (Array.isArray(v) ? v : [v]).map(abs);
      else if (k === 'reference' || k === 'mask') run[k] = abs(v);
      else if (k === 'frameConcurrency') run.concurrency = v;
      else run[k] = v;
    } else throw usageError(`${file}: unknown option "${k}"`, `known: ${[...RUN_KEYS, ...Object.keys(BACKEND_KEYS), ...BATCH_KEYS].join(', ')}`);
  }
  if (Object.keys(backends).length) run.backends = backends;
  return { run, batch };
}

function fmtNum(x: number | undefined, d: number): string {
  return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(d) : '–';
}

/** Merge defaults < --config < command line into the single-run options and the batch's. */
async function mergeOptions(opts: BatchOptions) {
  const cfg = opts.config ? await readBatchConfig(opts.config) : { run: {}, batch: {} };
  const cli = stripUndefined(opts.run ?? {});
  const run: Partial<RestoreOptions> = {
    ...stripUndefined(cfg.run),
    ...cli,
    backends: { ...stripUndefined(cfg.run.backends ?? {}), ...stripUndefined(cli.backends ?? {}) } as RestoreOptions['backends'],
  };
  const quiet = !!(opts.quiet || opts.json);
  const log = opts.log ?? createLogger({ quiet });
  const thresholds = {
    psnrDb: opts.regressionThreshold ?? cfg.batch.regressionThreshold ?? DEFAULT_THRESHOLDS.psnrDb,
    ssim: opts.ssimThreshold ?? cfg.batch.ssimThreshold ?? DEFAULT_THRESHOLDS.ssim,
  };
  return { cfg, run, quiet, log, thresholds, junit: opts.junit ?? cfg.batch.junit };
}

/** The summary of a batch (one-machine or queued) on stdout: JSON, or a few lines. */
async function printSummary(summary: BatchSummary, opts: BatchOptions, extra: Record<string, unknown> = {}): Promise<void> {
  if (opts.json) printJson({ ok: summary.exitCode === EXIT.OK, ...extra, ...summary });
  else if (!opts.quiet) {
    const ix = JSON.parse(await fs.readFile(summary.files.index, 'utf8'));
    const t = ix.totals;
    const out = process.stdout;
    out.write(
      `batch: ${summary.videos} videos: ${summary.done} done (${summary.resumed} unchanged, skipped), ${summary.failed} failed` +
        `${summary.pending ? `, ${summary.pending} not ended` : ''}` +
        `${summary.regressions ? `, ${summary.regressions} regressions` : ''} in ${(summary.wallMs / 1000).toFixed(1)} s` +
        `${summary.videosPerMinute !== undefined ? ` (${summary.videosPerMinute.toFixed(2)} videos/min)` : ''}; mean PSNR ${fmtNum(t.psnr, 2)} dB, SSIM ${fmtNum(t.ssim, 4)}\n`,
    );
    for (const f of summary.failures) out.write(`  failed  ${f.id}: ${f.error}\n`);
    for (const r of ix.rows as { id: string; regression: boolean; compare: { regressions: string[] } }[])
      if (r.regression) out.write(`  regression  ${r.id}: ${r.compare.regressions.join('; ')}\n`);
    for (const r of summary.runRegression) out.write(`  regression  (mean over videos): ${r}\n`);
    out.write(`index: ${summary.files.html}\n`);
    if (summary.files.junit) out.write(`junit: ${summary.files.junit}\n`);
  }
}

/** Run the batch and print its outcome; returns the exit code (0 all done, 6 some failed, 7 none). */
export async function batchCommand(dir: string | undefined, opts: BatchOptions): Promise<{ exitCode: number; summary: BatchSummary }> {
  if (!opts.out) throw usageError('restore batch needs --out <dir>', 'the folder for the restored videos, reports and index');
  if (opts.queue) throw usageError('batchCommand runs on this machine; queueBatchCommand takes --queue');
  for (const [flag, on] of [['--wait', opts.wait], ['--status', opts.status], ['--index', opts.index], ['--retry-failed', opts.retryFailed], ['--attempts', opts.attempts !== undefined], ['--backoff', opts.backoff !== undefined]] as const)
    if (on) throw usageError(`${flag} needs --queue redis://HOST:PORT`, 'the one-machine batch runs and indexes in one go');
  if (!dir) throw usageError('restore batch needs a folder of videos', 'restore batch <dir> --out <dir>');
  const { cfg, run, log, thresholds, junit } = await mergeOptions(opts);
  const concurrency = opts.concurrency ?? cfg.batch.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw usageError(`--concurrency must be an integer in [1, 64] (got ${concurrency})`);
  const summary = await runBatch(dir, {
    out: opts.out,
    run,
    concurrency,
    force: opts.force ?? cfg.batch.force,
    junit,
    thresholds,
    signal: opts.signal,
    log,
    onVideo: (e) => {
      const n = `[${e.index + 1}/${e.total}]`;
      if (e.phase === 'start') log.info(`${n} ${e.id}: running`);
      else if (e.phase === 'skipped') log.info(`${n} ${e.id}: done earlier, unchanged: skipped`);
      else if (e.phase === 'done') log.info(`${n} ${e.id}: done`);
      else log.info(`${n} ${e.id}: failed: ${e.error}`);
    },
  });
  await printSummary(summary, opts);
  return { exitCode: summary.exitCode, summary };
}

/**
 * `restore batch ... --queue URL`: enqueue (and with --wait follow the queue, then index), or
 * --status, or --index. Exit codes: 0 enqueued / all done, 6 some failed, 7 none done, 8 queue unreachable.
 */
export async function queueBatchCommand(dir: string | undefined, opts: BatchOptions): Promise<{ exitCode: number; summary?: BatchSummary }> {
  if (!opts.out) throw usageError('restore batch needs --out <dir>', 'the folder for the restored videos, reports and index');
  if (opts.force) throw usageError('--force does not go with --queue', 'remove a video\'s folder in --out to have it redone, or use --retry-failed for failed ones');
  if (opts.concurrency !== undefined) throw usageError('--concurrency does not go with --queue', 'give it to each `restore worker` (videos at once per machine)');
  if ([opts.wait, opts.status, opts.index].filter(Boolean).length > 1) throw usageError('choose one of --wait, --status and --index');
  const target = parseQueueUrl(opts.queue!, opts.queueName);
  const { cfg, run, quiet, log, thresholds, junit } = await mergeOptions(opts);
  if (opts.status) {
    const st = await queueStatus({ out: opts.out, queue: target });
    if (opts.json) printJson({ ok: true, ...st });
    else if (!opts.quiet)
      process.stdout.write(
        `batch in ${opts.out}: ${st.videos} videos: ${st.done} done, ${st.running} running, ${st.waiting} waiting, ${st.failed} failed${st.missing ? `, ${st.missing} not queued` : ''}\n` +
          `queue ${st.queue}: ${Object.entries(st.all).map(([k, v]) => `${v} ${k}`).join(', ')}\n`,
      );
    return { exitCode: EXIT.OK };
  }
  if (!dir) throw usageError('restore batch --queue needs the folder of videos (only --status goes without it)', 'restore batch <dir> --out <dir> --queue redis://HOST:PORT');
  const indexNow = async () => indexFromQueue(dir, { out: opts.out, run, queue: target, junit, thresholds, log });
  if (opts.index) {
    const summary = await indexNow();
    await printSummary(summary, opts);
    return { exitCode: summary.exitCode, summary };
  }
  const attempts = opts.attempts ?? cfg.batch.attempts ?? 3;
  const backoff = opts.backoff ?? cfg.batch.backoff ?? 10;
  const enq = await enqueueBatch(dir, { out: opts.out, run, queue: target, attempts, backoffMs: Math.round(backoff * 1000), retryFailed: opts.retryFailed, log, signal: opts.signal });
  const { jobIds: _ids, ...shown } = enq;
  const line =
    `enqueued on ${enq.queue}: ${enq.videos} videos: ${enq.added} added, ${enq.queued} already queued, ${enq.done} already done` +
    `${enq.failed ? `, ${enq.failed} failed earlier (--retry-failed puts them back)` : ''}${enq.retried ? `, ${enq.retried} failed put back` : ''}${enq.unreadable ? `, ${enq.unreadable} unreadable` : ''}`;
  if (!opts.wait) {
    if (opts.json) printJson({ ok: true, ...shown });
    else if (!opts.quiet) process.stdout.write(`${line}\nrun \`restore worker --queue ${opts.queue}\` on each machine; \`restore batch ... --queue ${opts.queue} --status\` shows progress\n`);
    return { exitCode: EXIT.OK };
  }
  log.info(line);
  const bar = createQueueBar('queue', !quiet);
  try {
    await waitForBatch({ out: opts.out, queue: target, only: Object.keys(enq.jobIds), signal: opts.signal, onTick: (t) => bar.update(t) });
  } finally {
    bar.stop();
  }
  const summary = await indexNow();
  await printSummary(summary, opts, { enqueued: shown });
  return { exitCode: summary.exitCode, summary };
}

/** Option names the batch defines itself (the single-run ones with these names are left out). */
const OWN = new Set(['--out', '--report-dir', '--concurrency', '--json', '--quiet', '--no-progress']);

/**
 * Adds `restore batch` to the program. Call from registerExtraCommands:
 *   registerBatchCommand(program, kit)
 */
export function registerBatchCommand(program: Command, kit: CliKit): Command {
  const cmd = program
    .command('batch [dir]')
    .description('restore every video of a folder (recursively), resumable, with an index report tracking metrics across runs')
    .requiredOption('-o, --out <dir>', 'output folder: one folder per video, index.html, index.json, history.jsonl, batch-manifest.json')
    .option('--config <file>', 'JSON file of options (single-run and batch ones); command-line options win')
    .option('--concurrency <n>', 'videos processed at once (default 1)', parseNumber('--concurrency', 1, 64, true))
    .option('--frame-concurrency <n>', 'frames processed at once inside a stage, per video', parseNumber('--frame-concurrency', 1, 16, true))
    .option('--force', 'redo every video, even when done and unchanged')
    .option('--junit <file>', 'write a JUnit XML file (failed videos are errors, regressions are failures)')
    .option('--regression-threshold <dB>', `flag a drop of mean PSNR larger than this (default ${DEFAULT_THRESHOLDS.psnrDb})`, parseNumber('--regression-threshold', 0, 100))
    .option('--ssim-threshold <x>', `flag a drop of mean SSIM larger than this (default ${DEFAULT_THRESHOLDS.ssim})`, parseNumber('--ssim-threshold', 0, 1))
    .option('--queue <url>', 'scale out: enqueue one job per video on this Redis, redis://HOST:PORT[/DB]; `restore worker` runs them')
    .option('--queue-name <name>', `with --queue: the queue's name (default ${DEFAULT_QUEUE_NAME})`)
    .option('--wait', 'with --queue: show progress over the batch until every job ended, then write the index')
    .option('--status', 'with --queue: print the counts of the batch in --out and of the whole queue, and exit ([dir] not needed)')
    .option('--index', 'with --queue: write the index (html, json, history, JUnit) from what is done now, without enqueueing')
    .option('--attempts <n>', 'with --queue: tries per video before it is marked failed (default 3)', parseNumber('--attempts', 1, 100, true))
    .option('--backoff <s>', 'with --queue: seconds before the first retry, doubling with each (default 10)', parseNumber('--backoff', 0, 86400))
    .option('--retry-failed', 'with --queue: put videos that failed back on the queue')
    .option('--json', 'print the batch summary as JSON on stdout')
    .option('-q, --quiet', 'no progress lines');
  // The single-run options, as the run command defines them, minus the ones the batch owns.
  const proto = kit.addRunOptions(new Command('proto'));
  for (const o of proto.options) {
    if (OWN.has(o.long ?? '') || (o.short && cmd.options.some((x) => x.short === o.short))) continue;
    const copy = new Option(o.flags, o.description);
    if (o.argChoices) copy.choices(o.argChoices);
    if (o.parseArg) copy.argParser(o.parseArg as (v: string, p: unknown) => unknown);
    cmd.addOption(copy); // no defaults here: unset options fall back to --config, then to the run defaults
  }
  cmd.addHelpText(
    'after',
    `
Pairing: a folder holding input.mp4 (+ reference.mp4, mask.mp4|png, identity.jpg) is one video;
elsewhere clip.mp4 pairs with clip.ref.mp4, clip.mask.mp4|png and clip.identity.jpg next to it;
or list them in <dir>/restore-batch.json: {"videos":[{"input":"a.mp4","reference":"a-clean.mp4"}]}.
Rerunning skips videos done with the same input and settings; --force redoes them.

Scale-out (README "Scale-out: a queue on Redis"): the controller enqueues, workers on any number of
machines sharing --out (and the input folder, at the same paths) run the videos:
  restore batch /data/clips --out /data/nightly --queue redis://queue-host:6379 --wait
  restore worker --queue redis://queue-host:6379 --concurrency 1      # on each machine
  restore batch /data/clips --out /data/nightly --queue redis://queue-host:6379      # enqueue, exit
  restore batch --out /data/nightly --queue redis://queue-host:6379 --status
  restore batch /data/clips --out /data/nightly --queue redis://queue-host:6379 --index
The same work enqueued twice is one job; a video done by any worker is not enqueued again.

Exit codes: 0 all videos done (or enqueued), 6 some failed, 7 none done, 8 the queue (Redis) cannot be
reached, 1-5 batch-level errors, 130 interrupted.`,
  );
  cmd.action((dir: string | undefined, o: Record<string, any>) =>
    runAction(!!o.json, async () => {
      const explicit: Record<string, any> = {};
      for (const [k, v] of Object.entries(o)) if (cmd.getOptionValueSource(k) !== 'default' && v !== undefined) explicit[k] = v;
      const full = kit.optionsFrom(dir ?? '', explicit);
      const run: Partial<RestoreOptions> = stripUndefined({
        identity: full.identity,
        reference: full.reference,
        mask: full.mask,
        maskDilate: full.maskDilate,
        scale: full.scale,
        size: full.size,
        crf: explicit.crf !== undefined ? full.crf : undefined,
        preset: explicit.preset !== undefined ? full.preset : undefined,
        device: explicit.device !== undefined ? full.device : undefined,
        maxFrames: full.maxFrames,
        thumbnails: explicit.thumbnails !== undefined ? full.thumbnails : undefined,
        concurrency: explicit.frameConcurrency,
        backends: stripUndefined(full.backends ?? {}),
        ...(explicit.identityFace !== undefined ? { identityFace: (full as any).identityFace } : {}),
      } as Partial<RestoreOptions>);
      const signal = signalController().signal;
      const { exitCode } = await (o.queue ? queueBatchCommand : batchCommand)(dir, {
        out: o.out,
        queue: o.queue,
        queueName: o.queueName,
        wait: !!o.wait,
        status: !!o.status,
        index: !!o.index,
        attempts: o.attempts,
        backoff: o.backoff,
        retryFailed: !!o.retryFailed,
        config: o.config,
        concurrency: o.concurrency,
        force: o.force,
        junit: o.junit,
        regressionThreshold: o.regressionThreshold,
        ssimThreshold: o.ssimThreshold,
        json: !!o.json,
        quiet: !!o.quiet,
        run,
        signal,
      });
      return exitCode;
    }),
  );
  return cmd;
}
