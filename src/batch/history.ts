/**
 * History across batch runs (`history.jsonl` in --out, one JSON record per finished batch run)
 * and the comparison of a run with the previous ones: per-metric change and regressions.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../media/encode.js';
import type { VideoMetrics } from './metrics.js';

export const HISTORY_FILE = 'history.jsonl';

export interface HistoryVideo {
  status: 'done' | 'failed' | 'pending';
  /** Done in an earlier run and unchanged, not redone in this one. */
  resumed?: boolean;
  error?: string;
  psnr?: number;
  ssim?: number;
  idSim?: number;
  flicker?: number;
  fps?: number;
  frames?: number;
}

export interface HistoryRecord {
  runId: string;
  startedAt: string;
  finishedAt: string;
  settingsHash: string;
  /** Short human summary of the settings (backends, crf, ...). */
  settings: Record<string, unknown>;
  totals: { videos: number; done: number; failed: number; psnr?: number; ssim?: number };
  videos: Record<string, HistoryVideo>;
}

export interface Thresholds {
  /** A drop of mean PSNR by more than this many dB is a regression. */
  psnrDb: number;
  /** A drop of mean SSIM by more than this is a regression. */
  ssim: number;
}

export const DEFAULT_THRESHOLDS: Thresholds = { psnrDb: 0.5, ssim: 0.01 };

export type MetricKey = 'psnr' | 'ssim' | 'idSim' | 'flicker' | 'fps';
export const TRACKED: MetricKey[] = ['psnr', 'ssim', 'idSim', 'flicker', 'fps'];

export interface Comparison {
  /** runId and time of the run compared against, per video (the last one where it had numbers). */
  previousRunId?: string;
  previousAt?: string;
  /** Current minus previous. */
  delta: Partial<Record<MetricKey, number>>;
  /** Readable reasons, e.g. 'PSNR fell 1.20 dB (27.31 → 26.11)'. Empty: no regression. */
  regressions: string[];
}

/** Read all whole records; a torn last line (power loss during an older append) is ignored. */
export async function readHistory(outDir: string): Promise<HistoryRecord[]> {
  let text: string;
  try {
    text = await fs.readFile(path.join(outDir, HISTORY_FILE), 'utf8');
  } catch (e: any) {
    if (e?.code === 'ENOENT') return [];
    throw e;
  }
  const out: HistoryRecord[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line);
      if (r && typeof r.runId === 'string' && r.videos) out.push(r as HistoryRecord);
    } catch {
      /* torn or foreign line */
    }
  }
  return out;
}

/** Append a record by rewriting the whole file atomically (it stays small: one line per night). */
export async function appendHistory(outDir: string, previous: HistoryRecord[], rec: HistoryRecord): Promise<void> {
  const lines = [...previous, rec].map((r) => JSON.stringify(r));
  await writeFileAtomic(path.join(outDir, HISTORY_FILE), lines.join('\n') + '\n');
}

export function historyVideoOf(status: HistoryVideo['status'], m?: VideoMetrics, extra: Partial<HistoryVideo> = {}): HistoryVideo {
  return {
    status,
    ...extra,
    ...(m
      ? { psnr: m.psnr, ssim: m.ssim, idSim: m.idSim, flicker: m.flicker, fps: m.fps, frames: m.frames }
      : {}),
  };
}

const finite = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

function regressionsOf(cur: Partial<Record<MetricKey, number | undefined>>, prev: Partial<Record<MetricKey, number | undefined>>, t: Thresholds): string[] {
  const out: string[] = [];
  if (finite(cur.psnr) && finite(prev.psnr) && prev.psnr - cur.psnr > t.psnrDb)
    out.push(`PSNR fell ${(prev.psnr - cur.psnr).toFixed(2)} dB (${prev.psnr.toFixed(2)} → ${cur.psnr.toFixed(2)}; threshold ${t.psnrDb} dB)`);
  if (finite(cur.ssim) && finite(prev.ssim) && prev.ssim - cur.ssim > t.ssim)
    out.push(`SSIM fell ${(prev.ssim - cur.ssim).toFixed(4)} (${prev.ssim.toFixed(4)} → ${cur.ssim.toFixed(4)}; threshold ${t.ssim})`);
  return out;
}

function deltaOf(cur: Partial<Record<MetricKey, number | undefined>>, prev: Partial<Record<MetricKey, number | undefined>>) {
  const d: Partial<Record<MetricKey, number>> = {};
  for (const k of TRACKED) {
    const a = cur[k];
    const b = prev[k];
    if (finite(a) && finite(b)) d[k] = +(a - b).toFixed(6);
  }
  return d;
}

/** Compare one video's current numbers with the latest earlier run in which it had numbers. */
export function compareVideo(id: string, cur: HistoryVideo, history: HistoryRecord[], t: Thresholds): Comparison {
  for (let i = history.length - 1; i >= 0; i--) {
    const rec = history[i]!;
    const p = rec.videos[id];
    if (!p || p.status !== 'done') continue;
    if (cur.status !== 'done') return { previousRunId: rec.runId, previousAt: rec.finishedAt, delta: {}, regressions: [] };
    return { previousRunId: rec.runId, previousAt: rec.finishedAt, delta: deltaOf(cur, p), regressions: regressionsOf(cur, p, t) };
  }
  return { delta: {}, regressions: [] };
}

/**
 * Compare the run's mean PSNR/SSIM with the previous run's, over the videos that have numbers in
 * both (so a video added or failing does not move the means).
 */
export function compareRun(
  cur: Record<string, HistoryVideo>,
  history: HistoryRecord[],
  t: Thresholds,
): Comparison & { common: number; current: Partial<Record<MetricKey, number>>; previous: Partial<Record<MetricKey, number>> } {
  const prev = history[history.length - 1];
  if (!prev) return { delta: {}, regressions: [], common: 0, current: {}, previous: {} };
  const ids = Object.keys(cur).filter((id) => cur[id]!.status === 'done' && prev.videos[id]?.status === 'done');
  const mean = (src: Record<string, HistoryVideo>, k: MetricKey) => {
    const v = ids.map((id) => src[id]![k]).filter(finite);
    return v.length === ids.length && v.length ? v.reduce((a, b) => a + b, 0) / v.length : undefined;
  };
  const a: Partial<Record<MetricKey, number>> = {};
  const b: Partial<Record<MetricKey, number>> = {};
  for (const k of TRACKED) {
    const x = mean(cur, k);
    const y = mean(prev.videos, k);
    if (x !== undefined) a[k] = x;
    if (y !== undefined) b[k] = y;
  }
  return {
    previousRunId: prev.runId,
    previousAt: prev.finishedAt,
    delta: deltaOf(a, b),
    regressions: regressionsOf(a, b, t),
    common: ids.length,
    current: a,
    previous: b,
  };
}
