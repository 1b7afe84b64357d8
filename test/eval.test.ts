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
  });
}, 400_000);
afterAll(() => tmp.cleanup());

describe('npm run eval (fixture version)', () => {
  it('writes eval.json, eval.md and eval.html with every row', () => {
    for (const f of ['eval.json', 'eval.md', 'eval.html']) expect(existsSync(path.join(out, f))).toBe(true);
    expect(r.cases.map((c) => c.case)).toEqual(['x4-bicubic', 'x4-boxes']);
    // per case: ffmpeg bicubic, ffmpeg lanczos, perfect fill + lanczos, and the two restore variants
    expect(r.rows).toHaveLength(10);
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
