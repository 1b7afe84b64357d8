/**
 * Identity: the TF.js graph → ONNX converter against a plain-JS reference on a hand-built
 * graph model; the converted npm descriptor (faceres) separating two real people; identity
 * photos (no face, several faces, --identity-face) and the similarity summary.
 */
import { seededFloats } from './helpers/tiny-models.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { FaceAnalyzer } from '../src/faces/analyzer.js';
import { cosine, createFaceresDescriptor, meanEmbedding, type FaceDescriptor } from '../src/faces/descriptor.js';
import { findIdentityFace, loadIdentity, readImage } from '../src/faces/identity.js';
import type { RgbFrame } from '../src/media/frame.js';
import { summarizeIdentity } from '../src/metrics/identity.js';
import { fixturesDir } from '../src/util/paths.js';
import { loadSession, ort } from '../src/models/session.js';
import { convertTfjsGraph, decodeWeights, TfjsConvertError, type TfjsGraphModelJson } from '../src/models/tfjs-graph/convert.js';
import { RestoreError } from '../src/errors.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'identity-'));
const ASTRONAUT = path.join(fixturesDir, 'source', 'astronaut.png');
const HOPPER = path.join(fixturesDir, 'identities', 'grace-hopper.jpg');

const prng = seededFloats;

function toHalf(v: number): number {
  const f = new Float32Array([v]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  const mant = (u >>> 13) & 0x3ff;
  if (exp <= 0) return sign;
  return sign | (exp << 10) | mant;
}

// ---------------------------------------------------------------------------------------------
// A small graph model in TF.js JSON: Conv2D(3x3, stride 2, SAME) → Add(bias) → Relu6-as-Min/Max
// → DepthwiseConv(3x3, SAME) → Mul(scale) → Mean over H,W → _FusedMatMul(BiasAdd, Relu) → Softmax

const H = 9, Wd = 9, C = 3, F = 4, OUT = 5;
const K1 = prng(1, 3 * 3 * C * F); // HWIO
const B1 = prng(2, F);
const DW = prng(3, 3 * 3 * F * 1); // H W C M
const SC = prng(4, F);
const MM = prng(5, F * OUT);
const MB = prng(6, OUT);

function tinyGraph(): { json: TfjsGraphModelJson; bin: Uint8Array } {
  const weights: { name: string; shape: number[]; data: Float32Array; half?: boolean; int?: boolean }[] = [
    { name: 'k1', shape: [3, 3, C, F], data: K1, half: true },
    { name: 'b1', shape: [F], data: B1 },
    { name: 'six', shape: [], data: new Float32Array([6]) },
    { name: 'zero', shape: [], data: new Float32Array([0]) },
    { name: 'dw', shape: [3, 3, F, 1], data: DW },
    { name: 'sc', shape: [F], data: SC },
    { name: 'axes', shape: [2], data: new Float32Array([1, 2]), int: true },
    { name: 'mm', shape: [F, OUT], data: MM },
    { name: 'mb', shape: [OUT], data: MB },
  ];
  const parts: Uint8Array[] = [];
  const manifest = weights.map((w) => {
    if (w.half) {
      const u = new Uint16Array(w.data.length);
      w.data.forEach((v, i) => (u[i] = toHalf(v)));
      parts.push(new Uint8Array(u.buffer));
      return { name: w.name, shape: w.shape, dtype: 'float32', quantization: { dtype: 'float16', original_dtype: 'float32' } };
    }
    if (w.int) {
      parts.push(new Uint8Array(Int32Array.from(w.data).buffer));
      return { name: w.name, shape: w.shape, dtype: 'int32' };
    }
    parts.push(new Uint8Array(Float32Array.from(w.data).buffer));
    return { name: w.name, shape: w.shape, dtype: 'float32' };
  });
  const bin = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    bin.set(p, o);
    o += p.length;
  }
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const node = (name: string, op: string, input: string[], attr: Record<string, unknown> = {}) => ({ name, op, input, attr });
  const nodes = [
    ...weights.map((w) => node(w.name, 'Const', [], { dtype: { type: w.int ? 'DT_INT32' : 'DT_FLOAT' } })),
    node('x', 'Placeholder', [], { shape: { shape: { dim: [{ size: '-1' }, { size: String(H) }, { size: String(Wd) }, { size: String(C) }] } } }),
    node('conv', 'Conv2D', ['x', 'k1'], { strides: { list: { i: ['1', '2', '2', '1'] } }, padding: { s: b64('SAME') }, data_format: { s: b64('NHWC') } }),
    node('add', 'Add', ['conv', 'b1']),
    node('min', 'Minimum', ['add', 'six']),
    node('max', 'Maximum', ['min', 'zero']),
    node('dwc', 'DepthwiseConv2dNative', ['max', 'dw'], { strides: { list: { i: ['1', '1', '1', '1'] } }, padding: { s: b64('SAME') } }),
    node('mul', 'Mul', ['dwc', 'sc']),
    node('mean', 'Mean', ['mul', 'axes'], { keep_dims: { b: false } }),
    node('fc', '_FusedMatMul', ['mean', 'mm', 'mb'], { fused_ops: { list: { s: [b64('BiasAdd'), b64('Relu')] } } }),
    node('prob', 'Softmax', ['fc']),
  ];
  const json: TfjsGraphModelJson = {
    format: 'graph-model',
    modelTopology: { node: nodes as any },
    weightsManifest: [{ paths: ['w.bin'], weights: manifest as any }],
    signature: { outputs: { 'mean:0': { name: 'mean' }, 'prob:0': { name: 'prob' } } },
  };
  return { json, bin };
}

