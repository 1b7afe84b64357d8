/**
 * The embedded RDN backend: the project's TF.js → ONNX conversion reproduces the package's own
 * published x4 sample, and on the degraded fixture RDN beats Lanczos in PSNR and SSIM.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeFrames } from '../src/media/decode.js';
import type { RgbFrame } from '../src/media/frame.js';
import { probeVideo } from '../src/media/probe.js';
import { frameMetrics } from '../src/metrics/frame.js';
import { getEntry } from '../src/models/manifest.js';
import { ensureModelFile, modelPath, openModel, packageDir, sourceHash } from '../src/models/registry.js';
import { chooseUpscaleBackend, createUpscaler, runTiledFloat, tileModelOf } from '../src/stages/upscale/index.js';

const pkg = packageDir('@upscalerjs/esrgan-medium')!;
const fixtures = path.join(import.meta.dirname, '..', 'fixtures', 'videos', 'cases');

async function loadRgb(file: string): Promise<RgbFrame> {
  const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data) };
}

async function firstFrames(file: string, n: number): Promise<RgbFrame[]> {
  const info = await probeVideo(file);
  const out: RgbFrame[] = [];
  for await (const f of decodeFrames(info, { maxFrames: n })) out.push({ width: f.width, height: f.height, data: new Uint8Array(f.data) });
  return out;
}

let dir: string;
const prev = process.env.RESTORE_MODELS_DIR;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'restore-rdn-'));
  process.env.RESTORE_MODELS_DIR = dir;
});
afterAll(() => {
  if (prev === undefined) delete process.env.RESTORE_MODELS_DIR;
  else process.env.RESTORE_MODELS_DIR = prev;
  rmSync(dir, { recursive: true, force: true });
});

describe('embedded RDN (esrgan-medium x4)', () => {
  it('converts on first use into modelsDir(), keyed by the source hash', async () => {
    const e = getEntry('rdn_medium_x4');
    const h = sourceHash(e)!;
    // the manifest pins the hash of the npm weights it was written against
    expect(h).toBe((e.source as { sha256: string }).sha256);
    const p = await ensureModelFile(e);
    expect(p).toBe(modelPath(e));
    expect(path.basename(p)).toBe(`rdn_medium_x4.${h.slice(0, 12)}.onnx`);
    expect(path.dirname(p)).toBe(dir);
  });

  it("reproduces the package's own x4 sample (TF.js output) from its fixture", async () => {
    const m = await openModel('rdn_medium_x4', { device: 'cpu' });
    expect(m.inputs.image.name).toBe('input');
    const input = await loadRgb(path.join(pkg, 'assets', 'fixture.png'));
    const sample = await loadRgb(path.join(pkg, 'assets', 'samples', '4x', 'result.png'));
    expect([input.width, sample.width]).toEqual([128, 512]);
    const t0 = performance.now();
    const up = await runTiledFloat(input, tileModelOf(m), { tile: Infinity, overlap: 0 });
    const ms = performance.now() - t0;
    const n = 512 * 512;
    let se = 0;
    let maxd = 0;
    for (let i = 0; i < n; i++)
      for (let c = 0; c < 3; c++) {
        const v = Math.min(255, Math.max(0, Math.round(up.planes[c * n + i])));
        const d = v - sample.data[i * 3 + c];
        se += d * d;
        maxd = Math.max(maxd, Math.abs(d));
      }
    const psnr = 10 * Math.log10((255 * 255) / (se / (3 * n)));
    console.log(`rdn_medium_x4 vs package sample: PSNR ${psnr.toFixed(2)} dB, max |diff| ${maxd}, 128x128 untiled ${ms.toFixed(0)} ms`);
    expect(psnr).toBeGreaterThan(45);
  });

  it('tiled RDN matches untiled within one grey level (manifest overlap)', async () => {
    const m = await openModel('rdn_medium_x4', { device: 'cpu' });
    const tm = tileModelOf(m);
    const full = await loadRgb(path.join(pkg, 'assets', 'fixture.png'));
    // a 64x64 corner keeps this cheap: 9 tiles of 48 px
    const crop: RgbFrame = { width: 64, height: 64, data: new Uint8Array(64 * 64 * 3) };
    for (let y = 0; y < 64; y++) crop.data.set(full.data.subarray(y * 128 * 3, y * 128 * 3 + 64 * 3), y * 64 * 3);
    const overlap = m.entry.contract.tiling!.overlap;
    const whole = await runTiledFloat(crop, tm, { tile: Infinity, overlap });
    const t0 = performance.now();
    const tiled = await runTiledFloat(crop, tm, { tile: 24 + 2 * overlap, overlap });
    const ms = performance.now() - t0;
    let maxRounded = 0;
    let maxFloat = 0;
    for (let i = 0; i < whole.planes.length; i++) {
      const a = Math.min(255, Math.max(0, whole.planes[i]));
      const b = Math.min(255, Math.max(0, tiled.planes[i]));
      maxFloat = Math.max(maxFloat, Math.abs(a - b));
      maxRounded = Math.max(maxRounded, Math.abs(Math.round(a) - Math.round(b)));
    }
    console.log(`rdn tiled (tile ${24 + 2 * overlap}, overlap ${overlap}) vs untiled: max |diff| ${maxFloat.toFixed(4)} (float, 0-255), ${maxRounded} after rounding; ${ms.toFixed(0)} ms`);
    expect(maxRounded).toBeLessThanOrEqual(1);
  });

  it('beats Lanczos in mean PSNR and SSIM on the degraded x4 fixture (pinned)', async () => {
    const results: Record<string, { psnr: number; ssim: number; msPerFrame: number }> = {};
    const N = 3;
    for (const backend of ['rdn', 'lanczos']) {
      const choice = await chooseUpscaleBackend(backend, 4);
      const up = await createUpscaler(choice, { width: 384, height: 384 }, { device: 'cpu' });
      let psnr = 0;
      let ssim = 0;
      let ms = 0;
      let frames = 0;
      for (const c of ['pan-x4', 'turn-x4']) {
        const inputs = await firstFrames(path.join(fixtures, c, 'input.mp4'), N);
        const refs = await firstFrames(path.join(fixtures, c, 'reference.mp4'), N);
        const masks = await firstFrames(path.join(fixtures, c, 'mask.mp4'), N);
        for (let i = 0; i < N; i++) {
          const t0 = performance.now();
          const out = await up.upscale(inputs[i]);
          ms += performance.now() - t0;
          // painted-over pixels are the inpainting stage's job: score SR outside them
          const m = frameMetrics(withHolesFrom(out, refs[i], masks[i]), refs[i], i);
          psnr += m.psnrRgb;
          ssim += m.ssimY;
          frames++;
        }
      }
      results[backend] = { psnr: psnr / frames, ssim: ssim / frames, msPerFrame: ms / frames };
    }
    console.log('degraded fixture (pan-x4 + turn-x4, first 3 frames each, 96->384):', JSON.stringify(results));
    expect(results.rdn.psnr).toBeGreaterThan(results.lanczos.psnr);
    expect(results.rdn.ssim).toBeGreaterThan(results.lanczos.ssim);
    // regression pins (RGB PSNR dB, luma Gaussian SSIM)
    expect(results.rdn.psnr).toBeCloseTo(PIN.rdn.psnr, 1);
    expect(results.lanczos.psnr).toBeCloseTo(PIN.lanczos.psnr, 1);
    expect(results.rdn.ssim).toBeCloseTo(PIN.rdn.ssim, 2);
    expect(results.lanczos.ssim).toBeCloseTo(PIN.lanczos.ssim, 2);
  });
});

/**
 * `out` with the pixels under the (96x96, white = painted) mask, dilated by 2 low-res pixels
 * and scaled to the output size, replaced by the reference: both backends are then scored only
 * where the input showed the real picture.
 */
