/** Running the built `restore` command as a user does: real process, exit code, stderr lines. */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { expect } from 'vitest';

export const CLI = path.join(process.cwd(), 'dist', 'cli', 'main.js');

export function restore(args: string[], timeout = 240_000, env: Record<string, string> = {}) {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout, env: { ...process.env, RESTORE_DEBUG: '', ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, ms: performance.now() - t0 };
}

/** Exactly one line on stderr, starting with "restore: error:". */
export function oneErrorLine(stderr: string): string {
  const lines = stderr.trim().split('\n').filter((l) => l.startsWith('restore: error:'));
  expect(lines.length).toBe(1);
  expect(stderr).not.toMatch(/\n\s+at /); // no stack trace
  return lines[0];
}
