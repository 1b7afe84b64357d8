#!/usr/bin/env node
/**
 * Checks the import graph of src/: no import cycle between files, and no import from a lower
 * layer into a higher one. The layers, lowest first (a file may import its own layer and below):
 *
 *   0 base      errors.ts, util/ (log, paths), workers/ (the thread pool)
 *   1 media     media/
 *   2 models    models/
 *   3 analysis  faces/, flow/, metrics/
 *   4 stages    stages/ (the stage surface, each stage, and the tasks run in worker threads)
 *   5 pipeline  pipeline/, report/
 *   6 entry     cli/, batch/, eval/, bench/
 *
 * Usage: node scripts/check-layers.mjs [--json]   (exit 1 when something is wrong)
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'src');
export const LAYERS = [
  ['base', ['errors.ts', 'util', 'workers']],
  ['media', ['media']],
  ['models', ['models']],
  ['analysis', ['faces', 'flow', 'metrics']],
  ['stages', ['stages']],
  ['pipeline', ['pipeline', 'report']],
  ['entry', ['cli', 'batch', 'eval', 'bench']],
];

function files(dir) {
  const out = [];
  for (const n of readdirSync(dir)) {
    const p = path.join(dir, n);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (n.endsWith('.ts') && !n.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

export function layerOf(rel) {
  const top = rel.split('/')[0];
  const i = LAYERS.findIndex(([, tops]) => tops.includes(top));
  return i;
}

/** Static imports (and `export ... from`) of a file, as paths relative to src/. Type-only imports count too. */
function importsOf(file) {
  const text = readFileSync(file, 'utf8');
  const out = [];
  const re = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+['"](\.[^'"]+)['"]/g;
  for (const m of text.matchAll(re)) {
    const target = path.resolve(path.dirname(file), m[1]).replace(/\.js$/, '.ts');
    out.push(path.relative(root, target));
  }
  return out;
}

export function checkLayers() {
  const all = files(root).map((f) => path.relative(root, f));
  const graph = new Map(all.map((f) => [f, importsOf(path.join(root, f)).filter((t) => all.includes(t))]));
  const unplaced = all.filter((f) => layerOf(f) < 0);
  const upward = [];
  for (const [f, ts] of graph) for (const t of ts) if (layerOf(t) > layerOf(f)) upward.push(`${f} (${LAYERS[layerOf(f)][0]}) imports ${t} (${LAYERS[layerOf(t)][0]})`);
  // Cycles: Tarjan's strongly connected components.
  const index = new Map();
  const low = new Map();
  const stack = [];
  const on = new Set();
  const cycles = [];
  let n = 0;
  const visit = (v) => {
    index.set(v, n);
    low.set(v, n++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v)) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
    }
    if (low.get(v) === index.get(v)) {
      const scc = [];
      let w;
      do {
        w = stack.pop();
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || graph.get(v).includes(v)) cycles.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return { files: all.length, imports: [...graph.values()].reduce((s, x) => s + x.length, 0), unplaced, upward, cycles };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const r = checkLayers();
  if (process.argv.includes('--json')) console.log(JSON.stringify(r, null, 2));
  else {
    console.log(`${r.files} files, ${r.imports} imports; layers: ${LAYERS.map(([n, t]) => `${n} (${t.join(', ')})`).join(' <- ')}`);
    for (const u of r.unplaced) console.log(`not in a layer: ${u}`);
    for (const u of r.upward) console.log(`upward import: ${u}`);
    for (const c of r.cycles) console.log(`import cycle: ${c.join(' <-> ')}`);
    console.log(`${r.upward.length} upward imports, ${r.cycles.length} cycles, ${r.unplaced.length} files outside the layers`);
  }
  process.exit(r.upward.length || r.cycles.length || r.unplaced.length ? 1 : 0);
}
