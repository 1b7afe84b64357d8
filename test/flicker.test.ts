import { beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import sharp from 'sharp';
import { sampleBilinear } from '../src/flow/flow.js';
import type { RgbFrame } from '../src/media/frame.js';
import { decodeFrames } from '../src/media/decode.js';
import { probeVideo } from '../src/media/probe.js';
import { FLICKER_DEFINITION, FlickerAccumulator, frameFlicker, summarizeFlicker } from '../src/metrics/flicker.js';
import { fixturesDir } from '../src/util/paths.js';

/** The astronaut portrait, 256x256 RGB. */
async function portrait(size = 256): Promise<RgbFrame> {
  const { data, info } = await sharp(path.join(fixturesDir, 'source', 'astronaut.png')).resize(size, size, { kernel: 'lanczos3' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data) };
}

/** Shift a frame by (dx, dy) pixels (bilinear, clamped border): out(x) = src(x - d). */
function shift(f: RgbFrame, dx: number, dy: number): RgbFrame {
  const { width: w, height: h } = f;
  const planes = [0, 1, 2].map((c) => Float32Array.from({ length: w * h }, (_, i) => f.data[i * 3 + c]));
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < 3; c++) data[(y * w + x) * 3 + c] = Math.round(sampleBilinear(planes[c], w, h, x - dx, y - dy));
  return { width: w, height: h, data };
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

function noiseFrame(w: number, h: number, seed: number): RgbFrame {
  const r = rng(seed);
  return { width: w, height: h, data: Uint8Array.from({ length: w * h * 3 }, () => Math.floor(r() * 256)) };
}

function addBrightness(f: RgbFrame, d: number): RgbFrame {
  return { ...f, data: f.data.map((v) => Math.max(0, Math.min(255, v + d))) };
}

/** Plain mean |Y(a) - Y(b)| without motion compensation. */
function rawLumaDiff(a: RgbFrame, b: RgbFrame): number {
  let s = 0;
  for (let i = 0; i < a.width * a.height; i++) {
    const j = i * 3;
    s += Math.abs(0.299 * (a.data[j] - b.data[j]) + 0.587 * (a.data[j + 1] - b.data[j + 1]) + 0.114 * (a.data[j + 2] - b.data[j + 2]));
  }
  return s / (a.width * a.height);
}

describe('flicker metric (flow-compensated warping error)', () => {
  let P: RgbFrame;
  beforeAll(async () => {
    P = await portrait(256);
  });

  it('names its definition', () => {
    expect(FLICKER_DEFINITION).toMatch(/mean absolute BT\.601 luma difference/);
    expect(FLICKER_DEFINITION).toMatch(/forward-backward/);
  });

  it('is zero for a static repeated frame', () => {
    const r = frameFlicker(P, { ...P, data: new Uint8Array(P.data) });
    console.log(`flicker static: ${r.flicker.toFixed(4)} (valid ${(r.valid * 100).toFixed(1)}%)`);
    expect(r.flicker).toBeLessThan(0.05);
    expect(r.valid).toBeGreaterThan(0.95);
  });

  it('is near zero for a globally translated frame (the flow compensates), unlike the raw difference', () => {
    const Q = shift(P, 3.4, -2.2);
    const r = frameFlicker(P, Q);
    const raw = rawLumaDiff(P, Q);
    console.log(`flicker translated (3.4, -2.2) px: ${r.flicker.toFixed(3)} (valid ${(r.valid * 100).toFixed(1)}%), raw luma difference ${raw.toFixed(2)}`);
    expect(r.valid).toBeGreaterThan(0.8);
    expect(r.flicker).toBeLessThan(1.5);
    expect(r.flicker).toBeLessThan(raw / 5);
  });

  it('measures a brightness jump at its size even with motion (flow not fooled by brightness)', () => {
    const Q = addBrightness(shift(P, 1.5, 1), 12);
    const r = frameFlicker(P, Q);
    console.log(`flicker translated + 12 grey levels: ${r.flicker.toFixed(2)} (valid ${(r.valid * 100).toFixed(1)}%)`);
    // Clipping at 255 keeps a few pixels from moving the full 12 levels.
    expect(r.flicker).toBeGreaterThan(10);
    expect(r.flicker).toBeLessThan(13.5);
  });

  it('is large for independent random noise frames', () => {
    const r = frameFlicker(noiseFrame(128, 128, 1), noiseFrame(128, 128, 2));
    console.log(`flicker noise vs noise: ${r.flicker.toFixed(1)} (valid ${(r.valid * 100).toFixed(1)}%)`);
    expect(Number.isFinite(r.flicker)).toBe(true);
    expect(r.flicker).toBeGreaterThan(40);
  });

  it('rejects frames of different sizes with a clear message', () => {
    expect(() => frameFlicker(P, noiseFrame(64, 64, 3))).toThrow(/sizes differ/);
  });

  it('streams a real clip: the accumulator equals per-pair values, and real motion scores low', async () => {
    const info = await probeVideo(path.join(fixturesDir, 'videos', 'astronaut-pan.mp4'));
    const acc = new FlickerAccumulator();
    const frames: RgbFrame[] = [];
    for await (const f of decodeFrames(info, { maxFrames: 8 })) {
      acc.push(f);
      if (frames.length < 2) frames.push({ width: f.width, height: f.height, data: new Uint8Array(f.data) });
    }
    const s = acc.summary();
    const one = frameFlicker(frames[0], frames[1]);
    expect(acc.perFrame).toHaveLength(7);
    expect(acc.perFrame[0].index).toBe(1);
    expect(acc.perFrame[0].flicker).toBeCloseTo(one.flicker, 6);
    const raw = rawLumaDiff(frames[0], frames[1]);
    console.log(`astronaut-pan first 8 frames: flicker mean ${s.mean.toFixed(3)} max ${s.max.toFixed(3)} valid ${(s.validMean * 100).toFixed(1)}%; raw diff frame 1 ${raw.toFixed(2)}`);
    expect(s.frames).toBe(7);
    expect(s.mean).toBeLessThan(2.5);
    expect(s.validMean).toBeGreaterThan(0.8);
    expect(summarizeFlicker([]).frames).toBe(0);
  });
});
