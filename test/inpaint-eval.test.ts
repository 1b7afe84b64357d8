/**
 * Inpainting quality on the degraded fixtures: mean PSNR/SSIM inside the painted region and
 * over the whole frame, against the clean reference downscaled with the filter the degrade
 * used (case.json scaleFilter), for no fill, harmonic, spatial and the temporal-spatial builtin.
 */
import { describe, expect, it, beforeAll } from 'vitest';
import path from 'node:path';
import { fixturesDir } from '../src/util/paths.js';
import { loadCase, scoreCase, type EvalMethod as Method, type LoadedCase as Case } from '../src/stages/inpaint/eval.js';

/** Pinned means (mask PSNR dB, mask SSIM, frame PSNR dB, frame SSIM), measured when written. */
const PINNED: Record<string, Record<Method, [number, number, number, number]>> = {
  'pan-x4': {
    none: [4.04, 0.0694, 16.92, 0.8955],
    harmonic: [14.96, 0.4149, 27.34, 0.9474],
    spatial: [14.98, 0.4216, 27.36, 0.9485],
    builtin: [22.88, 0.8489, 33.21, 0.9795],
  },
  'turn-x4': {
    none: [4.81, 0.2326, 17.48, 0.902],
    harmonic: [16.7, 0.5783, 28.53, 0.9551],
    spatial: [17.24, 0.5662, 28.96, 0.9539],
    builtin: [18.98, 0.6899, 30.28, 0.965],
  },
};

describe('inpainting quality on the degraded fixtures', () => {
  const cases: Record<string, Case> = {};
  beforeAll(async () => {
    for (const n of ['pan-x4', 'turn-x4']) cases[n] = await loadCase(path.join(fixturesDir, 'videos', 'cases', n));
  });
  for (const name of ['pan-x4', 'turn-x4']) {
    it(`${name}: no fill < harmonic <= spatial < temporal-spatial builtin; numbers pinned`, () => {
      const c = cases[name];
      const r = {} as Record<Method, ReturnType<typeof scoreCase>>;
      for (const m of ['none', 'harmonic', 'spatial', 'builtin'] as Method[]) {
        r[m] = scoreCase(c, m);
        console.log(`${name} ${m}: mask PSNR ${r[m].psnr.toFixed(2)} SSIM ${r[m].ssim.toFixed(4)} | frame PSNR ${r[m].psnrFrame.toFixed(2)} SSIM ${r[m].ssimFrame.toFixed(4)} | ${r[m].msPerFrame.toFixed(1)} ms/frame${r[m].temporalShare !== undefined ? ` | temporal ${(r[m].temporalShare! * 100).toFixed(1)}%` : ''} | hole change ${r[m].holeChange.toFixed(2)} (reference ${r[m].referenceHoleChange.toFixed(2)})`);
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
      // Temporal stability: the hole changes from frame to frame about as much as the reference does.
      const excess = (m: Method) => Math.abs(r[m].holeChange - r[m].referenceHoleChange);
      expect(excess('builtin')).toBeLessThan(excess('spatial'));
      expect(excess('builtin')).toBeLessThan(0.8);
    });
  }
});
