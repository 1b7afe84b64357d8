/**
 * `--mask auto` on footage like the tampered clips: boxes of black, white and a colour painted
 * the way `restore degrade` paints them (flat, static), after a x4 area downscale and x264
 * crf 23; a head that hardly moves (a still fixture frame with sensor-like noise); and the
 * undamaged clips, where nothing may be flagged. The real talking-face clips are used when
 * ../shared/data/real-clips exists.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { decodeFrames } from '../src/media/decode.js';
import { VideoEncoder } from '../src/media/encode.js';
import { probeVideo } from '../src/media/probe.js';
import type { Mask, RgbFrame } from '../src/media/frame.js';
import { fixturesDir } from '../src/util/paths.js';
import { rasterizeShapes, seededRandom, type PaintShape } from '../src/pipeline/degrade.js';
import { detectPaintedMask, maskAgreement } from '../src/stages/inpaint/auto.js';
import { autoMaskSummary } from '../src/stages/inpaint/index.js';
import { tempDir } from './helpers/media.js';
import { FaceAnalyzer } from '../src/faces/analyzer.js';
import { PAINT_COLOURS, paintClip, scoreAutoMask } from '../src/eval/mask-auto.js';
import { HELDOUT_PANS, makePanClip } from '../src/eval/heldout.js';

const tmp = tempDir('mask-auto-real-');
const realDir = path.resolve(process.cwd(), '..', 'shared', 'data', 'real-clips');
afterAll(() => tmp.cleanup());
const R = 16;
const COLOURS: Record<string, [number, number, number]> = { black: [0, 0, 0], white: [255, 255, 255], red: [230, 40, 40] };

async function readAll(file: string, opts: Parameters<typeof decodeFrames>[1] = {}): Promise<RgbFrame[]> {
  const out: RgbFrame[] = [];
  for await (const f of decodeFrames(await probeVideo(file), opts)) out.push({ width: f.width, height: f.height, data: f.data });
  return out;
}

let seq = 0;
/** Through x264 at `crf` and back. */
async function x264(frames: RgbFrame[], crf = 23): Promise<RgbFrame[]> {
  const file = path.join(tmp.dir, `c${seq++}.mp4`);
  const enc = await VideoEncoder.open({ out: file, width: frames[0].width, height: frames[0].height, fps: { num: 25, den: 1 }, crf, preset: 'veryfast' });
  for (const f of frames) await enc.write(f);
  await enc.finish();
  return readAll(file);
}

/** Two boxes: one where a talking head's mouth is (centre, lower half), one to the side. */
function boxes(w: number, h: number, colour: [number, number, number], seed: number): PaintShape[] {
  const rnd = seededRandom(seed);
  const m = Math.min(w, h);
  const bw = m * (0.1 + rnd() * 0.1), bh = m * (0.08 + rnd() * 0.06);
  return [
    { kind: 'rect', color: colour, x: w * 0.5 - m * 0.12, y: h * 0.6, w: m * 0.24, h: m * 0.1 },
    { kind: 'rect', color: colour, x: rnd() < 0.5 ? w * 0.05 : w * 0.95 - bw, y: h * (0.1 + 0.5 * rnd()), w: bw, h: bh },
  ];
}

function paint(frames: RgbFrame[], shapes: PaintShape[]): { painted: RgbFrame[]; mask: Mask } {
  const { width: w, height: h } = frames[0];
  const { paint: p, mask } = rasterizeShapes(w, h, shapes);
  const painted = frames.map((f) => {
    const d = new Uint8Array(f.data);
    for (let i = 0; i < mask.data.length; i++) if (mask.data[i]) d.set(p.data.subarray(3 * i, 3 * i + 3), 3 * i);
    return { width: w, height: h, data: d };
  });
  return { painted, mask };
}

/** Mean recall / false-positive rate over every `step`-th frame, with the stage's window. */
function score(frames: RgbFrame[], truth: Mask | undefined, step = 4) {
  let rec = 0, fp = 0, flagged = 0, k = 0;
  for (let t = 0; t < frames.length; t += step) {
    const lo = Math.max(0, t - R);
    const m = detectPaintedMask(frames.slice(lo, t + R + 1), t - lo);
    if (truth) {
      const a = maskAgreement(m, truth);
      rec += a.recall;
      fp += a.falsePositive;
    }
    for (const v of m.data) if (v >= 128) flagged++;
    k++;
  }
  return { recall: rec / k, falsePositive: fp / k, flagged: flagged / (k * frames[0].width * frames[0].height) };
}

const pct = (v: number) => `${(v * 100).toFixed(2)}%`;

