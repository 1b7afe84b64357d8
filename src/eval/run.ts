/**
 * `npm run eval`: the quality benchmark on real footage. For every clean clip and case (see
 * cases.ts) it runs `restore` with the defaults (and each extra variant asked for), the plain
 * ffmpeg baselines (bicubic and lanczos upscales of the damaged clip, and "perfect fill +
 * lanczos": the clean clip through the same downscale, upscaled with lanczos), scores every
 * output with ffmpeg's psnr/ssim filters and with Y-PSNR inside and outside the holes, and
 * writes reports/eval/eval.json, eval.md and eval.html.
 */
import { promises as fs, existsSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../media/encode.js';
import { ffmpegScores } from '../metrics/ffmpeg.js';
import { FlickerAccumulator } from '../metrics/flicker.js';
import { decodeFrames } from '../media/decode.js';
import { probeVideo } from '../media/probe.js';
import { defaultOptions, runRestore } from '../pipeline/run.js';
import { silentLogger, type Logger } from '../util/log.js';
import type { RestoreOptions } from '../stages/types.js';
import { FaceAnalyzer } from '../faces/analyzer.js';
import { swapIdentityInClip } from '../pipeline/degrade-swap.js';
import { buildCase, DEFAULT_CASES, ffmpegUpscale, type BuiltCase, type CaseSpec } from './cases.js';
import { holeMap, holeSplitScores, regionScores } from './regions.js';
import { autoMaskAgainstTruth, holeVariants, referenceFaceRegions, runMaskVideo } from './holes.js';
import { renderEvalHtml, renderEvalMarkdown } from './report.js';
import type { EvalOptions, EvalResult, EvalRow, Variant } from './types.js';

export const VIDEO_EXT = /\.(mp4|mov|mkv|webm|avi|m4v)$/i;
const IMAGE_EXT = /\.(jpe?g|png|webp)$/i;

export type { EvalOptions, EvalResult, EvalRow, Variant } from './types.js';

export const DEFAULT_VARIANTS: Variant[] = [{ name: 'default', backends: {} }];

/** Mean flicker of a video (warping error between consecutive frames). */
async function videoFlicker(file: string): Promise<number> {
  const acc = new FlickerAccumulator();
  for await (const f of decodeFrames(await probeVideo(file))) acc.push(f);
  return +acc.summary().mean.toFixed(4);
}

async function score(out: string, c: BuiltCase, holes: Uint8Array | undefined, flicker = false, faces?: Uint8Array[]) {
  const [s, r, fl, split] = await Promise.all([
    ffmpegScores(out, c.reference, { crop: c.size }),
    regionScores(out, c.reference, holes),
    flicker ? videoFlicker(out) : Promise.resolve(undefined),
    holes && faces ? holeSplitScores(out, c.reference, holes, faces, { flicker: true }) : Promise.resolve(undefined),
  ]);
  return {
    frames: s.frames,
    psnrY: +s.psnr.y.toFixed(3),
    psnrU: +s.psnr.u.toFixed(3),
    psnrV: +s.psnr.v.toFixed(3),
    psnrAvg: +s.psnr.average.toFixed(3),
    ssimAll: +s.ssim.all.toFixed(5),
    ssimY: +s.ssim.y.toFixed(5),
    ...(r.holeY !== undefined ? { holeY: r.holeY } : {}),
    outsideY: r.outsideY,
    ...(fl !== undefined ? { flicker: fl } : {}),
    ...(split?.face ? { holeFaceY: split.face.y, holeFaceSsim: split.face.ssim } : {}),
    ...(split?.background ? { holeBackgroundY: split.background.y, holeBackgroundSsim: split.background.ssim } : {}),
    ...(split?.holeFlicker !== undefined ? { holeFlicker: split.holeFlicker } : {}),
    ...(split?.faceFramesY ? { holeFaceFramesY: split.faceFramesY } : {}),
  };
}

export async function runEval(o: EvalOptions): Promise<EvalResult> {
  const t0 = performance.now();
  const log = o.log ?? silentLogger;
  const crf = o.crf ?? 18;
  const entries = (await fs.readdir(o.clipsDir)).sort();
  const clips = entries.filter((f) => VIDEO_EXT.test(f) && (!o.only?.length || o.only.some((s) => f.includes(s)))).map((f) => path.join(o.clipsDir, f));
  const photo = o.swapPhoto ?? entries.filter((f) => IMAGE_EXT.test(f)).map((f) => path.join(o.clipsDir, f))[0];
  const cases = o.cases ?? DEFAULT_CASES;
  const variants = o.variants ?? DEFAULT_VARIANTS;
  const work = path.join(o.outDir, 'work');
  await fs.mkdir(work, { recursive: true });
  const analyzer = await FaceAnalyzer.create({ device: 'cpu' });
  const result: EvalResult = { createdAt: new Date().toISOString(), clipsDir: o.clipsDir, crf, cases: [], rows: [], gains: [], wallSeconds: 0, skipped: [] };
  for (const clip of clips) {
    const clipName = path.basename(clip, path.extname(clip));
    for (const spec of cases) {
      if (spec.swap && !photo) {
        result.skipped.push(`${clipName}/${spec.name}: no photo to swap to in ${o.clipsDir}`);
        continue;
      }
      const dir = path.join(work, clipName, spec.name);
      log.info(`eval: ${clipName} / ${spec.name}`);
      const c = await buildCase(clip, spec, dir, {
        frames: o.frames,
        swapPhoto: photo,
        swapFn: async (clean, ph, out) => {
          await swapIdentityInClip(clean, ph, out, { device: 'cpu' });
        },
        analyzer,
      });
      const holes = c.mask ? await holeMap(c.mask, c.size.width, c.size.height) : undefined;
      const holeShare = holes ? +(holes.reduce((a, b) => a + b, 0) / holes.length).toFixed(4) : undefined;
      // face holes: the holes inside the reference's detected face mesh, per frame
      const faces = holes ? await referenceFaceRegions(c.reference, analyzer) : undefined;
      let faceHole = 0;
      if (holes && faces) for (const f of faces) for (let i = 0; i < holes.length; i++) faceHole += holes[i] & f[i];
      const holePx = holes ? holes.reduce((a, b) => a + b, 0) : 0;
      const faceHoleShare = faces?.length && holePx ? +(faceHole / (faces.length * holePx)).toFixed(4) : undefined;
      result.cases.push({
        clip: c.clip,
        case: spec.name,
        frames: c.frames,
        size: `${c.size.width}x${c.size.height}`,
        lowSize: `${c.lowSize.width}x${c.lowSize.height}`,
        ...(c.boxes ? { boxes: c.boxes } : {}),
        ...(holeShare !== undefined ? { holeShare } : {}),
        ...(faceHoleShare !== undefined ? { faceHoleShare } : {}),
      });
      const base = { clip: clipName, case: spec.name };
      const rows: EvalRow[] = [];
      for (const flags of ['bicubic', 'lanczos'] as const) {
        const out = await ffmpegUpscale(c.input, c.size, flags, path.join(dir, `ffmpeg-${flags}.mp4`), crf);
        rows.push({ ...base, method: `ffmpeg-${flags}`, ...(await score(out, c, holes, o.flicker, faces)) });
      }
      const bound = await ffmpegUpscale(c.cleanLow, c.size, 'lanczos', path.join(dir, 'perfect-fill-lanczos.mp4'), crf);
      rows.push({ ...base, method: 'perfect-fill+lanczos', ...(await score(bound, c, holes, o.flicker, faces)) });
      const hv = holes && o.holeVariants !== false ? holeVariants(c).filter((v) => !Array.isArray(o.holeVariants) || o.holeVariants.includes(v.name)) : [];
      for (const v of [...variants, ...hv]) {
        const out = path.join(dir, `restore-${v.name}.mp4`);
        const r = await runRestore(
          defaultOptions({
            input: c.input,
            out,
            reportDir: path.join(dir, `restore-${v.name}-report`),
            size: c.size,
            crf,
            ...(c.mask ? { mask: c.mask } : {}),
            ...(c.identity ? { identity: [c.identity] } : {}),
            backends: v.backends,
            thumbnails: 0,
            quiet: true,
            progress: false,
            ...(v.options ?? {}),
          }),
          { log: silentLogger },
        );
        const auto = v.options?.mask === 'auto' && c.mask ? await runMaskVideo(path.join(dir, `restore-${v.name}-report`)) : undefined;
        const agree = auto ? await autoMaskAgainstTruth(auto, c.mask!) : undefined;
        rows.push({
          ...base,
          method: `restore:${v.name}`,
          ...(await score(out, c, holes, o.flicker, faces)),
          ...(agree ? { autoMaskRecall: +agree.recall.toFixed(4), autoMaskFalsePositive: +agree.falsePositive.toFixed(5) } : {}),
          msPerFrame: +(1000 / Math.max(1e-9, r.report.timing.fps)).toFixed(1),
          stages: Object.fromEntries(r.report.stages.map((s) => [s.name, s.ran ? s.backend : '-'])),
        });
      }
      const lz = rows.find((r) => r.method === 'ffmpeg-lanczos')!;
      for (const r of rows.filter((x) => x.method.startsWith('restore:'))) {
        result.gains.push({ ...base, method: r.method, dAvg: +(r.psnrAvg - lz.psnrAvg).toFixed(3), dY: +(r.psnrY - lz.psnrY).toFixed(3), dOutsideY: +(r.outsideY - lz.outsideY).toFixed(3) });
      }
      result.rows.push(...rows);
      const g = result.gains.filter((x) => x.clip === clipName && x.case === spec.name).map((x) => `${x.method} ${x.dAvg >= 0 ? '+' : ''}${x.dAvg} dB`).join(', ');
      log.info(`  vs ffmpeg lanczos: ${g}`);
    }
  }
  result.wallSeconds = Math.round((performance.now() - t0) / 1000);
  await fs.mkdir(o.outDir, { recursive: true });
  await writeFileAtomic(path.join(o.outDir, 'eval.json'), JSON.stringify(result, null, 2) + '\n');
  await writeFileAtomic(path.join(o.outDir, 'eval.md'), renderEvalMarkdown(result));
  await writeFileAtomic(path.join(o.outDir, 'eval.html'), renderEvalHtml(result));
  return result;
}

/** The dev clips when they are there (`../shared/data/real-clips` from the project root). */
export function defaultClipsDir(root: string): string | undefined {
  const d = path.resolve(root, '..', 'shared', 'data', 'real-clips');
  return existsSync(d) ? d : undefined;
}
