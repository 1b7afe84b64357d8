/**
 * The pipeline's structure (issue #11): the layers and cycles of src/, one stage surface whose
 * plans fail before any model opens, and a new model of a known family as one manifest entry.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script without types
import { checkLayers, LAYERS } from '../scripts/check-layers.mjs';
import { RestoreError } from '../src/errors.js';
import { TEMPLATES, templatePoints } from '../src/faces/align.js';
import type { Face } from '../src/faces/types.js';
import type { RgbFrame } from '../src/media/frame.js';
import { getEntry, loadManifest } from '../src/models/manifest.js';
import { sessionsOpened } from '../src/models/session.js';
import { createServices, openStages, planStages, videoForPlan } from '../src/pipeline/plan.js';
import { defaultOptions, planRestore, runRestore } from '../src/pipeline/run.js';
import { restore } from './helpers/cli.js';
import { STAGES } from '../src/stages/index.js';
import { acceptedNames } from '../src/stages/module.js';
import type { FrameItem, RunContext } from '../src/stages/types.js';
import { silentLogger } from '../src/util/log.js';
import { probeVideo } from '../src/media/probe.js';
import { markerModel, writeModel } from './helpers/tiny-models.js';
import { fixture, tempDir } from './helpers/media.js';

const tmp = tempDir('restore-structure-');
afterAll(() => tmp.cleanup());
const CASE = (f: string) => fixture('videos', 'cases', 'pan-swap-x4', f);

describe('layers', () => {
  it('no import cycle, no import from a lower layer into a higher one, every file in a layer', () => {
    const r = checkLayers();
    console.log(`layers: ${LAYERS.map(([n, t]: [string, string[]]) => `${n} (${t.join(', ')})`).join(' <- ')}; ${r.files} files, ${r.imports} imports`);
    expect(r.unplaced).toEqual([]);
    expect(r.upward).toEqual([]);
    expect(r.cycles).toEqual([]);
  });
});

describe('one stage surface', () => {
  it('every stage module has a name, a flag, choices, plan and open; the run order is fixed', () => {
    expect(STAGES.map((s) => s.name)).toEqual(['inpaint', 'upscale', 'faces', 'restore-face', 'swap', 'temporal']);
    for (const s of STAGES) {
      expect(s.flag).toBe(`--${s.key}`);
      expect(acceptedNames(s.choices()).length).toBeGreaterThan(1);
      expect(typeof s.plan).toBe('function');
      expect(typeof s.open).toBe('function');
    }
  });

  it('every bad option value of every stage fails at plan time, before any model is opened', async () => {
    const bad: [Record<string, string>, Partial<Parameters<typeof defaultOptions>[0]>, RegExp, string][] = [
      ...STAGES.map((s) => [{ [s.key]: 'no-such-backend' }, {}, new RegExp(`${s.flag} must be one of`), 'usage'] as [Record<string, string>, object, RegExp, string]),
      [{ faces: 'identity' }, {}, /--faces identity needs --identity/, 'usage'],
      [{ swap: 'inswapper' }, { identity: [fixture('source', 'astronaut.png')] }, /swap backend 'inswapper' needs one of inswapper_128/, 'model'],
      [{ 'restore-face': 'codeformer' }, {}, /codeformer is not installed/, 'usage'],
      [{ inpaint: 'mat' }, { mask: 'auto' }, /no mat model file installed/, 'model'],
    ];
    const models = path.join(tmp.dir, 'empty-models');
    const prev = process.env.RESTORE_MODELS_DIR;
    process.env.RESTORE_MODELS_DIR = models;
    try {
      for (const [backends, extra, pattern, kind] of bad) {
        const before = sessionsOpened();
        const t0 = performance.now();
        // every other stage would open a model (upscale rdn, faces), so a late check would show as a session
        const opts = defaultOptions({ input: CASE('input.mp4'), reportDir: path.join(tmp.dir, 'bad'), scale: 4, maxFrames: 2, thumbnails: 0, quiet: true, progress: false, ...extra, backends: { upscale: 'rdn', ...backends } });
        const err = await runRestore(opts, { log: silentLogger }).then(() => undefined, (e) => e);
        expect(err, JSON.stringify(backends)).toBeInstanceOf(RestoreError);
        expect(err.kind, JSON.stringify(backends)).toBe(kind);
        expect(err.toLine()).toMatch(pattern);
        expect(sessionsOpened() - before, `${JSON.stringify(backends)}: sessions opened before the error`).toBe(0);
        expect(performance.now() - t0).toBeLessThan(2000);
      }
    } finally {
      if (prev === undefined) delete process.env.RESTORE_MODELS_DIR;
      else process.env.RESTORE_MODELS_DIR = prev;
    }
  });
});

describe('--dry-run: the plan, nothing opened or written', () => {
  it('says what each stage would do, opens no session and writes nothing', async () => {
    const reportDir = path.join(tmp.dir, 'dry');
    const before = sessionsOpened();
    const p = await planRestore(defaultOptions({ input: CASE('input.mp4'), reportDir, identity: [fixture('source', 'astronaut.png')], mask: CASE('mask.mp4'), reference: CASE('reference.mp4') }));
    expect(sessionsOpened() - before).toBe(0);
    expect(p.output).toBe('384x384');
    expect(p.stages.map((s) => [s.stage, s.run])).toEqual([['inpaint', true], ['upscale', true], ['faces', true], ['restore-face', false], ['swap', true], ['temporal', true]]);
    expect(p.stages.find((s) => s.stage === 'swap')).toMatchObject({ backend: 'mesh' });
    expect(p.stages.find((s) => s.stage === 'restore-face')?.reason).toMatch(/no face restoration model installed/);
    const r = restore([CASE('input.mp4'), '--report-dir', reportDir, '--scale', '4', '--swap', 'none', '--dry-run', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.plan.stages.find((s: { stage: string }) => s.stage === 'swap')).toMatchObject({ run: false, reason: 'swap backend none requested' });
    expect(existsSync(reportDir)).toBe(false);
    const bad = restore([CASE('input.mp4'), '--temporal', 'foo', '--dry-run']);
    expect(bad.code).toBe(2);
  });
});

describe('a new model of a known family is one manifest entry', () => {
  const frameOf = async (): Promise<RgbFrame> => {
    const { data, info } = await sharp(fixture('source', 'astronaut.png')).removeAlpha().resize(256, 256).raw().toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, data: new Uint8Array(data) };
  };

  it('gpen_bfr_128 added in models.local.json at run time: listed, accepted, planned and run by the restore-face stage', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'restore-local-manifest-'));
    const prev = process.env.RESTORE_MODELS_DIR;
    process.env.RESTORE_MODELS_DIR = dir;
    try {
      const restoreFace = STAGES.find((s) => s.name === 'restore-face')!;
      expect(restoreFace.choices().models).not.toContain('gpen_bfr_128');
      // the entry: a GPEN export at 128 px (same family, tensors and template as gpen_bfr_256)
      const base = getEntry('gpen_bfr_256');
      const dims = [1, 3, 128, 128];
      const entry = {
        ...base,
        name: 'gpen_bfr_128',
        file: 'gpen_bfr_128.onnx',
        contract: {
          ...base.contract,
          inputs: base.contract.inputs.map((t) => (t.role === 'image' ? { ...t, dims } : t)),
          outputs: base.contract.outputs.map((t) => (t.role === 'image' ? { ...t, dims } : t)),
          crop: 128,
        },
      };
      writeFileSync(path.join(dir, 'models.local.json'), JSON.stringify({ version: 1, models: [entry] }));
      writeModel(dir, 'gpen_bfr_128.onnx', markerModel({ size: 128, points: templatePoints('arcface_128', 128), radius: 2, range: [-1, 1] }));
      expect(loadManifest().map((e) => e.name)).toContain('gpen_bfr_128');
      expect(restoreFace.choices().models).toContain('gpen_bfr_128');

      const video = await probeVideo(CASE('input.mp4'));
      for (const requested of ['gpen_bfr_128', 'gpen', 'auto']) {
        const opts = defaultOptions({ input: CASE('input.mp4'), quiet: true, device: 'cpu', backends: { 'restore-face': requested, faces: 'none', upscale: 'none', temporal: 'none' } });
        const planned = await planStages(opts, videoForPlan(video));
        const plan = planned.find((p) => p.module.name === 'restore-face')!.plan;
        expect(plan, requested).toMatchObject({ run: true, backend: 'gpen_bfr_128' });
      }
      const opts = defaultOptions({ input: CASE('input.mp4'), quiet: true, device: 'cpu', backends: { 'restore-face': 'gpen_bfr_128', faces: 'none', upscale: 'none', temporal: 'none' } });
      const planned = await planStages(opts, videoForPlan(video), ['restore-face']);
      const ac = new AbortController();
      const stages = await openStages(planned, opts, { device: 'cpu', log: silentLogger, signal: ac.signal, video, reportDir: dir, services: createServices('cpu', silentLogger) });
      const stage = stages.find((s) => s.name === 'restore-face')!;
      expect(stage.backend).toBe('gpen_bfr_128');
      // a face whose five points are the arcface_128 template at 140 px: the marks land on them
      const frame = await frameOf();
      const five = TEMPLATES.arcface_128.map(([x, y]) => ({ x: 58 + x * 140, y: 50 + y * 140 }));
      const face: Face = { trackId: 0, box: { x: 58, y: 50, width: 140, height: 140 }, score: 0.9, keypoints: [], five };
      async function* src(): AsyncGenerator<FrameItem> {
        yield { index: 0, time: 0, frame: { ...frame, data: new Uint8Array(frame.data) }, input: frame, faces: [face] };
      }
      const out: FrameItem[] = [];
      for await (const it of stage.run(src(), { signal: ac.signal, device: 'cpu', log: silentLogger } as unknown as RunContext)) out.push(it);
      const px = (f: RgbFrame, p: { x: number; y: number }) => f.data[(Math.round(p.y) * f.width + Math.round(p.x)) * 3];
      for (const p of five) expect(px(out[0].frame, p), `mark at ${p.x},${p.y}`).toBeGreaterThan(px(frame, p) + 20);
      expect(stage.report()).toMatchObject({ ran: true, backend: 'gpen_bfr_128', facts: { provider: 'cpu' } });
    } finally {
      if (prev === undefined) delete process.env.RESTORE_MODELS_DIR;
      else process.env.RESTORE_MODELS_DIR = prev;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
