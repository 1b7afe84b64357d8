/**
 * The inpaint face prior (src/stages/inpaint/face.ts) on the astronaut portrait: a box over the
 * mouth of a slightly moved copy of the face, filled from another frame of the "track" where
 * the mouth shows, and from the identity photo; against the generic fill the stage uses
 * without a prior. Plus the region scores of the eval and the bounded reference bank.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import sharp from 'sharp';
import { FaceAnalyzer } from '../src/faces/analyzer.js';
import type { Face } from '../src/faces/types.js';
import { createMask, type Mask, type RgbFrame } from '../src/media/frame.js';
import { fixturesDir } from '../src/util/paths.js';
import { prepareMeshSource } from '../src/stages/swap/mesh.js';
import { faceRegionMask, holeRegionScores } from '../src/stages/inpaint/eval.js';
import { completeMesh, FaceBank, faceHoleFill, makeFaceRef } from '../src/stages/inpaint/face.js';
import { spatialFill } from '../src/stages/inpaint/patchmatch.js';

const S = 128;
let analyzer: FaceAnalyzer;
let photo: RgbFrame; // the clean portrait
let moved: RgbFrame; // the same, shifted by (2, 1) px: "another frame"
let face: Face; // photo's face
let movedFace: Face;

function shift(f: RgbFrame, dx: number, dy: number): RgbFrame {
  const out: RgbFrame = { width: f.width, height: f.height, data: new Uint8Array(f.data.length) };
  for (let y = 0; y < f.height; y++)
    for (let x = 0; x < f.width; x++) {
      const sx = Math.min(f.width - 1, Math.max(0, x - dx)), sy = Math.min(f.height - 1, Math.max(0, y - dy));
      out.data.set(f.data.subarray(3 * (sy * f.width + sx), 3 * (sy * f.width + sx) + 3), 3 * (y * f.width + x));
    }
  return out;
}

/** A black box over the mouth of `f` (mouth keypoint of `at`). */
function mouthBox(f: RgbFrame, at: Face): { painted: RgbFrame; mask: Mask } {
  const m = createMask(f.width, f.height);
  const c = at.keypoints[3], bw = at.box.width * 0.5, bh = at.box.height * 0.25;
  const painted: RgbFrame = { width: f.width, height: f.height, data: new Uint8Array(f.data) };
  for (let y = Math.round(c.y - bh / 2); y < Math.round(c.y + bh / 2); y++)
    for (let x = Math.round(c.x - bw / 2); x < Math.round(c.x + bw / 2); x++) {
      m.data[y * f.width + x] = 255;
      painted.data.fill(0, 3 * (y * f.width + x), 3 * (y * f.width + x) + 3);
    }
  return { painted, mask: m };
}

beforeAll(async () => {
  const { data } = await sharp(path.join(fixturesDir, 'source', 'astronaut.png')).resize(S, S).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  photo = { width: S, height: S, data: new Uint8Array(data) };
  moved = shift(photo, 2, 1);
  analyzer = await FaceAnalyzer.create({ device: 'cpu' });
  face = (await analyzer.analyze(photo))[0];
  movedFace = (await analyzer.analyze(moved))[0];
});

