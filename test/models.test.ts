/**
 * Manifest, contract checking, registry (open/verify/installed), and the `models` commands
 * (list, verify, add, pull against a local HTTP server with Range/resume).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { modelsAdd, modelsList, modelsPull, modelsRemove, modelsVerify } from '../src/cli/commands/models.js';
import { isTemplateName } from '../src/faces/align.js';
import { checkContract, type FileTensor } from '../src/models/contract.js';
import { getEntry, loadManifest, type ModelEntry } from '../src/models/manifest.js';
import { attr, OnnxGraphBuilder } from '../src/models/onnx-builder.js';
import { ensureModelFile, installedModels, modelPath, modelStatus, openModel, verifyModel } from '../src/models/registry.js';
import { affineImageModel, writeModel } from './helpers/tiny-models.js';

let dir: string;
const prev = process.env.RESTORE_MODELS_DIR;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'restore-models-'));
  process.env.RESTORE_MODELS_DIR = dir;
});
afterAll(() => {
  if (prev === undefined) delete process.env.RESTORE_MODELS_DIR;
  else process.env.RESTORE_MODELS_DIR = prev;
  rmSync(dir, { recursive: true, force: true });
});

/** A model that satisfies an entry's contract: every input declared, each output a zero tensor of its static shape. */
function modelFor(e: ModelEntry): Uint8Array {
  const g = new OnnxGraphBuilder('fits');
  const names: string[] = [];
  e.contract.inputs.forEach((t, i) => {
    const name = t.name ? (Array.isArray(t.name) ? t.name[0] : t.name) : `${t.role}_${i}`;
    const dims = (t.dims ?? [1, 3, 8, 8]).map((d, k) => (typeof d === 'number' ? d : `d${i}_${k}`));
    g.input(name, dims, t.dtype === 'float64' ? 'double' : 'float');
    names.push(name);
  });
  const first = e.contract.inputs.findIndex((t) => t.dtype === 'float32');
  const s = g.op('Mul', [g.op('ReduceMean', [names[first]], { keepdims: attr.int(0) }), g.float([0], [])]);
  e.contract.outputs.forEach((t, i) => {
    const dims = (t.dims ?? [1, 4]).map((d) => (typeof d === 'number' ? d : 4));
    const n = dims.reduce((a, b) => a * b, 1);
    const out = `out_${i}`;
    g.op('Add', [g.float(new Float32Array(n), dims), s], {}, out);
    g.output(out, dims);
  });
  return g.toBytes();
}

