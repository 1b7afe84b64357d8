/**
 * The embedded RRDN models (@upscalerjs/esrgan-thick, TF.js layers with the custom MultiplyBeta
 * and PixelShuffleNx layers): converted on first use, keyed by the pinned source hash; the
 * project's conversion reproduces the package's own published sample at every scale; tiling
 * through the stage's tiler matches an untiled run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RgbFrame } from '../src/media/frame.js';
import { getEntry } from '../src/models/manifest.js';
import { ensureModelFile, modelPath, openModel, packageDir, sourceHash } from '../src/models/registry.js';
import { stageModule } from '../src/stages/index.js';
import { acceptedNames } from '../src/stages/module.js';
import { chooseUpscaleBackend, runTiledFloat, tileModelOf } from '../src/stages/upscale/index.js';

const pkg = packageDir('@upscalerjs/esrgan-thick')!;

async function loadRgb(file: string): Promise<RgbFrame> {
  const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data) };
}

let dir: string;
const prev = process.env.RESTORE_MODELS_DIR;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'restore-rrdn-'));
  process.env.RESTORE_MODELS_DIR = dir;
});
afterAll(() => {
  if (prev === undefined) delete process.env.RESTORE_MODELS_DIR;
  else process.env.RESTORE_MODELS_DIR = prev;
  rmSync(dir, { recursive: true, force: true });
});

describe('embedded RRDN (esrgan-thick)', () => {
  it('converts on first use, keyed by the pinned source hash', async () => {
    const e = getEntry('rrdn_thick_x4');
    expect(e.family).toBe('rrdn');
    const h = sourceHash(e)!;
    expect(h).toBe((e.source as { sha256: string }).sha256);
    const p = await ensureModelFile(e);
    expect(p).toBe(modelPath(e));
    expect(path.basename(p)).toBe(`rrdn_thick_x4.${h.slice(0, 12)}.onnx`);
  });

  for (const s of [2, 3, 4, 8]) {
    it(`x${s} reproduces the package's own published sample (TF.js output)`, async () => {
      const e = getEntry(`rrdn_thick_x${s}`);
      expect(sourceHash(e)).toBe((e.source as { sha256: string }).sha256);
      const m = await openModel(e, { device: 'cpu' });
      const input = await loadRgb(path.join(pkg, 'assets', 'fixture.png'));
      const sample = await loadRgb(path.join(pkg, 'assets', 'samples', `${s}x`, 'result.png'));
      expect(sample.width).toBe(128 * s);
      const up = await runTiledFloat(input, tileModelOf(m), { tile: Infinity, overlap: 0 });
      const n = up.width * up.height;
      let se = 0;
      let maxd = 0;
      for (let i = 0; i < n; i++)
        for (let c = 0; c < 3; c++) {
          const v = Math.min(255, Math.max(0, Math.round(up.planes[c * n + i])));
          const d = v - sample.data[i * 3 + c];
          se += d * d;
          maxd = Math.max(maxd, Math.abs(d));
        }
      const psnr = se === 0 ? Infinity : 10 * Math.log10((255 * 255) / (se / (3 * n)));
      console.log(`rrdn_thick_x${s} vs package sample: PSNR ${psnr.toFixed(2)} dB, max |diff| ${maxd} grey levels`);
      // rounding differences only (TF.js WebGL/CPU vs ONNX Runtime float order)
      expect(maxd).toBeLessThanOrEqual(1);
      expect(psnr).toBeGreaterThan(60);
    });
  }

  it('tiled x4 matches untiled within one grey level (manifest overlap)', async () => {
    const m = await openModel('rrdn_thick_x4', { device: 'cpu' });
    const tm = tileModelOf(m);
    const full = await loadRgb(path.join(pkg, 'assets', 'fixture.png'));
    const crop: RgbFrame = { width: 64, height: 64, data: new Uint8Array(64 * 64 * 3) };
    for (let y = 0; y < 64; y++) crop.data.set(full.data.subarray(y * 128 * 3, y * 128 * 3 + 64 * 3), y * 64 * 3);
    const overlap = m.entry.contract.tiling!.overlap;
    const whole = await runTiledFloat(crop, tm, { tile: Infinity, overlap });
    const tiled = await runTiledFloat(crop, tm, { tile: 24 + 2 * overlap, overlap });
    let maxFloat = 0;
    let maxRounded = 0;
    for (let i = 0; i < whole.planes.length; i++) {
      const a = Math.min(255, Math.max(0, whole.planes[i]));
      const b = Math.min(255, Math.max(0, tiled.planes[i]));
      maxFloat = Math.max(maxFloat, Math.abs(a - b));
      maxRounded = Math.max(maxRounded, Math.abs(Math.round(a) - Math.round(b)));
    }
    console.log(`rrdn tiled (tile ${24 + 2 * overlap}, overlap ${overlap}) vs untiled: max |diff| ${maxFloat.toFixed(4)} (0-255), ${maxRounded} after rounding`);
    expect(maxRounded).toBeLessThanOrEqual(1);
  });

  it("the stage opens it by family name ('rrdn' backend)", async () => {
    const c = await chooseUpscaleBackend('rrdn', 4);
    expect(c.entry?.name).toBe('rrdn_thick_x4');
    expect((await chooseUpscaleBackend('rrdn', 3)).entry?.name).toBe('rrdn_thick_x3');
    // run validation (the backends table) accepts the family and the model names too
    const accepted = acceptedNames(stageModule('upscale').choices());
    expect(accepted).toEqual(expect.arrayContaining(['rrdn', 'rrdn_thick_x2', 'realesrgan-compact', 'realesrgan_x4plus_ncnn']));
    await expect(chooseUpscaleBackend('rrdn-nonsense', 4)).rejects.toThrow(/unknown upscale backend 'rrdn-nonsense'.*/);
  });
});
