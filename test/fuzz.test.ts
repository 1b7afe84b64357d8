/**
 * Fault injection: damaged copies of the fixture videos (seeded, so every run tries the same
 * files) through a real restore run. Nothing may crash or hang; every failure is one line
 * with a documented exit code. Most damage is to the container structure, so most inputs fail
 * at probe and the whole test stays a few seconds.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EXIT, isRestoreError } from '../src/errors.js';
import { seededRandom } from '../src/pipeline/degrade.js';
import { silentLogger } from '../src/util/log.js';
import { defaultOptions, runRestore } from '../src/pipeline/run.js';
import { restore } from './helpers/cli.js';
import { fixture, tempDir } from './helpers/media.js';

const tmp = tempDir('restore-fuzz-');
afterAll(() => tmp.cleanup());

const SEED = 15;
const COUNT = 120;
const HANG_MS = 30_000;
const DOCUMENTED = new Set<number>([EXIT.BAD_INPUT, EXIT.USAGE, EXIT.MODEL, EXIT.OUTPUT]);
const FAST = { maxFrames: 2, thumbnails: 0, backends: { upscale: 'lanczos', faces: 'none', swap: 'none', temporal: 'none' } };

type Damage = (b: Buffer, r: () => number) => Buffer;
const at = (r: () => number, n: number) => Math.floor(r() * n);
/** Offset of an MP4 box type (moov, mdat, ...), or a random offset. */
const box = (b: Buffer, type: string, r: () => number) => {
  const i = b.indexOf(type);
  return i >= 0 ? i : at(r, b.length);
};
const DAMAGES: [string, Damage][] = [
  ['truncate early', (b, r) => b.subarray(0, at(r, Math.min(b.length, 4096)))],
  ['truncate anywhere', (b, r) => b.subarray(0, at(r, b.length))],
  ['garbage header', (b, r) => { const c = Buffer.from(b); for (let i = 0; i < 32; i++) c[i] = at(r, 256); return c; }],
  ['box sizes scrambled', (b, r) => { const c = Buffer.from(b); for (const t of ['ftyp', 'moov', 'mvhd', 'trak', 'stsz', 'stco']) { const i = c.indexOf(t); if (i >= 4) c.writeUInt32BE(at(r, 2 ** 32), i - 4); } return c; }],
  ['moov zeroed', (b, r) => { const c = Buffer.from(b); const i = box(c, 'moov', r); c.fill(0, i, Math.min(c.length, i + 64 + at(r, 2048))); return c; }],
  ['sample tables overwritten', (b, r) => { const c = Buffer.from(b); for (const t of ['stsz', 'stco', 'stts', 'stsc', 'avcC']) { const i = c.indexOf(t); if (i >= 0) for (let k = 0; k < 24; k++) c[i + 4 + k] = at(r, 256); } return c; }],
  ['random bytes in the index', (b, r) => { const c = Buffer.from(b); const i = box(c, 'moov', r); for (let k = 0; k < 40; k++) c[Math.min(c.length - 1, i + at(r, 3000))] = at(r, 256); return c; }],
  ['random bytes anywhere', (b, r) => { const c = Buffer.from(b); for (let k = 0; k < 200; k++) c[at(r, c.length)] = at(r, 256); return c; }],
  ['a range cut out', (b, r) => { const s = at(r, b.length); return Buffer.concat([b.subarray(0, s), b.subarray(Math.min(b.length, s + 1 + at(r, 8192)))]); }],
  ['a range repeated', (b, r) => { const s = at(r, b.length); const e = Math.min(b.length, s + 1 + at(r, 4096)); return Buffer.concat([b.subarray(0, e), b.subarray(s, e), b.subarray(e)]); }],
  ['two halves swapped', (b, r) => { const s = 1 + at(r, b.length - 1); return Buffer.concat([b.subarray(s), b.subarray(0, s)]); }],
  ['only noise after ftyp', (b, r) => Buffer.concat([b.subarray(0, 32), Buffer.from(Array.from({ length: 256 + at(r, 20000) }, () => at(r, 256)))])],
  ['empty', () => Buffer.alloc(0)],
  ['text', (_b, r) => Buffer.from('not a video\n'.repeat(1 + at(r, 50)))],
];
const SOURCES = [fixture('videos', 'cases', 'pan-x4', 'input.mp4'), fixture('videos', 'cases', 'pan-x4', 'mask.mp4'), fixture('videos', 'astronaut-turn.mp4')];

