/**
 * A small batch folder built from the project's fixture cases, for the batch tests, the
 * throughput measurement and demos. Six videos covering every pairing convention and both
 * kinds of failure:
 *
 *   cases/pan-x4/        case folder (input, mask, reference, from fixtures/videos/cases/pan-x4)
 *   cases/turn-x4/       case folder (from fixtures/videos/cases/turn-x4)
 *   loose/pan clip.mp4   loose file + "pan clip.ref.mp4" + "pan clip.mask.mp4"
 *   odd/<b>&"q'.mp4      a name with <, &, and quotes + its .ref/.mask companions
 *   broken/input.mp4     truncated copy of a valid input (corrupt)        -> fails
 *   noface/input.mp4     ffmpeg testsrc pattern + identity.png (no face)  -> fails
 *
 * References are scaled to the input size (96x96) by default so that metrics come out without
 * an upscale stage; `referenceSize: 'full'` keeps the 384x384 clean clips.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { resolveFfmpeg } from '../media/ffmpeg.js';
import { fixturesDir } from '../util/paths.js';

const run = promisify(execFile);

export const ODD_NAME = `<b>&"q'`;

export interface BatchFixtureOptions {
  /** 'input' (default): references downscaled to 96x96 like the inputs; 'full': the clean 384x384 clips. */
  referenceSize?: 'input' | 'full';
  /** Include the two failing videos (default true). */
  failures?: boolean;
  /** Frames of the generated no-face clip (default 24). */
  nofaceFrames?: number;
}

async function ffmpegRun(args: string[]): Promise<void> {
  const { ffmpeg } = resolveFfmpeg();
  await run(ffmpeg, ['-hide_banner', '-loglevel', 'error', '-y', ...args], { maxBuffer: 16 << 20 });
}

/** Reference at the input's size: area downscale, near-lossless so it stays a faithful reference. */
async function smallReference(src: string, dest: string): Promise<void> {
  await ffmpegRun(['-i', src, '-vf', 'scale=96:96:flags=area', '-an', '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '4', '-pix_fmt', 'yuv420p', dest]);
}

export async function makeBatchFixture(dir: string, opts: BatchFixtureOptions = {}): Promise<string[]> {
  const casesSrc = path.join(fixturesDir, 'videos', 'cases');
  const made: string[] = [];
  const ref = async (src: string, dest: string) => {
    if (opts.referenceSize === 'full') await fs.copyFile(src, dest);
    else await smallReference(src, dest);
  };
  const copyCase = async (name: string, destDir: string, names: { input: string; mask: string; reference: string }) => {
    await fs.mkdir(destDir, { recursive: true });
    const from = path.join(casesSrc, name);
    await fs.copyFile(path.join(from, 'input.mp4'), path.join(destDir, names.input));
    await fs.copyFile(path.join(from, 'mask.mp4'), path.join(destDir, names.mask));
    await ref(path.join(from, 'reference.mp4'), path.join(destDir, names.reference));
    made.push(path.join(destDir, names.input));
  };
  const asCase = { input: 'input.mp4', mask: 'mask.mp4', reference: 'reference.mp4' };
  await copyCase('pan-x4', path.join(dir, 'cases', 'pan-x4'), asCase);
  await copyCase('turn-x4', path.join(dir, 'cases', 'turn-x4'), asCase);
  await copyCase('pan-x4', path.join(dir, 'loose'), { input: 'pan clip.mp4', mask: 'pan clip.mask.mp4', reference: 'pan clip.ref.mp4' });
  await copyCase('turn-x4', path.join(dir, 'odd'), { input: `${ODD_NAME}.mp4`, mask: `${ODD_NAME}.mask.mp4`, reference: `${ODD_NAME}.ref.mp4` });
  if (opts.failures !== false) {
    // Corrupt: the first 45% of a valid file (its index still lists every frame).
    const broken = path.join(dir, 'broken');
    await fs.mkdir(broken, { recursive: true });
    const whole = await fs.readFile(path.join(casesSrc, 'pan-x4', 'input.mp4'));
    await fs.writeFile(path.join(broken, 'input.mp4'), whole.subarray(0, Math.floor(whole.length * 0.45)));
    await ref(path.join(casesSrc, 'pan-x4', 'reference.mp4'), path.join(broken, 'reference.mp4'));
    made.push(path.join(broken, 'input.mp4'));
    // No face: a test pattern, with an identity photo so that "no face" is an error.
    const noface = path.join(dir, 'noface');
    await fs.mkdir(noface, { recursive: true });
    const n = opts.nofaceFrames ?? 24;
    await ffmpegRun(['-f', 'lavfi', '-i', `testsrc=size=96x96:rate=24`, '-frames:v', String(n), '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '18', '-pix_fmt', 'yuv420p', path.join(noface, 'input.mp4')]);
    await ffmpegRun(['-f', 'lavfi', '-i', `testsrc=size=96x96:rate=24`, '-frames:v', String(n), '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '4', '-pix_fmt', 'yuv420p', path.join(noface, 'reference.mp4')]);
    await fs.copyFile(path.join(fixturesDir, 'source', 'astronaut.png'), path.join(noface, 'identity.png'));
    made.push(path.join(noface, 'input.mp4'));
  }
  return made;
}
