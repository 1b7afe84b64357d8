import { copyFileSync, mkdirSync, readFileSync, writeFileSync, existsSync, readdirSync, truncateSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeFrames } from '../src/media/decode.js';
import { VideoEncoder } from '../src/media/encode.js';
import { probeVideo } from '../src/media/probe.js';
import { frameMetrics } from '../src/metrics/frame.js';
import { RestoreError } from '../src/errors.js';
import { ffmpegRun, fixture, makeClip, tempDir } from './helpers/media.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

async function collect(file: string, max?: number) {
  const info = await probeVideo(file);
  const frames = [];
  for await (const f of decodeFrames(info, { maxFrames: max })) frames.push(f);
  return { info, frames };
}

async function expectInputError(p: Promise<unknown>, pattern: RegExp) {
  const e = await p.then(() => undefined, (x) => x);
  expect(e).toBeInstanceOf(RestoreError);
  expect((e as RestoreError).kind).toBe('input');
  expect((e as RestoreError).message).toMatch(pattern);
  expect((e as RestoreError).toLine()).not.toContain('\n');
}

describe('probe', () => {
  it('reads size, rational fps, exact frame count and audio of the fixture', async () => {
    const info = await probeVideo(fixture('videos', 'astronaut-pan.mp4'));
    expect([info.width, info.height]).toEqual([384, 384]);
    expect(info.fps).toEqual({ num: 24, den: 1 });
    expect(info.frameCount).toBe(48);
    expect(info.frameCountExact).toBe(true);
    expect(info.vfr).toBe(false);
    expect(info.audio.length).toBe(1);
    expect(info.audio[0].codec).toBe('aac');
  });

  it('keeps NTSC rates as rationals', async () => {
    const f = makeClip(path.join(tmp.dir, 'ntsc.mp4'), { fps: 30000 / 1001, extra: ['-r', '30000/1001'] });
    const info = await probeVideo(f);
    expect(info.fps).toEqual({ num: 30000, den: 1001 });
  });

  it('reports rotation metadata and the upright size', async () => {
    const src = makeClip(path.join(tmp.dir, 'landscape.mp4'), { width: 160, height: 96 });
    const rot = path.join(tmp.dir, 'rotated.mp4');
    ffmpegRun(['-i', src, '-c', 'copy', '-metadata:s:v:0', 'rotate=90', rot]);
    const info = await probeVideo(rot);
    // The sign convention of the display matrix differs between muxer and prober versions;
    // what matters is a quarter turn and upright decoded frames.
    expect([90, 270]).toContain(info.rotation);
    expect([info.codedWidth, info.codedHeight]).toEqual([160, 96]);
    expect([info.width, info.height]).toEqual([96, 160]);
    const { frames } = await collect(rot, 2);
    expect([frames[0].width, frames[0].height]).toEqual([96, 160]);
  });

  it('detects variable frame rate and decodes it at a constant rate', async () => {
    const vfr = path.join(tmp.dir, 'vfr.mp4');
    ffmpegRun(['-f', 'lavfi', '-i', 'testsrc2=size=96x64:rate=25', '-t', '2', '-vf', "select='lt(mod(n\\,5)\\,3)'", '-vsync', 'vfr', '-c:v', 'libx264', vfr]);
    const info = await probeVideo(vfr);
    expect(info.vfr).toBe(true);
    const { frames } = await collect(vfr);
    const expected = Math.round(info.duration * (info.fps.num / info.fps.den));
    expect(Math.abs(frames.length - expected)).toBeLessThanOrEqual(2);
  });

  it('gives one clear line for a missing file, a non-video, an audio-only file and an empty file', async () => {
    await expectInputError(probeVideo(path.join(tmp.dir, 'nope.mp4')), /no such file/);
    const txt = path.join(tmp.dir, 'notes.mp4');
    writeFileSync(txt, 'this is not a video\n'.repeat(50));
    await expectInputError(probeVideo(txt), /not a readable video/);
    const audio = path.join(tmp.dir, 'tone.m4a');
    ffmpegRun(['-f', 'lavfi', '-i', 'sine=frequency=440', '-t', '1', '-c:a', 'aac', audio]);
    await expectInputError(probeVideo(audio), /has no video stream/);
    const empty = path.join(tmp.dir, 'empty.mp4');
    writeFileSync(empty, '');
    await expectInputError(probeVideo(empty), /empty/);
  });
});