describe('inpaint face prior', () => {
  it('fills a box over the mouth from the track and from the identity photo, far better than the generic fill', async () => {
    const { painted, mask } = mouthBox(moved, movedFace);
    const generic = spatialFill(painted, mask);
    // the stage analyses the generically filled frame: the landmarks under the box are guesses
    const seen = (await analyzer.analyze(generic))[0];
    expect(seen?.mesh).toBeDefined();
    const region = faceRegionMask(S, S, [movedFace.mesh!]);
    const score = (f: RgbFrame) => holeRegionScores(f, moved, mask, region).face.ypsnr!;
    // from the track: another frame (the unshifted one) where the mouth is visible
    const ref = makeFaceRef(0, photo, createMask(S, S), face.mesh!);
    const track = faceHoleFill(generic, mask, seen.mesh!, [ref]);
    // from the identity photo only
    const id = faceHoleFill(generic, mask, seen.mesh!, [], { identity: prepareMeshSource(photo, face) });
    const g = score(generic), t = score(track.frame), i = score(id.frame);
    console.log(`face hole Y-PSNR: generic ${g.toFixed(2)} dB, from the track ${t.toFixed(2)} dB (${track.fromTrack}/${track.facePixels} px), from the identity ${i.toFixed(2)} dB (residual ${id.residual?.toFixed(1)})`);
    expect(track.fromTrack).toBeGreaterThan(0.9 * track.facePixels);
    expect(t).toBeGreaterThan(g + 3);
    expect(i).toBeGreaterThan(g + 3);
    // pixels outside the holes are untouched
    for (let p = 0; p < S * S; p++) if (!mask.data[p]) expect(id.frame.data[3 * p]).toBe(generic.data[3 * p]);
  });

  it('pixels another frame showed (the generic fill propagated them) are kept; the prior fills the rest', async () => {
    const { painted, mask } = mouthBox(moved, movedFace);
    const generic = spatialFill(painted, mask);
    const seenFace = (await analyzer.analyze(generic))[0];
    const ref = makeFaceRef(0, photo, createMask(S, S), face.mesh!);
    // the left half of the box was "seen": the generic frame holds the true pixels there
    let x0 = S, x1 = 0;
    for (let p = 0; p < S * S; p++) if (mask.data[p]) { x0 = Math.min(x0, p % S); x1 = Math.max(x1, p % S); }
    const mid = (x0 + x1) >> 1;
    const seen = createMask(S, S);
    const withSeen: RgbFrame = { width: S, height: S, data: new Uint8Array(generic.data) };
    for (let p = 0; p < S * S; p++)
      if (mask.data[p] && p % S <= mid) {
        seen.data[p] = 255;
        withSeen.data.set(moved.data.subarray(3 * p, 3 * p + 3), 3 * p);
      }
    const all = faceHoleFill(withSeen, mask, seenFace.mesh!, [ref]);
    const half = faceHoleFill(withSeen, mask, seenFace.mesh!, [ref], { seen });
    // the seen half stays as propagated (the gradient-domain blend ends on it), the other half is the track's
    let keptSeen = 0, seenPx = 0, changedOther = 0, otherPx = 0;
    for (let p = 0; p < S * S; p++) {
      if (!mask.data[p]) continue;
      if (seen.data[p]) { seenPx++; if (half.frame.data[3 * p] === withSeen.data[3 * p]) keptSeen++; }
      else { otherPx++; if (half.frame.data[3 * p] !== withSeen.data[3 * p]) changedOther++; }
    }
    console.log(`seen half: ${keptSeen}/${seenPx} px kept; other half: ${changedOther}/${otherPx} px from the prior (${half.fromTrack} from the track; without seen: ${all.fromTrack})`);
    expect(keptSeen).toBe(seenPx);
    expect(changedOther).toBeGreaterThan(0.5 * otherPx);
    expect(half.fromTrack).toBeLessThan(all.fromTrack);
    // everything seen: the prior has nothing to do
    const full = createMask(S, S);
    full.data.set(mask.data);
    const none = faceHoleFill(withSeen, mask, seenFace.mesh!, [ref], { seen: full });
    expect(none.fromTrack).toBe(0);
    expect(none.frame).toBe(withSeen);
  });

  it('hidden landmarks come from the prior, visible ones stay', () => {
    const { mask } = mouthBox(photo, face);
    const noisy = Float32Array.from(face.mesh!);
    const inBox = (x: number, y: number) => mask.data[Math.round(y) * S + Math.round(x)] >= 128;
    // a wrong guess under the box (points that stay under it)
    for (let i = 0; i < 468; i++) if (inBox(noisy[i * 3], noisy[i * 3 + 1]) && inBox(noisy[i * 3], noisy[i * 3 + 1] + 2)) noisy[i * 3 + 1] += 2;
    const r = completeMesh(noisy, mask, face.mesh!);
    expect(r.replaced).toBeGreaterThan(10);
    let err = 0;
    for (let i = 0; i < 468; i++) err = Math.max(err, Math.hypot(r.mesh[i * 3] - face.mesh![i * 3], r.mesh[i * 3 + 1] - face.mesh![i * 3 + 1]));
    expect(err).toBeLessThan(0.5);
  });

  it('the reference bank stays bounded and keeps one reference per stride', () => {
    const bank = new FaceBank(4, 2);
    for (let i = 0; i < 20; i++) bank.add(i, photo, createMask(S, S), face);
    expect(bank.size).toBe(4);
    expect(bank.near(face, 100).length).toBe(4);
    const elsewhere = { ...face, box: { ...face.box, x: face.box.x + 3 * face.box.width } };
    expect(bank.near(elsewhere, 100).length).toBe(0);
  });

  it('region scores split the holes into face and background and score the auto mask', () => {
    const holes = createMask(S, S), faceR = createMask(S, S), auto = createMask(S, S);
    for (let i = 0; i < 200; i++) holes.data[i] = 255;
    for (let i = 0; i < 100; i++) faceR.data[i] = 255;
    for (let i = 50; i < 250; i++) auto.data[i] = 255;
    const out: RgbFrame = { width: S, height: S, data: new Uint8Array(photo.data) };
    for (let i = 100; i < 200; i++) out.data.fill(0, 3 * i, 3 * i + 3); // background holes wrong, face holes right
    const s = holeRegionScores(out, photo, holes, faceR, auto);
    expect(s.face.pixels).toBe(100);
    expect(s.background.pixels).toBe(100);
    expect(s.face.ypsnr).toBeGreaterThan(90);
    expect(s.background.ypsnr!).toBeLessThan(20);
    expect(s.auto!.recall).toBeCloseTo(0.75, 5);
    expect(s.auto!.falsePositive).toBeCloseTo(50 / (S * S - 200), 6);
  });
});
