/**
 * The small version of `npm run eval` on a fixture clip, so the benchmark cannot rot: cases are
 * built with plain ffmpeg, every row is scored with ffmpeg's filters, and the files are written.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CASES } from '../src/eval/cases.js';
import { runEval, type EvalResult } from '../src/eval/run.js';
import { parseVariant } from '../src/eval/main-args.js';
import { priorFrameGains } from '../src/eval/report.js';
import { fixture, tempDir } from './helpers/media.js';

const tmp = tempDir('restore-eval-');
let r: EvalResult;
const out = path.join(tmp.dir, 'eval');

beforeAll(async () => {
  const clips = path.join(tmp.dir, 'clips');
  mkdirSync(clips);
  copyFileSync(fixture('videos', 'astronaut-pan.mp4'), path.join(clips, 'astronaut-pan.mp4'));
  r = await runEval({
    clipsDir: clips,
    outDir: out,
    cases: DEFAULT_CASES.filter((c) => c.name === 'x4-bicubic' || c.name === 'x4-boxes'),
    frames: 8,
    flicker: true,
    variants: [{ name: 'default', backends: {} }, parseVariant('lanczos:upscale=lanczos,temporal=none')],
    holeVariants: ['fill-harmonic', 'mask-auto'],
  });
}, 400_000);
afterAll(() => tmp.cleanup());

describe('npm run eval (fixture version)', () => {
  it('writes eval.json, eval.md and eval.html with every row', () => {
    for (const f of ['eval.json', 'eval.md', 'eval.html']) expect(existsSync(path.join(out, f))).toBe(true);
    expect(r.cases.map((c) => c.case)).toEqual(['x4-bicubic', 'x4-boxes']);
    // per case: ffmpeg bicubic, ffmpeg lanczos, perfect fill + lanczos, and the two restore
    // variants; the box case also the two hole rows asked for
    expect(r.rows).toHaveLength(12);
    for (const row of r.rows) {
      expect(row.frames).toBe(8);
      expect(row.psnrAvg).toBeGreaterThan(15);
      expect(row.ssimAll).toBeGreaterThan(0.3);
      expect(row.flicker).toBeGreaterThan(0);
    }
    const html = readFileSync(path.join(out, 'eval.html'), 'utf8');
    expect(html).toMatch(/<svg id="gain-restore-default"/);
    expect(readFileSync(path.join(out, 'eval.md'), 'utf8')).toMatch(/\| restore:default \| x4-bicubic \|/);
  });

  it('restore with --upscale lanczos and nothing else equals plain ffmpeg lanczos on luma', () => {
    const row = (m: string) => r.rows.find((x) => x.case === 'x4-bicubic' && x.method === m)!;
    expect(Math.abs(row('restore:lanczos').psnrY - row('ffmpeg-lanczos').psnrY)).toBeLessThanOrEqual(0.05);
    expect(Math.abs(row('restore:lanczos').flicker! - row('ffmpeg-lanczos').flicker!)).toBeLessThan(0.05);
  });

  it('the default beats ffmpeg lanczos on the clean x4 case, and outside the holes on the box case (pinned)', () => {
    const g = (c: string) => r.gains.find((x) => x.case === c && x.method === 'restore:default')!;
    expect(g('x4-bicubic').dY).toBeGreaterThan(0.1);
    expect(g('x4-boxes').dOutsideY).toBeGreaterThan(0.3);
    const boxes = r.rows.filter((x) => x.case === 'x4-boxes');
    const bound = boxes.find((x) => x.method === 'perfect-fill+lanczos')!;
    const ours = boxes.find((x) => x.method === 'restore:default')!;
    const lz = boxes.find((x) => x.method === 'ffmpeg-lanczos')!;
    expect(ours.holeY!).toBeGreaterThan(lz.holeY! + 5);
    expect(bound.holeY!).toBeGreaterThan(ours.holeY!);
  });
});

describe('npm run eval: the holes by region', () => {
  it('every row of the box case has Y-PSNR and SSIM in the face and background holes and the flicker there; none elsewhere', () => {
    const boxes = r.rows.filter((x) => x.case === 'x4-boxes');
    expect(boxes.map((x) => x.method)).toEqual(['ffmpeg-bicubic', 'ffmpeg-lanczos', 'perfect-fill+lanczos', 'restore:default', 'restore:lanczos', 'restore:fill-harmonic', 'restore:mask-auto']);
    const c = r.cases.find((x) => x.case === 'x4-boxes')!;
    // the black box over the mouth is in the face, the others are not
    expect(c.faceHoleShare).toBeGreaterThan(0.1);
    expect(c.faceHoleShare).toBeLessThan(0.9);
    for (const row of boxes) {
      console.log(`${row.method}: holes ${row.holeY} dB, face ${row.holeFaceY} dB / ${row.holeFaceSsim}, background ${row.holeBackgroundY} dB / ${row.holeBackgroundSsim}, flicker in holes ${row.holeFlicker}`);
      for (const k of ['holeFaceY', 'holeBackgroundY', 'holeFaceSsim', 'holeBackgroundSsim', 'holeFlicker'] as const) expect(row[k]).toBeTypeOf('number');
      expect(row.holeFaceSsim!).toBeLessThanOrEqual(1);
      // the whole-hole figure lies between the two parts
      expect(row.holeY!).toBeGreaterThanOrEqual(Math.min(row.holeFaceY!, row.holeBackgroundY!) - 0.01);
      expect(row.holeY!).toBeLessThanOrEqual(Math.max(row.holeFaceY!, row.holeBackgroundY!) + 0.01);
      // the face holes frame by frame: one value per frame, the mean-MSE figure within their range
      expect(row.holeFaceFramesY).toHaveLength(row.frames);
      const fy = row.holeFaceFramesY!.filter((v): v is number => v !== null);
      expect(fy.length).toBeGreaterThan(0);
      expect(Math.min(...fy)).toBeLessThanOrEqual(row.holeFaceY! + 0.01);
      expect(Math.max(...fy)).toBeGreaterThanOrEqual(row.holeFaceY! - 0.01);
    }
    const row = (m: string) => boxes.find((x) => x.method === m)!;
    // unfilled boxes score far below a fill, in both parts (pinned loosely: 8 frames of the fixture)
    expect(row('ffmpeg-lanczos').holeFaceY!).toBeLessThan(10);
    expect(row('restore:default').holeFaceY!).toBeGreaterThan(row('ffmpeg-lanczos').holeFaceY! + 10);
    expect(row('restore:default').holeBackgroundY!).toBeGreaterThan(row('ffmpeg-lanczos').holeBackgroundY! + 5);
    expect(row('perfect-fill+lanczos').holeFaceY!).toBeGreaterThan(row('restore:default').holeFaceY!);
    for (const x of r.rows.filter((y) => y.case === 'x4-bicubic')) expect(x.holeFaceY).toBeUndefined();
  });

  it('the face prior against the builtin, frame by frame: mean, worst frame and the frames worse by more than 1 dB', () => {
    const d = priorFrameGains([20, null, 25, 18, 30], [21, 22, 24, 19.5, null])!;
    expect(d.frames).toBe(3);
    expect(d.mean).toBeCloseTo(-0.5, 10);
    expect(d.worst).toBeCloseTo(-1.5, 10);
    expect(d.worseBy1).toBe(1);
    expect(priorFrameGains([20], undefined)).toBeUndefined();
    expect(priorFrameGains([null], [20])).toBeUndefined();
  });

  it('--mask auto: its recall and false positives against the true mask, and within 0.5 dB of the true mask end to end', () => {
    const auto = r.rows.find((x) => x.case === 'x4-boxes' && x.method === 'restore:mask-auto')!;
    const truth = r.rows.find((x) => x.case === 'x4-boxes' && x.method === 'restore:default')!;
    console.log(`mask auto: recall ${auto.autoMaskRecall}, false positives ${auto.autoMaskFalsePositive}; PSNR Y ${auto.psnrY} vs ${truth.psnrY} with the true mask`);
    expect(auto.autoMaskRecall!).toBeGreaterThanOrEqual(0.9);
    expect(auto.autoMaskFalsePositive!).toBeLessThanOrEqual(0.005);
    expect(truth.autoMaskRecall).toBeUndefined();
    expect(Math.abs(auto.psnrY - truth.psnrY)).toBeLessThanOrEqual(0.5);
    const md = readFileSync(path.join(out, 'eval.md'), 'utf8');
    expect(md).toMatch(/## Holes/);
    expect(md).toMatch(/\| astronaut-pan \| x4-boxes \| restore:mask-auto \|/);
    expect(readFileSync(path.join(out, 'eval.html'), 'utf8')).toMatch(/<table id="eval-holes">/);
  });
});
