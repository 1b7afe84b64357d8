import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Command } from 'commander';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { FaceAnalyzer, usableSmall } from '../src/faces/analyzer.js';
import { ssdAnchors, SHORT_RANGE, FULL_RANGE, letterbox } from '../src/faces/blazeface.js';
import { TargetSelector } from '../src/faces/select.js';
import type { Face } from '../src/faces/types.js';
import { decodeFrames } from '../src/media/decode.js';
import type { RgbFrame } from '../src/media/frame.js';
import { probeVideo } from '../src/media/probe.js';
import { fixturesDir } from '../src/util/paths.js';
import { analyzeFaces, facesResultJson, registerFacesCommand } from '../src/cli/commands/faces.js';
import { alignFace, pasteBack } from '../src/faces/align.js';
import { faceOutline } from '../src/faces/mesh.js';
import { benchFaces } from '../src/bench/faces.js';
import { createFacesStage } from '../src/stages/faces.js';
import type { FrameItem, RestoreOptions, RunContext } from '../src/stages/types.js';
import { silentLogger } from '../src/util/log.js';

const ann = JSON.parse(readFileSync(path.join(fixturesDir, 'videos', 'annotations.json'), 'utf8'));
const portraitPath = path.join(fixturesDir, 'source', 'astronaut.png');

