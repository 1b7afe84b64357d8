/**
 * Regression: the whole default pipeline on the fixture case with all three damages
 * (person changed, x4 downscale, painted-over regions), scored against the clean clip.
 * Values are pinned with tolerances; they move only when a stage's behaviour changes.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeVideo } from '../src/media/probe.js';
import { defaultOptions, runRestore, type RunResult } from '../src/pipeline/run.js';
import { silentLogger } from '../src/util/log.js';
import { fixture, tempDir } from './helpers/media.js';

const tmp = tempDir('restore-pipeline-');
const C = (f: string) => fixture('videos', 'cases', 'pan-swap-x4', f);
let run: RunResult;

beforeAll(async () => {
  run = await runRestore(
    defaultOptions({
      input: C('input.mp4'),
      mask: C('mask.mp4'),
      reference: C('reference.mp4'),
      identity: [fixture('source', 'astronaut.png')],
      reportDir: path.join(tmp.dir, 'report'),
      maxFrames: 16,
      quiet: true,
      progress: false,
    }),
    { log: silentLogger },
  );
}, 300_000);
afterAll(() => tmp.cleanup());

describe('default pipeline on pan-swap-x4 (16 frames)', () => {
  it('writes a playable x4 video with the input frame rate and all reports', async () => {
    const info = await probeVideo(run.out);
    expect([info.width, info.height]).toEqual([384, 384]);
    expect(info.frameCount).toBe(16);
    expect(info.fps).toEqual({ num: 24, den: 1 });
    for (const f of Object.values(run.files)) expect(existsSync(f)).toBe(true);
    const csv = readFileSync(run.files.csv, 'utf8').trim().split('\n');
    expect(csv.length).toBe(17);
    // The face over time: 8 frames, input row over output row, embedded in the HTML.
    expect(run.report.faceSheet?.frames.length).toBe(8);
    expect(existsSync(path.join(run.reportDir, run.report.faceSheet!.file))).toBe(true);
    expect(readFileSync(run.files.html, 'utf8')).toMatch(/<section id="face-sheet">.*<img class="face-sheet" src="data:image\/jpeg;base64,/s);
  });

  it('runs the embedded backends and says which did not run and why', () => {
    const by = Object.fromEntries(run.report.stages.map((s) => [s.name, s]));
    expect(by.inpaint).toMatchObject({ ran: true, backend: 'builtin' });
    // auto without a user model: ffmpeg Lanczos + back-projection (the embedded RDN measured below it on real clips)
    expect(by.upscale).toMatchObject({ ran: true, backend: 'lanczos+backproject' });
    expect(by.faces.ran).toBe(true);
    expect(by.faces.details?.framesWithFaces).toBe(16);
    // detection ran on the 96x96 input (the upscale stage's), the meshes on the 384x384 output
    expect(by.faces.details?.detectOnInputSize).toBe(16);
    expect(by['restore-face']).toMatchObject({ ran: false });
    expect(by['restore-face'].reason).toMatch(/no face restoration model installed/);
    expect(by.swap).toMatchObject({ ran: true, backend: 'mesh' });
    expect(by.temporal).toMatchObject({ ran: true, backend: 'flow' });
  });

  it('smooths flicker in the changed regions and publishes it per frame', () => {
    const t = run.report.stages.find((s) => s.name === 'temporal')!.details as any;
    expect(t.flickerAfterMean).toBeLessThan(t.flickerBeforeMean);
    expect(t.smoothedShare).toBeGreaterThan(0);
    const withFlicker = run.report.perFrameValues!.filter((v) => typeof v.values.flicker === 'number');
    expect(withFlicker.length).toBe(15); // every frame but the first
  });

  it('beats a plain bicubic upscale by a wide margin (pinned)', () => {
    const m = run.report.metrics!;
    // Bicubic upscale of the damaged input vs the clean clip.
    expect(m.before!.psnrRgbMean).toBeCloseTo(17.149, 1);
    expect(m.before!.ssimYMean).toBeCloseTo(0.7831, 2);
    // The restored clip.
    expect(m.after.psnrRgbMean).toBeGreaterThan(23.5);
    expect(m.after.psnrRgbMean).toBeLessThan(25.0);
    expect(m.after.ssimYMean).toBeGreaterThan(0.815);
    expect(m.after.psnrRgbMean - m.before!.psnrRgbMean).toBeGreaterThan(6);
    for (const f of m.perFrame) expect(f.after.psnrRgb).toBeGreaterThan(f.before!.psnrRgb);
  });

  it('turns the face back into the identity photo (pinned)', () => {
    const id = (run.report.stages.find((s) => s.name === 'swap')!.details as any).identity;
    expect(id.meanBefore).toBeGreaterThan(0.55);
    expect(id.meanBefore).toBeLessThan(0.72);
    expect(id.meanAfter).toBeGreaterThan(0.8);
    expect(id.framesWorse).toBe(0);
    const values = run.report.perFrameValues!;
    expect(values.length).toBe(16);
    for (const v of values) expect(v.values.idSimAfter).toBeGreaterThan(v.values.idSimBefore);
  });
});

describe('--faces identity', () => {
  const pick = async (photo: string) => {
    const r = await runRestore(
      defaultOptions({
        input: fixture('videos', 'astronaut-pan.mp4'),
        identity: [photo],
        backends: { faces: 'identity', swap: 'none', temporal: 'none' },
        reportDir: path.join(tmp.dir, `pick-${path.basename(photo)}`),
        maxFrames: 4,
        thumbnails: 0,
        quiet: true,
        progress: false,
      }),
      { log: silentLogger },
    );
    return r.report.stages.find((s) => s.name === 'faces')!.details as any;
  };

  it('selects the track that matches the identity photo and leaves another person alone', async () => {
    const same = await pick(fixture('source', 'astronaut.png'));
    expect(same.facesSelected).toBe(4);
    const other = await pick(fixture('identities', 'grace-hopper.jpg'));
    expect(other.faces).toBe(4); // the face is found ...
    expect(other.facesSelected).toBe(0); // ... but it is not the person of the photo
  }, 120_000);
});
