/**
 * The temporal stage behind the real stages that feed it: faces (detect, mesh, track) → swap
 * (embedded mesh backend, astronaut clip turned into Grace Hopper) → temporal. Measures the
 * flicker the swap leaves and what the temporal stage makes of it, with the stand-alone metric.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeFrames } from '../src/media/decode.js';
import type { RgbFrame } from '../src/media/frame.js';
import { probeVideo } from '../src/media/probe.js';
import { FlickerAccumulator } from '../src/metrics/flicker.js';
import { frameMetrics } from '../src/metrics/frame.js';
import { fixturesDir } from '../src/util/paths.js';
import { silentLogger } from '../src/util/log.js';
import type { FrameItem, RestoreOptions, RunContext } from '../src/stages/types.js';
import { createFacesStage } from '../src/stages/faces.js';
import { createSwapStage } from '../src/stages/swap/index.js';
import { createTemporalStage } from '../src/stages/temporal/index.js';

const CLEAN = path.join(fixturesDir, 'videos', 'astronaut-pan.mp4');
const HOPPER = path.join(fixturesDir, 'identities', 'grace-hopper.jpg');
const FRAMES = 12;

describe('temporal stage after faces → mesh swap', () => {
  it('lowers the flicker the swap leaves while keeping the swapped clip (PSNR vs the swap output)', async () => {
    const info = await probeVideo(CLEAN);
    const opts: RestoreOptions = {
      input: CLEAN, out: 'out.mp4', reportDir: '', identity: [HOPPER], crf: 18, preset: 'medium', device: 'cpu',
      backends: { swap: 'mesh', temporal: 'flow' }, concurrency: 1, thumbnails: 0, json: false, quiet: true, progress: false, maxFrames: FRAMES,
    };
    const ctx: RunContext = { signal: new AbortController().signal, device: 'cpu', log: silentLogger, video: info, options: opts, reportDir: '' };
    const faces = await createFacesStage(opts, { device: 'cpu' });
    const swap = await createSwapStage(opts, ctx);
    const temporal = await createTemporalStage(opts, { log: silentLogger });
    expect(swap.backend).toBe('mesh');
    const swapped: RgbFrame[] = [];
    async function* src(): AsyncGenerator<FrameItem> {
      for await (const f of decodeFrames(info, { maxFrames: FRAMES })) yield { index: f.index, time: f.time, frame: f, input: f };
    }
    async function* tap(it: AsyncIterable<FrameItem>): AsyncGenerator<FrameItem> {
      for await (const x of it) {
        swapped.push(x.frame);
        yield x;
      }
    }
    const out: FrameItem[] = [];
    for await (const item of temporal.run(tap(swap.run(faces.run(src(), ctx), ctx)), ctx)) out.push(item);
    expect(out.map((o) => o.index)).toEqual([...Array(FRAMES).keys()]);
    expect(out.every((o) => (o.faces?.length ?? 0) > 0)).toBe(true);

    const accS = new FlickerAccumulator(), accO = new FlickerAccumulator(), accC = new FlickerAccumulator();
    const ps: number[] = [];
    for (let t = 0; t < FRAMES; t++) {
      accC.push(out[t].input);
      accS.push(swapped[t]);
      accO.push(out[t].frame);
      ps.push(frameMetrics(out[t].frame, swapped[t]).psnrRgb);
    }
    const fS = accS.summary().mean, fO = accO.summary().mean, fC = accC.summary().mean;
    const rep = temporal.report();
    const d = rep.details as Record<string, number>;
    console.log(
      `faces → mesh swap → temporal (${FRAMES} frames of astronaut-pan → Hopper): flicker ${fS.toFixed(3)} -> ${fO.toFixed(3)} (clean clip ${fC.toFixed(3)}); ` +
        `PSNR of the output vs the swap output min ${Math.min(...ps).toFixed(2)} mean ${(ps.reduce((a, b) => a + b, 0) / FRAMES).toFixed(2)} dB; ` +
        `smoothed ${(d.smoothedShare * 100).toFixed(1)}% (region ${(d.regionShare * 100).toFixed(1)}%); temporal ${rep.msPerFrame} ms/frame, swap ${swap.report().msPerFrame} ms/frame`,
    );
    expect(rep.frames).toBe(FRAMES);
    expect(d.framesWithRegion).toBe(FRAMES);
    expect(fS).toBeGreaterThan(fC);
    expect(fO).toBeLessThan(0.9 * fS);
    expect(Math.min(...ps)).toBeGreaterThan(38);
    // The identity numbers the swap published survive the temporal stage.
    expect(out[3].values?.idSimAfter).toBeTypeOf('number');
    expect(out[3].values?.flicker).toBeTypeOf('number');
  }, 180_000);
});
