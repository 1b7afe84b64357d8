/** Test helpers for batches: file listings, a fresh dist/ for the CLI, whole-file checks. */
import { spawnSync } from 'node:child_process';
import { promises as fs, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { expect } from 'vitest';
import { probeVideo } from '../../src/media/probe.js';
import { packageRoot } from '../../src/util/paths.js';

/** Every file under `dir`, relative, '/'-separated. */
export function walk(dir: string, base = dir): string[] {
  const outl: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) outl.push(...walk(p, base));
    else outl.push(path.relative(base, p).split(path.sep).join('/'));
  }
  return outl;
}

/** Build dist/ when any source file is newer than its compiled file (the kill test spawns node). */
export function ensureBuilt(): void {
  const src = path.join(packageRoot, 'src');
  let stale = false;
  for (const f of walk(src)) {
    if (!f.endsWith('.ts')) continue;
    const js = path.join(packageRoot, 'dist', f.replace(/\.ts$/, '.js'));
    try {
      if (statSync(js).mtimeMs < statSync(path.join(src, f)).mtimeMs) stale = true;
    } catch {
      stale = true;
    }
    if (stale) break;
  }
  if (stale) spawnSync(process.execPath, [path.join(packageRoot, 'node_modules/typescript/bin/tsc'), '-p', packageRoot], { stdio: 'ignore' });
  statSync(path.join(packageRoot, 'dist/cli/main.js'));
}

/** Check that every file under a final (non-hidden) name is whole. */
export async function assertNoTornFile(dir: string, frames = 16): Promise<number> {
  let checked = 0;
  for (const f of walk(dir)) {
    if (f.split('/').some((seg) => seg.startsWith('.'))) continue; // staging folder and temp names
    const p = path.join(dir, f);
    if (f.endsWith('.json')) JSON.parse(await fs.readFile(p, 'utf8'));
    else if (f.endsWith('.jsonl')) for (const l of (await fs.readFile(p, 'utf8')).trim().split('\n')) JSON.parse(l);
    else if (f.endsWith('.html')) expect((await fs.readFile(p, 'utf8')).trimEnd().endsWith('</html>'), f).toBe(true);
    else if (f.endsWith('.csv')) expect((await fs.readFile(p, 'utf8')).endsWith('\n'), f).toBe(true);
    else if (f.endsWith('.jpg')) expect((await sharp(p).stats()).channels.length, f).toBe(3);
    else if (f.endsWith('.mp4')) expect((await probeVideo(p)).frameCount, f).toBe(frames);
    else if (f.endsWith('.lock')) continue;
    else throw new Error(`unexpected file ${f}`);
    checked++;
  }
  return checked;
}
