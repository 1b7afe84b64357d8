/**
 * `restore batch <dir> --out <dir>`: every video of a folder, resumable, with an index report,
 * a history across runs and an optional JUnit file. The work lives in src/batch/; this module
 * merges the options (defaults < --config file < command line), prints, and picks the exit code.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { EXIT, usageError } from '../../errors.js';
import { createLogger, type Logger } from '../../pipeline/log.js';
import type { RestoreOptions } from '../../pipeline/types.js';
import { runBatch, type BatchSummary } from '../../batch/runner.js';
import { DEFAULT_THRESHOLDS } from '../../batch/history.js';
import { parseNumber, printJson, runAction, signalController } from '../util.js';
import type { CliKit } from './index.js';

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
}

const BATCH_KEYS = new Set(['concurrency', 'force', 'junit', 'regressionThreshold', 'ssimThreshold']);
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

/** Run the batch and print its outcome; returns the exit code (0 all done, 6 some failed, 7 none). */
export async function batchCommand(dir: string, opts: BatchOptions): Promise<{ exitCode: number; summary: BatchSummary }> {
  if (!opts.out) throw usageError('restore batch needs --out <dir>', 'the folder for the restored videos, reports and index');
  const cfg = opts.config ? await readBatchConfig(opts.config) : { run: {}, batch: {} };
  const cli = stripUndefined(opts.run ?? {});
  const run: Partial<RestoreOptions> = {
    ...stripUndefined(cfg.run),
    ...cli,
    backends: { ...stripUndefined(cfg.run.backends ?? {}), ...stripUndefined(cli.backends ?? {}) } as RestoreOptions['backends'],
  };
  const concurrency = opts.concurrency ?? cfg.batch.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw usageError(`--concurrency must be an integer in [1, 64] (got ${concurrency})`);
  const quiet = !!(opts.quiet || opts.json);
  const log = opts.log ?? createLogger({ quiet });
  const junit = opts.junit ?? cfg.batch.junit;
  const summary = await runBatch(dir, {
    out: opts.out,
    run,
    concurrency,
    force: opts.force ?? cfg.batch.force,
    junit,
    thresholds: {
      psnrDb: opts.regressionThreshold ?? cfg.batch.regressionThreshold ?? DEFAULT_THRESHOLDS.psnrDb,
      ssim: opts.ssimThreshold ?? cfg.batch.ssimThreshold ?? DEFAULT_THRESHOLDS.ssim,
    },
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
  if (opts.json) printJson({ ok: summary.exitCode === EXIT.OK, ...summary });
  else if (!opts.quiet) {
    const ix = JSON.parse(await fs.readFile(summary.files.index, 'utf8'));
    const t = ix.totals;
    const out = process.stdout;
    out.write(
      `batch: ${summary.videos} videos: ${summary.done} done (${summary.resumed} unchanged, skipped), ${summary.failed} failed` +
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
    .command('batch <dir>')
    .description('restore every video of a folder (recursively), resumable, with an index report tracking metrics across runs')
    .requiredOption('-o, --out <dir>', 'output folder: one folder per video, index.html, index.json, history.jsonl, batch-manifest.json')
    .option('--config <file>', 'JSON file of options (single-run and batch ones); command-line options win')
    .option('--concurrency <n>', 'videos processed at once (default 1)', parseNumber('--concurrency', 1, 64, true))
    .option('--frame-concurrency <n>', 'frames processed at once inside a stage, per video', parseNumber('--frame-concurrency', 1, 16, true))
    .option('--force', 'redo every video, even when done and unchanged')
    .option('--junit <file>', 'write a JUnit XML file (failed videos are errors, regressions are failures)')
    .option('--regression-threshold <dB>', `flag a drop of mean PSNR larger than this (default ${DEFAULT_THRESHOLDS.psnrDb})`, parseNumber('--regression-threshold', 0, 100))
    .option('--ssim-threshold <x>', `flag a drop of mean SSIM larger than this (default ${DEFAULT_THRESHOLDS.ssim})`, parseNumber('--ssim-threshold', 0, 1))
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

Exit codes: 0 all videos done, 6 some failed, 7 none done, 1-5 batch-level errors, 130 interrupted.`,
  );
  cmd.action((dir: string, o: Record<string, any>) =>
    runAction(!!o.json, async () => {
      const explicit: Record<string, any> = {};
      for (const [k, v] of Object.entries(o)) if (cmd.getOptionValueSource(k) !== 'default' && v !== undefined) explicit[k] = v;
      const full = kit.optionsFrom(dir, explicit);
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
      const { exitCode } = await batchCommand(dir, {
        out: o.out,
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
