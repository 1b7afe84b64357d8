/**
 * Face restoration contracts with tiny models that have each family's real tensor names and
 * shapes and a known function: template (marks at the template's points must land on the
 * face's five points), channel order and range (per-channel affine), the optional `weight`
 * input, blend, and refusal of wrong files.
 */
import { mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TEMPLATES, templatePoints } from '../src/faces/align.js';
import type { Face, Point } from '../src/faces/types.js';
import type { RgbFrame } from '../src/media/frame.js';
import type { FrameItem, RestoreOptions, RunContext, Stage } from '../src/stages/types.js';
import { silentLogger } from '../src/util/log.js';
import { createRestoreFaceStage } from '../src/stages/restore-face.js';
import { affineImageModel, markerModel, writeModel } from './helpers/tiny-models.js';

const astronaut = path.join(import.meta.dirname, '..', 'fixtures', 'source', 'astronaut.png');

let frame: RgbFrame;
let dir: string;
const prev = process.env.RESTORE_MODELS_DIR;

/** Five points of a face in the 384x384 frame: a rotated, scaled arcface_128 layout. */
const angle = 0.2;
const five: Point[] = TEMPLATES.arcface_128.map(([x, y]) => {
  const u = (x - 0.5) * 150;
  const v = (y - 0.5) * 150;
  return { x: 192 + u * Math.cos(angle) - v * Math.sin(angle), y: 180 + u * Math.sin(angle) + v * Math.cos(angle) };
});
const face: Face = { trackId: 0, box: { x: 110, y: 100, width: 170, height: 170 }, score: 0.9, keypoints: [], five };
const centre = { x: 192, y: 180 };

function options(backend: string): RestoreOptions {
  return {
    input: 'in.mp4', out: 'out.mp4', reportDir: 'r', crf: 18, preset: 'fast', device: 'cpu', backends: { 'restore-face': backend },
    concurrency: 1, thumbnails: 0, json: false, quiet: true, progress: false,
  };
}

async function run(stage: Stage, faces: Face[] | undefined = [face]): Promise<RgbFrame> {
  const ctx = { signal: new AbortController().signal, device: 'cpu', log: silentLogger } as unknown as RunContext;
  async function* src(): AsyncGenerator<FrameItem> {
    yield { index: 0, time: 0, frame: { ...frame, data: new Uint8Array(frame.data) }, input: frame, faces };
  }
  const out: FrameItem[] = [];
  for await (const it of stage.run(src(), ctx)) out.push(it);
  return out[0].frame;
}

const px = (f: RgbFrame, p: Point) => {
  const o = (Math.round(p.y) * f.width + Math.round(p.x)) * 3;
  return [f.data[o], f.data[o + 1], f.data[o + 2]];
};

/** Mean absolute per-channel difference over a square around `c`. */
function regionStats(a: RgbFrame, b: RgbFrame, c: Point, r: number) {
  const diff = [0, 0, 0];
  const meanA = [0, 0, 0];
  let n = 0;
  for (let y = c.y - r; y <= c.y + r; y++)
    for (let x = c.x - r; x <= c.x + r; x++) {
      const o = (y * a.width + x) * 3;
      for (let k = 0; k < 3; k++) {
        diff[k] += Math.abs(a.data[o + k] - b.data[o + k]);
        meanA[k] += a.data[o + k];
      }
      n++;
    }
  return { diff: diff.map((d) => d / n), mean: meanA.map((m) => m / n) };
}

beforeAll(async () => {
  const { data, info } = await sharp(astronaut).removeAlpha().resize(384, 384).raw().toBuffer({ resolveWithObject: true });
  frame = { width: info.width, height: info.height, data: new Uint8Array(data) };
  dir = mkdtempSync(path.join(os.tmpdir(), 'restore-face-'));
  process.env.RESTORE_MODELS_DIR = dir;
});
afterAll(() => {
  if (prev === undefined) delete process.env.RESTORE_MODELS_DIR;
  else process.env.RESTORE_MODELS_DIR = prev;
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  for (const f of ['gpen_bfr_256.onnx', 'gpen_bfr_512.onnx', 'gfpgan_1.4.onnx', 'codeformer.onnx']) {
    try {
      unlinkSync(path.join(dir, f));
    } catch {
      /* absent */
    }
  }
});

