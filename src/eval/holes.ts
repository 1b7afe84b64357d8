/**
 * The eval's hole measurements, for cases with painted boxes: the fills compared inside the
 * holes, split into face holes (the holes inside the reference's detected face mesh) and
 * background holes, with the flicker inside the holes; and `--mask auto` against the true mask.
 *
 * Each fill is the whole pipeline with one inpaint setting (HOLE_VARIANTS): the generic fills
 * (builtin, spatial, harmonic) with the face prior off (`--faces none`: in these cases no face
 * stage changes a pixel, so that turns off only the prior), the prior from the same track's
 * frames, the prior with an identity photo (a frame of the clean clip outside the scored
 * frames; `--swap none`, so the photo serves the holes only), and `--mask auto`.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { decodeFrames } from '../media/decode.js';
import type { Mask } from '../media/frame.js';
import { probeVideo } from '../media/probe.js';
import type { FaceAnalyzer } from '../faces/analyzer.js';
import { maskAgreement } from '../stages/inpaint/auto.js';
import { faceRegionMask } from '../stages/inpaint/eval.js';
import { binarizeMask, maskFromFrame, readMaskImage } from '../stages/inpaint/mask.js';
import type { BuiltCase } from './cases.js';
import type { Variant } from './types.js';

/** The fills every case with holes gets, besides the eval's own variants. */
export function holeVariants(c: BuiltCase): Variant[] {
  const off = { faces: 'none' };
  return [
    { name: 'fill-builtin', backends: { inpaint: 'builtin', ...off } },
    { name: 'fill-spatial', backends: { inpaint: 'spatial', ...off } },
    { name: 'fill-harmonic', backends: { inpaint: 'harmonic', ...off } },
    { name: 'fill-builtin+prior', backends: { inpaint: 'builtin' } },
    ...(c.holeIdentity ? [{ name: 'fill-builtin+prior+identity', backends: { inpaint: 'builtin', swap: 'none' }, options: { identity: [c.holeIdentity] } }] : []),
    { name: 'mask-auto', backends: {}, options: { mask: 'auto' } },
  ];
}

/**
 * Per frame of the reference (its size): 1 where a detected face's mesh covers the pixel (eye and
 * mouth openings included). Frames where no face is found have an empty map.
 */
export async function referenceFaceRegions(reference: string, analyzer: FaceAnalyzer, maxFrames?: number): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const f of decodeFrames(await probeVideo(reference), { maxFrames })) {
    const faces = await analyzer.analyze(f);
    const m = faceRegionMask(f.width, f.height, faces.filter((x) => x.mesh).map((x) => x.mesh!));
    out.push(Uint8Array.from(m.data, (v) => (v >= 128 ? 1 : 0)));
  }
  return out;
}

/** Mean recall and false-positive rate of a restore run's mask video (`mask.mp4`) against the true mask image. */
export async function autoMaskAgainstTruth(maskVideo: string, truthImage: string): Promise<{ recall: number; falsePositive: number; frames: number }> {
  const truth: Mask = binarizeMask(await readMaskImage(truthImage));
  let rec = 0, fp = 0, n = 0;
  for await (const f of decodeFrames(await probeVideo(maskVideo))) {
    const a = maskAgreement(binarizeMask(maskFromFrame(f)), truth);
    rec += a.recall;
    fp += a.falsePositive;
    n++;
  }
  return { recall: n ? rec / n : 0, falsePositive: n ? fp / n : 0, frames: n };
}

/** The mask video a restore run wrote in its report folder, when there is one. */
export async function runMaskVideo(reportDir: string): Promise<string | undefined> {
  const f = path.join(reportDir, 'mask.mp4');
  try {
    await fs.access(f);
    return f;
  } catch {
    return undefined;
  }
}
