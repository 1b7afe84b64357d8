import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import os from 'node:os';
import path from 'node:path';
import { convertTflite, samePads, UnsupportedOpError } from '../src/models/tflite/convert.js';
import { halfToFloat, parseTflite } from '../src/models/tflite/model.js';
import { evaluateTflite } from '../src/models/tflite/reference.js';
import { ensureMediapipeOnnx, mediapipeSource } from '../src/models/tflite/mediapipe.js';
import { loadSession, ort } from '../src/models/session.js';
import { fixturesDir, packageRoot } from '../src/util/paths.js';
import sharp from 'sharp';

/** The public-domain portrait resized to size x size, NHWC float, mapped by `f`. */
async function portrait(size: number, f: (v: number) => number, region?: { left: number; top: number; width: number; height: number }) {
  let img = sharp(path.join(fixturesDir, 'source', 'astronaut.png')).removeAlpha();
  if (region) img = img.extract(region);
  const { data } = await img.resize(size, size, { fit: 'fill' }).raw().toBuffer({ resolveWithObject: true });
  return Float32Array.from(data, f);
}

function seeded(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

async function compare(name: 'face_detection_short_range' | 'face_detection_full_range' | 'face_landmark', inputs: Float32Array[]) {
  const { bytes } = mediapipeSource(name);
  const conv = convertTflite(bytes, { label: name });
  const { session } = await loadSession(conv.onnx, { device: 'cpu', key: `test-${name}` });
  const shape = conv.inputs[0].shape;
  let maxDiff = 0, maxAbs = 0;
  let refMs = 0;
  for (const x of inputs) {
    const res = await session.run({ [conv.inputs[0].name]: new ort.Tensor('float32', x, shape) });
    const t0 = performance.now();
    const ref = evaluateTflite(conv.model, [x]);
    refMs += performance.now() - t0;
    for (const o of conv.outputs) {
      const got = res[o.name].data as Float32Array;
      const want = ref[o.name].data;
      expect(Array.from(res[o.name].dims)).toEqual(o.shape);
      expect(got.length).toBe(want.length);
      for (let i = 0; i < got.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(got[i] - want[i]));
        maxAbs = Math.max(maxAbs, Math.abs(want[i]));
      }
    }
  }
  return { maxDiff, maxAbs, refMs: refMs / inputs.length, conv };
}