const half = (v: number) => {
  // value after fp16 round trip (truncated mantissa, as toHalf above)
  const h = toHalf(v);
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
  return e === 0 ? s * 2 ** -14 * (f / 1024) : s * 2 ** (e - 15) * (1 + f / 1024);
};

/** Plain-JS NHWC reference of the tiny graph (TF SAME padding: extra pad at the end). */
function reference(x: Float32Array): { mean: Float32Array; prob: Float32Array } {
  const k1 = Float32Array.from(K1, half);
  const oh = Math.ceil(H / 2), ow = Math.ceil(Wd / 2);
  const padTotal = (n: number, s: number, k: number) => Math.max((Math.ceil(n / s) - 1) * s + k - n, 0);
  const ph = Math.floor(padTotal(H, 2, 3) / 2), pw = Math.floor(padTotal(Wd, 2, 3) / 2);
  const a = new Float32Array(oh * ow * F);
  for (let y = 0; y < oh; y++)
    for (let xx = 0; xx < ow; xx++)
      for (let f = 0; f < F; f++) {
        let s = 0;
        for (let ky = 0; ky < 3; ky++)
          for (let kx = 0; kx < 3; kx++) {
            const iy = y * 2 + ky - ph, ix = xx * 2 + kx - pw;
            if (iy < 0 || ix < 0 || iy >= H || ix >= Wd) continue;
            for (let c = 0; c < C; c++) s += x[(iy * Wd + ix) * C + c] * k1[((ky * 3 + kx) * C + c) * F + f];
          }
        a[(y * ow + xx) * F + f] = Math.max(0, Math.min(6, s + B1[f]));
      }
  const b = new Float32Array(oh * ow * F);
  for (let y = 0; y < oh; y++)
    for (let xx = 0; xx < ow; xx++)
      for (let f = 0; f < F; f++) {
        let s = 0;
        for (let ky = 0; ky < 3; ky++)
          for (let kx = 0; kx < 3; kx++) {
            const iy = y + ky - 1, ix = xx + kx - 1;
            if (iy < 0 || ix < 0 || iy >= oh || ix >= ow) continue;
            s += a[(iy * ow + ix) * F + f] * DW[(ky * 3 + kx) * F + f];
          }
        b[(y * ow + xx) * F + f] = s * SC[f];
      }
  const mean = new Float32Array(F);
  for (let i = 0; i < oh * ow; i++) for (let f = 0; f < F; f++) mean[f] += b[i * F + f] / (oh * ow);
  const fc = new Float32Array(OUT);
  for (let o = 0; o < OUT; o++) {
    let s = MB[o];
    for (let f = 0; f < F; f++) s += mean[f] * MM[f * OUT + o];
    fc[o] = Math.max(0, s);
  }
  const mx = Math.max(...fc);
  const e = fc.map((v) => Math.exp(v - mx));
  const z = e.reduce((p, q) => p + q, 0);
  return { mean, prob: e.map((v) => v / z) };
}