describe('auto mask on still and real footage', () => {
  it('--mask auto says in one line what it found, or that it found nothing', () => {
    expect(autoMaskSummary(30, 0, 0)).toBe('inpaint: --mask auto found no painted region in 30 frames; nothing was filled');
    expect(autoMaskSummary(30, 28, 0.0512)).toBe('inpaint: --mask auto found painted regions in 28 of 30 frames (5.12% of the frame on average)');
  });

  it('a head that does not move (still frame + noise, x264 crf 23): boxes of any colour found, the clean clip flags nothing', async () => {
    const S = 96;
    const { data } = await sharp(path.join(fixturesDir, 'source', 'astronaut.png')).resize(S, S).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const rnd = seededRandom(7);
    const still: RgbFrame[] = [];
    for (let k = 0; k < 20; k++) {
      const d = new Uint8Array(data.length);
      for (let i = 0; i < d.length; i++) d[i] = Math.max(0, Math.min(255, data[i] + Math.round((rnd() - 0.5) * 4)));
      still.push({ width: S, height: S, data: d });
    }
    const clean = score(await x264(still), undefined);
    console.log(`still clip, clean: ${pct(clean.flagged)} flagged`);
    expect(clean.flagged).toBe(0);
    for (const [name, c] of Object.entries(COLOURS)) {
      const { painted, mask } = paint(still, boxes(S, S, c, 3));
      const s = score(await x264(painted), mask);
      console.log(`still clip, ${name} boxes: recall ${pct(s.recall)}, false positives ${pct(s.falsePositive)}`);
      expect(s.recall).toBeGreaterThanOrEqual(0.9);
      expect(s.falsePositive).toBeLessThanOrEqual(0.005);
    }
  });

  const haveReal = existsSync(realDir);
  if (!haveReal) console.log(`real clips not found at ${realDir}: the real-clip auto-mask checks are skipped`);
  for (const clip of ['talk-man-480.mp4', 'talk-child-512.mp4']) {
    it.skipIf(!haveReal)(`${clip} (x4, crf 23): black, white and red boxes found; nothing flagged on the clean clip`, async () => {
      const info = await probeVideo(path.join(realDir, clip));
      const size = { width: Math.round(info.width / 4), height: Math.round(info.height / 4) };
      const frames = await readAll(info.path, { size, scaleFlags: 'area', maxFrames: 20 });
      const clean = score(await x264(frames), undefined, 6);
      console.log(`${clip} clean: ${pct(clean.flagged)} flagged`);
      expect(clean.flagged).toBe(0);
      for (const [name, c] of Object.entries(COLOURS)) {
        const { painted, mask } = paint(frames, boxes(size.width, size.height, c, 5));
        const s = score(await x264(painted), mask, 6);
        console.log(`${clip} ${name} boxes: recall ${pct(s.recall)}, false positives ${pct(s.falsePositive)}`);
        expect(s.recall).toBeGreaterThanOrEqual(0.9);
        expect(s.falsePositive).toBeLessThanOrEqual(0.005);
      }
    });
  }
});

/**
 * The eval's box case (cases.ts: x4 bicubic, the three boxes of placeBoxes, x264 crf 12) on the
 * dev clips, every box in one colour, static as the eval paints them and moving (overlay, the
 * true mask from the same graph); 12 frames, masks as the stage makes them. Pinned: recall and
 * false positives (share of the unpainted pixels) per clip and colour, measured when written,
 * with a tolerance; never below the 90% / above its 0.5%. The clean clip (the same
 * downscale and encode) flags nothing.
 */
const EVAL_BOXES: Record<string, Record<string, [number, number]>> = {
  // clip: { 'static black': [recall, false positives], ... }
  'talk-man-480': { 'static black': [1.0000, 0.0000], 'static white': [1.0000, 0.0000], 'static 0x2e8b57': [0.9990, 0.0005], 'static 0xe62828': [0.9958, 0.0001], 'moving black': [0.9974, 0.0003], 'moving white': [1.0000, 0.0000], 'moving 0x2e8b57': [0.9997, 0.0008], 'moving 0xe62828': [1.0000, 0.0000] },
  'talk-child-512': { 'static black': [1.0000, 0.0000], 'static white': [1.0000, 0.0000], 'static 0x2e8b57': [1.0000, 0.0019], 'static 0xe62828': [0.9972, 0.0019], 'moving black': [1.0000, 0.0000], 'moving white': [1.0000, 0.0000], 'moving 0x2e8b57': [0.9998, 0.0000], 'moving 0xe62828': [0.9999, 0.0000] },
  'portrait-woman-720x1364': { 'static black': [1.0000, 0.0007], 'static white': [1.0000, 0.0000], 'static 0x2e8b57': [0.9999, 0.0006], 'static 0xe62828': [0.9976, 0.0004], 'moving black': [0.9646, 0.0011], 'moving white': [0.9974, 0.0000], 'moving 0x2e8b57': [0.9949, 0.0000], 'moving 0xe62828': [0.9969, 0.0000] },
};

