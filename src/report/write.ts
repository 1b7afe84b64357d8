/** Writes a run's report.json, frames.csv and report.html into the report directory, each atomically. */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describeFsError, ensureWritableDir, tempSibling, writeFileAtomic } from '../media/encode.js';
import { outputError } from '../errors.js';
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

export interface StagedReports {
  files: { json: string; csv: string; html: string };
  /** Rename the temp files to their names. */
  commit(): Promise<void>;
  /** Remove the temp files (and any already renamed by a commit that failed half way). */
  discard(): Promise<void>;
}

/** Write the three reports under hidden temp names, to be renamed together by commit(). */
export async function stageRunReports(report: RunReport, dir: string): Promise<StagedReports> {
  await ensureWritableDir(dir);
  const files = { json: path.join(dir, 'report.json'), csv: path.join(dir, 'frames.csv'), html: path.join(dir, 'report.html') };
  const temps: [string, string][] = [];
  const renamed: string[] = [];
  const discard = async () => {
    for (const [tmp] of temps) await fs.rm(tmp, { force: true }).catch(() => undefined);
    for (const f of renamed) await fs.rm(f, { force: true }).catch(() => undefined);
  };
  try {
    for (const [dest, text] of [
      [files.json, reportJson(report)],
      [files.csv, framesCsv(report)],
      [files.html, await renderReportHtml(report, { dir })],
    ] as const) {
      const tmp = tempSibling(dest);
      temps.push([tmp, dest]);
      await fs.writeFile(tmp, text);
    }
  } catch (e) {
    await discard();
    throw outputError(`cannot write the reports in ${dir}: ${describeFsError(e)}`);
  }
  return {
    files,
    discard,
    async commit() {
      try {
        for (const [tmp, dest] of temps) {
          await fs.rename(tmp, dest);
          renamed.push(dest);
        }
      } catch (e) {
        throw outputError(`cannot write the reports in ${dir}: ${describeFsError(e)}`);
      }
    },
  };
}
