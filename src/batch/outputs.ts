/**
 * What a batch writes when its videos are done: index.json / index.html, the history line and
 * its comparison with the previous run, and the JUnit file (all atomically).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { EXIT } from '../errors.js';
import { ensureWritableDir } from '../media/encode.js';
import { toolVersion } from '../pipeline/run.js';
import { hashValue } from './hash.js';
import { appendHistory, compareRun, compareVideo, historyVideoOf, type HistoryRecord, type HistoryVideo, type Thresholds } from './history.js';
import { historySeries, writeIndex, type BatchIndex, type IndexRow } from './index-report.js';
import { writeJUnit } from './junit.js';
import { exists, rel, REPORT_SUBDIR, type BatchSummary } from './layout.js';
import { MANIFEST_FILE, type ManifestVideo } from './manifest.js';
export interface BatchOutputsInput {
  root: string;
  outDir: string;
  runId: string;
  startedAt: string;
  /** The batch's videos, in index order, as the manifest holds them now. */
  entries: ManifestVideo[];
  /** Effective settings per video (the first is shown; all are hashed). */
  settings: Record<string, unknown>[];
  /** Done earlier and unchanged, not redone by this run. */
  resumed: Set<string>;
  /** Ended (done or failed) in this run. */
  processed: Set<string>;
  wallMs: number;
  history: HistoryRecord[];
  thresholds: Thresholds;
  concurrency: number;
  junit?: string;
  videosPerMinute?: number;
}

/** Index rows, comparison with history, history line, index.json/html and JUnit; the summary. */
export async function writeBatchOutputs(o: BatchOutputsInput): Promise<BatchSummary> {
  const { root, outDir, runId, startedAt, entries, resumed, processed, wallMs, history, thresholds, concurrency } = o;
  // ---- index rows, history, comparison
  const cur: Record<string, HistoryVideo> = {};
  for (const v of entries) {
    const status = v.state === 'done' ? 'done' : v.state === 'failed' ? 'failed' : 'pending';
    cur[v.id] = historyVideoOf(status, v.state === 'done' ? v.metrics : undefined, {
      ...(resumed.has(v.id) ? { resumed: true } : {}),
      ...(v.error ? { error: v.error } : {}),
    });
  }
  const rows: IndexRow[] = [];
  for (const v of entries) {
    const h = cur[v.id]!;
    const compare = compareVideo(v.id, h, history, thresholds);
    const links: IndexRow['links'] = {};
    if (v.state === 'done') {
      const report = `${v.slug}/${REPORT_SUBDIR}/report.html`;
      if (await exists(path.join(outDir, report))) links.report = report;
      if (await exists(path.join(outDir, v.out))) links.output = v.out;
      const json = `${v.slug}/${REPORT_SUBDIR}/report.json`;
      if (await exists(path.join(outDir, json))) links.json = json;
    }
    rows.push({
      id: v.id,
      slug: v.slug,
      input: rel(root, v.input),
      status: h.status,
      resumed: resumed.has(v.id),
      ...(v.state === 'failed' ? { error: v.error, errorKind: v.errorKind } : {}),
      ...(v.state === 'done' && v.metrics ? { metrics: v.metrics } : {}),
      compare,
      regression: compare.regressions.length > 0,
      links,
      attempts: v.attempts,
      finishedAt: v.finishedAt,
    });
  }
  const runCmp = compareRun(cur, history, thresholds);
  const doneRows = rows.filter((r) => r.status === 'done');
  const meanKey = (k: 'psnr' | 'ssim' | 'idSim' | 'flicker') => {
    const v = doneRows.map((r) => r.metrics?.[k]).filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
    return v.length ? +(v.reduce((a, b) => a + b, 0) / v.length).toFixed(5) : undefined;
  };
  const totals: BatchIndex['totals'] = {
    videos: rows.length,
    done: doneRows.length,
    failed: rows.filter((r) => r.status === 'failed').length,
    pending: rows.filter((r) => r.status === 'pending').length,
    resumed: resumed.size,
    processed: processed.size,
    regressions: rows.filter((r) => r.regression).length,
    frames: doneRows.reduce((a, r) => a + (r.metrics?.frames ?? 0), 0),
    videoMs: doneRows.reduce((a, r) => a + (r.metrics?.wallMs ?? 0), 0),
    ...(o.videosPerMinute !== undefined ? { videosPerMinute: o.videosPerMinute } : {}),
    psnr: meanKey('psnr'),
    ssim: meanKey('ssim'),
    idSim: meanKey('idSim'),
    flicker: meanKey('flicker'),
  };
  const settingsShown = o.settings[0] ?? {};
  const settingsHash = hashValue(o.settings);
  const finishedAt = new Date().toISOString();
  const rec: HistoryRecord = {
    runId,
    startedAt,
    finishedAt,
    settingsHash,
    settings: settingsShown,
    totals: { videos: totals.videos, done: totals.done, failed: totals.failed, psnr: totals.psnr, ssim: totals.ssim },
    videos: cur,
  };
  const ix: BatchIndex = {
    tool: { name: 'restore', version: toolVersion },
    generatedAt: finishedAt,
    runId,
    dir: root,
    out: outDir,
    settingsHash,
    settings: settingsShown,
    thresholds,
    concurrency,
    wallMs,
    totals,
    run: { previousRunId: runCmp.previousRunId, previousAt: runCmp.previousAt, delta: runCmp.delta, regressions: runCmp.regressions, common: runCmp.common },
    rows,
    history: historySeries([...history, rec]),
  };
  await appendHistory(outDir, history, rec);
  const files = await writeIndex(outDir, ix);
  let junit: string | undefined;
  if (o.junit) {
    junit = path.resolve(o.junit);
    await ensureWritableDir(path.dirname(junit));
    await writeJUnit(junit, ix);
  }
  const exitCode = totals.failed === 0 && totals.pending === 0 ? EXIT.OK : totals.done > 0 ? EXIT.BATCH_PARTIAL : EXIT.BATCH_FAILED;
  return {
    runId,
    out: outDir,
    videos: totals.videos,
    done: totals.done,
    failed: totals.failed,
    pending: totals.pending,
    resumed: totals.resumed,
    processed: totals.processed,
    regressions: totals.regressions,
    runRegression: runCmp.regressions,
    exitCode,
    wallMs,
    videosPerMinute: totals.videosPerMinute,
    files: { index: files.json, html: files.html, manifest: path.join(outDir, MANIFEST_FILE), history: path.join(outDir, 'history.jsonl'), ...(junit ? { junit } : {}) },
    failures: rows.filter((r) => r.status === 'failed').map((r) => ({ id: r.id, error: r.error ?? 'failed', kind: r.errorKind })),
  };
}

