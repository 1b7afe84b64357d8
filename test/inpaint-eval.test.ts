/**
 * Inpainting quality on the degraded fixtures: mean PSNR/SSIM inside the painted region and
 * over the whole frame, against the clean reference downscaled with the filter the degrade
 * used (case.json scaleFilter), for no fill, harmonic, spatial and the temporal-spatial builtin.
 */
import { describe, expect, it, beforeAll } from 'vitest';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { decodeFrames } from '../src/media/decode.js';
import { probeVideo } from '../src/media/probe.js';
import type { Mask, RgbFrame } from '../src/media/frame.js';
import { fixturesDir } from '../src/models/paths.js';
import { maskedMetrics, MaskedMetricsMean } from '../src/stages/inpaint/eval.js';
import { harmonicFill } from '../src/stages/inpaint/harmonic.js';
import { spatialFill } from '../src/stages/inpaint/patchmatch.js';
import { FlowCache, prepareWindowFrame, temporalFill } from '../src/stages/inpaint/temporal.js';
import { binarizeMask, maskFromFrame } from '../src/stages/inpaint/mask.js';

interface Case { name: string; input: RgbFrame[]; mask: Mask[]; ref: RgbFrame[] }

async function readAll(file: string, opts: Parameters<typeof decodeFrames>[1] = {}): Promise<RgbFrame[]> {
  const info = await probeVideo(file);
  const out: RgbFrame[] = [];
  for await (const f of decodeFrames(info, opts)) out.push({ width: f.width, height: f.height, data: f.data });
  return out;
}

export async function loadCase(name: string): Promise<Case> {
  const dir = path.join(fixturesDir, 'videos', 'cases', name);
  const info = JSON.parse(await fs.readFile(path.join(dir, 'case.json'), 'utf8'));
  const input = await readAll(path.join(dir, info.files.input));
  const mask = (await readAll(path.join(dir, info.files.mask))).map((f) => binarizeMask(maskFromFrame(f)));
  const ref = await readAll(path.join(dir, info.files.reference), { size: info.size, scaleFlags: info.scaleFilter });
  return { name, input, mask, ref };
}

type Method = 'none' | 'harmonic' | 'spatial' | 'builtin';
function evaluate(c: Case, method: Method): { psnr: number; ssim: number; psnrFrame: number; ssimFrame: number; frames: number; ms: number; temporalShare?: number } {
  const mean = new MaskedMetricsMean();
  const fm = c.mask;
  const t0 = performance.now();
  let outs: RgbFrame[];
  let temporalShare: number | undefined;
  if (method === 'none') outs = c.input;
  else if (method === 'harmonic') outs = c.input.map((f, i) => harmonicFill(f, fm[i]));
  else if (method === 'spatial') outs = c.input.map((f, i) => spatialFill(f, fm[i]));
  else {
    const wf = c.input.map((f, i) => prepareWindowFrame(i, f, fm[i]));
    const cache = new FlowCache(undefined);
    let tmp = 0, all = 0;
    outs = wf.map((t, i) => {
      // The stage's default window: 30 frames each side.
      const r = temporalFill(t, wf.slice(Math.max(0, i - 30), i + 31), cache, { radius: 30 });
      tmp += r.temporal;
      all += r.holePixels;
      cache.keep(i - 30, i + 30);
      return r.frame;
    });
    temporalShare = tmp / all;
  }
  const ms = (performance.now() - t0) / c.input.length;
  outs.forEach((o, i) => mean.add(maskedMetrics(o, c.ref[i], c.mask[i])));
  return { ...mean.mean(), ms, temporalShare };
}

/** Pinned means (mask PSNR dB, mask SSIM, frame PSNR dB, frame SSIM), measured when written. */
const PINNED: Record<string, Record<Method, [number, number, number, number]>> = {
  'pan-x4': {
    none: [4.04, 0.0694, 16.92, 0.8955],
    harmonic: [14.96, 0.4149, 27.34, 0.9474],
    spatial: [14.98, 0.4216, 27.36, 0.9485],
    builtin: [22.66, 0.8416, 33.08, 0.9788],
  },
  'turn-x4': {
    none: [4.81, 0.2326, 17.48, 0.902],
    harmonic: [16.7, 0.5783, 28.53, 0.9551],
    spatial: [17.24, 0.5662, 28.96, 0.9539],
    builtin: [18.91, 0.6664, 30.23, 0.963],
  },
};

describe('inpainting quality on the degraded fixtures', () => {
  const cases: Record<string, Case> = {};
  beforeAll(async () => {
    for (const n of ['pan-x4', 'turn-x4']) cases[n] = await loadCase(n);
  });
  for (const name of ['pan-x4', 'turn-x4']) {
    it(`${name}: no fill < harmonic <= spatial < temporal-spatial builtin; numbers pinned`, () => {
      const c = cases[name];
      const r = {} as Record<Method, ReturnType<typeof evaluate>>;
      for (const m of ['none', 'harmonic', 'spatial', 'builtin'] as Method[]) {
        r[m] = evaluate(c, m);
        console.log(`${name} ${m}: mask PSNR ${r[m].psnr.toFixed(2)} SSIM ${r[m].ssim.toFixed(4)} | frame PSNR ${r[m].psnrFrame.toFixed(2)} SSIM ${r[m].ssimFrame.toFixed(4)} | ${r[m].ms.toFixed(1)} ms/frame${r[m].temporalShare !== undefined ? ` | temporal ${(r[m].temporalShare! * 100).toFixed(1)}%` : ''}`);
        const [p, s, pf, sf] = PINNED[name][m];
        expect(r[m].psnr).toBeCloseTo(p, 0); // within 0.5 dB
        expect(Math.abs(r[m].ssim - s)).toBeLessThan(0.015);
        expect(Math.abs(r[m].psnrFrame - pf)).toBeLessThan(0.5);
        expect(Math.abs(r[m].ssimFrame - sf)).toBeLessThan(0.005);
        expect(r[m].frames).toBe(48);
      }
      expect(r.harmonic.psnr).toBeGreaterThan(r.none.psnr + 8);
      expect(r.spatial.psnr).toBeGreaterThanOrEqual(r.harmonic.psnr - 0.1);
      // Clips with motion: the temporal-spatial builtin beats the spatial-only fill.
      expect(r.builtin.psnr).toBeGreaterThan(r.spatial.psnr + 1.5);
      expect(r.builtin.ssim).toBeGreaterThan(r.spatial.ssim + 0.05);
      expect(r.builtin.psnrFrame).toBeGreaterThan(r.spatial.psnrFrame + 1);
    });
  }
});
