/** Content hashes (streamed) and a stable hash of settings. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { inputError } from '../errors.js';

/** SHA-256 of a file's bytes, read as a stream (constant memory whatever the size). */
export async function hashFile(file: string, signal?: AbortSignal): Promise<string> {
  const h = createHash('sha256');
  try {
    await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), h, { signal });
  } catch (e: any) {
    if (e?.name === 'AbortError') throw e;
    if (e?.code === 'ENOENT') throw inputError(`${file}: no such file`);
    if (e?.code === 'EACCES') throw inputError(`${file}: permission denied`);
    if (e?.code === 'EISDIR') throw inputError(`${file}: is a folder, not a file`);
    throw inputError(`${file}: cannot read (${e?.code ?? e?.message ?? e})`);
  }
  return h.digest('hex');
}

/** JSON with object keys sorted at every level and undefined members dropped. */
export function stableStringify(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : stableStringify(x))).join(',')}]`;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${stableStringify(o[k])}`).join(',')}}`;
}

export function hashValue(v: unknown): string {
  return createHash('sha256').update(stableStringify(v)).digest('hex');
}

export function shortHash(s: string, n = 8): string {
  return createHash('sha256').update(s).digest('hex').slice(0, n);
}
