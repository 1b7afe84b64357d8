/**
 * restore batch: discovery and pairing, failure isolation and exit codes, resume (skip done and
 * unchanged, redo failed or changed), --force, history and regression flags (index + JUnit), and
 * a real `kill -9` in the middle of a batch followed by a rerun. Real ffmpeg, real runs.
 */
import { spawn, spawnSync } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchCommand } from '../src/cli/commands/batch.js';
import { discoverJobs, slugOf } from '../src/batch/discover.js';
import { makeBatchFixture, ODD_NAME } from '../src/batch/fixtures.js';
import type { BatchIndex } from '../src/batch/index-report.js';
import type { BatchManifest } from '../src/batch/manifest.js';
import { readHistory } from '../src/batch/history.js';
import { runBatch } from '../src/batch/runner.js';
import { probeVideo } from '../src/media/probe.js';
import { resolveFfmpeg } from '../src/media/ffmpeg.js';
import { packageRoot } from '../src/util/paths.js';
import { assertNoTornFile, ensureBuilt, walk } from './helpers/batch.js';

// Cheap backends where the point is orchestration (the faces stage still runs: it decides "no face").
const RUN = { maxFrames: 8, thumbnails: 2, preset: 'veryfast', backends: { inpaint: 'harmonic' } };
let work: string;
let input: string;
let out: string;

const readJson = async <T>(p: string): Promise<T> => JSON.parse(await fs.readFile(p, 'utf8')) as T;
const manifestOf = (o: string) => readJson<BatchManifest>(path.join(o, 'batch-manifest.json'));
const indexOf = (o: string) => readJson<BatchIndex>(path.join(o, 'index.json'));


beforeAll(async () => {
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'restore-batch-'));
  input = path.join(work, 'in');
  out = path.join(work, 'out');
  await makeBatchFixture(input);
});

afterAll(async () => {
  if (work && !process.env.KEEP_BATCH_TEST) await fs.rm(work, { recursive: true, force: true });
});

describe('discovery', () => {
  it('pairs case folders, name.ref/name.mask files and identity photos; ids are stable, slugs safe', async () => {
    const jobs = await discoverJobs(input);
    expect(jobs.map((j) => j.id)).toEqual(['broken', 'cases/pan-x4', 'cases/turn-x4', 'loose/pan clip', 'noface', `odd/${ODD_NAME}`]);
    const by = Object.fromEntries(jobs.map((j) => [j.id, j]));
    expect(by['cases/pan-x4']!.source).toBe('case');
    expect(path.basename(by['cases/pan-x4']!.reference!)).toBe('reference.mp4');
    expect(path.basename(by['cases/pan-x4']!.mask!)).toBe('mask.mp4');
    expect(by['loose/pan clip']!.source).toBe('file');
    expect(path.basename(by['loose/pan clip']!.reference!)).toBe('pan clip.ref.mp4');
    expect(path.basename(by['loose/pan clip']!.mask!)).toBe('pan clip.mask.mp4');
    expect(by['noface']!.identity!.map((p) => path.basename(p))).toEqual(['identity.png']);
    expect(by['cases/pan-x4']!.identity).toBeUndefined();
    const odd = by[`odd/${ODD_NAME}`]!;
    expect(odd.slug).toMatch(/^[A-Za-z0-9._-]+$/);
    expect(path.basename(odd.reference!)).toBe(`${ODD_NAME}.ref.mp4`);
    expect(slugOf(odd.id)).toBe(odd.slug); // deterministic: the same folder on every run
    expect(slugOf('a/b')).not.toBe(slugOf('a_b'));
    expect(slugOf('cases/pan-x4')).toBe('cases__pan-x4');
    expect(slugOf('a__b')).not.toBe(slugOf('a/b'));
    expect(slugOf('a b')).toMatch(/^a_b-[0-9a-f]{6}$/);
    // The output folder is never searched, even when inside the input folder.
    const inner = path.join(input, 'out-inside');
    await fs.mkdir(inner, { recursive: true });
    await fs.copyFile(path.join(input, 'cases/pan-x4/input.mp4'), path.join(inner, 'x.mp4'));
    expect((await discoverJobs(input, { exclude: [inner] })).length).toBe(6);
    expect((await discoverJobs(input)).length).toBe(7);
    await fs.rm(inner, { recursive: true });
  });

  it('an explicit restore-batch.json wins over the naming conventions', async () => {
    const dir = path.join(work, 'manifest-dir');
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(
      path.join(dir, 'restore-batch.json'),
      JSON.stringify({
        videos: [
          { input: '../in/cases/turn-x4/input.mp4', reference: '../in/cases/turn-x4/reference.mp4', name: 'turn', options: { crf: 30 } },
          '../in/loose/pan clip.mp4',
        ],
      }),
    );
    const jobs = await discoverJobs(dir);
    expect(jobs.map((j) => j.id)).toEqual(['../in/loose/pan clip', 'turn']);
    expect(jobs[1]!.reference).toBe(path.join(input, 'cases/turn-x4/reference.mp4'));
    expect(jobs[1]!.options).toEqual({ crf: 30 });
    expect(jobs[0]!.reference).toBeUndefined();
    await fs.writeFile(path.join(dir, 'restore-batch.json'), '{"videos": [ {"nope": 1} ]}');
    await expect(discoverJobs(dir)).rejects.toThrow(/videos\[0\] has no "input"/);
  });
});

