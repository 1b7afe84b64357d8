/**
 * Contract tests of the model swap backends with project-built tiny ONNX models that carry
 * the real models' tensor names, shapes and ranges and a known function inside:
 * - the image path adds a known offset to the RED channel only, in the model's own range, so
 *   a wrong range shows as a wrong offset/scale and a wrong channel order as the offset on blue;
 * - an extra output echoes the `source` latent the runner fed, so the identity path
 *   (ArcFace → converter → normalization, inswapper's emap) is checked against an
 *   independent computation;
 * - the crop is checked against the model's template.
 */
import { seededFloats } from './helpers/tiny-models.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { applyAffine, invertAffine, templatePoints, type Affine, type TemplateName } from '../src/faces/align.js';
import type { Face } from '../src/faces/types.js';
import { OnnxGraphBuilder, attr } from '../src/models/onnx-builder.js';
import { openSwapModel, readEmap, vecMat } from '../src/stages/swap/models.js';
import { fixturesDir } from '../src/util/paths.js';
import type { RgbFrame } from '../src/media/frame.js';
import { RestoreError } from '../src/errors.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'swap-contract-'));
const write = (name: string, bytes: Uint8Array) => {
  const p = path.join(dir, name);
  writeFileSync(p, bytes);
  return p;
};

const prng = seededFloats;

/** Tiny "ArcFace": per-channel mean of the crop (GlobalAveragePool) times a fixed 3x512 matrix. */
function tinyArcface(): Uint8Array {
  const g = new OnnxGraphBuilder('tiny_arcface');
  g.input('input.1', [1, 3, 112, 112]);
  const pooled = g.op('GlobalAveragePool', ['input.1']);
  const flat = g.op('Flatten', [pooled], { axis: attr.int(1) });
  const W = prng(7, 3 * 512);
  for (let i = 0; i < 512; i++) W[i] += 2; // keep the embedding away from 0
  g.op('MatMul', [flat, g.float(W, [3, 512])], {}, '683');
  g.output('683', [1, 512]);
  return g.toBytes();
}

/** Tiny converter (crossface_*): out = 2 * reverse(in). */
function tinyConverter(): Uint8Array {
  const g = new OnnxGraphBuilder('tiny_crossface');
  g.input('input', [1, 512]);
  const P = new Float32Array(512 * 512);
  for (let i = 0; i < 512; i++) P[i * 512 + (511 - i)] = 2;
  g.op('MatMul', ['input', g.float(P, [512, 512])], {}, 'output');
  g.output('output', [1, 512]);
  return g.toBytes();
}

interface TinySwapSpec {
  crop: number;
  targetName: string;
  sourceName: string;
  outName: string;
  /** How the model reads its target and writes its output. */
  range: 'imagenet' | [number, number];
  outRange: [number, number];
  /** emap initializers: a decoy first and the real one last. */
  emap?: { decoy: Float32Array; real: Float32Array };
  /** Override the target shape (wrong-shape test). */
  targetDims?: number[];
}

const MEAN = [0.485, 0.456, 0.406], STD = [0.229, 0.224, 0.225];

/**
 * out = image_in_[0,1] + 0.1 on red, written in `outRange`; plus `echo` = source (and
 * `emap_echo` = source x emap when an emap is present, so the initializer is used).
 */
function tinySwapper(s: TinySwapSpec): Uint8Array {
  const g = new OnnxGraphBuilder('tiny_swap');
  const dims = s.targetDims ?? [1, 3, s.crop, s.crop];
  g.input(s.targetName, dims);
  g.input(s.sourceName, [1, 512]);
  let unit: string; // target back in [0,1]
  if (s.range === 'imagenet') {
    unit = g.op('Add', [g.op('Mul', [s.targetName, g.float(STD, [1, 3, 1, 1])]), g.float(MEAN, [1, 3, 1, 1])]);
  } else {
    const [lo, hi] = s.range;
    unit = g.op('Mul', [g.op('Sub', [s.targetName, g.float([lo], [])]), g.float([1 / (hi - lo)], [])]);
  }
  const shifted = g.op('Add', [unit, g.float([0.1, 0, 0], [1, 3, 1, 1])]);
  const [olo, ohi] = s.outRange;
  g.op('Add', [g.op('Mul', [shifted, g.float([ohi - olo], [])]), g.float([olo], [])], {}, s.outName);
  g.output(s.outName, dims);
  g.op('Identity', [s.sourceName], {}, 'echo');
  g.output('echo', [1, 512]);
  if (s.emap) {
    const decoy = g.init('decoy_512', s.emap.decoy, [512, 512]);
    g.op('MatMul', [s.sourceName, decoy], {}, 'decoy_echo');
    g.output('decoy_echo', [1, 512]);
    const real = g.init('emap', s.emap.real, [512, 512]);
    g.op('MatMul', [s.sourceName, real], {}, 'emap_echo');
    g.output('emap_echo', [1, 512]);
  }
  return g.toBytes();
}

