/**
 * Registry adapter: lets a manifest entry with `source.converter: 'tfjs-graph'` (e.g. the npm
 * face descriptor `faceres`) be converted on first use by the model registry:
 *
 *   registerConverter('tfjs-graph', async () => (await import('./tfjs-graph/index.js')).convertEmbeddedEntry, true)
 *
 * Outputs: the entry's contract output names when they are given, else the graph signature's.
 */
import type { ModelEntry } from '../manifest.js';
import { convertTfjsGraphFile } from './convert.js';

export { convertTfjsGraph, convertTfjsGraphFile, decodeWeights, TfjsConvertError } from './convert.js';

export async function convertEmbeddedEntry(entry: ModelEntry, sourceFile: string, log?: (m: string) => void): Promise<Uint8Array> {
  const names = entry.contract.outputs.flatMap((o) => (o.name === undefined ? [] : Array.isArray(o.name) ? [o.name[0]] : [o.name]));
  const r = convertTfjsGraphFile(sourceFile, { batch: 1, ...(names.length ? { outputs: names } : {}) });
  log?.(`${entry.name}: TF.js graph converted (${Object.entries(r.opCounts).map(([k, v]) => `${k} ${v}`).join(', ')})`);
  return r.bytes;
}
