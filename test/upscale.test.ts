import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RgbFrame } from '../src/media/frame.js';
import { loadSession, ort } from '../src/models/session.js';
import { createUpscaleStage, lanczosResize, mirror, planAxis, runTiledFloat, type TileModel } from '../src/stages/upscale/index.js';
import type { FrameItem, RestoreOptions, RunContext } from '../src/stages/types.js';
import { silentLogger } from '../src/util/log.js';
import { resampleFrames } from '../src/media/resample.js';
import { DEFAULT_COLOUR } from '../src/media/colour.js';
import { planesToRgb } from '../src/media/planes.js';
import { affineImageModel, convNetModel, writeModel } from './helpers/tiny-models.js';

const astronaut = path.join(import.meta.dirname, '..', 'fixtures', 'source', 'astronaut.png');

async function loadRgb(file: string, width?: number, height?: number): Promise<RgbFrame> {
  let s = sharp(file).removeAlpha();
  if (width && height) s = s.resize(width, height, { fit: 'fill' });
  const { data, info } = await s.raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data) };
}

function options(backend: string, scale: number): RestoreOptions {
  return {
    input: 'in.mp4', out: 'out.mp4', reportDir: 'r', crf: 18, preset: 'fast', device: 'cpu', backends: { upscale: backend },
    concurrency: 1, thumbnails: 0, json: false, quiet: true, progress: false, scale, backproject: 0,
  };
}

async function runStage(stage: Awaited<ReturnType<typeof createUpscaleStage>>, frame: RgbFrame): Promise<RgbFrame> {
  const ctx = { signal: new AbortController().signal, device: 'cpu', log: silentLogger } as unknown as RunContext;
  async function* src(): AsyncGenerator<FrameItem> {
    yield { index: 0, time: 0, frame, input: frame };
  }
  const out: FrameItem[] = [];
  for await (const it of stage.run(src(), ctx)) out.push(it);
  expect(out).toHaveLength(1);
  return out[0].frame;
}

