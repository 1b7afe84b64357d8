#!/usr/bin/env node
/**
 * A bare entry to the batch, for tests and scripts that must not depend on the CLI wiring:
 *   node dist/batch/entry.js <dir> '<BatchOptions as JSON>'
 * Prints the summary as JSON on stdout and exits with the batch's exit code.
 */
import { isRestoreError } from '../errors.js';
import { batchCommand, type BatchOptions } from '../cli/commands/batch.js';

async function main(): Promise<number> {
  const [dir, json] = process.argv.slice(2);
  if (!dir || !json) {
    process.stderr.write('usage: node dist/batch/entry.js <dir> <options-json>\n');
    return 2;
  }
  const opts = JSON.parse(json) as BatchOptions;
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  process.once('SIGTERM', () => controller.abort());
  try {
    const { exitCode } = await batchCommand(dir, { ...opts, json: true, signal: controller.signal });
    return exitCode;
  } catch (e) {
    if (isRestoreError(e)) {
      process.stderr.write(`restore: error: ${e.toLine()}\n`);
      return e.exitCode;
    }
    process.stderr.write(`restore: internal error: ${(e as Error)?.stack ?? e}\n`);
    return 5;
  }
}

process.exitCode = await main();