describe('batch over 6 videos', () => {
  let first: Awaited<ReturnType<typeof batchCommand>>;
  let createdBefore: Record<string, string>;

  it('runs all 6: 4 succeed, the corrupt and the faceless one fail with one clear line each, exit code 6', async () => {
    const junit = path.join(work, 'junit-1.xml');
    first = await batchCommand(input, { out, run: RUN, junit, quiet: true, concurrency: 2 });
    const s = first.summary;
    expect(first.exitCode).toBe(6);
    expect([s.videos, s.done, s.failed, s.processed, s.resumed]).toEqual([6, 4, 2, 6, 0]);
    const fail = Object.fromEntries(s.failures.map((f) => [f.id, f]));
    expect(fail['broken']!.error).toMatch(/broken\/input\.mp4: truncated or corrupt/);
    expect(fail['broken']!.kind).toBe('input');
    expect(fail['noface']!.error).toMatch(/noface\/input\.mp4: no face found/);
    expect(fail['noface']!.kind).toBe('input');
    for (const f of s.failures) expect(f.error).not.toMatch(/\n|    at /); // one line, no stack

    const ix = await indexOf(out);
    expect(ix.rows.length).toBe(6);
    expect(ix.totals).toMatchObject({ videos: 6, done: 4, failed: 2, frames: 32 });
    for (const r of ix.rows.filter((x) => x.status === 'done')) {
      expect(r.metrics!.frames).toBe(8);
      expect(r.metrics!.psnr).toBeGreaterThan(12);
      expect(r.metrics!.psnr).toBeLessThan(60);
      expect(r.metrics!.ssim).toBeGreaterThan(0.3);
      expect(r.metrics!.ssim).toBeLessThanOrEqual(1);
      // The index carries the run's own numbers.
      const rep = await readJson<any>(path.join(out, r.slug, 'report/report.json'));
      expect(r.metrics!.psnr).toBeCloseTo(rep.metrics.after.psnrRgbMean, 3);
      expect(r.metrics!.ssim).toBeCloseTo(rep.metrics.after.ssimYMean, 4);
      expect(rep.output.path).toBe(path.join(out, r.slug, 'restored.mp4'));
      const fl = (rep.perFrameValues ?? []).map((p: any) => p.values.flicker).filter((x: unknown) => typeof x === 'number');
      if (rep.stages.some((st: any) => st.name === 'temporal' && st.ran)) expect(fl.length).toBeGreaterThan(0);
      if (fl.length) expect(r.metrics!.flicker).toBeCloseTo(fl.reduce((a: number, b: number) => a + b, 0) / fl.length, 4);
      else expect(r.metrics!.flicker).toBeUndefined();
      expect(r.links.report).toBe(`${r.slug}/report/report.html`);
      const info = await probeVideo(path.join(out, r.slug, 'restored.mp4'));
      expect(info.frameCount).toBe(8);
    }
    // Both failures are in the index with their message; nothing of theirs under a final name.
    const broken = ix.rows.find((r) => r.id === 'broken')!;
    expect(broken.status).toBe('failed');
    expect(broken.error).toMatch(/truncated or corrupt/);
    expect(broken.links).toEqual({});
    await expect(fs.stat(path.join(out, 'broken'))).rejects.toThrow();
    expect(walk(out).filter((f) => /(^|\/)\.partial/.test(f))).toEqual([]);

    const html = await fs.readFile(path.join(out, 'index.html'), 'utf8');
    expect(html).toContain('&lt;b&gt;&amp;&quot;q&#39;');
    expect(html).not.toContain(ODD_NAME);
    expect(html).not.toMatch(/<(link|img|script)[^>]+(src|href)="https?:/);
    const xml = await fs.readFile(junit, 'utf8');
    expect(xml).toMatch(/<testsuites name="restore batch" tests="6" failures="0" errors="2"/);
    expect(xml).toContain('name="odd/&lt;b&gt;&amp;&quot;q&apos;"');
    expect(xml).not.toContain(ODD_NAME);

    const m = await manifestOf(out);
    createdBefore = {};
    for (const r of ix.rows.filter((x) => x.status === 'done'))
      createdBefore[r.id] = (await readJson<{ createdAt: string }>(path.join(out, r.slug, 'report/report.json'))).createdAt;
    expect(Object.values(m.videos).every((v) => v.attempts === 1)).toBe(true);
    expect(m.videos['cases/pan-x4']!.inputHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('rerun skips done+unchanged videos, redoes failed and changed ones', async () => {
    // Change one input's bytes (same frames, a new metadata tag): only it and the two failures are redone.
    const loosePath = path.join(input, 'loose/pan clip.mp4');
    const tagged = path.join(work, 'tagged.mp4');
    const { ffmpeg } = resolveFfmpeg();
    const mux = spawnSync(ffmpeg, ['-v', 'error', '-y', '-i', loosePath, '-map', '0', '-c', 'copy', '-metadata', 'comment=changed', tagged]);
    expect(mux.status, String(mux.stderr)).toBe(0);
    await fs.rename(tagged, loosePath);
    const r = await batchCommand(input, { out, run: RUN, quiet: true });
    expect(r.exitCode).toBe(6);
    expect(r.summary.resumed).toBe(3);
    expect(r.summary.processed).toBe(3);
    const m = await manifestOf(out);
    expect(m.videos['cases/pan-x4']!.attempts).toBe(1);
    expect(m.videos['cases/turn-x4']!.attempts).toBe(1);
    expect(m.videos[`odd/${ODD_NAME}`]!.attempts).toBe(1);
    expect(m.videos['loose/pan clip']!.attempts).toBe(2);
    expect(m.videos['broken']!.attempts).toBe(2);
    expect(m.videos['noface']!.attempts).toBe(2);
    const ix = await indexOf(out);
    for (const id of ['cases/pan-x4', 'cases/turn-x4', `odd/${ODD_NAME}`]) {
      const row = ix.rows.find((x) => x.id === id)!;
      expect(row.resumed).toBe(true);
      expect(row.compare.delta.psnr).toBe(0);
      const created = (await readJson<{ createdAt: string }>(path.join(out, row.slug, 'report/report.json'))).createdAt;
      expect(created).toBe(createdBefore[id]);
    }
    const loose = ix.rows.find((x) => x.id === 'loose/pan clip')!;
    expect(loose.resumed).toBe(false);
    expect(loose.attempts).toBe(2);
    expect(Math.abs(loose.compare.delta.psnr!)).toBeLessThan(0.05); // same frames, redone
    expect((await readHistory(out)).length).toBe(2);
  });

  it('--force redoes everything', async () => {
    const r = await batchCommand(input, { out, run: RUN, quiet: true, force: true });
    expect([r.summary.processed, r.summary.resumed, r.summary.done]).toEqual([6, 0, 4]);
    const m = await manifestOf(out);
    expect(m.videos['cases/pan-x4']!.attempts).toBe(2);
  });

  it('a deliberately worse setting (crf 51) is flagged as a regression in the index and the JUnit file', async () => {
    const junit = path.join(work, 'junit-worse.xml');
    const before = await indexOf(out);
    const r = await batchCommand(input, { out, run: { ...RUN, crf: 51 }, quiet: true, junit });
    expect(r.exitCode).toBe(6);
    expect(r.summary.processed).toBe(6); // settings changed: nothing may be skipped
    expect(r.summary.regressions).toBe(4);
    expect(r.summary.runRegression.join(' ')).toMatch(/PSNR fell/);
    const ix = await indexOf(out);
    for (const row of ix.rows.filter((x) => x.status === 'done')) {
      const prev = before.rows.find((x) => x.id === row.id)!;
      expect(row.regression).toBe(true);
      expect(row.compare.delta.psnr).toBeCloseTo(row.metrics!.psnr! - prev.metrics!.psnr!, 3);
      expect(row.compare.delta.psnr!).toBeLessThan(-0.5);
      expect(row.compare.regressions[0]).toMatch(/^PSNR fell \d+\.\d\d dB/);
    }
    const html = await fs.readFile(path.join(out, 'index.html'), 'utf8');
    expect(html).toContain('id="regressions"');
    expect((html.match(/<tr class="[^"]*regression/g) ?? []).length).toBe(4);
    const xml = await fs.readFile(junit, 'utf8');
    expect(xml).toMatch(/tests="7" failures="5" errors="2"/); // 6 videos + the run-mean testcase
    expect((xml.match(/<failure [^>]*type="regression"/g) ?? []).length).toBe(5);
    expect((await readHistory(out)).length).toBe(4);
    // A higher threshold turns the same drop into no regression.
    const lenient = await batchCommand(input, { out, run: { ...RUN, crf: 51 }, quiet: true, regressionThreshold: 100, ssimThreshold: 1 });
    expect(lenient.summary.regressions).toBe(0);
    expect(lenient.summary.resumed).toBe(4);
  });
});



/** Every video's final folder holds its whole output and reports; every final file is whole. */
async function assertComplete(o: string, m: BatchManifest): Promise<void> {
  const files = new Set(walk(o));
  for (const f of ['batch-manifest.json', 'index.json', 'index.html', 'history.jsonl']) expect(files.has(f), f).toBe(true);
  for (const v of Object.values(m.videos)) {
    expect(v.state).toBe('done');
    for (const f of ['restored.mp4', 'report/report.json', 'report/frames.csv', 'report/report.html']) expect(files.has(`${v.slug}/${f}`), `${v.slug}/${f}`).toBe(true);
    // 2 frames x input, output, reference, plus the face contact sheet when the run found faces.
    const report = JSON.parse(readFileSync(path.join(o, v.slug, 'report', 'report.json'), 'utf8'));
    const thumbs = [...files].filter((f) => f.startsWith(`${v.slug}/report/thumbs/`));
    expect(thumbs.length).toBe(6 + (report.faceSheet ? 1 : 0));
    if (report.faceSheet) expect(files.has(`${v.slug}/report/${report.faceSheet.file}`)).toBe(true);
  }
  expect(await assertNoTornFile(o)).toBe(files.size);
}

describe('kill -9 in the middle of a batch', () => {
  let dir: string;
  // The real command line: `restore batch <dir> --out <o> ...`.
  const cli = (o: string) => [path.join(packageRoot, 'dist/cli/main.js'), 'batch', dir, '--out', o, '--max-frames', '16', '--thumbnails', '2', '--preset', 'veryfast', '--inpaint', 'harmonic', '--json'];
  beforeAll(async () => {
    ensureBuilt();
    dir = path.join(work, 'kill-in');
    await makeBatchFixture(dir, { failures: false });
  });

  it('a rerun finishes without redoing finished videos and leaves no half-written file under a final name', async () => {
    const o = path.join(work, 'kill-out');
    const args = cli(o);
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let exited = false;
    child.on('exit', () => (exited = true));
    // Wait until at least one video is done and another is running, then SIGKILL.
    let doneBefore: string[] = [];
    const t0 = Date.now();
    for (;;) {
      await new Promise((r) => setTimeout(r, 15));
      expect(exited, 'batch finished before it could be killed').toBe(false);
      expect(Date.now() - t0).toBeLessThan(120_000);
      let m: BatchManifest;
      try {
        m = await manifestOf(o);
      } catch {
        continue; // not written yet (never torn: the read either fails or parses)
      }
      const vs = Object.values(m.videos);
      if (vs.some((v) => v.state === 'done') && vs.some((v) => v.state === 'running')) {
        child.kill('SIGKILL');
        break;
      }
    }
    await new Promise((r) => (exited ? r(undefined) : child.on('exit', r)));
    expect(child.signalCode).toBe('SIGKILL');
    const killed = await manifestOf(o);
    doneBefore = Object.values(killed.videos).filter((v) => v.state === 'done').map((v) => v.id);
    expect(doneBefore.length).toBeGreaterThanOrEqual(1);
    expect(doneBefore.length).toBeLessThan(4);
    // Everything under a final name is whole right after the kill.
    const checked = await assertNoTornFile(o);
    expect(checked).toBeGreaterThanOrEqual(1 + doneBefore.length * 2);
    const created: Record<string, string> = {};
    for (const id of doneBefore) created[id] = (await readJson<{ createdAt: string }>(path.join(o, killed.videos[id]!.slug, 'report/report.json'))).createdAt;

    const rerun = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 150_000 });
    expect(rerun.status, rerun.stderr).toBe(0);
    const summary = JSON.parse(rerun.stdout);
    expect(summary.ok).toBe(true);
    expect(summary.done).toBe(4);
    expect(summary.resumed).toBe(doneBefore.length);
    expect(summary.processed).toBe(4 - doneBefore.length);
    const m = await manifestOf(o);
    for (const id of doneBefore) {
      expect(m.videos[id]!.attempts).toBe(1);
      expect((await readJson<{ createdAt: string }>(path.join(o, m.videos[id]!.slug, 'report/report.json'))).createdAt).toBe(created[id]);
    }
    expect(Object.values(m.videos).filter((v) => v.attempts === 2).length).toBeGreaterThanOrEqual(1); // the one killed mid-run
    expect(walk(o).filter((f) => f.includes('.partial') || f.includes('.trash-') || f.endsWith('.lock'))).toEqual([]);
    await assertComplete(o, m);
  });

  it('killed again and again at different moments (startup, mid-video, finishing), it converges and never shows a torn file', async () => {
    const o = path.join(work, 'kill-again-out');
    const args = cli(o);
    let kills = 0;
    for (const delay of [250, 700, 1200, 1800, 2600, 3500]) {
      const child = spawn(process.execPath, args, { stdio: 'ignore' });
      const exited = new Promise((r) => child.on('exit', r));
      const finished = await Promise.race([exited.then(() => true), new Promise((r) => setTimeout(() => r(false), delay))]);
      if (finished) break;
      child.kill('SIGKILL');
      await exited;
      kills++;
      if (await fs.stat(o).catch(() => undefined)) await assertNoTornFile(o);
    }
    expect(kills).toBeGreaterThanOrEqual(3);
    const last = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 150_000 });
    expect(last.status, last.stderr).toBe(0);
    const summary = JSON.parse(last.stdout);
    expect(summary.done).toBe(4);
    const m = await manifestOf(o);
    const attempts = Object.values(m.videos).reduce((a, v) => a + v.attempts, 0);
    expect(attempts).toBeLessThanOrEqual(4 + kills); // each kill costs at most the video it interrupted
    expect(walk(o).filter((f) => f.includes('.partial') || f.includes('.trash-') || f.endsWith('.lock'))).toEqual([]);
    await assertComplete(o, m);
  });
});