describe('mirror padding and tile plans', () => {
  it('mirrors (reflect-101) any distance', () => {
    expect([-3, -2, -1, 0, 1, 2, 3, 4, 5, 6].map((i) => mirror(i, 4))).toEqual([3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
    expect(mirror(-7, 3)).toBe(1);
    expect(mirror(5, 1)).toBe(0);
  });
  it('plans equal tiles whose sides are multiples', () => {
    const p = planAxis(100, { tile: 64, overlap: 8, multiple: 8 });
    expect(p.n).toBe(3);
    expect(p.size % 8).toBe(0);
    expect(p.n * p.core).toBeGreaterThanOrEqual(100);
    expect(planAxis(100, { tile: 64, overlap: 8, staticSize: true })).toEqual({ n: 3, core: 48, size: 64 });
  });
});

describe('tiling is seam-free', () => {
  it('tiled == untiled for a fully convolutional x2 model (overlap >= receptive field)', async () => {
    const { bytes, radius } = convNetModel({ layers: 4, scale: 2, seed: 7 });
    const { session } = await loadSession(bytes, { device: 'cpu' });
    const model: TileModel = {
      scale: 2,
      inRange: [0, 1],
      outRange: [0, 1],
      async run(data, h, w) {
        const r = await session.run({ input: new ort.Tensor('float32', data, [1, 3, h, w]) });
        return r.output.data as Float32Array;
      },
    };
    const frame = await loadRgb(astronaut, 70, 53);
    const whole = await runTiledFloat(frame, model, { tile: Infinity, overlap: radius + 1 });
    for (const opts of [
      { tile: 24, overlap: radius + 1 },
      { tile: 32, overlap: radius + 1, multiple: 8 },
      { tile: 30, overlap: radius + 1, staticSize: true },
    ]) {
      const tiled = await runTiledFloat(frame, model, opts);
      expect(tiled.width).toBe(140);
      expect(tiled.height).toBe(106);
      let maxDiff = 0;
      for (let i = 0; i < whole.planes.length; i++) maxDiff = Math.max(maxDiff, Math.abs(whole.planes[i] - tiled.planes[i]));
      // model units ([0,1]) = planes / 255
      expect(maxDiff / 255).toBeLessThan(1e-5);
    }
    // too little overlap does leave seams: the check above can fail
    const thin = await runTiledFloat(frame, model, { tile: 24, overlap: 1 });
    let thinDiff = 0;
    for (let i = 0; i < whole.planes.length; i++) thinDiff = Math.max(thinDiff, Math.abs(whole.planes[i] - thin.planes[i]));
    expect(thinDiff / 255).toBeGreaterThan(1e-3);
  });
});

describe('SR contracts with tiny models', () => {
  let dir: string;
  const prev = process.env.RESTORE_MODELS_DIR;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'restore-sr-'));
    process.env.RESTORE_MODELS_DIR = dir;
    // out[c] = A[c]*nearest(x)[c] + B[c] in [0,1]: channel order and range visible in the result
    writeModel(dir, 'swinir_x4.onnx', affineImageModel({ dims: [1, 3, 'h', 'w'], scale: 4, a: [0.5, 0.25, 1], b: [0.25, 0.5, 0], inputName: 'x' }));
    writeModel(dir, 'real_esrgan_x2.onnx', affineImageModel({ dims: [1, 3, 'h', 'w'], scale: 2, a: [0.5, 0.25, 1], b: [0.25, 0.5, 0] }));
  });
  afterAll(() => {
    if (prev === undefined) delete process.env.RESTORE_MODELS_DIR;
    else process.env.RESTORE_MODELS_DIR = prev;
    rmSync(dir, { recursive: true, force: true });
  });

  for (const [backend, scale] of [['swinir', 4], ['realesrgan', 2]] as const) {
    it(`${backend}: [0,1] RGB in, x${scale}, tiled, [0,1] RGB out`, async () => {
      const frame = await loadRgb(astronaut, 45, 38); // not a multiple of 8: SwinIR pads
      const stage = await createUpscaleStage(options(backend, scale), { device: 'cpu', targetSize: undefined, inputSize: { width: 45, height: 38 } });
      expect(stage.backend).toContain(backend === 'swinir' ? 'swinir_x4' : 'realesrgan_x2');
      const out = await runStage(stage, frame);
      expect([out.width, out.height]).toEqual([45 * scale, 38 * scale]);
      let maxErr = 0;
      for (let y = 0; y < out.height; y++)
        for (let x = 0; x < out.width; x++) {
          const s = (Math.floor(y / scale) * 45 + Math.floor(x / scale)) * 3;
          const o = (y * out.width + x) * 3;
          const exp = [frame.data[s] * 0.5 + 63.75, frame.data[s + 1] * 0.25 + 127.5, frame.data[s + 2]];
          for (let c = 0; c < 3; c++) maxErr = Math.max(maxErr, Math.abs(out.data[o + c] - Math.min(255, exp[c])));
        }
      expect(maxErr).toBeLessThanOrEqual(0.5 + 1e-9);
      const rep = stage.report();
      expect(rep.ran).toBe(true);
      expect(rep.frames).toBe(1);
    });
  }

  it('a static-size SwinIR export is tiled at its own size', async () => {
    writeModel(dir, 'swinir_x4.onnx', affineImageModel({ dims: [1, 3, 48, 48], scale: 4, a: [0.5, 0.25, 1], b: [0.25, 0.5, 0] }));
    const frame = await loadRgb(astronaut, 45, 38);
    const stage = await createUpscaleStage(options('swinir', 4), { device: 'cpu', targetSize: undefined, inputSize: { width: 45, height: 38 } });
    const out = await runStage(stage, frame);
    expect(stage.report().details).toMatchObject({ tile: { tile: 48, overlap: 16, staticSize: true }, tilesPerFrame: 9 });
    let maxErr = 0;
    for (let y = 0; y < out.height; y++)
      for (let x = 0; x < out.width; x++) {
        const s = (Math.floor(y / 4) * 45 + Math.floor(x / 4)) * 3;
        const o = (y * out.width + x) * 3;
        maxErr = Math.max(maxErr, Math.abs(out.data[o] - (frame.data[s] * 0.5 + 63.75)), Math.abs(out.data[o + 2] - frame.data[s + 2]));
      }
    expect(maxErr).toBeLessThanOrEqual(0.5 + 1e-9);
    writeModel(dir, 'swinir_x4.onnx', affineImageModel({ dims: [1, 3, 'h', 'w'], scale: 4, a: [0.5, 0.25, 1], b: [0.25, 0.5, 0], inputName: 'x' }));
  });

  it('resizes to an exact non-multiple target with Lanczos after the model', async () => {
    const frame = await loadRgb(astronaut, 40, 40);
    const stage = await createUpscaleStage(options('realesrgan', 2), { device: 'cpu', targetSize: { width: 100, height: 70 }, inputSize: { width: 40, height: 40 } });
    const out = await runStage(stage, frame);
    expect([out.width, out.height]).toEqual([100, 70]);
  });

  it('refuses a Real-ESRGAN file with the wrong input name or channel count, naming the mismatch', async () => {
    writeModel(dir, 'real_esrgan_x4.onnx', affineImageModel({ dims: [1, 3, 'h', 'w'], scale: 4, a: [1, 1, 1], b: [0, 0, 0], inputName: 'image' }));
    await expect(createUpscaleStage(options('realesrgan', 4), { device: 'cpu', targetSize: undefined, inputSize: { width: 8, height: 8 } })).rejects.toThrow(
      /real_esrgan_x4\.onnx\) does not match its contract: no input named 'input'.*file's inputs are 'image'/,
    );
    writeModel(dir, 'real_esrgan_x4.onnx', affineImageModel({ dims: [1, 1, 'h', 'w'], scale: 4, a: [1, 1, 1], b: [0, 0, 0], outDims: [1, 3, 'a', 'b'] }));
    await expect(createUpscaleStage(options('realesrgan', 4), { device: 'cpu', targetSize: undefined, inputSize: { width: 8, height: 8 } })).rejects.toThrow(
      /input 'input' \(image\) has shape \[1,1,h,w\], the contract needs \[1,3,h,w\]/,
    );
  });

  it("lanczos backend is ffmpeg's own scaler; no scale means skipped", async () => {
    const frame = await loadRgb(astronaut, 32, 32);
    const stage = await createUpscaleStage(options('lanczos', 3), { device: 'cpu', targetSize: undefined, inputSize: { width: 32, height: 32 } });
    expect(stage.backend).toBe('lanczos');
    const out = await runStage(stage, frame);
    // Same filter chain as the stage, frame by frame: what ffmpeg's scaler gives in the source's YUV.
    const [planes] = await resampleFrames([frame], { from: { width: 32, height: 32 }, to: { width: 96, height: 96 }, flags: 'lanczos', colour: DEFAULT_COLOUR });
    const ref = planesToRgb(planes, DEFAULT_COLOUR);
    expect(Buffer.compare(Buffer.from(out.data), Buffer.from(ref.data))).toBe(0);
    // and not sharp's RGB Lanczos, which the stage used before
    expect(Buffer.compare(Buffer.from(out.data), Buffer.from((await lanczosResize(frame, 96, 96)).data))).not.toBe(0);
    expect(stage.report().details).toMatchObject({ fallback: true });
    const none = await createUpscaleStage({ ...options('auto', 1), scale: undefined }, { device: 'cpu', targetSize: undefined, inputSize: { width: 32, height: 32 } });
    expect(none.report()).toMatchObject({ ran: false, backend: 'none', reason: 'no --scale or --size given' });
  });
});

describe('--quality presets', () => {
  it('fast is plain ffmpeg Lanczos, default keeps auto, best picks the embedded RRDN; a named backend wins', async () => {
    const { backendForQuality, chooseUpscaleBackend } = await import('../src/stages/upscale/index.js');
    expect(backendForQuality('auto', 'fast')).toBe('lanczos');
    expect(backendForQuality('auto', 'default')).toBe('auto');
    expect(backendForQuality('auto', undefined)).toBe('auto');
    expect(backendForQuality('rdn', 'best')).toBe('rdn');
    expect(() => backendForQuality('auto', 'ultra')).toThrow(/unknown --quality 'ultra'/);
    const best = await chooseUpscaleBackend(backendForQuality('auto', 'best'), 4);
    expect(best.entry?.family).toBe('rrdn');
    expect(best.entry?.name).toBe('rrdn_thick_x4');
    const fast = await createUpscaleStage({ ...options('auto', 2), backproject: undefined, quality: 'fast' }, { device: 'cpu', targetSize: undefined, inputSize: { width: 32, height: 32 } });
    expect(fast.backend).toBe('lanczos');
  });
});
