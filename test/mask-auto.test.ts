/** `--mask auto` against the mask videos `restore degrade` wrote, on undamaged clips, and the stage's own masks. */
import { afterAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { decodeFrames } from '../src/media/decode.js';
import { probeVideo } from '../src/media/probe.js';
import type { RgbFrame } from '../src/media/frame.js';
import { fixturesDir } from '../src/util/paths.js';
import { autoMaskSequence, detectPaintedMask, maskAgreement } from '../src/stages/inpaint/auto.js';
import sharp from 'sharp';
import { binarizeMask, maskFromFrame } from '../src/stages/inpaint/mask.js';
import { paintClip, scoreAutoMask } from '../src/eval/mask-auto.js';
import { defaultOptions, runRestore } from '../src/pipeline/run.js';
import { silentLogger } from '../src/util/log.js';
import { tempDir } from './helpers/media.js';

const tmp = tempDir('mask-auto-');
afterAll(() => tmp.cleanup());

async function readAll(file: string, opts: Parameters<typeof decodeFrames>[1] = {}): Promise<RgbFrame[]> {
  const out: RgbFrame[] = [];
  for await (const f of decodeFrames(await probeVideo(file), opts)) out.push({ width: f.width, height: f.height, data: f.data });
  return out;
}
/** The stage's default auto-mask window: 16 frames each side. */
const R = 16;
const windowOf = (frames: RgbFrame[], t: number) => {
  const lo = Math.max(0, t - R), hi = Math.min(frames.length, t + R + 1);
  return { win: frames.slice(lo, hi), at: t - lo };
};

describe('automatic painted-region detection', () => {
  for (const name of ['pan-x4', 'turn-x4']) {
    it(`${name}: finds >= 90% of painted pixels with < 2% false positives`, async () => {
      const dir = path.join(fixturesDir, 'videos', 'cases', name);
      const input = await readAll(path.join(dir, 'input.mp4'));
      const truth = (await readAll(path.join(dir, 'mask.mp4'))).map((f) => binarizeMask(maskFromFrame(f)));
      let rec = 0, fp = 0, prec = 0;
      for (let t = 0; t < input.length; t++) {
        const { win, at } = windowOf(input, t);
        const a = maskAgreement(detectPaintedMask(win, at), truth[t]);
        rec += a.recall; fp += a.falsePositive; prec += a.precision;
      }
      rec /= input.length; fp /= input.length; prec /= input.length;
      console.log(`auto mask ${name}: recall ${(rec * 100).toFixed(1)}%, false positives ${(fp * 100).toFixed(2)}% of unpainted pixels, precision ${(prec * 100).toFixed(1)}%`);
      expect(rec).toBeGreaterThanOrEqual(0.9);
      expect(fp).toBeLessThan(0.02);
    });
  }
  for (const clip of ['astronaut-pan.mp4', 'astronaut-turn.mp4']) {
    it(`${clip} (undamaged, 96x96): flags nothing`, async () => {
      const frames = await readAll(path.join(fixturesDir, 'videos', clip), { size: { width: 96, height: 96 }, scaleFlags: 'area' });
      let flagged = 0;
      for (let t = 0; t < frames.length; t++) {
        const { win, at } = windowOf(frames, t);
        const m = detectPaintedMask(win, at);
        for (const v of m.data) if (v >= 128) flagged++;
      }
      const share = flagged / (frames.length * 96 * 96);
      console.log(`auto mask on undamaged ${clip}: ${(share * 100).toFixed(3)}% of pixels flagged`);
      expect(share).toBe(0);
    });
  }
  // The fixture clips as they are (384x384) and the clean references of the fixture cases, as
  // the stage sees them (each frame united with its neighbours): not one pixel flagged.
  const fixtureClips = ['astronaut-pan.mp4', 'astronaut-turn.mp4', ...['pan-x4', 'pan-swap-x4', 'turn-x4'].map((c) => path.join('cases', c, 'reference.mp4'))];
  it(`the fixture clips and the cases' references at 384x384 (${fixtureClips.length} clips, 12 frames each): 0.0% flagged`, async () => {
    for (const clip of fixtureClips) {
      const frames = await readAll(path.join(fixturesDir, 'videos', clip), { maxFrames: 12 });
      let flagged = 0;
      for (const m of autoMaskSequence(frames, R)) for (const v of m.data) if (v >= 128) flagged++;
      console.log(`auto mask on ${clip}: ${flagged} px flagged`);
      expect(flagged).toBe(0);
    }
  });

  it('the stage writes the masks autoMaskSequence makes (moving boxes over a fixture clip, x4, crf 12)', async () => {
    const dir = tmp.dir;
    const p = await paintClip(path.join(fixturesDir, 'videos', 'astronaut-turn.mp4'), path.join(dir, 'case'), { frames: 20, colour: 'black', moving: true });
    const input = await readAll(p.input);
    const expected = autoMaskSequence(input, R);
    const reportDir = path.join(dir, 'report');
    await runRestore(
      defaultOptions({ input: p.input, out: path.join(dir, 'out.mp4'), reportDir, mask: 'auto', backends: { inpaint: 'harmonic', upscale: 'none', faces: 'none' }, thumbnails: 0, quiet: true, progress: false }),
      { log: silentLogger },
    );
    const written = (await readAll(path.join(reportDir, 'mask.mp4'))).map((f) => binarizeMask(maskFromFrame(f)));
    expect(written).toHaveLength(expected.length);
    let differ = 0, holes = 0;
    written.forEach((m, t) => m.data.forEach((v, i) => { if (v !== expected[t].data[i]) differ++; if (v) holes++; }));
    const truth = scoreAutoMask(input, p);
    console.log(`stage mask vs autoMaskSequence: ${differ} of ${holes} hole px differ; recall ${(truth.recall * 100).toFixed(2)}%, false positives ${(truth.falsePositive * 100).toFixed(3)}%`);
    expect(differ).toBeLessThanOrEqual(0.002 * holes);
    expect(truth.recall).toBeGreaterThanOrEqual(0.9);
  });

  it('a flat wall that moves with the content is not flagged; the same patch as a static overlay is', async () => {
    const S = 160;
    const { data } = await sharp(path.join(fixturesDir, 'source', 'astronaut.png')).resize(S, S).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    // A plain grey "wall" painted into the scene itself.
    const scene = new Uint8Array(data);
    for (let y = 20; y < 50; y++) for (let x = 100; x < 140; x++) scene.set([128, 128, 128], 3 * (y * S + x));
    const W = 96;
    const frames: RgbFrame[] = [];
    const overlaid: RgbFrame[] = [];
    for (let k = 0; k < 25; k++) {
      const ox = 20 + k, oy = 10 + Math.round(k / 2); // the camera pans: the scene (and the wall) moves
      const f = new Uint8Array(W * W * 3);
      for (let y = 0; y < W; y++) f.set(scene.subarray(3 * ((y + oy) * S + ox), 3 * ((y + oy) * S + ox + W)), 3 * y * W);
      frames.push({ width: W, height: W, data: f });
      const g = new Uint8Array(f);
      for (let y = 60; y < 75; y++) for (let x = 10; x < 30; x++) g.set([128, 128, 128], 3 * (y * W + x)); // static overlay, same grey
      overlaid.push({ width: W, height: W, data: g });
    }
    let wall = 0, overlay = 0, overlayTruth = 0, elsewhere = 0;
    for (let t = 0; t < 25; t++) {
      const { win, at } = windowOf(frames, t);
      for (const v of detectPaintedMask(win, at).data) if (v >= 128) wall++;
      const o = windowOf(overlaid, t);
      const m = detectPaintedMask(o.win, o.at);
      for (let y = 0; y < W; y++) for (let x = 0; x < W; x++) {
        const inside = y >= 60 && y < 75 && x >= 10 && x < 30;
        if (inside) overlayTruth++;
        if (m.data[y * W + x] >= 128) inside ? overlay++ : elsewhere++;
      }
    }
    console.log(`moving wall: ${wall} px flagged over 25 frames; static overlay: ${(overlay / overlayTruth * 100).toFixed(1)}% found, ${elsewhere} px elsewhere`);
    expect(wall).toBe(0);
    expect(overlay / overlayTruth).toBeGreaterThan(0.95);
    expect(elsewhere).toBeLessThan(25 * 20);
  });
});