describe('TF.js graph → ONNX converter', () => {
  it('matches a plain-JS reference (Conv2D SAME stride 2 with fp16 weights, depthwise, Mean, fused MatMul, Softmax)', async () => {
    const { json, bin } = tinyGraph();
    const weights = decodeWeights(json.weightsManifest, () => bin);
    const res = convertTfjsGraph(json, weights);
    expect(res.inputName).toBe('x');
    expect(res.outputNames).toEqual(['mean', 'prob']);
    const { session } = await loadSession(res.bytes, { device: 'cpu' });
    const x = prng(9, H * Wd * C).map((v) => v * 3);
    const out = await session.run({ x: new ort.Tensor('float32', x, [1, H, Wd, C]) });
    const ref = reference(x);
    const got = out.mean.data as Float32Array;
    for (let f = 0; f < F; f++) expect(Math.abs(got[f] - ref.mean[f])).toBeLessThan(1e-4);
    const p = out.prob.data as Float32Array;
    for (let o = 0; o < OUT; o++) expect(Math.abs(p[o] - ref.prob[o])).toBeLessThan(1e-5);
    // not a constant: the reference varies with the input, and so does the model
    expect(Math.max(...ref.mean) - Math.min(...ref.mean)).toBeGreaterThan(0.01);
  });

  it('refuses an op it does not know, naming it', () => {
    const { json, bin } = tinyGraph();
    (json.modelTopology.node as any).push({ name: 'odd', op: 'Atan2', input: ['prob', 'prob'] });
    expect(() => convertTfjsGraph(json, decodeWeights(json.weightsManifest, () => bin))).toThrow(TfjsConvertError);
    expect(() => convertTfjsGraph(json, decodeWeights(json.weightsManifest, () => bin))).toThrow(/Atan2/);
  });

  it('refuses shards that do not match the manifest', () => {
    const { json, bin } = tinyGraph();
    expect(() => decodeWeights(json.weightsManifest, () => bin.subarray(0, bin.length - 8))).toThrow();
  });
});

// ---------------------------------------------------------------------------------------------

let analyzer: FaceAnalyzer;
let desc: FaceDescriptor;
let astro: RgbFrame, hopper: RgbFrame;

beforeAll(async () => {
  analyzer = await FaceAnalyzer.create({ device: 'cpu' });
  desc = await createFaceresDescriptor({ device: 'cpu' });
  astro = await readImage(ASTRONAUT);
  hopper = await readImage(HOPPER);
});

async function frameFrom(img: ReturnType<typeof sharp>): Promise<RgbFrame> {
  const { data, info } = await img.removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data) };
}

describe('npm face descriptor (faceres converted to ONNX)', () => {
  it('separates two people: same face under small transforms is closer than another person', async () => {
    const fa = (await analyzer.analyze(astro))[0];
    const fh = (await analyzer.analyze(hopper))[0];
    expect(fa && fh).toBeTruthy();
    const a0 = await desc.describe(astro, fa.five);
    const h0 = await desc.describe(hopper, fh.five);
    expect(a0.length).toBe(1024);
    const cross = cosine(a0, h0);
    // the same photo re-sized, shifted and slightly darkened, re-detected
    const variants = [
      await frameFrom(sharp(ASTRONAUT).resize(400, 400)),
      await frameFrom(sharp(ASTRONAUT).extract({ left: 30, top: 10, width: 440, height: 440 })),
      await frameFrom(sharp(ASTRONAUT).modulate({ brightness: 0.85 })),
      await frameFrom(sharp(ASTRONAUT).rotate(6, { background: '#808080' })),
    ];
    const same: number[] = [];
    for (const v of variants) {
      const f = (await analyzer.analyze(v))[0];
      same.push(cosine(a0, await desc.describe(v, f.five)));
    }
    const hs = [await frameFrom(sharp(HOPPER).resize(300, 352)), await frameFrom(sharp(HOPPER).modulate({ brightness: 1.1 }))];
    for (const v of hs) {
      const f = (await analyzer.analyze(v))[0];
      same.push(cosine(h0, await desc.describe(v, f.five)));
    }
    console.log(`faceres cosine: same person ${same.map((s) => s.toFixed(3)).join(', ')}; astronaut vs Hopper ${cross.toFixed(3)}`);
    expect(Math.min(...same)).toBeGreaterThan(0.85);
    expect(cross).toBeLessThan(0.6);
    expect(Math.min(...same) - cross).toBeGreaterThan(0.3);
  });

  it('averages several photos into one normalized identity', () => {
    const a = new Float32Array([1, 0, 0]), b = new Float32Array([0, 2, 0]);
    const m = meanEmbedding([a, b]);
    expect(m[0]).toBeCloseTo(Math.SQRT1_2, 6);
    expect(m[1]).toBeCloseTo(Math.SQRT1_2, 6);
  });
});

