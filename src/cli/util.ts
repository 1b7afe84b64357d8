/** Shared CLI plumbing: one-line errors and exit codes, --json output, cancellation on signals. */
import type { Command } from 'commander';
import type { RestoreOptions } from '../stages/types.js';
import { closeWorkersGracefully } from '../workers/pool.js';
import { EXIT, isRestoreError, RestoreError, usageError } from '../errors.js';

export function parseSize(v: string): { width: number; height: number } {
  const m = /^(\d+)[x:](\d+)$/i.exec(v.trim());
  if (!m) throw usageError(`--size must look like 1280x720 (got "${v}")`);
  const width = Number(m[1]);
  const height = Number(m[2]);
  if (width < 2 || height < 2 || width > 16384 || height > 16384) throw usageError(`--size ${v} is out of range`);
  return { width, height };
}

export function parseNumber(name: string, min: number, max: number, integer = false) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
      throw usageError(`${name} must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}] (got "${v}")`);
    }
    return n;
  };
}

export const collect = (v: string, prev: string[] = []) => [...prev, v];

/** Abort on the first SIGINT/SIGTERM (clean up, exit 130); a second one exits at once. */
export function signalController(): AbortController {
  const c = new AbortController();
  let count = 0;
  const handler = (sig: NodeJS.Signals) => {
    count++;
    if (count === 1) {
      process.stderr.write(`\nrestore: ${sig}: stopping, removing partial output...\n`);
      c.abort();
    } else process.exit(EXIT.INTERRUPTED);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return c;
}

export function printJson(data: unknown): void {
  process.stdout.write(JSON.stringify(data, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n');
}

/** Run a command action; map errors to one line on stderr and the documented exit code. */
export async function runAction(json: boolean, fn: () => Promise<number | void>): Promise<never> {
  let code: number = EXIT.OK;
  try {
    code = (await fn()) ?? EXIT.OK;
  } catch (e) {
    const err: RestoreError = isRestoreError(e)
      ? e
      : new RestoreError('internal', `internal error: ${(e as Error)?.message ?? e}`, { cause: e });
    process.stderr.write(`restore: error: ${err.toLine()}\n`);
    if (!isRestoreError(e) && process.env.RESTORE_DEBUG) process.stderr.write(`${(e as Error)?.stack}\n`);
    if (json) printJson({ ok: false, error: err.toLine(), kind: err.kind, exitCode: err.exitCode });
    code = err.exitCode;
  }
  // Workers still inside a model call finish it first (leaving mid-call aborts the process).
  await closeWorkersGracefully().catch(() => undefined);
  // Let pending stdout writes flush before leaving.
  await new Promise((r) => process.stdout.write('', () => r(undefined)));
  process.exit(code);
}

/** What subcommands borrow from the main command: its run options and how they become RestoreOptions. */
export interface CliKit {
  addRunOptions(cmd: Command): Command;
  optionsFrom(input: string, o: Record<string, any>): RestoreOptions;
}