async function loadPng(p: string): Promise<RgbFrame> {
  const { data, info } = await sharp(p).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

async function clipFrames(name: string): Promise<RgbFrame[]> {
  const info = await probeVideo(path.join(fixturesDir, 'videos', name));
  const out: RgbFrame[] = [];
  for await (const f of decodeFrames(info)) out.push(f);
  return out;
}

function fiveError(five: { x: number; y: number }[], truth: number[][]) {
  const d = five.map((p, k) => Math.hypot(p.x - truth[k][0], p.y - truth[k][1]));
  return { mean: d.reduce((a, b) => a + b, 0) / d.length, max: Math.max(...d), per: d };
}

let analyzer: FaceAnalyzer;
const results: Record<string, Face[][]> = {};
const tmp = mkdtempSync(path.join(os.tmpdir(), 'restore-faces-'));

beforeAll(async () => {
  analyzer = await FaceAnalyzer.create({ device: 'cpu' });
  for (const clip of ['astronaut-pan.mp4', 'astronaut-turn.mp4']) {
    const frames = await clipFrames(clip);
    results[clip] = [];
    for (const f of frames) results[clip].push(await analyzer.analyze(f));
  }
}, 120_000);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('BlazeFace decoding', () => {
  it('makes 896 short-range and 2304 full-range anchors on the right grids', () => {
    const a = ssdAnchors(SHORT_RANGE);
    expect(a.length).toBe(896 * 2);
    expect([a[0], a[1]]).toEqual([0.5 / 16, 0.5 / 16]);
    expect([a[2], a[3]]).toEqual([0.5 / 16, 0.5 / 16]); // 2 anchors per cell at stride 8
    expect([a[512 * 2], a[512 * 2 + 1]]).toEqual([0.5 / 8, 0.5 / 8]); // stride-16 grid starts at 512
    expect(ssdAnchors(FULL_RANGE).length).toBe(2304 * 2);
  });
  it('letterboxes: image centred, padding exactly -1, values in [-1, 1]', () => {
    const f: RgbFrame = { width: 200, height: 100, data: new Uint8Array(200 * 100 * 3).fill(255) };
    const lb = letterbox(f, 128);
    expect(lb.scale).toBeCloseTo(0.64, 6);
    expect(lb.offsetY).toBeCloseTo(32, 6);
    expect(lb.tensor[(10 * 128 + 64) * 3]).toBe(-1); // top padding
    expect(lb.tensor[(64 * 128 + 64) * 3]).toBeCloseTo(1, 5); // inside
    expect(lb.tensor[(120 * 128 + 64) * 3]).toBe(-1); // bottom padding
  });
});

describe('FaceAnalyzer on real faces', () => {
  it('finds exactly one face in every frame of both fixture clips, with a confident mesh', () => {
    for (const clip of Object.keys(results)) {
      const r = results[clip];
      expect(r.length).toBe(48);
      const counts = r.map((f) => f.length);
      expect(counts.every((c) => c === 1), `${clip}: faces per frame ${counts.join(',')}`).toBe(true);
      for (const [f] of r) {
        expect(f.mesh!.length).toBe(468 * 3);
        expect(f.landmarkScore!).toBeGreaterThan(0.9);
        expect(f.score).toBeGreaterThan(0.8);
      }
    }
    console.log(`analyzer timings over 96 frames: ${JSON.stringify(analyzer.timings)}`);
  });

  it('puts the five points within a few pixels of the hand annotations', async () => {
    const rows: string[] = [];
    const all: number[] = [];
    for (const clip of Object.keys(results)) {
      const errs = results[clip].map(([f], i) => fiveError(f.five, ann.clips[clip].frames[i]));
      const mean = errs.reduce((a, e) => a + e.mean, 0) / errs.length;
      const max = Math.max(...errs.map((e) => e.max));
      const perPoint = [0, 1, 2, 3, 4].map((k) => errs.reduce((a, e) => a + e.per[k], 0) / errs.length);
      rows.push(`${clip}: mean ${mean.toFixed(2)} px, max ${max.toFixed(2)} px, per point ${perPoint.map((v) => v.toFixed(2)).join(' / ')} (face ~140 px)`);
      all.push(...errs.map((e) => e.mean));
      expect(mean).toBeLessThan(3);
      expect(max).toBeLessThan(6);
    }
    const portrait = await analyzer.analyze(await loadPng(portraitPath));
    expect(portrait.length).toBe(1);
    const pe = fiveError(portrait[0].five, ann.source.five);
    rows.push(`portrait: mean ${pe.mean.toFixed(2)} px, max ${pe.max.toFixed(2)} px (face ~95 px)`);
    expect(pe.mean).toBeLessThan(3);
    // the hand checks of two clip frames agree with the mapped annotations
    for (const c of ann.checks) expect(c.maxDistanceToMapped).toBeLessThanOrEqual(1.5);
    console.log(`five-point error vs hand annotation:\n  ${rows.join('\n  ')}`);
  });

  it('orders the five points right eye, left eye, nose, right mouth, left mouth (image left first in a frontal view)', () => {
    const [f] = results['astronaut-pan.mp4'][0];
    const [re, le, nose, rm, lm] = f.five;
    expect(re.x).toBeLessThan(le.x);
    expect(rm.x).toBeLessThan(lm.x);
    expect(nose.y).toBeGreaterThan((re.y + le.y) / 2);
    expect((rm.y + lm.y) / 2).toBeGreaterThan(nose.y);
    for (const p of f.five) {
      expect(p.x).toBeGreaterThan(f.box.x);
      expect(p.x).toBeLessThan(f.box.x + f.box.width);
    }
  });

  it('finds the face in every frame of the x4-degraded 96x96 cases', async () => {
    for (const c of ['pan-x4', 'turn-x4']) {
      const frames = await clipFrames(`cases/${c}/input.mp4`);
      let found = 0;
      for (const f of frames) if ((await analyzer.analyze(f)).length === 1) found++;
      console.log(`${c}: face in ${found}/${frames.length} frames at 96x96 with painted regions`);
      expect(found).toBeGreaterThanOrEqual(frames.length - 1);
    }
  }, 60_000);

  it('returns no face (and no error) for an image without a face', async () => {
    const noFace = await sharp(portraitPath).extract({ left: 360, top: 0, width: 152, height: 300 }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const frame: RgbFrame = { width: noFace.info.width, height: noFace.info.height, data: new Uint8Array(noFace.data) };
    expect(await analyzer.analyze(frame)).toEqual([]);
    const grey: RgbFrame = { width: 320, height: 240, data: new Uint8Array(320 * 240 * 3).fill(128) };
    expect(await analyzer.analyze(grey)).toEqual([]);
  });

  it('detects on the input-size frame when given (the upscale stage input), meshes on the large one', async () => {
    // the faces stage runs after upscaling: detection on the 4x smaller frame skips most of the
    // letterbox's work and must find the same faces, mapped onto the large frame
    const frames = (await clipFrames('astronaut-pan.mp4')).slice(0, 6);
    const up = (p: { x: number; y: number }) => ({ x: (p.x + 0.5) * 4 - 0.5, y: (p.y + 0.5) * 4 - 0.5 });
    let worst = 0, worstAnn = 0;
    for (const [i, f] of frames.entries()) {
      const big = await sharp(Buffer.from(f.data), { raw: { width: f.width, height: f.height, channels: 3 } }).resize(f.width * 4, f.height * 4, { kernel: 'lanczos3' }).raw().toBuffer();
      const large: RgbFrame = { width: f.width * 4, height: f.height * 4, data: new Uint8Array(big) };
      const before = { ...analyzer.timings };
      const viaSmall = await analyzer.analyze(large, f);
      const direct = await analyzer.analyze(large);
      expect(analyzer.timings.detectCalls).toBe(before.detectCalls + 2);
      expect(analyzer.timings.smallCalls).toBe(before.smallCalls + 1);
      expect(viaSmall.length).toBe(1);
      expect(direct.length).toBe(1);
      // in the large frame's pixels: the box and the mesh agree with detection on the large frame
      const a = viaSmall[0], b = direct[0];
      expect(Math.abs(a.box.x - b.box.x)).toBeLessThan(0.04 * b.box.width);
      expect(Math.abs(a.box.width / b.box.width - 1)).toBeLessThan(0.05);
      worst = Math.max(worst, fiveError(a.five, b.five.map((p) => [p.x, p.y])).max);
      worstAnn = Math.max(worstAnn, fiveError(a.five, ann.clips['astronaut-pan.mp4'].frames[i].map(([x, y]: number[]) => { const p = up({ x, y }); return [p.x, p.y]; })).mean);
    }
    console.log(`detection on the small frame: five points within ${worst.toFixed(2)} px of detection on the 4x frame; mean error vs annotation ${worstAnn.toFixed(2)} px at 4x (worst frame)`);
    expect(worst).toBeLessThan(4); // at 4x: ~1 px of the small frame
    expect(worstAnn).toBeLessThan(12); // the annotation bound of the small frame (3 px), at 4x
  });

  it('uses the small frame only when it can stand for the large one', () => {
    const fr = (w: number, h: number): RgbFrame => ({ width: w, height: h, data: new Uint8Array(0) });
    expect(usableSmall(fr(480, 480), fr(120, 120), 128)).toBe(true);
    expect(usableSmall(fr(480, 360), fr(120, 90), 128)).toBe(true);
    expect(usableSmall(fr(480, 480), fr(480, 480), 128)).toBe(false); // not smaller
    expect(usableSmall(fr(512, 512), fr(64, 64), 128)).toBe(false); // below 3/4 of the detector's input: the large frame has more
    expect(usableSmall(fr(480, 480), fr(120, 160), 128)).toBe(false); // another aspect: not the same picture
  });

  it('finds a small face in a large frame (full-range model / tiled fallback)', async () => {
    const small = await sharp(portraitPath).resize(300, 300).removeAlpha().raw().toBuffer();
    const big = await sharp({ create: { width: 1024, height: 1024, channels: 3, background: { r: 90, g: 100, b: 110 } } })
      .composite([{ input: small, raw: { width: 300, height: 300, channels: 3 }, left: 500, top: 600 }])
      .removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const frame: RgbFrame = { width: 1024, height: 1024, data: new Uint8Array(big.data) };
    const before = analyzer.timings.fullRangeCalls;
    const faces = await analyzer.analyze(frame);
    expect(faces.length).toBe(1);
    expect(analyzer.timings.fullRangeCalls).toBe(before + 1);
    // the face of the 300 px portrait: eyes at ~ (500 + 202*300/512, 600 + 101*300/512)
    const want = ann.source.five.map(([x, y]: number[]) => [500 + ((x + 0.5) * 300) / 512 - 0.5, 600 + ((y + 0.5) * 300) / 512 - 0.5]);
    const e = fiveError(faces[0].five, want);
    console.log(`small face (~55 px in 1024x1024): five-point mean error ${e.mean.toFixed(2)} px`);
    expect(e.mean).toBeLessThan(3);
  });
});

describe('target selection', () => {
  const face = (trackId: number, w: number): Face => ({ trackId, box: { x: 0, y: 0, width: w, height: w }, score: 1, keypoints: [], five: [{ x: trackId, y: 0 }] });
  const frame: RgbFrame = { width: 1, height: 1, data: new Uint8Array(3) };
  it('largest keeps one track even when sizes cross briefly', async () => {
    const s = new TargetSelector({ mode: 'largest' });
    expect((await s.select(frame, [face(0, 100), face(1, 80)])).map((f) => f.trackId)).toEqual([0]);
    expect((await s.select(frame, [face(0, 100), face(1, 80)])).map((f) => f.trackId)).toEqual([0]);
    expect((await s.select(frame, [face(0, 90), face(1, 105)])).map((f) => f.trackId)).toEqual([0]); // mean area still larger
    expect((await s.select(frame, [face(1, 105)])).map((f) => f.trackId)).toEqual([1]);
  });
  it('identity keeps the tracks whose descriptor matches', async () => {
    const id = Float32Array.from([1, 0]);
    const describe = async (_f: RgbFrame, five: { x: number }[]) => (five[0].x === 0 ? Float32Array.from([0.8, 0.6]) : Float32Array.from([0, 1]));
    const s = new TargetSelector({ mode: 'identity', identity: id, describe, threshold: 0.5 });
    expect((await s.select(frame, [face(0, 50), face(1, 100)])).map((f) => f.trackId)).toEqual([0]);
    const d = s.decisions();
    expect(d.find((x) => x.trackId === 0)!.similarity).toBeCloseTo(0.8, 5);
    expect(d.find((x) => x.trackId === 1)!.selected).toBe(false);
  });
});

describe('faces stage and `restore faces`', () => {
  it('stage sets item.faces on every frame, in order, with one track', async () => {
    const opts = { device: 'cpu', concurrency: 2 } as RestoreOptions;
    const stage = await createFacesStage(opts, { device: 'cpu', analyzer, lookahead: 3 });
    const frames = (await clipFrames('astronaut-turn.mp4')).slice(0, 20);
    async function* src(): AsyncGenerator<FrameItem> {
      for (const [i, f] of frames.entries()) yield { index: i, time: i / 24, frame: f, input: f };
    }
    const ctx = { signal: new AbortController().signal, device: 'cpu', log: silentLogger } as unknown as RunContext;
    const out: FrameItem[] = [];
    for await (const it of stage.run(src(), ctx)) out.push(it);
    expect(out.map((x) => x.index)).toEqual(frames.map((_, i) => i));
    expect(out.every((x) => x.faces?.length === 1 && x.faces[0].trackId === 0)).toBe(true);
    const rep = stage.report();
    expect(rep.details).toMatchObject({ framesWithFaces: 20, framesWithoutFaces: 0, tracks: 1 });
    console.log(`faces stage: ${rep.msPerFrame} ms/frame; detect ${(rep.details as any).detectMsPerFrame} ms/frame, mesh ${(rep.details as any).meshMsPerFace} ms/face (cumulative analyzer timings)`);
  }, 60_000);

  it('analyzeFaces on a video writes the overlay video and per-frame faces', async () => {
    const out = path.join(tmp, 'overlay.mp4');
    const r = await analyzeFaces(path.join(fixturesDir, 'videos', 'astronaut-pan.mp4'), { device: 'cpu', overlay: out, maxFrames: 12, quiet: true });
    expect(r.frames.length).toBe(12);
    expect(r.framesWithFaces).toBe(12);
    expect(r.tracks.length).toBe(1);
    expect(existsSync(out)).toBe(true);
    const info = await probeVideo(out);
    expect(info.frameCount).toBe(12);
    // the overlay differs from the input where the drawings are
    const [first] = await (async () => { const a: RgbFrame[] = []; for await (const f of decodeFrames(info, { maxFrames: 1 })) a.push(f); return a; })();
    const five = r.frames[0].faces[0].five[0];
    const o = (Math.round(five.y) * first.width + Math.round(five.x)) * 3;
    expect(first.data[o]).toBeGreaterThan(180); // red dot of track 0
  }, 60_000);

  it('analyzeFaces on an image without a face reports zero faces; overlay kind must match', async () => {
    const p = path.join(tmp, 'noface.png');
    await sharp(portraitPath).extract({ left: 360, top: 0, width: 152, height: 300 }).toFile(p);
    const r = await analyzeFaces(p, { device: 'cpu', quiet: true, overlay: path.join(tmp, 'noface-overlay.png') });
    expect(r.kind).toBe('image');
    expect(r.framesWithFaces).toBe(0);
    expect(r.frames[0].faces).toEqual([]);
    expect(existsSync(path.join(tmp, 'noface-overlay.png'))).toBe(true);
    await expect(analyzeFaces(p, { overlay: path.join(tmp, 'x.mp4') })).rejects.toThrow(/overlay must be an image/);
    writeFileSync(path.join(tmp, 'bad.png'), 'not an image');
    await expect(analyzeFaces(path.join(tmp, 'bad.png'), { quiet: true })).rejects.toThrow(/bad\.png: cannot read it as an image/);
  }, 30_000);
});

describe('paste-back with the mesh outline (hull mask)', () => {
  it('changes the face inside its outline, leaves the rest bit-identical, and has no seam', async () => {
    const frame = await loadPng(portraitPath);
    const [face] = await analyzer.analyze(frame);
    const { crop, matrix } = alignFace(frame, face.five, 'arcface_128', 256);
    const bright = { ...crop, data: crop.data.map((v) => Math.min(255, v + 40)) };
    const hull = faceOutline(face.mesh!, matrix, 0.1);
    const out = pasteBack(frame, bright, matrix, { mask: 'hull', hull });
    const diff = new Float32Array(frame.width * frame.height);
    for (let i = 0; i < diff.length; i++) diff[i] = out.data[i * 3 + 1] - frame.data[i * 3 + 1];
    const at = (p: { x: number; y: number }) => diff[Math.round(p.y) * frame.width + Math.round(p.x)];
    expect(at(face.five[2])).toBeGreaterThan(35); // nose: fully replaced
    expect(at({ x: 100, y: 100 })).toBe(0); // background
    expect(at({ x: 224, y: 300 })).toBe(0); // suit below the chin
    let changed = 0;
    for (const v of diff) if (v !== 0) changed++;
    // no seam: on flat images (frame 50, crop 250) the change ramps up over several pixels
    const flatFrame = { ...frame, data: new Uint8Array(frame.data.length).fill(50) };
    const flatCrop = { ...crop, data: new Uint8Array(crop.data.length).fill(250) };
    const flat = pasteBack(flatFrame, flatCrop, matrix, { mask: 'hull', hull });
    let maxStep = 0;
    for (let y = 1; y < frame.height; y++) for (let x = 1; x < frame.width; x++) {
      const i = (y * frame.width + x) * 3;
      maxStep = Math.max(maxStep, Math.abs(flat.data[i] - flat.data[i - 3]), Math.abs(flat.data[i] - flat.data[i - frame.width * 3]));
    }
    const boxFlat = pasteBack(flatFrame, flatCrop, matrix);
    let maxStepBox = 0;
    for (let y = 1; y < frame.height; y++) for (let x = 1; x < frame.width; x++) {
      const i = (y * frame.width + x) * 3;
      maxStepBox = Math.max(maxStepBox, Math.abs(boxFlat.data[i] - boxFlat.data[i - 3]), Math.abs(boxFlat.data[i] - boxFlat.data[i - frame.width * 3]));
    }
    console.log(`hull paste-back: ${changed} px changed; largest step between neighbours for a 200-level change: hull ${maxStep}, box ${maxStepBox}`);
    expect(maxStep).toBeLessThanOrEqual(50); // a hard paste would step by 200
    expect(maxStepBox).toBeLessThanOrEqual(50);
  });
});

describe('output formats and bench', () => {
  it('JSON has per-frame faces with box, five points and mesh', async () => {
    const r = await analyzeFaces(portraitPath, { device: 'cpu', quiet: true });
    const j = facesResultJson(r) as any;
    expect(j.ok).toBe(true);
    expect(j.frames[0].faces[0].mesh.length).toBe(1404);
    expect(j.frames[0].faces[0].five.length).toBe(5);
    expect(j.frames[0].faces[0].trackId).toBe(0);
    expect(Object.keys(j.frames[0].faces[0].box)).toEqual(['x', 'y', 'width', 'height']);
    expect((facesResultJson(r, false) as any).frames[0].faces[0].mesh).toBeUndefined();
  });
  it('benchFaces measures detection, mesh, tracking, align+paste', async () => {
    const b = await benchFaces({ device: 'cpu', frames: 6 });
    console.log(`benchFaces (6 frames, shared 2-core machine): ${JSON.stringify(b)}`);
    for (const k of ['detectMsPerFrame', 'meshMsPerFace', 'analyzeMsPerFrame', 'trackMsPerFrame', 'alignPasteMsPerFace'] as const) expect(b[k]).toBeGreaterThan(0);
    // analyze = detect + mesh on the same frames, timed in separate passes: on a loaded 2-core
    // machine one pass can run ~10% faster than the other (CI saw 21.1 vs 22.9 ms), so allow that
    expect(b.analyzeMsPerFrame).toBeGreaterThan(b.detectMsPerFrame * 0.75);
  }, 60_000);
});

describe('restore faces command', () => {
  async function runCli(args: string[]): Promise<{ code: number | undefined; out: string; err: string }> {
    const program = new Command('restore').exitOverride();
    registerFacesCommand(program);
    let out = '', err = '';
    let code: number | undefined;
    const w1 = vi.spyOn(process.stdout, 'write').mockImplementation(((c: any, cb?: any) => { out += String(c); if (typeof cb === 'function') cb(); return true; }) as any);
    const w2 = vi.spyOn(process.stderr, 'write').mockImplementation(((c: any) => { err += String(c); return true; }) as any);
    const ex = vi.spyOn(process, 'exit').mockImplementation(((c?: number) => { code = c; }) as any);
    try {
      await program.parseAsync(['node', 'restore', 'faces', ...args]);
    } finally {
      w1.mockRestore(); w2.mockRestore(); ex.mockRestore();
    }
    return { code, out, err };
  }
  it('--json prints per-frame faces; exit 0', async () => {
    const r = await runCli([portraitPath, '--json', '--no-mesh', '--device', 'cpu']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.frames[0].faces.length).toBe(1);
    expect(j.frames[0].faces[0].mesh).toBeUndefined();
  });
  it('a missing file is one clear line and exit 1', async () => {
    const r = await runCli([path.join(tmp, 'nope.mp4'), '--device', 'cpu']);
    expect(r.code).toBe(1);
    expect(r.err.trim().split('\n').length).toBe(1);
    expect(r.err).toMatch(/nope\.mp4/);
  });
});
