/** Where a batch puts things in its output folder, and the summary it returns. */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { BatchCounts } from './index-report.js';

export const STAGING_DIR = '.partial';
export const LOCK_FILE = '.batch.lock';
export const OUTPUT_NAME = 'restored.mp4';
export const REPORT_SUBDIR = 'report';
/** Written into a video's folder before it is renamed into place: the hashes it was made from. */
export const RESULT_FILE = 'result.json';

export interface BatchSummary extends BatchCounts {
  runId: string;
  out: string;
  runRegression: string[];
  exitCode: number;
  wallMs: number;
  videosPerMinute?: number;
  files: { index: string; html: string; manifest: string; history: string; junit?: string };
  failures: { id: string; error: string; kind?: string }[];
}

export const rel = (from: string, to: string) => path.relative(from, to).split(path.sep).join('/');

export async function exists(p: string): Promise<boolean> {
  return fs.stat(p).then(
    () => true,
    () => false,
  );
}

