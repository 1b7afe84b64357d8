import { beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import sharp from 'sharp';
import { FaceAnalyzer } from '../src/faces/analyzer.js';
import { applyAffine, estimateSimilarity, templatePoints, warpAffine, type Affine } from '../src/faces/align.js';
import { FaceTracker } from '../src/faces/track.js';
import type { Face, Point } from '../src/faces/types.js';
import { decodeFrames } from '../src/media/decode.js';
import type { RgbFrame } from '../src/media/frame.js';
import { probeVideo } from '../src/media/probe.js';
import { fixturesDir } from '../src/util/paths.js';
import { readFileSync } from 'node:fs';

const ann = JSON.parse(readFileSync(path.join(fixturesDir, 'videos', 'annotations.json'), 'utf8'));
let analyzer: FaceAnalyzer;
const raw: Record<string, Face[][]> = {};

async function clipFrames(name: string): Promise<RgbFrame[]> {
  const info = await probeVideo(path.join(fixturesDir, 'videos', name));
  const out: RgbFrame[] = [];
  for await (const f of decodeFrames(info)) out.push(f);
  return out;
}

beforeAll(async () => {
  analyzer = await FaceAnalyzer.create({ device: 'cpu' });
  for (const clip of ['astronaut-pan.mp4', 'astronaut-turn.mp4']) {
    raw[clip] = [];
    for (const f of await clipFrames(clip)) raw[clip].push(await analyzer.analyze(f));
  }
}, 120_000);

/** Run the tracker in look-ahead mode over per-frame detections; returns faces per frame. */
function track(frames: Face[][], t: FaceTracker): Face[][] {
  const out: Face[][] = new Array(frames.length);
  for (const [i, faces] of frames.entries()) for (const r of t.push(i, faces)) out[r.index] = r.faces;
  for (const r of t.flush()) out[r.index] = r.faces;
  return out;
}

/**
 * Jitter of the aligned-crop landmarks: each frame's 468 mesh points mapped into its own
 * arcface_128@256 crop (the alignment a restorer would use); mean frame-to-frame movement in
 * crop pixels. The fixture clips are rigid similarity transforms of a still portrait, so the
 * true movement is zero: all of it is landmark noise.
 */
function alignedJitter(frames: Face[][]): number {
  const tpl = templatePoints('arcface_128', 256);
  let prev: Point[] | undefined, sum = 0, n = 0;
  for (const [f] of frames) {
    const m: Affine = estimateSimilarity(f.five, tpl);
    const pts: Point[] = [];
    for (let i = 0; i < 468; i++) pts.push(applyAffine(m, { x: f.mesh![i * 3], y: f.mesh![i * 3 + 1] }));
    if (prev) {
      for (let i = 0; i < 468; i++) sum += Math.hypot(pts[i].x - prev[i].x, pts[i].y - prev[i].y);
      n += 468;
    }
    prev = pts;
  }
  return sum / n;
}

/** Lag (frames) of a trajectory behind the truth: argmin over tau of the offset-free squared error. */
function lagFrames(s: number[], g: number[]): number {
  let best = 0, bestErr = Infinity;
  for (let tau = -3; tau <= 3.0001; tau += 0.05) {
    const d: number[] = [];
    for (let t = 4; t < s.length - 4; t++) {
      const u = t - tau, i0 = Math.floor(u), fu = u - i0;
      d.push(s[t] - (g[i0] * (1 - fu) + g[i0 + 1] * fu));
    }
    const mean = d.reduce((a, b) => a + b, 0) / d.length;
    const err = d.reduce((a, b) => a + (b - mean) ** 2, 0);
    if (err < bestErr) { bestErr = err; best = tau; }
  }
  return best;
}

describe('smoothing on the fixture clips', () => {
  it('reduces aligned-crop landmark jitter by a measured factor, with no lag on a moving face', () => {
    const lines: string[] = [];
    for (const clip of ['astronaut-pan.mp4', 'astronaut-turn.mp4']) {
      const off = track(raw[clip], new FaceTracker({ smoothing: 0 }));
      const on = track(raw[clip], new FaceTracker({ smoothing: 1.5 }));
      const causal = new FaceTracker({ smoothing: 1.5 });
      const onCausal = raw[clip].map((faces, i) => causal.update(i, faces));
      const jOff = alignedJitter(off), jOn = alignedJitter(on), jCausal = alignedJitter(onCausal);
      // lag on the moving face: pan = centroid of the five points (x, y); turn = roll angle of the
      // eye line (the face turns about its own centre); both against the annotated trajectory
      const signals = (fr: Face[][]): number[][] =>
        clip.includes('pan')
          ? [fr.map(([f]) => f.five.reduce((a, p) => a + p.x, 0) / 5), fr.map(([f]) => f.five.reduce((a, p) => a + p.y, 0) / 5)]
          : [fr.map(([f]) => (Math.atan2(f.five[1].y - f.five[0].y, f.five[1].x - f.five[0].x) * 180) / Math.PI)];
      const tr = ann.clips[clip].frames as number[][][];
      const truth: number[][] = clip.includes('pan')
        ? [tr.map((fv) => fv.reduce((a, p) => a + p[0], 0) / 5), tr.map((fv) => fv.reduce((a, p) => a + p[1], 0) / 5)]
        : [tr.map((fv) => (Math.atan2(fv[1][1] - fv[0][1], fv[1][0] - fv[0][0]) * 180) / Math.PI)];
      const lag = (fr: Face[][]) => Math.max(...signals(fr).map((sig, k) => Math.abs(lagFrames(sig, truth[k]))));
      const lOff = lag(off), lOn = lag(on), lCausal = lag(onCausal);
      lines.push(`${clip}: jitter ${jOff.toFixed(3)} -> ${jOn.toFixed(3)} px/frame (x${(jOff / jOn).toFixed(2)} less; causal One Euro x${(jOff / jCausal).toFixed(2)}), lag raw ${lOff.toFixed(2)}, smoothed ${lOn.toFixed(2)}, causal ${lCausal.toFixed(2)} frames`);
      console.log(lines[lines.length - 1]);
      expect(off.every((f) => f.length === 1 && f[0].trackId === 0)).toBe(true);
      expect(jOn).toBeLessThan(jOff / 1.5);
      expect(jCausal).toBeLessThan(jOff / 1.2);
      expect(lOn).toBeLessThanOrEqual(1);
      expect(lCausal).toBeLessThanOrEqual(1);
    }
    console.log(`smoothing (sigma 1.5 frames, look-ahead 4):\n  ${lines.join('\n  ')}`);
  });

  it('smoothing 0 leaves the landmarks as detected', () => {
    const clip = raw['astronaut-turn.mp4'];
    const off = track(clip, new FaceTracker({ smoothing: 0 }));
    off.forEach(([f], i) => {
      expect(f.five).toEqual(clip[i][0].five);
      expect(f.mesh).toBe(clip[i][0].mesh);
    });
  });
});

const F = (x: number, y: number, w = 100): Face => ({
  trackId: -1,
  box: { x, y, width: w, height: w },
  score: 0.9,
  keypoints: [],
  five: [{ x: x + 0.3 * w, y: y + 0.4 * w }, { x: x + 0.7 * w, y: y + 0.4 * w }, { x: x + 0.5 * w, y: y + 0.6 * w }, { x: x + 0.35 * w, y: y + 0.8 * w }, { x: x + 0.65 * w, y: y + 0.8 * w }],
});

describe('tracking', () => {
  it('fills a missed detection from its neighbours and marks it interpolated', () => {
    const frames = [[F(0, 0)], [F(10, 0)], [], [], [F(40, 0)], [F(50, 0)]];
    const out = track(frames, new FaceTracker({ smoothing: 0, lookahead: 3 }));
    expect(out.map((f) => f.length)).toEqual([1, 1, 1, 1, 1, 1]);
    expect(out[2][0].interpolated).toBe(true);
    expect(out[2][0].box.x).toBeCloseTo(20, 9);
    expect(out[3][0].box.x).toBeCloseTo(30, 9);
    expect(new Set(out.flat().map((f) => f.trackId))).toEqual(new Set([0]));
  });

  it('a face that leaves the frame ends its track; when it comes back much later it is a new track', async () => {
    // the portrait slides left out of a 320x320 frame, stays out, then slides back in
    const { data, info } = await sharp(path.join(fixturesDir, 'source', 'astronaut.png')).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const src: RgbFrame = { width: info.width, height: info.height, data: new Uint8Array(data) };
    const shift = (i: number) => (i < 14 ? -120 - 25 * i : i < 26 ? -600 : -600 + 40 * (i - 26));
    const t = new FaceTracker({ smoothing: 1.5, lookahead: 4 });
    const out: Face[][] = [];
    const counts: number[] = [];
    for (let i = 0; i < 42; i++) {
      // frame (u,v) shows source (u - shift, v + 0): face centre x ~224 + shift
      const frame = warpAffine(src, [0.8, 0, shift(i) * 0.8 + 40, 0, 0.8, 0], 320, 320, 'bilinear');
      const faces = await analyzer.analyze(frame);
      counts.push(faces.length);
      for (const r of t.push(i, faces)) out[r.index] = r.faces;
    }
    for (const r of t.flush()) out[r.index] = r.faces;
    const ids = out.map((f) => f.map((x) => x.trackId).join(',') || '-');
    console.log(`face leaving the frame: detections ${counts.join('')}; track ids ${ids.join(' ')}`);
    expect(counts.slice(0, 4).every((c) => c === 1)).toBe(true);
    expect(counts.slice(16, 26).every((c) => c === 0)).toBe(true);
    expect(counts.slice(37).every((c) => c === 1)).toBe(true);
    expect(out.slice(16, 26).every((f) => f.length === 0)).toBe(true); // nothing invented while it is away
    const summary = t.summary();
    expect(summary.length).toBe(2);
    expect(out[0][0].trackId).not.toBe(out[41][0].trackId);
  }, 60_000);

  it('two faces crossing keep their identities', async () => {
    // two copies of the face (one mirrored) cross horizontally, overlapping by 40 % of their height;
    // the lower one is drawn over the upper one, hiding its mouth and chin while they pass
    const face = await sharp(path.join(fixturesDir, 'source', 'astronaut.png')).extract({ left: 150, top: 45, width: 150, height: 150 }).resize(110, 110).removeAlpha().raw().toBuffer();
    const mirrored = await sharp(face, { raw: { width: 110, height: 110, channels: 3 } }).flop().raw().toBuffer();
    const W = 480, H = 300, N = 30;
    const t = new FaceTracker({ smoothing: 1.5, lookahead: 4 });
    const out: Face[][] = [];
    const counts: number[] = [];
    for (let i = 0; i < N; i++) {
      const ax = Math.round(10 + (360 * i) / (N - 1)), bx = Math.round(360 - (350 * i) / (N - 1));
      const buf = await sharp({ create: { width: W, height: H, channels: 3, background: { r: 70, g: 80, b: 90 } } })
        .composite([
          { input: face, raw: { width: 110, height: 110, channels: 3 }, left: ax, top: 30 },
          { input: mirrored, raw: { width: 110, height: 110, channels: 3 }, left: bx, top: 95 },
        ])
        .removeAlpha().raw().toBuffer();
      const faces = await analyzer.analyze({ width: W, height: H, data: new Uint8Array(buf) });
      counts.push(faces.length);
      for (const r of t.push(i, faces)) out[r.index] = r.faces;
    }
    for (const r of t.flush()) out[r.index] = r.faces;
    const idOf = (fr: Face[], top: boolean) => fr.find((f) => (top ? f.box.y + f.box.height / 2 < 117 : f.box.y + f.box.height / 2 >= 117))?.trackId;
    const topIds = new Set(out.map((f) => idOf(f, true)).filter((x) => x !== undefined));
    const bottomIds = new Set(out.map((f) => idOf(f, false)).filter((x) => x !== undefined));
    console.log(`two faces crossing: detections per frame ${counts.join('')}; top track ids ${[...topIds]}, bottom ${[...bottomIds]}, tracks ${t.summary().length}`);
    expect(counts.filter((c) => c === 2).length).toBeGreaterThanOrEqual(N - 6);
    expect(topIds.size).toBe(1);
    expect(bottomIds.size).toBe(1);
    expect([...topIds][0]).not.toBe([...bottomIds][0]);
    expect(out.every((f) => f.length === 2)).toBe(true); // missed detections (if any) are filled
  }, 60_000);
});
