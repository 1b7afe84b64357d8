/**
 * Fidelity as ffmpeg measures it: the stored planes survive a run that changes nothing, the
 * classical upscale is ffmpeg's own, a stage that changes nothing changes no pixel, and the
 * report's ffmpeg figures are the filters' own.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveFfmpeg } from '../src/media/ffmpeg.js';
import { probeVideo } from '../src/media/probe.js';
import { ffmpegScores } from '../src/metrics/ffmpeg.js';
import { defaultOptions, runRestore } from '../src/pipeline/run.js';
import { silentLogger } from '../src/util/log.js';
import type { RestoreOptions } from '../src/stages/types.js';
import { fixture, tempDir } from './helpers/media.js';

const tmp = tempDir('restore-fidelity-');
const ff = (args: string[]) => execFileSync(resolveFfmpeg().ffmpeg, ['-hide_banner', '-v', 'error', '-y', ...args]);
const clean = fixture('videos', 'astronaut-pan.mp4');
const f = (n: string) => path.join(tmp.dir, n);
const OFF = { inpaint: 'none', upscale: 'none', faces: 'none', temporal: 'none', 'restore-face': 'none', swap: 'none' };

async function restore(input: string, name: string, o: Partial<RestoreOptions> = {}) {
  return runRestore(
    defaultOptions({ input, out: f(`${name}.mp4`), reportDir: f(`${name}-report`), quiet: true, progress: false, thumbnails: 0, ...o }),
    { log: silentLogger },
  );
}

/** The summary line of a plain `ffmpeg -lavfi psnr` run of a against b. */
function ffmpegSummary(a: string, b: string): { y: number; u: number; v: number; average: number } {
  const log = spawnSync(resolveFfmpeg().ffmpeg, ['-hide_banner', '-i', a, '-i', b, '-lavfi', '[0:v][1:v]psnr', '-f', 'null', '-'], { encoding: 'utf8' }).stderr;
  const m = /PSNR y:(\S+) u:(\S+) v:(\S+) average:(\S+)/.exec(log);
  if (!m) throw new Error(`no PSNR line from ffmpeg: ${log.slice(-300)}`);
  const n = (s: string) => (s === 'inf' ? Infinity : Number(s));
  return { y: n(m[1]), u: n(m[2]), v: n(m[3]), average: n(m[4]) };
}

beforeAll(() => {
  // 10 frames, 160x160, in four colour conventions (lossless, so the planes are known exactly).
  const base = ['-i', clean, '-frames:v', '10', '-an', '-c:v', 'libx264', '-crf', '0'];
  const crop = 'crop=160:160:112:96';
  ff([...base, '-vf', `${crop},scale=out_color_matrix=bt601:out_range=tv`, '-colorspace', 'smpte170m', '-color_primaries', 'smpte170m', '-color_trc', 'smpte170m', '-color_range', 'tv', f('bt601.mp4')]);
  ff([...base, '-vf', `${crop},scale=out_color_matrix=bt709:out_range=tv`, '-colorspace', 'bt709', '-color_primaries', 'bt709', '-color_trc', 'bt709', '-color_range', 'tv', f('bt709.mp4')]);
  ff([...base, '-vf', crop, f('untagged.mp4')]);
  ff([...base, '-vf', `${crop},scale=out_range=full,format=yuvj420p`, '-color_range', 'pc', f('full.mp4')]);
  // x4 case: 96x96 from the clean clip with ffmpeg's bicubic, lightly compressed
  ff(['-i', clean, '-frames:v', '12', '-an', '-vf', 'scale=96:96:flags=bicubic', '-c:v', 'libx264', '-crf', '12', f('x4.mp4')]);
  ff(['-i', clean, '-frames:v', '12', '-an', '-c:v', 'libx264', '-crf', '0', f('x4-clean.mp4')]);
}, 120_000);
afterAll(() => tmp.cleanup());