describe('options and interruption', () => {
  it('--config values apply, command-line values win, relative paths resolve against the config file', async () => {
    const dir = path.join(work, 'cfg-in');
    await fs.mkdir(path.join(dir, 'one'), { recursive: true });
    for (const f of ['input.mp4', 'reference.mp4']) await fs.copyFile(path.join(input, 'cases/pan-x4', f), path.join(dir, 'one', f));
    const cfg = path.join(work, 'cfg', 'restore.json');
    await fs.mkdir(path.dirname(cfg), { recursive: true });
    await fs.writeFile(cfg, JSON.stringify({ crf: 30, maxFrames: 3, thumbnails: 0, upscale: 'lanczos', junit: 'j.xml', concurrency: 2 }));
    const o = path.join(work, 'cfg-out');
    const r = await batchCommand(dir, { out: o, config: cfg, quiet: true, run: { crf: 20 } });
    expect(r.exitCode).toBe(0);
    const ix = await indexOf(o);
    expect(ix.settings).toMatchObject({ crf: 20, maxFrames: 3, thumbnails: 0, backends: { upscale: 'lanczos' } });
    expect(ix.concurrency).toBe(2);
    expect(ix.rows[0]!.metrics!.frames).toBe(3);
    expect(r.summary.files.junit).toBe(path.join(work, 'cfg', 'j.xml'));
    await fs.writeFile(cfg, JSON.stringify({ crf: 30, upscail: 'x' }));
    await expect(batchCommand(dir, { out: o, config: cfg, quiet: true })).rejects.toThrow(/restore\.json: unknown option "upscail"/);
    await expect(batchCommand(path.join(work, 'nowhere'), { out: o, quiet: true })).rejects.toThrow(/nowhere: no such folder/);
    await expect(batchCommand(dir, { out: dir, quiet: true })).rejects.toThrow(/must not be the batch folder/);
  });

  it('an abort (Ctrl-C) stops the batch with an "interrupted" error; the interrupted video stays pending and nothing torn is left', async () => {
    const dir = path.join(work, 'abort-in');
    await makeBatchFixture(dir, { failures: false });
    const o = path.join(work, 'abort-out');
    const c = new AbortController();
    let started = 0;
    const err = await runBatch(dir, {
      out: o,
      run: { thumbnails: 0, preset: 'veryfast', maxFrames: 16, backends: { inpaint: 'harmonic' } },
      signal: c.signal,
      onVideo: (e) => {
        if (e.phase === 'start' && ++started === 2) setTimeout(() => c.abort(), 30);
      },
    }).catch((e) => e);
    expect(err?.kind).toBe('interrupted');
    expect(err?.message).toMatch(/rerun the same command to continue/);
    const m = await manifestOf(o);
    const states = Object.values(m.videos).map((v) => v.state);
    expect(states.filter((s) => s === 'done').length).toBe(1);
    expect(states.filter((s) => s === 'running').length).toBe(0);
    expect(walk(o).filter((f) => f.includes('.partial') || f.endsWith('.lock'))).toEqual([]);
  });
});
