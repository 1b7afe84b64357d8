/** Argument parsing of `npm run eval` (kept apart from main.ts so it can be imported). */
import type { Variant } from './run.js';

export const list = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean);

export function parseVariant(s: string): Variant {
  const [name, spec = ''] = s.split(':');
  const backends: Record<string, string> = {};
  const options: Record<string, number> = {};
  for (const kv of list(spec)) {
    const [k, v] = kv.split('=');
    if (!k || v === undefined) throw new Error(`--variant ${s}: expected NAME:stage=backend[,stage=backend]`);
    if (k === 'backproject' || k === 'srFrames') options[k] = Number(v);
    else if (k === 'quality') (options as Record<string, unknown>).quality = v;
    else backends[k] = v;
  }
  return { name, backends, options };
}