function withHolesFrom(out: RgbFrame, ref: RgbFrame, mask: RgbFrame): RgbFrame {
  const s = out.width / mask.width;
  const r = 2;
  const hole = new Uint8Array(mask.width * mask.height);
  for (let y = 0; y < mask.height; y++)
    for (let x = 0; x < mask.width; x++) {
      if (mask.data[(y * mask.width + x) * 3] < 128) continue;
      for (let dy = -r; dy <= r; dy++)
        for (let dx = -r; dx <= r; dx++) {
          const yy = y + dy, xx = x + dx;
          if (yy >= 0 && xx >= 0 && yy < mask.height && xx < mask.width) hole[yy * mask.width + xx] = 1;
        }
    }
  const data = new Uint8Array(out.data);
  for (let y = 0; y < out.height; y++)
    for (let x = 0; x < out.width; x++) {
      if (!hole[Math.floor(y / s) * mask.width + Math.floor(x / s)]) continue;
      const o = (y * out.width + x) * 3;
      data[o] = ref.data[o];
      data[o + 1] = ref.data[o + 1];
      data[o + 2] = ref.data[o + 2];
    }
  return { width: out.width, height: out.height, data };
}

const PIN = { rdn: { psnr: 29.747, ssim: 0.8935 }, lanczos: { psnr: 28.915, ssim: 0.8907 } };