describe('colour kept from decode to encode', () => {
  for (const kind of ['bt601', 'bt709', 'untagged', 'full']) {
    it(`${kind}: a run with every stage off at --crf 0 reproduces the stored planes (>= 50 dB per plane)`, async () => {
      const input = f(`${kind}.mp4`);
      const r = await restore(input, `rt-${kind}`, { crf: 0, backends: OFF });
      const s = await ffmpegScores(r.out, input);
      expect(s.frames).toBe(10);
      for (const p of [s.psnr.y, s.psnr.u, s.psnr.v]) expect(p).toBeGreaterThanOrEqual(50);
      const a = await probeVideo(input);
      const b = await probeVideo(r.out);
      expect(b.colour.matrix).toBe(a.colour.matrix);
      expect(b.colour.range).toBe(a.colour.range);
      if (kind === 'untagged') {
        expect(r.report.colour?.assumed).toBe(true);
        expect(r.report.notes.join('\n')).toMatch(/not fully tagged.*ffmpeg's assumption/);
      }
    });
  }
});

describe("classical upscale is ffmpeg's own", () => {
  it('--upscale lanczos is within 0.05 dB of ffmpeg -vf scale=...:flags=lanczos at the same crf', async () => {
    const plain = f('plain-lanczos.mp4');
    ff(['-i', f('x4.mp4'), '-vf', 'scale=384:384:flags=lanczos', '-c:v', 'libx264', '-crf', '18', plain]);
    const r = await restore(f('x4.mp4'), 'lanczos', { scale: 4, crf: 18, backends: { ...OFF, upscale: 'lanczos' } });
    const ours = await ffmpegScores(r.out, f('x4-clean.mp4'));
    const theirs = await ffmpegScores(plain, f('x4-clean.mp4'));
    expect(Math.abs(ours.psnr.y - theirs.psnr.y)).toBeLessThanOrEqual(0.05);
    expect(Math.abs(ours.psnr.average - theirs.psnr.average)).toBeLessThanOrEqual(0.05);
    // Chroma too: the encoder writes ffmpeg's scaled planes themselves (no RGB round trip).
    expect(Math.abs(ours.psnr.u - theirs.psnr.u)).toBeLessThanOrEqual(0.05);
    expect(Math.abs(ours.psnr.v - theirs.psnr.v)).toBeLessThanOrEqual(0.05);
  });

  it('--upscale lanczos at --crf 0 stores exactly the planes plain ffmpeg lanczos stores', async () => {
    const plain = f('plain-lanczos-lossless.mp4');
    ff(['-i', f('x4.mp4'), '-vf', 'scale=384:384:flags=lanczos', '-c:v', 'libx264', '-crf', '0', plain]);
    const r = await restore(f('x4.mp4'), 'lanczos-lossless', { scale: 4, crf: 0, backends: { ...OFF, upscale: 'lanczos' } });
    const md5 = (p: string) => execFileSync(resolveFfmpeg().ffmpeg, ['-v', 'error', '-i', p, '-f', 'framemd5', '-'], { encoding: 'utf8' }).split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(',').pop());
    expect(md5(r.out)).toEqual(md5(plain));
  });

  it('the default upscale (Lanczos + back-projection) scores above plain ffmpeg Lanczos on this clip (pinned)', async () => {
    const plain = f('plain-lanczos.mp4');
    const r = await restore(f('x4.mp4'), 'auto-up', { scale: 4, crf: 18, backends: { ...OFF, upscale: 'auto' } });
    const upStage = r.report.stages.find((s) => s.name === 'upscale');
    expect(upStage?.backend).toBe('lanczos+backproject');
    // x4: the ±1 neighbouring inputs are matched by default (x2 below: this frame only)
    expect((upStage?.details as any).backprojection.neighbourFrames).toBe(1);
    const ours = await ffmpegScores(r.out, f('x4-clean.mp4'));
    const theirs = await ffmpegScores(plain, f('x4-clean.mp4'));
    expect(ours.psnr.y - theirs.psnr.y).toBeGreaterThan(0.1);
  });
});

