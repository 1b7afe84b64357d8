/** Writes a run's report.json, frames.csv and report.html into the report directory, each atomically. */
import path from 'node:path';
import { ensureWritableDir, writeFileAtomic } from '../media/encode.js';
import { framesCsv } from './csv.js';
import { renderReportHtml } from './html.js';
import type { RunReport } from './types.js';

export { framesCsv } from './csv.js';
export { renderReportHtml } from './html.js';

/** report.json text. NaN/Infinity (which JSON cannot hold) are written as null. */
export function reportJson(report: RunReport): string {
  return JSON.stringify(report, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n';
}

export async function writeRunReports(report: RunReport, dir: string): Promise<{ json: string; csv: string; html: string }> {
  await ensureWritableDir(dir);
  const json = path.join(dir, 'report.json');
  const csv = path.join(dir, 'frames.csv');
  const html = path.join(dir, 'report.html');
  await writeFileAtomic(json, reportJson(report));
  await writeFileAtomic(csv, framesCsv(report));
  await writeFileAtomic(html, await renderReportHtml(report, { dir }));
  return { json, csv, html };
}
