/**
 * More degraded cases made by `restore degrade` (degradeClip) with other mask seeds and shape
 * counts (sizes), on both clean fixtures: the temporal-spatial builtin must beat the
 * spatial-only fill on every clip with motion, and every fill must beat no fill.
 */
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { degradeClip } from '../src/pipeline/degrade.js';
import { fixturesDir } from '../src/util/paths.js';
import { loadCase, scoreCase, type EvalMethod } from '../src/stages/inpaint/eval.js';

const CASES = [
  { clean: 'astronaut-pan.mp4', seed: 7, shapes: 2 },
  { clean: 'astronaut-pan.mp4', seed: 11, shapes: 5 },
  { clean: 'astronaut-turn.mp4', seed: 5, shapes: 4 },
];

describe('inpainting over several mask seeds and sizes', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inpaint-seeds-'));
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });
  for (const c of CASES) {
    it(`${c.clean} seed ${c.seed}, ${c.shapes} shapes: builtin > spatial, every fill > none`, async () => {
      const out = path.join(dir, `${c.clean}-${c.seed}`);
      const info = await degradeClip({ clean: path.join(fixturesDir, 'videos', c.clean), outDir: out, scale: 4, maskSeed: c.seed, shapes: c.shapes });
      const lc = await loadCase(out);
      const r = {} as Record<EvalMethod, ReturnType<typeof scoreCase>>;
      for (const m of ['none', 'harmonic', 'spatial', 'builtin'] as EvalMethod[]) r[m] = scoreCase(lc, m);
      console.log(
        `${c.clean} seed ${c.seed} (${c.shapes} shapes, ${(info.maskCoverage * 100).toFixed(1)}% painted): ` +
          (['none', 'harmonic', 'spatial', 'builtin'] as EvalMethod[]).map((m) => `${m} ${r[m].psnr.toFixed(2)} dB/${r[m].ssim.toFixed(3)} (frame ${r[m].psnrFrame.toFixed(2)}/${r[m].ssimFrame.toFixed(4)})`).join(', ') +
          `, temporal ${(r.builtin.temporalShare! * 100).toFixed(1)}%`,
      );
      expect(r.harmonic.psnr).toBeGreaterThan(r.none.psnr + 5);
      expect(r.spatial.psnr).toBeGreaterThan(r.none.psnr + 5);
      expect(r.builtin.psnr).toBeGreaterThan(r.spatial.psnr + 0.5);
      expect(r.builtin.psnrFrame).toBeGreaterThan(r.spatial.psnrFrame);
      expect(r.builtin.ssim).toBeGreaterThan(r.spatial.ssim);
    });
  }
});