describe('identity photos', () => {
  it('one face: used; the descriptor of two photos is their normalized mean', async () => {
    const id = await loadIdentity([ASTRONAUT, HOPPER], { analyzer, descriptor: desc });
    expect(id.photos.map((p) => p.facesFound)).toEqual([1, 1]);
    expect(id.photos[0].face.mesh?.length).toBe(468 * 3);
    const s0 = cosine(id.descriptor, id.perPhoto[0]), s1 = cosine(id.descriptor, id.perPhoto[1]);
    expect(Math.abs(s0 - s1)).toBeLessThan(1e-4);
    expect(s0).toBeGreaterThan(cosine(id.perPhoto[0], id.perPhoto[1]));
  });

  it('no face: one clear input error naming the file', async () => {
    const p = path.join(dir, 'wall.png');
    await sharp({ create: { width: 256, height: 256, channels: 3, background: '#a08060' } }).png().toFile(p);
    const err = await loadIdentity([p], { analyzer, descriptor: desc }).catch((e) => e);
    expect(err).toBeInstanceOf(RestoreError);
    expect(err.kind).toBe('input');
    expect(err.toLine()).toMatch(/identity photo .*wall\.png: no face found/);
  });

  it('not an image: one clear input error', async () => {
    const p = path.join(dir, 'notes.jpg');
    writeFileSync(p, 'hello');
    const err = await readImage(p).catch((e) => e);
    expect(err).toBeInstanceOf(RestoreError);
    expect(err.toLine()).toMatch(/notes\.jpg: cannot read it as an image/);
  });

  it('several faces: refused unless --identity-face chooses; faces numbered by size', async () => {
    // astronaut and Hopper (larger face) side by side
    const p = path.join(dir, 'two.png');
    const a = await sharp(ASTRONAUT).resize(360, 360).png().toBuffer();
    const h = await sharp(HOPPER).resize(240, 282).png().toBuffer();
    await sharp({ create: { width: 620, height: 370, channels: 3, background: '#909090' } })
      .composite([{ input: a, left: 0, top: 0 }, { input: h, left: 370, top: 10 }])
      .png()
      .toFile(p);
    const frame = await readImage(p);
    const err = await findIdentityFace(p, frame, analyzer).catch((e) => e);
    expect(err).toBeInstanceOf(RestoreError);
    expect(err.toLine()).toMatch(/2 faces found.*--identity-face N/);
    const f0 = await findIdentityFace(p, frame, analyzer, 0);
    const f1 = await findIdentityFace(p, frame, analyzer, 1);
    expect(f0.face.box.x).toBeGreaterThan(360); // Hopper, the larger face
    expect(f1.face.box.x).toBeLessThan(360); // the astronaut
    const bad = await findIdentityFace(p, frame, analyzer, 2).catch((e) => e);
    expect(bad.toLine()).toMatch(/--identity-face 2 does not exist/);
    // the chosen face is really that person
    const h0 = await desc.describe(hopper, (await analyzer.analyze(hopper))[0].five);
    expect(cosine(h0, await desc.describe(frame, f0.face.five))).toBeGreaterThan(cosine(h0, await desc.describe(frame, f1.face.five)) + 0.2);
  });

  it('summary of per-frame similarities', () => {
    const s = summarizeIdentity(
      [
        { index: 0, before: 0.3, after: 0.6 },
        { index: 1, before: 0.4, after: 0.5 },
        { index: 2, before: NaN, after: 0.9 },
        { index: 3, before: 0.5, after: 0.45 },
      ],
      'faceres',
    );
    expect(s.frames).toBe(3);
    expect(s.meanBefore).toBeCloseTo(0.4, 6);
    expect(s.meanAfter).toBeCloseTo(0.5167, 4);
    expect(s.framesImproved).toBe(2);
    expect(s.framesWorse).toBe(1);
    expect(s.minAfter).toBe(0.45);
  });
});
