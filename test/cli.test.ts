/** The `restore` command as a user runs it: real process, real files, exit codes and one-line errors. */
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { probeVideo } from '../src/media/probe.js';
import { CLI, oneErrorLine, restore } from './helpers/cli.js';
import { ffmpegRun, fixture, tempDir } from './helpers/media.js';

const tmp = tempDir('restore-cli-');
afterAll(() => tmp.cleanup());
const CASE = (f: string) => fixture('videos', 'cases', 'pan-x4', f);

describe('help and usage', () => {
  it('--help teaches: examples and exit codes', () => {
    const r = restore(['run', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Examples:/);
    expect(r.stdout).toMatch(/--identity/);
    expect(r.stdout).toMatch(/130 interrupted/);
    for (const c of ['metrics', 'degrade', 'batch']) expect(restore(['--help']).stdout).toContain(c);
  });

  it('a bad option value is a usage error (exit 2)', () => {
    const r = restore([CASE('input.mp4'), '--scale', 'abc']);
    expect(r.code).toBe(2);
    expect(oneErrorLine(r.stderr)).toMatch(/--scale must be a number/);
    expect(restore([CASE('input.mp4'), '--size', '12by7']).code).toBe(2);
    expect(restore([CASE('input.mp4'), '--device', 'tpu']).code).toBe(2);
  });
});

describe('bad input: one clear line, non-zero exit, nothing written', () => {
  it('missing file, not a video, truncated file, no video stream → exit 1', () => {
    const outDir = path.join(tmp.dir, 'bad-out');
    const txt = path.join(tmp.dir, 'readme.mp4');
    writeFileSync(txt, 'not a video at all\n'.repeat(40));
    const cut = path.join(tmp.dir, 'cut.mp4');
    copyFileSync(fixture('videos', 'astronaut-pan.mp4'), cut);
    truncateSync(cut, Math.floor(statSync(cut).size / 3));
    const audio = path.join(tmp.dir, 'tone only.m4a');
    ffmpegRun(['-f', 'lavfi', '-i', 'sine=frequency=300', '-t', '1', '-c:a', 'aac', audio]);
    const cases: [string, RegExp][] = [
      [path.join(tmp.dir, 'missing.mp4'), /missing\.mp4: no such file/],
      [txt, /not a readable video/],
      [cut, /truncated or corrupt/],
      [audio, /has no video stream/],
    ];
    for (const [file, pattern] of cases) {
      const r = restore([file, '--report-dir', outDir, '--upscale', 'lanczos']);
      expect(r.code, file).toBe(1);
      expect(oneErrorLine(r.stderr)).toMatch(pattern);
    }
    expect(existsSync(outDir)).toBe(false);
  });

  it('an unwritable output location → exit 4', () => {
    const file = path.join(tmp.dir, 'plain-file');
    writeFileSync(file, 'x');
    const r = restore([CASE('input.mp4'), '--report-dir', path.join(file, 'reports'), '--max-frames', '2', '--upscale', 'lanczos']);
    expect(r.code).toBe(4);
    expect(oneErrorLine(r.stderr)).toMatch(/cannot write to/);
  });

  it('a missing identity photo → exit 1 before any work', () => {
    const r = restore([CASE('input.mp4'), '--identity', path.join(tmp.dir, 'nobody.jpg'), '--report-dir', path.join(tmp.dir, 'id')]);
    expect(r.code).toBe(1);
    expect(oneErrorLine(r.stderr)).toMatch(/nobody\.jpg: identity photo not found/);
  });

  it('--json prints the error as JSON too', () => {
    const r = restore([path.join(tmp.dir, 'missing.mp4'), '--json']);
    expect(r.code).toBe(1);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ ok: false, kind: 'input', exitCode: 1 });
  });
});