describe('manifest', () => {
  const all = loadManifest();
  it('has an entry for every family in MODEL-CONTRACTS.md', () => {
    const need = [
      'gpen_bfr_256', 'gpen_bfr_512', 'gfpgan_1.4', 'codeformer', 'swinir_x4', 'realesrgan_x2', 'realesrgan_x4', 'swin2sr_x4',
      'mat_places512', 'mat_ffhq512', 'lama', 'simswap_256', 'simswap_512_unofficial', 'ghost_1_256', 'ghost_2_256', 'ghost_3_256',
      'inswapper_128', 'arcface_w600k_r50', 'rdn_medium_x4', 'rdn_slim_x4', 'face_detection_short_range', 'face_landmark', 'faceres',
    ];
    for (const n of need) expect(getEntry(n).name).toBe(n);
    expect(new Set(all.map((e) => e.name)).size).toBe(all.length);
  });
  it('entries are well formed (hashes unknown = null, templates known, https urls)', () => {
    for (const e of all) {
      expect(e.sha256 === null || /^[0-9a-f]{64}$/.test(e.sha256), e.name).toBe(true);
      expect(e.contract.inputs.length, e.name).toBeGreaterThan(0);
      expect(e.contract.outputs.length, e.name).toBeGreaterThan(0);
      if (e.contract.template) expect(isTemplateName(e.contract.template), e.name).toBe(true);
      for (const u of e.urls) expect(u, e.name).toMatch(/^https:\/\//);
      if (e.task === 'face-restore') expect(e.contract.inputs[0].range, e.name).toEqual([-1, 1]);
    }
    expect(getEntry('gpen_bfr_256').contract.template).toBe('arcface_128');
    expect(getEntry('gpen_bfr_512').contract.template).toBe('ffhq_512');
    expect(getEntry('lama').contract.inputs[1].polarity).toBe('hole=1');
    expect(getEntry('mat_places512').contract.inputs[1].polarity).toBe('keep=1');
  });
  it('unknown names are a usage error with suggestions', () => {
    let err: any;
    try {
      getEntry('gpen');
    } catch (e) {
      err = e;
    }
    expect(err.kind).toBe('usage');
    expect(err.toLine()).toMatch(/^unknown model 'gpen' \(did you mean gpen_bfr_256, gpen_bfr_512/);
  });
});

describe('contract checks', () => {
  const gpen = getEntry('gpen_bfr_256').contract;
  const t = (name: string, dims: (number | string)[], dtype = 'float32'): FileTensor => ({ name, dims, dtype });
  it('binds roles to names, accepts a missing optional input, refuses unknown inputs and wrong dtypes', () => {
    const ok = checkContract(gpen, { inputs: [t('input', [1, 3, 256, 256])], outputs: [t('output', [1, 3, 256, 256])] });
    expect(ok.problems).toEqual([]);
    expect(ok.inputs.image.name).toBe('input');
    expect(ok.inputs.weight).toBeUndefined();
    const w = checkContract(gpen, { inputs: [t('weight', [1], 'float64'), t('input', [1, 3, 256, 256])], outputs: [t('y', [1, 3, 256, 256])] });
    expect(w.ok).toBe(true);
    expect(w.inputs.weight.name).toBe('weight');
    const extra = checkContract(gpen, { inputs: [t('input', [1, 3, 256, 256]), t('noise', [1, 512])], outputs: [t('y', [1, 3, 256, 256])] });
    expect(extra.problems).toEqual(["the file has an input 'noise' [1,512] the contract does not know how to feed"]);
    const half = checkContract(gpen, { inputs: [t('input', [1, 3, 256, 256], 'float16')], outputs: [t('y', [1, 3, 256, 256])] });
    expect(half.problems[0]).toMatch(/dtype float16, the contract needs float32/);
    const dyn = checkContract(gpen, { inputs: [t('input', ['n', 3, 'h', 'w'])], outputs: [t('y', ['n', 3, 'h', 'w'])] });
    expect(dyn.ok).toBe(true); // names and ranks fit: accepted only after a probe run (open)
    expect(dyn.open[0]).toBe("input 'input' (image) has shape [n,3,h,w] where the contract fixes [1,3,256,256]");
  });
  it('binds unnamed roles by rank (swap models: target image vs source vector)', () => {
    const c = getEntry('simswap_256').contract;
    const r = checkContract(c, { inputs: [t('id', [1, 512]), t('img', [1, 3, 256, 256])], outputs: [t('o', [1, 3, 256, 256])] });
    expect(r.problems).toEqual([]);
    expect(r.inputs.target.name).toBe('img');
    expect(r.inputs.source.name).toBe('id');
  });
});

describe('registry with real ONNX files', () => {
  beforeEach(() => {
    for (const f of ['gpen_bfr_256.onnx', 'codeformer.onnx']) if (existsSync(path.join(dir, f))) unlinkSync(path.join(dir, f));
  });

  it('every user-supplied family accepts a file that fits its contract (names, shapes, dtypes, extra inputs)', async () => {
    for (const e of loadManifest().filter((m) => m.source.kind === 'user' && m.task !== 'upscale')) {
      const file = writeModel(path.join(dir, 'fits'), e.file, modelFor(e));
      const r = await verifyModel(file, { as: e.name });
      expect(r.problems, e.name).toEqual([]);
      const m = await openModel(e.name, { device: 'cpu', file });
      expect(Object.keys(m.inputs).length, e.name).toBeGreaterThan(0);
    }
  });

  it('fresh folder: embedded models available, user models missing with how to add them', async () => {
    const names = (await installedModels()).map((m) => m.entry.name);
    expect(names).toEqual(expect.arrayContaining(['rdn_medium_x4', 'rdn_slim_x4', 'face_detection_short_range', 'face_landmark', 'faceres']));
    expect(names).not.toContain('gpen_bfr_256');
    expect(modelStatus(getEntry('gpen_bfr_256'))).toMatchObject({ state: 'missing' });
    const { data, text } = await modelsList({ json: true });
    const row = (n: string) => data.models.find((r) => r.name === n)!;
    expect(row('rdn_medium_x4').state).toBe('embedded');
    expect(row('face_landmark').state).toMatch(/embedded|installed/);
    expect(row('gpen_bfr_256')).toMatchObject({ state: 'missing', note: expect.stringMatching(/restore models pull gpen_bfr_256, or restore models add <file\.onnx> --as gpen_bfr_256/) });
    expect(row('swinir_x4').note).toMatch(/restore models add <file\.onnx> --as swinir_x4 \(no official ONNX/);
    expect(data.stages.upscale).toBe('lanczos (fallback)'); // auto = ffmpeg Lanczos + back-projection since 4bcf916
    expect(data.stages['restore-face']).toMatch(/skipped/);
    expect(text).toMatch(/gpen_bfr_256\s+face-restore\s+missing/);
    expect(text).toMatch(/rdn_medium_x4\s+upscale\s+embedded \(npm\)/);
  });

  it('embedded models convert on first use and pass their contracts (MediaPipe detector/mesh, RDN)', async () => {
    for (const n of ['face_detection_short_range', 'face_landmark', 'rdn_slim_x2']) {
      const r = await verifyModel(n);
      expect(r.problems, n).toEqual([]);
      expect(r.path.startsWith(dir), n).toBe(true);
      expect(modelStatus(getEntry(n)).state, n).toBe('installed');
    }
    const det = await openModel('face_detection_short_range', { device: 'cpu' });
    expect(det.inputs.image.dims).toEqual([1, 128, 128, 3]);
    expect(det.outputs.scores.dims).toEqual([1, 896, 1]);
  });

  it('verify and open refuse wrong files with the mismatch named; a truncated file is not a crash', async () => {
    const good = affineImageModel({ dims: [1, 3, 256, 256], a: [1, 1, 1], b: [0, 0, 0] });
    writeModel(dir, 'gpen_bfr_256.onnx', good);
    const ok = await modelsVerify('gpen_bfr_256');
    expect(ok.ok).toBe(true);
    expect(ok.text).toMatch(/^ok\s+gpen_bfr_256/);
    expect(ok.data[0].sha256).toBe(createHash('sha256').update(good).digest('hex'));

    writeModel(dir, 'gpen_bfr_256.onnx', affineImageModel({ dims: [1, 3, 224, 224], a: [1, 1, 1], b: [0, 0, 0], inputName: 'img' }));
    const bad = await modelsVerify('gpen_bfr_256');
    expect(bad.ok).toBe(false);
    expect(bad.data[0].problems).toEqual([
      "no input named 'input' (image); the file's inputs are 'img'",
      "the file has an input 'img' [1,3,224,224] the contract does not know how to feed",
      "output 'output' (image) has shape [1,3,224,224], the contract needs [1,3,256,256] (dim 2: 224 ≠ 256, dim 3: 224 ≠ 256)",
    ]);
    await expect(openModel('gpen_bfr_256', { device: 'cpu' })).rejects.toThrow(/gpen_bfr_256 .* does not match its contract: no input named 'input'/);

    writeModel(dir, 'gpen_bfr_256.onnx', good.subarray(0, Math.floor(good.length / 2)));
    const trunc = await verifyModel('gpen_bfr_256');
    expect(trunc.ok).toBe(false);
    expect(trunc.problems[0]).toMatch(/gpen_bfr_256\.onnx: not a loadable ONNX model/);
    await expect(openModel('gpen_bfr_256', { device: 'cpu' })).rejects.toMatchObject({ kind: 'model' });
  });

  it('openModel uses the published fp16 variant when asked and installed, else the fp32 file', async () => {
    const e = getEntry('realesrgan_x4');
    writeModel(dir, 'real_esrgan_x4.onnx', affineImageModel({ dims: [1, 3, 'h', 'w'], scale: 4, a: [1, 1, 1], b: [0, 0, 0] }));
    expect((await openModel(e.name, { device: 'cpu', fp16: true })).path).toBe(path.join(dir, 'real_esrgan_x4.onnx'));
    writeModel(dir, e.fp16!.file, affineImageModel({ dims: [1, 3, 'h', 'w'], scale: 4, a: [1, 1, 1], b: [0, 0, 0] }));
    expect((await openModel(e.name, { device: 'cpu', fp16: true })).path).toBe(path.join(dir, 'real_esrgan_x4_fp16.onnx'));
    expect((await openModel(e.name, { device: 'cpu' })).path).toBe(path.join(dir, 'real_esrgan_x4.onnx'));
    rmSync(path.join(dir, e.fp16!.file));
    rmSync(path.join(dir, 'real_esrgan_x4.onnx'));
  });

  it('models add: copies a fitting file under the manifest name, refuses a wrong one', async () => {
    const src = writeModel(path.join(dir, 'incoming'), 'my-codeformer.onnx', affineImageModel({ dims: [1, 3, 512, 512], a: [1, 1, 1], b: [0, 0, 0], weightInput: 'weight' }));
    const r = await modelsAdd(src, { as: 'codeformer' });
    expect(r.data.path).toBe(path.join(dir, 'codeformer.onnx'));
    expect(readFileSync(r.data.path)).toEqual(readFileSync(src));
    expect(modelStatus(getEntry('codeformer')).state).toBe('installed');
    const wrong = writeModel(path.join(dir, 'incoming'), 'not-gpen.onnx', affineImageModel({ dims: [1, 3, 512, 512], a: [1, 1, 1], b: [0, 0, 0] }));
    await expect(modelsAdd(wrong, { as: 'gpen_bfr_256' })).rejects.toThrow(/not-gpen\.onnx is not a usable gpen_bfr_256: input 'input' \(image\) has shape \[1,3,512,512\]/);
    expect(existsSync(path.join(dir, 'gpen_bfr_256.onnx'))).toBe(false);
    await expect(modelsAdd(path.join(dir, 'nope.onnx'), { as: 'codeformer' })).rejects.toMatchObject({ kind: 'input' });
  });
});

describe('models pull (local HTTP server on 127.0.0.1)', () => {
  const body = Buffer.from(affineImageModel({ dims: [1, 3, 'h', 'w'], scale: 2, a: [1, 1, 1], b: [0, 0, 0] }));
  const sha = createHash('sha256').update(body).digest('hex');
  let server: http.Server;
  let base: string;
  const ranges: (string | undefined)[] = [];
  let cutAfter: number | undefined; // close the socket after this many bytes (once)

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/missing.onnx') {
        res.writeHead(404).end();
        return;
      }
      if (req.url === '/redirect') {
        res.writeHead(302, { location: '/model.onnx' }).end();
        return;
      }
      ranges.push(req.headers.range);
      let start = 0;
      const m = /bytes=(\d+)-/.exec(req.headers.range ?? '');
      if (m) {
        start = Number(m[1]);
        if (start >= body.length) {
          res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
          return;
        }
        res.writeHead(206, { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}`, 'content-length': body.length - start });
      } else res.writeHead(200, { 'content-length': body.length });
      const chunk = body.subarray(start);
      if (cutAfter !== undefined) {
        const n = cutAfter;
        cutAfter = undefined;
        res.write(chunk.subarray(0, n), () => res.socket?.end()); // FIN after the bytes: they all arrive, then the body is short
        return;
      }
      res.end(chunk);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  const dest = () => modelPath(getEntry('realesrgan_x2'));
  beforeEach(() => {
    ranges.length = 0;
    rmSync(dest(), { force: true });
    rmSync(`${dest()}.part`, { force: true });
  });

  it('downloads, checks sha256 and the contract, renames into place; follows redirects', async () => {
    const seen: number[] = [];
    const r = await modelsPull('realesrgan_x2', { url: `${base}/redirect`, sha256: sha, onProgress: (d) => seen.push(d) });
    expect(r.data).toMatchObject({ bytes: body.length, sha256: sha, resumedFrom: 0, sha256Checked: true });
    expect(readFileSync(dest())).toEqual(body);
    expect(seen.at(-1)).toBe(body.length);
    expect(existsSync(`${dest()}.part`)).toBe(false);
    expect(r.text).toMatch(/sha256 [0-9a-f]{64} matches/);
  });

  it('an interrupted download keeps its .part and the next pull resumes with a Range request', async () => {
    cutAfter = Math.floor(body.length / 2);
    await expect(modelsPull('realesrgan_x2', { url: `${base}/model.onnx`, sha256: sha })).rejects.toMatchObject({
      kind: 'model',
      message: expect.stringMatching(/^download of realesrgan_x2 from http:\/\/127\.0\.0\.1:\d+\/model\.onnx (stopped at \d+ of \d+ bytes|is incomplete)/),
      hint: expect.stringMatching(/again to resume/),
    });
    const partial = statSync(`${dest()}.part`).size;
    expect(partial).toBe(Math.floor(body.length / 2)); // every byte that arrived was kept
    const r = await modelsPull('realesrgan_x2', { url: `${base}/model.onnx`, sha256: sha });
    expect(ranges.at(-1)).toBe(`bytes=${partial}-`);
    expect(r.data.resumedFrom).toBe(partial);
    expect(readFileSync(dest())).toEqual(body);
  });

  it('a sha256 mismatch is refused and removed; HTTP errors are one line', async () => {
    const wrong = '0'.repeat(64);
    await expect(modelsPull('realesrgan_x2', { url: `${base}/model.onnx`, sha256: wrong })).rejects.toThrow(
      new RegExp(`sha256 ${sha}, expected ${wrong}; removed`),
    );
    expect(existsSync(dest())).toBe(false);
    expect(existsSync(`${dest()}.part`)).toBe(false);
    await expect(modelsPull('realesrgan_x2', { url: `${base}/missing.onnx` })).rejects.toThrow(/answered HTTP 404/);
    await expect(modelsPull('swinir_x4')).rejects.toThrow(/swinir_x4 has no published download URL/);
  });

  it('a download that is not the model (contract) is refused and removed', async () => {
    // serve a GPEN-shaped model as Real-ESRGAN x2
    const gp = Buffer.from(affineImageModel({ dims: [1, 3, 256, 256], a: [1, 1, 1], b: [0, 0, 0], inputName: 'x' }));
    const srv = http.createServer((_q, s) => s.end(gp));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/x.onnx`;
    await expect(modelsPull('realesrgan_x2', { url })).rejects.toThrow(/does not match its contract: no input named 'input'/);
    expect(existsSync(dest())).toBe(false);
    await new Promise<void>((r) => srv.close(() => r()));
  });
});

describe('a wrong model is refused (probe inference at the contract size)', () => {
  it('the embedded RDN x4 file as gpen_bfr_256: add, verify and load name the mismatch; nothing installed', async () => {
    const rdn = await ensureModelFile(getEntry('rdn_medium_x4'));
    const t0 = performance.now();
    const mismatch = /a probe run at the contract's input 'input' \[1,3,256,256\] gave output 'output' \(image\) of shape \[1,3,1024,1024\], the contract needs \[1,3,256,256\]/;
    await expect(modelsAdd(rdn, { as: 'gpen_bfr_256' })).rejects.toMatchObject({ kind: 'model', message: expect.stringMatching(mismatch) });
    expect(existsSync(modelPath(getEntry('gpen_bfr_256')))).toBe(false);
    const v = await modelsVerify(rdn, { as: 'gpen_bfr_256' });
    expect(v.ok).toBe(false);
    expect(v.data[0].problems).toEqual([expect.stringMatching(mismatch)]);
    await expect(openModel('gpen_bfr_256', { device: 'cpu', file: rdn })).rejects.toThrow(mismatch);
    console.log(`rdn_medium_x4 refused as gpen_bfr_256 by add, verify and load in ${(performance.now() - t0).toFixed(0)} ms`);
  });

  it('open dims with a model that runs like the contract says are accepted; a wrong output range is not', async () => {
    const fits = writeModel(path.join(dir, 'probe'), 'free-batch.onnx', affineImageModel({ dims: ['n', 3, 256, 256], a: [1, 1, 1], b: [0, 0, 0] }));
    expect((await verifyModel(fits, { as: 'gpen_bfr_256' })).problems).toEqual([]);
    expect((await openModel('gpen_bfr_256', { device: 'cpu', file: fits })).inputs.image.name).toBe('input');
    // right shape, but 0..255 out where [-1,1] is promised
    const range = writeModel(path.join(dir, 'probe'), 'wrong-range.onnx', affineImageModel({ dims: [1, 3, 256, 256], a: [127.5, 127.5, 127.5], b: [127.5, 127.5, 127.5] }));
    const r = await verifyModel(range, { as: 'gpen_bfr_256' });
    expect(r.problems).toEqual([expect.stringMatching(/gave output 'output' \(image\) values in \[\d.*\], the contract's range is \[-1, 1\]/)]);
    await expect(modelsAdd(range, { as: 'gpen_bfr_256' })).rejects.toThrow(/not a usable gpen_bfr_256: a probe run .* values in/);
  });

  it('an upscaler probes at a small size and its output must be scale x the input', async () => {
    const x2 = writeModel(path.join(dir, 'probe'), 'x2.onnx', affineImageModel({ dims: [1, 3, 'h', 'w'], scale: 2, a: [1, 1, 1], b: [0, 0, 0] }));
    expect((await verifyModel(x2, { as: 'realesrgan_x2' })).problems).toEqual([]);
    const r = await verifyModel(x2, { as: 'realesrgan_x4' });
    expect(r.problems).toEqual([expect.stringMatching(/gave output 'output' \(image\) of shape \[1,3,64,64\], the contract needs \[1,3,128,128\]/)]);
  });
});

describe('models remove', () => {
  it('deletes an installed file (and its fp16 variant); nothing installed is one model error', async () => {
    const e = getEntry('realesrgan_x4');
    writeModel(dir, e.file, affineImageModel({ dims: [1, 3, 'h', 'w'], scale: 4, a: [1, 1, 1], b: [0, 0, 0] }));
    writeModel(dir, e.fp16!.file, affineImageModel({ dims: [1, 3, 'h', 'w'], scale: 4, a: [1, 1, 1], b: [0, 0, 0] }));
    const r = await modelsRemove('realesrgan_x4');
    expect(r.data.removed.sort()).toEqual([path.join(dir, e.file), path.join(dir, e.fp16!.file)].sort());
    expect(r.text).toMatch(/add it again with: restore models pull realesrgan_x4/);
    expect(modelStatus(e).state).toBe('missing');
    await expect(modelsRemove('realesrgan_x4')).rejects.toMatchObject({ kind: 'model', message: expect.stringMatching(/realesrgan_x4 is not installed: nothing to remove/) });
    await expect(modelsRemove('nope')).rejects.toMatchObject({ kind: 'usage' });
  });

  it('an embedded model: its converted file is removed and made again at next use', async () => {
    const e = getEntry('rdn_slim_x2');
    const p = await ensureModelFile(e);
    const r = await modelsRemove('rdn_slim_x2');
    expect(r.data).toMatchObject({ removed: [p], embedded: true });
    expect(r.text).toMatch(/converted again at next use/);
    expect(modelStatus(e).state).toBe('embedded');
    expect(await ensureModelFile(e)).toBe(p);
  });
});