describe("auto mask on the dev clips with the eval's boxes", () => {
  const haveReal = existsSync(realDir);
  let analyzer: FaceAnalyzer;
  beforeAll(async () => {
    if (haveReal) analyzer = await FaceAnalyzer.create({ device: 'cpu' });
  });
  for (const clip of Object.keys(EVAL_BOXES)) {
    it.skipIf(!haveReal)(`${clip}: black, white, green and red boxes, static and moving: recall and false positives pinned; the clean clip flags nothing`, async () => {
      let clean: string | undefined;
      for (const moving of [false, true])
        for (const colour of PAINT_COLOURS) {
          const key = `${moving ? 'moving' : 'static'} ${colour}`;
          const p = await paintClip(path.join(realDir, `${clip}.mp4`), path.join(tmp.dir, clip, key.replace(' ', '-')), { frames: 12, colour, moving, analyzer, clean: !clean });
          clean ??= p.clean;
          const s = scoreAutoMask(await readAll(p.input), p);
          console.log(`${clip} ${key}: recall ${pct(s.recall)}, false positives ${pct(s.falsePositive)} (boxes ${s.boxRecall.map(pct).join(', ')})`);
          const [rec, fp] = EVAL_BOXES[clip][key] ?? [0.9, 0.005];
          expect(s.recall).toBeGreaterThanOrEqual(Math.max(0.9, rec - 0.01));
          expect(s.falsePositive).toBeLessThanOrEqual(Math.min(0.005, fp + 0.0005));
        }
      const c = scoreAutoMask(await readAll(clean!));
      console.log(`${clip} clean: ${pct(c.flagged)} flagged`);
      expect(c.flagged).toBe(0);
    });
  }
});

/**
 * The same boxes on the held-out pans (src/eval/heldout.ts: photos of the folder never used
 * there as clips), 48 frames as the eval runs them: a white box on the black-and-white photo's
 * pale wall (an edge of only ~15 grey levels, told from a wall by its exact colour and the step
 * in every direction), and the painting's dark blue-black ground (4/3/19) reaching the frame's
 * edge, which is not paint (before the near-black test went by luma it was flagged: 5.3% of
 * the frame here with black boxes, 15-18% of most frames in the eval's box case). Every box in each colour and the eval's mixed boxes; the clean pans flag
 * nothing. Not asked: black paint on the painting's near-black ground (edge ~5 grey levels).
 */
const INVISIBLE: Record<string, Record<string, number[]>> = { 'pan-painting-girl-500': { black: [1] } };

describe('auto mask on the held-out pans', () => {
  const haveReal = existsSync(realDir);
  let analyzer: FaceAnalyzer;
  beforeAll(async () => {
    if (haveReal) analyzer = await FaceAnalyzer.create({ device: 'cpu' });
  });
  for (const pan of HELDOUT_PANS) {
    it.skipIf(!haveReal)(`${pan.name}: every box found (recall >= 90% each, false positives <= 0.5%) in each colour and mixed; the clean pan flags nothing`, async () => {
      const dir = path.join(tmp.dir, pan.name);
      await fs.mkdir(dir, { recursive: true });
      const clip = await makePanClip(realDir, dir, pan);
      let clean: string | undefined;
      for (const colour of [...PAINT_COLOURS, 'mixed']) {
        const p = await paintClip(clip, path.join(dir, colour), { frames: 48, colour, analyzer, clean: !clean });
        clean ??= p.clean;
        const s = scoreAutoMask(await readAll(p.input), p);
        console.log(`${pan.name} ${colour}: recall ${pct(s.recall)}, false positives ${pct(s.falsePositive)} (boxes ${s.boxRecall.map(pct).join(', ')})`);
        const skip = INVISIBLE[pan.name]?.[colour] ?? [];
        s.boxRecall.forEach((r, k) => {
          if (!skip.includes(k)) expect(r, `${colour} box ${k}`).toBeGreaterThanOrEqual(0.9);
        });
        expect(s.falsePositive).toBeLessThanOrEqual(0.005);
      }
      const c = scoreAutoMask(await readAll(clean!));
      console.log(`${pan.name} clean: ${pct(c.flagged)} flagged`);
      expect(c.flagged).toBe(0);
    });
  }
});