interface Outcome {
  file: string;
  damage: string;
  result: 'ok' | 'error' | 'crash' | 'hang';
  exitCode?: number;
  line?: string;
  ms: number;
}

function damagedInputs(): { file: string; damage: string }[] {
  const r = seededRandom(SEED);
  const bytes = SOURCES.map((s) => readFileSync(s));
  return Array.from({ length: COUNT }, (_, i) => {
    const [name, fn] = DAMAGES[i % DAMAGES.length];
    const src = at(r, bytes.length);
    const file = path.join(tmp.dir, `in-${String(i).padStart(3, '0')}.mp4`);
    writeFileSync(file, fn(bytes[src], r));
    return { file, damage: `${name} (${path.basename(SOURCES[src])})` };
  });
}

async function tryOne(file: string, damage: string, i: number): Promise<Outcome> {
  const t0 = performance.now();
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<'hang'>((r) => (timer = setTimeout(() => (ac.abort(), r('hang')), HANG_MS)));
  const opts = defaultOptions({ input: file, reportDir: path.join(tmp.dir, `out-${i}`), quiet: true, progress: false, ...FAST });
  const run = runRestore(opts, { log: silentLogger, signal: ac.signal }).then(
    () => ({ result: 'ok' as const }),
    (e) =>
      isRestoreError(e) && e.kind !== 'internal'
        ? { result: 'error' as const, exitCode: e.exitCode as number, line: e.toLine() }
        : { result: 'crash' as const, line: String((e as Error)?.stack ?? e) },
  );
  const res = await Promise.race([run, hang]);
  clearTimeout(timer);
  const out = res === 'hang' ? { result: 'hang' as const } : res;
  return { file, damage, ...out, ms: performance.now() - t0 };
}

describe(`fuzz: ${COUNT} damaged inputs (seed ${SEED})`, () => {
  const outcomes: Outcome[] = [];

  it('no crash, no hang; every failure one line with a documented exit code', async () => {
    const t0 = performance.now();
    const inputs = damagedInputs();
    for (const [i, { file, damage }] of inputs.entries()) outcomes.push(await tryOne(file, damage, i));
    const by = (k: Outcome['result']) => outcomes.filter((o) => o.result === k);
    const crashes = by('crash');
    const hangs = by('hang');
    expect(crashes.map((o) => `${o.damage}: ${o.line}`)).toEqual([]);
    expect(hangs.map((o) => o.damage)).toEqual([]);
    for (const o of by('error')) {
      expect(DOCUMENTED.has(o.exitCode!), `${o.damage}: exit ${o.exitCode}`).toBe(true);
      expect(o.line, o.damage).not.toMatch(/\n/);
      expect(o.line!.length, o.damage).toBeGreaterThan(0);
    }
    const codes: Record<string, number> = {};
    for (const o of by('error')) codes[o.exitCode!] = (codes[o.exitCode!] ?? 0) + 1;
    const atProbe = by('error').filter((o) => /not a readable video|has no video stream|no such file|probe/i.test(o.line!)).length;
    console.log(
      `fuzz: ${outcomes.length} inputs in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${by('ok').length} ran, ${by('error').length} failed (exit codes ${JSON.stringify(codes)}; ${atProbe} at probe), ${crashes.length} crashes, ${hangs.length} hangs; slowest ${Math.max(...outcomes.map((o) => o.ms)).toFixed(0)} ms`,
    );
    expect(outcomes.length).toBeGreaterThanOrEqual(100);
  });

  it('through the CLI (a sample): the same exit code and exactly one line on stderr', () => {
    const failed = outcomes.filter((o) => o.result === 'error');
    const sample = failed.filter((_, i) => i % Math.max(1, Math.floor(failed.length / 6)) === 0).slice(0, 6);
    expect(sample.length).toBeGreaterThan(0);
    for (const o of sample) {
      const r = restore([o.file, '-q', '--report-dir', path.join(tmp.dir, 'cli'), '--max-frames', '2', '--thumbnails', '0', '--upscale', 'lanczos', '--faces', 'none', '--swap', 'none', '--temporal', 'none'], 60_000);
      expect(r.code, o.damage).toBe(o.exitCode);
      const lines = r.stderr.trim().split('\n');
      expect(lines, o.damage).toHaveLength(1);
      expect(lines[0]).toBe(`restore: error: ${o.line}`);
    }
  });
});