describe('back-projection over neighbouring frames (--sr-frames)', () => {
  it('keeps every frame in order and scores level with the single-frame back-projection', async () => {
    const one = await restore(f('x4.mp4'), 'sr0', { scale: 4, crf: 18, backends: { ...OFF, upscale: 'auto' }, srFrames: 0 });
    const three = await restore(f('x4.mp4'), 'sr1', { scale: 4, crf: 18, backends: { ...OFF, upscale: 'auto' }, srFrames: 1 });
    const up = three.report.stages.find((s) => s.name === 'upscale')!;
    expect((up.details as any).backprojection.neighbourFrames).toBe(1);
    expect(up.frames).toBe(12);
    const a = await ffmpegScores(one.out, f('x4-clean.mp4'));
    const b = await ffmpegScores(three.out, f('x4-clean.mp4'));
    expect(b.frames).toBe(12);
    expect(Math.abs(b.psnr.y - a.psnr.y)).toBeLessThan(0.3);
    // frame order kept: each output frame is closest to its own clean frame
    for (let i = 0; i < b.perFrame.length; i++) expect(Math.abs(b.perFrame[i].psnrY - a.perFrame[i].psnrY)).toBeLessThan(1);
  });
});

describe('untouched pixels stay untouched', () => {
  it('a default run without face models is bit-identical at --crf 0 to the same run with --temporal none', async () => {
    const a = await restore(f('x4.mp4'), 'default', { scale: 2, crf: 0, maxFrames: 6 });
    const b = await restore(f('x4.mp4'), 'no-temporal', { scale: 2, crf: 0, maxFrames: 6, backends: { temporal: 'none' } });
    const t = a.report.stages.find((s) => s.name === 'temporal')!;
    expect(t.ran).toBe(true);
    expect((a.report.stages.find((s) => s.name === 'upscale')!.details as any).backprojection.neighbourFrames).toBe(0); // x2
    expect(a.report.stages.find((s) => s.name === 'faces')!.details?.framesWithFaces).toBeGreaterThan(0);
    const md5 = (p: string) => execFileSync(resolveFfmpeg().ffmpeg, ['-v', 'error', '-i', p, '-f', 'framemd5', '-'], { encoding: 'utf8' }).split('\n').filter((l) => l && !l.startsWith('#'));
    expect(md5(a.out)).toEqual(md5(b.out));
  });
});

describe("the report's ffmpeg figures are the filters' own", () => {
  it('report.metrics.ffmpeg matches a plain ffmpeg psnr run within 0.01 dB', async () => {
    const r = await restore(f('x4.mp4'), 'scored', { scale: 4, crf: 18, reference: f('x4-clean.mp4'), backends: { ...OFF, upscale: 'lanczos' } });
    const m = r.report.metrics!.ffmpeg!;
    expect(m.frames).toBe(12);
    expect(m.perFrame).toHaveLength(12);
    const plain = ffmpegSummary(r.out, f('x4-clean.mp4'));
    expect(Math.abs(m.psnr.y - plain.y)).toBeLessThanOrEqual(0.01);
    expect(Math.abs(m.psnr.u - plain.u)).toBeLessThanOrEqual(0.01);
    expect(Math.abs(m.psnr.v - plain.v)).toBeLessThanOrEqual(0.01);
    expect(Math.abs(m.psnr.average - plain.average)).toBeLessThanOrEqual(0.01);
    // per-frame values (2 decimals in the stats file) average to the summary's frame mean
    const mean = m.perFrame.reduce((s, p) => s + p.psnrY, 0) / m.perFrame.length;
    expect(Math.abs(mean - m.psnrFrameMean.y)).toBeLessThanOrEqual(0.01);
    expect(m.ssim.all).toBeGreaterThan(0.8);
    expect(m.ssim.all).toBeLessThanOrEqual(1);
  });
});