describe('decode', () => {
  it('streams every frame of the fixture as RGB24', async () => {
    const { info, frames } = await collect(fixture('videos', 'astronaut-turn.mp4'));
    expect(frames.length).toBe(info.frameCount);
    expect(frames[0].data.length).toBe(384 * 384 * 3);
    expect(frames[47].index).toBe(47);
    expect(frames[24].time).toBeCloseTo(1, 5);
  });

  it('refuses a truncated file: moov intact but data cut', async () => {
    const cut = path.join(tmp.dir, 'cut.mp4');
    copyFileSync(fixture('videos', 'astronaut-pan.mp4'), cut); // +faststart: index first
    truncateSync(cut, Math.floor(statSync(cut).size * 0.5));
    await expectInputError(probeVideo(cut), /truncated or corrupt: the index lists 48 frames but only \d+ are present/);
  });

  it('refuses a truncated file whose index was at the end', async () => {
    const src = makeClip(path.join(tmp.dir, 'noindex.mp4'), { seconds: 1 });
    const cut = path.join(tmp.dir, 'noindex-cut.mp4');
    copyFileSync(src, cut);
    truncateSync(cut, Math.floor(statSync(cut).size * 0.6));
    await expectInputError(probeVideo(cut), /not a readable video/);
  });
});

describe('encode', () => {
  it('round-trips frames with high fidelity and keeps fps, frame count and audio', async () => {
    const src = makeClip(path.join(tmp.dir, 'av.mp4'), { width: 128, height: 96, audio: true, seconds: 1 });
    const { info, frames } = await collect(src);
    const out = path.join(tmp.dir, 'av-out.mp4');
    const enc = await VideoEncoder.open({ out, width: info.width, height: info.height, fps: info.fps, audioFrom: info, crf: 4, preset: 'fast' });
    for (const f of frames) await enc.write(f);
    await enc.finish();
    const back = await collect(out);
    expect(back.info.frameCount).toBe(frames.length);
    expect(back.info.fps).toEqual(info.fps);
    expect(back.info.audio.length).toBe(1);
    expect(back.info.pixFmt).toBe('yuv420p');
    const m = frameMetrics(back.frames[10], frames[10]);
    expect(m.psnrY).toBeGreaterThan(38);
  });

  it('pads odd sizes to even for yuv420p', async () => {
    const out = path.join(tmp.dir, 'odd.mp4');
    const enc = await VideoEncoder.open({ out, width: 101, height: 77, fps: { num: 25, den: 1 } });
    const f = { width: 101, height: 77, data: new Uint8Array(101 * 77 * 3).fill(128) };
    for (let i = 0; i < 5; i++) await enc.write(f);
    await enc.finish();
    const info = await probeVideo(out);
    expect([info.width, info.height]).toEqual([102, 78]);
    expect(info.frameCount).toBe(5);
  });

  it('writes under a temp name, renames only when whole, and abort leaves nothing behind', async () => {
    const dir = path.join(tmp.dir, "out dir with 'quotes' \"and\" spaces");
    mkdirSync(dir);
    const out = path.join(dir, 'keep me.mp4');
    writeFileSync(out, 'previous result');
    const enc = await VideoEncoder.open({ out, width: 64, height: 64, fps: { num: 25, den: 1 } });
    for (let i = 0; i < 30; i++) await enc.write({ width: 64, height: 64, data: new Uint8Array(64 * 64 * 3) });
    // ffmpeg opens its output once input arrives: wait for the temp file to appear.
    for (let t = 0; t < 100 && !existsSync(enc.tmpPath); t++) await new Promise((r) => setTimeout(r, 20));
    expect(existsSync(enc.tmpPath)).toBe(true);
    expect(existsSync(out) && readFileSync(out, 'utf8')).toBe('previous result');
    await enc.abort();
    expect(readdirSync(dir)).toEqual(['keep me.mp4']);
    expect(readFileSync(out, 'utf8')).toBe('previous result');
  });

  it('fails with one line when the output folder cannot be written', async () => {
    const file = path.join(tmp.dir, 'a-file');
    writeFileSync(file, 'x');
    const e = await VideoEncoder.open({ out: path.join(file, 'sub', 'o.mp4'), width: 64, height: 64, fps: { num: 25, den: 1 } }).then(() => undefined, (x) => x);
    expect(e).toBeInstanceOf(RestoreError);
    expect((e as RestoreError).kind).toBe('output');
    expect((e as RestoreError).message).toMatch(/cannot write to/);
  });
});