describe('restore-face stage', () => {
  it('is skipped, saying how to add a model, when none is installed', async () => {
    const stage = await createRestoreFaceStage(options('auto'), { device: 'cpu' });
    const rep = stage.report();
    expect(rep.ran).toBe(false);
    expect(rep.reason).toMatch(/no face restoration model installed.*restore models (pull|add)/);
  });

  for (const [name, file, template, size] of [
    ['gpen_bfr_256', 'gpen_bfr_256.onnx', 'arcface_128', 256],
    ['gpen_bfr_512', 'gpen_bfr_512.onnx', 'ffhq_512', 512],
  ] as const) {
    it(`${name}: marks at the ${template} points land on the face's five points (template + paste-back)`, async () => {
      const pts = templatePoints(template, size);
      writeModel(dir, file, markerModel({ size, points: pts, radius: Math.round(size / 64), range: [-1, 1], weightInput: 'weight' }));
      const stage = await createRestoreFaceStage(options(name), { device: 'cpu', blend: 1 });
      expect(stage.backend).toBe(name);
      const out = await run(stage);
      for (const p of five) {
        const v = px(out, p);
        expect(Math.min(...v)).toBeGreaterThan(235);
      }
      // between the eyes and the nose the model painted black
      const mid = { x: (five[0].x + five[1].x + five[2].x * 2) / 4, y: (five[0].y + five[1].y + five[2].y * 2) / 4 };
      expect(Math.max(...px(out, mid))).toBeLessThan(20);
      // far from the face nothing changed (bit-identical)
      expect(px(out, { x: 5, y: 5 })).toEqual(px(frame, { x: 5, y: 5 }));
      expect(px(out, { x: 380, y: 380 })).toEqual(px(frame, { x: 380, y: 380 }));
      // default blend 0.8: marks are 80% white over the original
      const blended = await run(await createRestoreFaceStage(options(name), { device: 'cpu' }));
      const orig = px(frame, five[2]);
      const got = px(blended, five[2]);
      for (let k = 0; k < 3; k++) expect(Math.abs(got[k] - (0.2 * orig[k] + 0.8 * 255))).toBeLessThan(8);
    });
  }

  for (const batch of ['n', 1] as const) {
    it(`two faces in one frame: both restored (${batch === 'n' ? 'one batched call' : 'one call per face'})`, async () => {
      writeModel(dir, 'gpen_bfr_256.onnx', markerModel({ size: 256, points: templatePoints('arcface_128', 256), radius: 4, range: [-1, 1], batch }));
      const other: Face = { ...face, trackId: 1, five: five.map((p) => ({ x: p.x * 0.5 + 10, y: p.y * 0.5 + 190 })) };
      const stage = await createRestoreFaceStage(options('gpen_bfr_256'), { device: 'cpu', blend: 1 });
      const out = await run(stage, [face, other]);
      for (const p of [...five, ...other.five]) expect(Math.min(...px(out, p))).toBeGreaterThan(230);
      expect(stage.report().details).toMatchObject({ faces: 2, batched: batch === 'n' });
    });
  }

  it('a model aligned with the wrong template misses the points (the template check can fail)', async () => {
    // marks placed at ffhq_512 positions scaled to 256, run as gpen_bfr_256 (arcface_128)
    writeModel(dir, 'gpen_bfr_256.onnx', markerModel({ size: 256, points: templatePoints('ffhq_512', 256), radius: 4, range: [-1, 1] }));
    const out = await run(await createRestoreFaceStage(options('gpen_bfr_256'), { device: 'cpu', blend: 1 }));
    const hits = five.filter((p) => Math.min(...px(out, p)) > 235).length;
    expect(hits).toBeLessThan(3);
  });

  it('feeds RGB in [-1,1] and reads RGB [-1,1] back (per-channel affine model)', async () => {
    // out = [R, G, -1]: red and green pass through, blue becomes 0
    writeModel(dir, 'gpen_bfr_512.onnx', affineImageModel({ dims: [1, 3, 512, 512], a: [1, 1, 0], b: [0, 0, -1] }));
    const out = await run(await createRestoreFaceStage(options('gpen_bfr_512'), { device: 'cpu', blend: 1 }));
    const s = regionStats(out, frame, centre, 20);
    expect(s.diff[0]).toBeLessThan(4); // red kept (two resamplings)
    expect(s.diff[1]).toBeLessThan(4);
    expect(s.mean[2]).toBeLessThan(1); // blue zeroed
    expect(regionStats(frame, frame, centre, 20).mean[2]).toBeGreaterThan(20); // and it was not zero before
  });

  it('CodeFormer: feeds the float64 `weight` input (default 0.5); GFPGAN without `weight` runs', async () => {
    // out = 0*x + 1*weight → 0.5 → (0.5+1)*127.5 = 191
    writeModel(dir, 'codeformer.onnx', affineImageModel({ dims: [1, 3, 512, 512], a: [0, 0, 0], b: [1, 1, 1], weightInput: 'weight' }));
    const out = await run(await createRestoreFaceStage(options('codeformer'), { device: 'cpu', blend: 1 }));
    const s = regionStats(out, frame, centre, 10);
    for (const m of s.mean) expect(m).toBeCloseTo(191.25, 0);
    const out2 = await run(await createRestoreFaceStage(options('codeformer'), { device: 'cpu', blend: 1, weight: 1 }));
    for (const m of regionStats(out2, frame, centre, 10).mean) expect(m).toBeCloseTo(255, 0);
    writeModel(dir, 'gfpgan_1.4.onnx', affineImageModel({ dims: [1, 3, 512, 512], a: [1, 1, 1], b: [0, 0, 0], inputName: 'x' }));
    const stage = await createRestoreFaceStage(options('gfpgan'), { device: 'cpu' });
    const out3 = await run(stage);
    expect(regionStats(out3, frame, centre, 20).diff.every((d) => d < 4)).toBe(true);
    expect(stage.report().details).toMatchObject({ faces: 1, template: 'ffhq_512', crop: 512 });
  });

  it('frames without faces pass through untouched', async () => {
    writeModel(dir, 'gpen_bfr_256.onnx', markerModel({ size: 256, points: [{ x: 128, y: 128 }], range: [-1, 1] }));
    const stage = await createRestoreFaceStage(options('auto'), { device: 'cpu' });
    const out = await run(stage, []);
    expect(Buffer.compare(Buffer.from(out.data), Buffer.from(frame.data))).toBe(0);
  });

  it('refuses a file with the wrong input name, size or channel count, naming the mismatch', async () => {
    const cases: [Uint8Array, RegExp][] = [
      [affineImageModel({ dims: [1, 3, 256, 256], a: [1, 1, 1], b: [0, 0, 0], inputName: 'image' }), /no input named 'input'.*'image'/],
      [affineImageModel({ dims: [1, 3, 512, 512], a: [1, 1, 1], b: [0, 0, 0] }), /has shape \[1,3,512,512\], the contract needs \[1,3,256,256\]/],
      [affineImageModel({ dims: [1, 1, 256, 256], a: [1, 1, 1], b: [0, 0, 0], outDims: [1, 3, 256, 256] }), /has shape \[1,1,256,256\].*dim 1: 1 ≠ 3/],
    ];
    for (const [bytes, re] of cases) {
      writeModel(dir, 'gpen_bfr_256.onnx', bytes);
      const err = await createRestoreFaceStage(options('gpen_bfr_256'), { device: 'cpu' }).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err?.message).toMatch(/model gpen_bfr_256 \(.*gpen_bfr_256\.onnx\) does not match its contract/);
      expect(err?.message).toMatch(re);
    }
  });
});