describe('odd inputs through the whole pipeline', () => {
  it('rotation metadata: output is upright, noted in the report', async () => {
    const src = path.join(tmp.dir, 'wide.mp4');
    ffmpegRun(['-i', fixture('videos', 'astronaut-pan.mp4'), '-vf', 'scale=192:128', '-frames:v', '6', '-c:v', 'libx264', '-an', src]);
    const rot = path.join(tmp.dir, 'rot.mp4');
    ffmpegRun(['-i', src, '-c', 'copy', '-metadata:s:v:0', 'rotate=90', rot]);
    const r = restore([rot, '--json', '--report-dir', path.join(tmp.dir, 'rot-report'), '--swap', 'none']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect([j.report.output.width, j.report.output.height]).toEqual([128, 192]);
    expect(j.report.notes.join(' ')).toMatch(/rotation metadata/);
    const info = await probeVideo(j.out);
    expect([info.width, info.height, info.rotation]).toEqual([128, 192, 0]);
  });

  it('variable frame rate: converted to a constant rate, noted', () => {
    const vfr = path.join(tmp.dir, 'vfr in.mp4');
    ffmpegRun(['-f', 'lavfi', '-i', 'testsrc2=size=96x64:rate=25', '-t', '1', '-vf', "select='lt(mod(n\\,5)\\,3)'", '-vsync', 'vfr', '-c:v', 'libx264', vfr]);
    const r = restore([vfr, '--json', '--report-dir', path.join(tmp.dir, 'vfr-report')]);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.report.input.vfr).toBe(true);
    expect(j.report.notes.join(' ')).toMatch(/variable frame rate/);
  });

  it('odd sizes: 101x77 upscaled x2 to 202x154; a mask of the wrong size is one error line', async () => {
    const odd = path.join(tmp.dir, 'odd.mkv');
    ffmpegRun(['-i', fixture('videos', 'astronaut-turn.mp4'), '-vf', 'scale=101:77', '-frames:v', '5', '-c:v', 'libx264', '-pix_fmt', 'yuv444p', '-an', odd]);
    const r = restore([odd, '--scale', '2', '--upscale', 'lanczos', '--json', '--report-dir', path.join(tmp.dir, 'odd-report')]);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect([j.report.output.width, j.report.output.height]).toEqual([202, 154]);
    expect((await probeVideo(j.out)).frameCount).toBe(5);
    const bad = restore([odd, '--mask', CASE('mask.mp4'), '--report-dir', path.join(tmp.dir, 'odd-mask')]);
    expect(bad.code).toBe(1);
    expect(oneErrorLine(bad.stderr)).toMatch(/96x96.*101x77|101x77.*96x96/);
  });

  it('--identity on a video without any face: one error line, no output written', () => {
    const noface = path.join(tmp.dir, 'noface.mp4');
    ffmpegRun(['-f', 'lavfi', '-i', 'testsrc2=size=128x96:rate=10', '-t', '0.5', '-c:v', 'libx264', noface]);
    const dir = path.join(tmp.dir, 'noface-report');
    const r = restore([noface, '--identity', fixture('source', 'astronaut.png'), '--report-dir', dir]);
    expect(r.code).toBe(1);
    expect(oneErrorLine(r.stderr)).toMatch(/no face found in any frame/);
    expect(existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.mp4')) : []).toEqual([]);
  });
});

describe('a run', () => {
  it('paths with spaces and quotes, --json result, audio and frame count kept', () => {
    const dir = path.join(tmp.dir, `it's a "quoted" dir`);
    mkdirSync(dir);
    const input = path.join(dir, 'clip with spaces.mp4');
    copyFileSync(fixture('videos', 'astronaut-pan.mp4'), input);
    const r = restore([input, '--scale', '0.5', '--upscale', 'lanczos', '--swap', 'none', '--json', '--report-dir', path.join(dir, 'report')]);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.ok).toBe(true);
    expect(j.report.output).toMatchObject({ width: 192, height: 192, frames: 48, fps: '24' });
    expect(existsSync(j.out)).toBe(true);
    for (const f of ['report.json', 'frames.csv', 'report.html']) expect(existsSync(path.join(dir, 'report', f))).toBe(true);
    expect(readdirSync(path.join(dir, 'report')).filter((f) => f.includes('.partial'))).toEqual([]);
    return probeVideo(j.out).then((info) => {
      expect(info.frameCount).toBe(48);
      expect(info.fps).toEqual({ num: 24, den: 1 });
      expect(info.audio.length).toBe(1);
    });
  });

  it('the summary on stderr: frames, time, fps and what scoring against --reference took, each stage, the scores', () => {
    const dir = path.join(tmp.dir, 'summary');
    const r = restore([CASE('input.mp4'), '--reference', CASE('reference.mp4'), '--max-frames', '3', '--upscale', 'lanczos', '--no-progress', '--report-dir', dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^restored 3 frames \(384x384\) in \d+\.\d s \(\d+(\.\d+)? fps; scoring took \d+\.\d s of it\) -> /m);
    expect(r.stderr).toMatch(/^ {2}upscale +lanczos +\d+(\.\d+)? ms\/frame$/m);
    expect(r.stderr).toMatch(/^ {2}ffmpeg psnr: Y \d+\.\d\d /m);
    const j = JSON.parse(readFileSync(path.join(dir, 'report.json'), 'utf8'));
    expect(j.timing.scoringMs).toBeGreaterThan(0);
    expect(j.timing.pipelineMs + j.timing.scoringMs).toBeLessThanOrEqual(j.timing.wallMs + 1);
  });

  it("SIGINT stops the run: exit 130, no output under the final name, no temp file left", async () => {
    const dir = path.join(tmp.dir, 'interrupted');
    const child = spawn(process.execPath, [CLI, CASE('input.mp4'), '--scale', '4', '--upscale', 'rdn', '--report-dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    // Wait until the upscaler is running, then interrupt.
    for (let i = 0; i < 600 && !/upscale:/.test(stderr); i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 1500));
    child.kill('SIGINT');
    const code = await exited;
    expect(code, stderr).toBe(130);
    expect(stderr).toMatch(/restore: error: interrupted/);
    const left = existsSync(dir) ? readdirSync(dir) : [];
    expect(left.filter((f) => f.endsWith('.mp4') || f.includes('.partial'))).toEqual([]);
  });
});