const l2 = (v: Float32Array) => {
  const n = Math.hypot(...v);
  return Float32Array.from(v, (x) => x / n);
};

let frame: RgbFrame;
let arcFile: string, convFile: string;

beforeAll(async () => {
  const { data, info } = await sharp(path.join(fixturesDir, 'source', 'astronaut.png')).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  frame = { width: info.width, height: info.height, data: new Uint8Array(data) };
  arcFile = write('arcface.onnx', tinyArcface());
  convFile = write('crossface.onnx', tinyConverter());
});

/** Five points that are an exact similarity image of the template (crop → frame by `T`). */
function fiveFor(template: TemplateName, crop: number): { five: { x: number; y: number }[]; T: Affine } {
  const ang = (8 * Math.PI) / 180, sc = 100 / crop;
  const T: Affine = [sc * Math.cos(ang), -sc * Math.sin(ang), 175, sc * Math.sin(ang), sc * Math.cos(ang), 55];
  return { five: templatePoints(template, crop).map((p) => applyAffine(T, p)), T };
}

const CASES: {
  name: string;
  template: TemplateName;
  spec: TinySwapSpec;
  converter: boolean;
  /** Expected latent from the averaged ArcFace embedding. */
  expect: (arc: Float32Array, emap?: Float32Array) => Float32Array;
}[] = [
  {
    name: 'simswap_256',
    template: 'arcface_112_v1',
    spec: { crop: 256, targetName: 'target', sourceName: 'source', outName: 'output', range: 'imagenet', outRange: [0, 1] },
    converter: true,
    expect: (arc) => l2(Float32Array.from(arc, (_, i) => 2 * l2(arc)[511 - i])),
  },
  {
    name: 'simswap_512_unofficial',
    template: 'arcface_112_v1',
    spec: { crop: 512, targetName: 'target', sourceName: 'source', outName: 'output', range: [0, 1], outRange: [0, 1] },
    converter: true,
    expect: (arc) => l2(Float32Array.from(arc, (_, i) => 2 * l2(arc)[511 - i])),
  },
  {
    name: 'ghost_1_256',
    template: 'arcface_112_v1',
    spec: { crop: 256, targetName: 'target', sourceName: 'source', outName: 'output', range: [-1, 1], outRange: [-1, 1] },
    converter: true,
    // not normalized after the converter: norm 2
    expect: (arc) => Float32Array.from(arc, (_, i) => 2 * l2(arc)[511 - i]),
  },
  {
    name: 'inswapper_128',
    template: 'arcface_128',
    spec: {
      crop: 128,
      targetName: 'target',
      sourceName: 'source',
      outName: 'output',
      range: [0, 1],
      outRange: [0, 1],
      emap: { decoy: prng(3, 512 * 512), real: prng(11, 512 * 512) },
    },
    converter: false,
    expect: (arc, emap) => l2(vecMat(l2(arc), emap!)),
  },
];