describe('TFLite reader', () => {
  it('decodes float16', () => {
    expect(halfToFloat(0x3c00)).toBe(1);
    expect(halfToFloat(0xc000)).toBe(-2);
    expect(halfToFloat(0x3555)).toBeCloseTo(0.33325, 5);
    expect(halfToFloat(0x0001)).toBeCloseTo(5.96e-8, 10);
  });
  it('reads the short-range detector graph', () => {
    const m = parseTflite(mediapipeSource('face_detection_short_range').bytes);
    expect(m.tensors[m.inputs[0]].shape).toEqual([1, 128, 128, 3]);
    expect(m.outputs.map((i) => m.tensors[i].shape)).toEqual([[1, 896, 16], [1, 896, 1]]);
    const ops = new Set(m.operators.map((o) => o.op));
    expect([...ops].sort()).toEqual(['ADD', 'CONCATENATION', 'CONV_2D', 'DEPTHWISE_CONV_2D', 'DEQUANTIZE', 'MAX_POOL_2D', 'PAD', 'RELU', 'RESHAPE']);
  });
  it('SAME padding puts the extra pixel at the end', () => {
    expect(samePads(128, 5, 2)).toEqual([1, 2]);
    expect(samePads(64, 3, 1)).toEqual([1, 1]);
    expect(samePads(64, 2, 2)).toEqual([0, 0]);
    expect(samePads(7, 3, 3)).toEqual([1, 1]);
  });
  it('names the op it cannot convert', () => {
    const sparse = path.join(path.dirname(mediapipeSource('face_detection_short_range').origin), 'face_detection_full_range_sparse.tflite');
    const buf = new Uint8Array(readFileSync(sparse));
    expect(() => convertTflite(buf, { label: 'sparse.tflite' })).toThrow(UnsupportedOpError);
    expect(() => convertTflite(buf, { label: 'sparse.tflite' })).toThrow(/^sparse\.tflite: TFLite op DENSIFY is not supported by the converter \(operator #8\)/);
    expect(() => convertTflite(new Uint8Array(64), { label: 'zeros.bin' })).toThrow(/not a TFLite flatbuffer/);
  });
});

/**
 * float32 sums in another order (ONNX Runtime picks its kernels by CPU: AVX2, AVX-512, ...) differ by a few
 * ulps of the largest values: 1.01e-4 on outputs up to 95.8 was seen on an AMD EPYC. A wrong op or layout
 * is off by whole units, so a bound relative to the output's size stays strict.
 */
const floatTolerance = (maxAbs: number) => 4e-6 * Math.max(1, maxAbs);

describe('converted ONNX equals a direct TypeScript evaluation of the TFLite graph', () => {
  it('short-range detector (3 inputs)', async () => {
    const r = seeded(1);
    const inputs = [await portrait(128, (v) => v / 127.5 - 1), ...[1, 2].map(() => Float32Array.from({ length: 128 * 128 * 3 }, () => r() * 2 - 1))];
    const { maxDiff, maxAbs, refMs } = await compare('face_detection_short_range', inputs);
    console.log(`short-range: max |onnx - reference| = ${maxDiff.toExponential(2)} (outputs up to ${maxAbs.toFixed(1)}), reference ${refMs.toFixed(0)} ms/input`);
    expect(maxAbs).toBeGreaterThan(1);
    expect(maxDiff).toBeLessThan(floatTolerance(maxAbs));
  }, 60_000);

  it('full-range detector (1 input)', async () => {
    const r = seeded(2);
    const inputs = [Float32Array.from({ length: 192 * 192 * 3 }, () => r() * 2 - 1)];
    const { maxDiff, maxAbs, refMs } = await compare('face_detection_full_range', inputs);
    console.log(`full-range: max |onnx - reference| = ${maxDiff.toExponential(2)} (outputs up to ${maxAbs.toFixed(1)}), reference ${refMs.toFixed(0)} ms/input`);
    expect(maxDiff).toBeLessThan(floatTolerance(maxAbs));
  }, 60_000);

  it('face mesh (2 inputs)', async () => {
    const r = seeded(3);
    const face = await portrait(192, (v) => v / 255, { left: 150, top: 50, width: 150, height: 150 });
    const inputs = [face, Float32Array.from({ length: 192 * 192 * 3 }, () => r())];
    const { maxDiff, maxAbs, refMs } = await compare('face_landmark', inputs);
    console.log(`face mesh: max |onnx - reference| = ${maxDiff.toExponential(2)} (outputs up to ${maxAbs.toFixed(1)}), reference ${refMs.toFixed(0)} ms/input`);
    expect(maxAbs).toBeGreaterThan(10);
    expect(maxDiff).toBeLessThan(floatTolerance(maxAbs));
  }, 60_000);
});

describe('conversion cache', () => {
  it('converts once into the models folder, keyed by source hash', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'restore-models-'));
    const old = process.env.RESTORE_MODELS_DIR;
    process.env.RESTORE_MODELS_DIR = dir;
    try {
      const logs: string[] = [];
      const p1 = await ensureMediapipeOnnx('face_detection_short_range', (m) => logs.push(m));
      expect(p1.startsWith(path.join(dir, 'mediapipe'))).toBe(true);
      expect(existsSync(p1)).toBe(true);
      expect(path.basename(p1)).toMatch(/^face_detection_short_range-[0-9a-f]{16}\.onnx$/);
      const p2 = await ensureMediapipeOnnx('face_detection_short_range', (m) => logs.push(m));
      expect(p2).toBe(p1);
      expect(logs.length).toBe(1);
    } finally {
      if (old === undefined) delete process.env.RESTORE_MODELS_DIR;
      else process.env.RESTORE_MODELS_DIR = old;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('threads of one process converting into an empty folder at once all get the file, and leave nothing else', async () => {
    // (the pipeline's workers do this on a fresh checkout; with the pid as the only temp-name
    // part, one thread's rename took the file another was renaming: ENOENT)
    const dir = mkdtempSync(path.join(os.tmpdir(), 'restore-models-'));
    const mod = pathToFileURL(path.join(packageRoot, 'dist', 'models', 'tflite', 'mediapipe.js')).href;
    const code = `const { parentPort } = require('node:worker_threads');
      import(${JSON.stringify(mod)}).then((m) => m.ensureMediapipeOnnx('face_detection_short_range'))
        .then((p) => parentPort.postMessage({ ok: p }), (e) => parentPort.postMessage({ err: String(e && e.message) }));`;
    try {
      for (let round = 0; round < 2; round++) {
        rmSync(path.join(dir, 'mediapipe'), { recursive: true, force: true });
        const got = await Promise.all(
          Array.from({ length: 4 }, () => {
            const w = new Worker(code, { eval: true, env: { ...process.env, RESTORE_MODELS_DIR: dir } });
            return new Promise<{ ok?: string; err?: string }>((resolve, reject) => {
              w.once('message', (m) => void w.terminate().then(() => resolve(m)));
              w.once('error', reject);
            });
          }),
        );
        expect(got.map((g) => g.err ?? 'ok')).toEqual(['ok', 'ok', 'ok', 'ok']);
        expect(new Set(got.map((g) => g.ok)).size).toBe(1);
        expect(readdirSync(path.join(dir, 'mediapipe'))).toEqual([path.basename(got[0].ok!)]);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
