/** Mask sources: images (threshold, alpha, soft values), mask videos (lock-step, short ones), dilation, errors. */
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { VideoEncoder } from '../src/media/encode.js';
import { createFrame, createMask } from '../src/media/frame.js';
import { probeVideo, type VideoInfo } from '../src/media/probe.js';
import { fixturesDir } from '../src/util/paths.js';
import { binarizeMask, dilateMask, erodeMask, openMaskSource } from '../src/stages/inpaint/mask.js';
import { isRestoreError } from '../src/errors.js';

const count = (d: Uint8Array) => d.reduce((s, v) => s + (v >= 128 ? 1 : 0), 0);

describe('mask sources', () => {
  let dir: string;
  let video: VideoInfo;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mask-src-'));
    video = await probeVideo(path.join(fixturesDir, 'videos', 'cases', 'pan-x4', 'input.mp4')); // 96x96, 48 frames
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('dilation grows a square hole by a Euclidean disk; erosion undoes it', () => {
    const m = createMask(40, 40);
    for (let y = 15; y < 25; y++) for (let x = 15; x < 25; x++) m.data[y * 40 + x] = 255;
    const d = dilateMask(m, 2);
    // 10x10 grown by 2: 14x14 minus the four rounded corners (disk of radius 2 leaves 3 px per corner).
    expect(count(d.data)).toBe(14 * 14 - 4 * 3);
    expect(count(erodeMask(d, 2).data)).toBe(100);
    expect(dilateMask(m, 0)).toBe(m);
  });

  it('a soft PNG mask is thresholded at 128; transparent pixels keep', async () => {
    const w = 96, h = 96;
    const rgba = Buffer.alloc(w * h * 4);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const i = (y * w + x) * 4;
        const v = x < 32 ? 255 : x < 64 ? 100 : 200; // hole, keep (soft), hole (soft)
        rgba.fill(v, i, i + 3);
        rgba[i + 3] = y < 48 ? 255 : 0; // bottom half transparent = keep
      }
    const png = path.join(dir, 'soft.png');
    await sharp(rgba, { raw: { width: w, height: h, channels: 4 } }).png().toFile(png);
    const src = await openMaskSource(png, video);
    expect(src.kind).toBe('image');
    const m = await src.next();
    expect(count(m.data)).toBe(48 * 32 + 48 * 32);
    expect(m.data[10 * 96 + 10]).toBe(255);
    expect(m.data[10 * 96 + 40]).toBe(0);
    expect(m.data[10 * 96 + 70]).toBe(255);
    expect(m.data[60 * 96 + 10]).toBe(0);
    expect(await src.next()).toBe(m); // same mask every frame
  });

  it('a mask video is read in lock-step and its last frame repeats when it is shorter', async () => {
    const file = path.join(dir, 'short-mask.mp4');
    const enc = await VideoEncoder.open({ out: file, width: 96, height: 96, fps: video.fps, crf: 0 });
    for (let k = 0; k < 3; k++) {
      const f = createFrame(96, 96);
      for (let y = 0; y < 10; y++) for (let x = 0; x < 10 * (k + 1); x++) f.data.fill(255, 3 * (y * 96 + x), 3 * (y * 96 + x) + 3);
      await enc.write(f);
    }
    await enc.finish();
    const src = await openMaskSource(file, video, { dilate: 0 });
    expect(src.kind).toBe('video');
    const sizes: number[] = [];
    for (let k = 0; k < 5; k++) sizes.push(count((await src.next()).data));
    await src.close();
    expect(sizes).toEqual([100, 200, 300, 300, 300]);
  });

  it('errors are one line naming the file: missing, unreadable, wrong size', async () => {
    const bad = path.join(dir, 'notamask.png');
    await fs.writeFile(bad, 'this is not an image');
    const cases: [string, RegExp][] = [
      [path.join(dir, 'missing.png'), /missing\.png: no such mask file/],
      [bad, /notamask\.png: not a readable mask image/],
    ];
    const wrong = path.join(dir, 'wrong.png');
    await sharp({ create: { width: 64, height: 48, channels: 3, background: '#000' } }).png().toFile(wrong);
    cases.push([wrong, /wrong\.png: mask is 64x48 but the video .*input\.mp4 is 96x96/]);
    const wrongVideo = path.join(dir, 'wrong.mp4');
    const enc = await VideoEncoder.open({ out: wrongVideo, width: 64, height: 48, fps: video.fps });
    await enc.write(createFrame(64, 48));
    await enc.finish();
    cases.push([wrongVideo, /wrong\.mp4: mask is 64x48 but the video .* is 96x96/]);
    for (const [file, re] of cases) {
      const e = await openMaskSource(file, video).catch((x) => x);
      expect(isRestoreError(e), String(e)).toBe(true);
      expect(e.kind).toBe('input');
      expect(e.message).toMatch(re);
      expect(e.toLine().includes('\n')).toBe(false);
    }
  });

  it('binarizeMask thresholds soft values', () => {
    const m = { width: 4, height: 1, data: Uint8Array.from([0, 127, 128, 255]) };
    expect([...binarizeMask(m).data]).toEqual([0, 0, 255, 255]);
    expect([...binarizeMask(m, 200).data]).toEqual([0, 0, 0, 255]);
  });
});