describe('swap model contracts (tiny project-built models)', () => {
  for (const c of CASES) {
    it(`${c.name}: template, ranges, channel order and identity latent`, async () => {
      const file = write(`${c.name}.onnx`, tinySwapper(c.spec));
      const m = await openSwapModel(c.name, { device: 'cpu', files: { model: file, embedder: arcFile, converter: c.converter ? convFile : undefined } });
      expect(m.crop).toBe(c.spec.crop);
      expect(m.template).toBe(c.template);

      // template: the five points map exactly onto the template at the crop size
      const { five, T } = fiveFor(c.template, c.spec.crop);
      const { crop, matrix } = m.align(frame, five);
      const tp = templatePoints(c.template, c.spec.crop);
      five.forEach((p, i) => {
        const q = applyAffine(matrix, p);
        expect(Math.abs(q.x - tp[i].x)).toBeLessThan(1e-3);
        expect(Math.abs(q.y - tp[i].y)).toBeLessThan(1e-3);
      });
      const inv = invertAffine(matrix);
      for (let k = 0; k < 6; k++) expect(inv[k]).toBeCloseTo(T[k], 6);

      // identity latent: the runner's source equals the independent computation
      const arc = await m.embed(frame, five);
      expect(arc.length).toBe(512);
      expect(Math.hypot(...arc)).toBeCloseTo(1, 5);
      const latent = await m.sourceLatent(arc);
      const emap = c.spec.emap ? readEmap(file) : undefined;
      if (c.spec.emap) {
        // the LAST 512x512 initializer is the emap, not the decoy
        expect(emap![12345]).toBeCloseTo(c.spec.emap.real[12345], 7);
        expect(emap![12345]).not.toBeCloseTo(c.spec.emap.decoy[12345], 3);
      }
      const want = c.expect(arc, emap);
      const { image, outputs } = await m.runCrop(crop, latent);
      const echo = outputs.echo.data as Float32Array;
      let maxErr = 0;
      for (let i = 0; i < 512; i++) maxErr = Math.max(maxErr, Math.abs(echo[i] - want[i]));
      expect(maxErr).toBeLessThan(1e-5);
      if (c.name.startsWith('ghost')) expect(Math.hypot(...echo)).toBeCloseTo(2, 4);
      else expect(Math.hypot(...echo)).toBeCloseTo(1, 4);

      // ranges and channel order: +0.1 on red only (= +25.5 levels), green/blue unchanged
      const d = [0, 0, 0], maxAbs = [0, 0, 0];
      let nr = 0;
      for (let i = 0; i < crop.width * crop.height; i++) {
        if (crop.data[i * 3] > 220) continue; // red would clip at 255
        nr++;
        for (let ch = 0; ch < 3; ch++) {
          const diff = image.data[i * 3 + ch] - crop.data[i * 3 + ch];
          d[ch] += diff;
          if (ch) maxAbs[ch] = Math.max(maxAbs[ch], Math.abs(diff));
        }
      }
      expect(nr).toBeGreaterThan(crop.width * crop.height * 0.5);
      expect(d[0] / nr).toBeGreaterThan(24.5);
      expect(d[0] / nr).toBeLessThan(26.5);
      expect(Math.abs(d[1] / nr)).toBeLessThan(0.5);
      expect(Math.abs(d[2] / nr)).toBeLessThan(0.5);
      expect(maxAbs[1]).toBeLessThanOrEqual(1);
      expect(maxAbs[2]).toBeLessThanOrEqual(1);

      // paste-back: face centre gets the red shift, far-away pixels are bit-identical
      const face: Face = { trackId: 0, box: { x: 180, y: 60, width: 100, height: 100 }, score: 1, keypoints: [], five };
      const out = await m.swapFace(frame, face, latent);
      const centre = applyAffine(T, { x: c.spec.crop / 2, y: c.spec.crop * 0.55 });
      let dr = 0, dg = 0, cnt = 0;
      for (let y = Math.round(centre.y) - 5; y <= Math.round(centre.y) + 5; y++)
        for (let x = Math.round(centre.x) - 5; x <= Math.round(centre.x) + 5; x++) {
          const o = (y * frame.width + x) * 3;
          if (frame.data[o] > 220) continue;
          dr += out.data[o] - frame.data[o];
          dg += out.data[o + 1] - frame.data[o + 1];
          cnt++;
        }
      expect(cnt).toBeGreaterThan(20);
      expect(dr / cnt).toBeGreaterThan(20);
      expect(Math.abs(dg / cnt)).toBeLessThan(1);
      for (const [x, y] of [[5, 5], [500, 500], [20, 400]]) {
        const o = (y * frame.width + x) * 3;
        expect([...out.data.subarray(o, o + 3)]).toEqual([...frame.data.subarray(o, o + 3)]);
      }
    });
  }

  it('refuses a file with the wrong shapes, in one clear line', async () => {
    const file = write('wrong.onnx', tinySwapper({ crop: 128, targetName: 'target', sourceName: 'source', outName: 'output', range: [0, 1], outRange: [0, 1] }));
    const err = await openSwapModel('simswap_256', { device: 'cpu', files: { model: file, embedder: arcFile, converter: convFile } }).catch((e) => e);
    expect(err).toBeInstanceOf(RestoreError);
    expect((err as RestoreError).kind).toBe('model');
    expect((err as RestoreError).message).toMatch(/simswap_256 .*wrong\.onnx.* does not match its contract/);
    expect((err as RestoreError).message).toMatch(/256/);
    expect((err as RestoreError).toLine()).not.toMatch(/\n/);
  });

  it('says which converter is missing when a model needs one', async () => {
    const file = write('simswap_ok.onnx', tinySwapper(CASES[0].spec));
    const err = await openSwapModel('simswap_256', { device: 'cpu', files: { model: file, embedder: arcFile, converter: path.join(dir, 'nope.onnx') } }).catch((e) => e);
    expect(err).toBeInstanceOf(RestoreError);
    expect((err as RestoreError).message).toMatch(/needs the identity converter crossface_simswap/);
  });

  it('readEmap refuses a model without a 512x512 initializer', () => {
    const g = new OnnxGraphBuilder('x');
    g.input('a', [1, 4]);
    g.op('Identity', ['a'], {}, 'b');
    g.output('b', [1, 4]);
    expect(() => readEmap(g.toBytes())).toThrow(/no 512x512 initializer/);
  });
});

describe('swap stage with a model backend (tiny inswapper)', () => {
  it('runs the model on every frame face, publishes identity similarity, reports the backend', async () => {
    const { FaceAnalyzer } = await import('../src/faces/analyzer.js');
    const { createSwapStage } = await import('../src/stages/swap/index.js');
    const { silentLogger } = await import('../src/util/log.js');
    const spec = CASES[3].spec;
    const file = write('stage_inswapper.onnx', tinySwapper(spec));
    const analyzer = await FaceAnalyzer.create({ device: 'cpu' });
    const opts = {
      input: 'in.mp4', out: 'out.mp4', reportDir: dir, crf: 18, preset: 'medium', device: 'cpu' as const,
      backends: { swap: 'inswapper' }, concurrency: 1, thumbnails: 0, json: false, quiet: true, progress: false,
      identity: [path.join(fixturesDir, 'identities', 'grace-hopper.jpg')],
      files: { model: file, embedder: arcFile }, analyzer,
    };
    const stage = await createSwapStage(opts, { device: 'cpu', log: silentLogger });
    expect(stage.backend).toBe('inswapper_128');
    const frames = [frame, { ...frame, data: new Uint8Array(frame.data) }];
    async function* src() {
      for (let i = 0; i < frames.length; i++) yield { index: i, time: i / 24, frame: frames[i], input: frames[i] };
    }
    const out = [];
    for await (const it of stage.run(src(), {} as any)) out.push(it);
    expect(out.length).toBe(2);
    const face = out[0].faces![0];
    // the tiny model shifts red inside the face: the nose tip pixel got redder, green kept
    const p = face.five[2];
    let dr = 0, dg = 0, n = 0;
    for (let y = Math.round(p.y) - 6; y <= Math.round(p.y) + 6; y++)
      for (let x = Math.round(p.x) - 6; x <= Math.round(p.x) + 6; x++) {
        const o = (y * frame.width + x) * 3;
        if (frame.data[o] > 220) continue; // red would clip
        dr += out[0].frame.data[o] - frame.data[o];
        dg += out[0].frame.data[o + 1] - frame.data[o + 1];
        n++;
      }
    expect(n).toBeGreaterThan(30);
    expect(dr / n).toBeGreaterThan(18);
    expect(Math.abs(dg / n)).toBeLessThan(1);
    expect(out[0].values!.idSimBefore).toBeTypeOf('number');
    expect(out[0].values!.idSimAfter).toBeTypeOf('number');
    const rep = stage.report();
    expect(rep).toMatchObject({ name: 'swap', backend: 'inswapper_128', ran: true, frames: 2 });
    expect((rep.details as any).facesSwapped).toBe(2);
    expect((rep.details as any).msPerFace).toBeGreaterThan(0);
    expect((rep.details as any).identity.frames).toBe(2);
  });
});
