#!/usr/bin/env node
/** The `restore` command line. */
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { EXIT } from '../errors.js';
import { degradeClip } from '../pipeline/degrade.js';
import { swapIdentityInClip } from '../pipeline/degrade-swap.js';
import { createLogger } from '../util/log.js';
import { createProgressBar } from '../pipeline/progress.js';
import { defaultOptions, planRestore, runRestore, toolVersion } from '../pipeline/run.js';
import type { RestoreOptions } from '../stages/types.js';
import { stageChoices } from '../pipeline/backends.js';
import { VIDEO_CONTAINERS, X264_PRESETS } from '../media/encode.js';
import { collect, parseNumber, parseSize, printJson, runAction, signalController } from './util.js';
import { registerExtraCommands } from './commands/index.js';

const EXIT_HELP = `
Exit codes:
  0  success                     4  output cannot be written
  1  bad input (file, video,     5  internal error
     mask, identity photo, face) 6  batch: some videos failed
  2  usage error (bad option)    7  batch: every video failed
  3  model missing or invalid    8  the job queue (Redis) cannot be reached
                                 130 interrupted (Ctrl-C / SIGTERM)`;

const program = new Command('restore')
  .description('Repair tampered face videos: fill painted-over regions, raise resolution, restore faces, turn them back into the identity of a photo, and score the result against a clean reference.')
  .version(toolVersion)
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

function addRunOptions(cmd: Command): Command {
  return cmd
    .option('-o, --out <file>', `restored video, ${VIDEO_CONTAINERS.join(' ')} (default: <report-dir>/<name>.restored.mp4); never one of the input files`)
    .option('--report-dir <dir>', 'where report.json, frames.csv and report.html go (default: reports/<name>)')
    .option('--identity <img>', 'photo of the person the faces must become (repeat to average several photos)', collect)
    .option('--identity-face <n>', 'which face of the identity photo, when it shows several (0 = largest)', parseNumber('--identity-face', 0, 64, true))
    .option('--reference <video>', 'clean reference video: every frame is scored (PSNR, SSIM)')
    .option('--mask <file|auto>', 'regions to fill: an image (same for every frame) or a mask video, white = hole; "auto" detects painted-over areas')
    .option('--mask-dilate <px>', 'grow the mask by this many pixels', parseNumber('--mask-dilate', 0, 64, true))
    .option('--scale <n>', 'upscale factor (default: none, or x N when --reference is the input scaled N times)', parseNumber('--scale', 0.1, 16))
    .option('--size <WxH>', 'exact output size, e.g. 1280x720 (not with --scale; must be the reference size when --reference is given)', parseSize)
    .option('--inpaint <backend>', `inpainting backend, or a model name: ${stageChoices('inpaint')}`, 'auto')
    .option('--upscale <backend>', `super-resolution backend, a manifest family, or a model name: ${stageChoices('upscale')} (lanczos/bicubic: exactly ffmpeg's scaler)`, 'auto')
    .addOption(new Option('--quality <preset>', 'what --upscale auto runs: fast (ffmpeg lanczos) | default (lanczos + back-projection, or a model you installed) | best (the embedded RRDN + back-projection: about +1 dB, ~80x slower)').choices(['fast', 'default', 'best']).default('default'))
    .addOption(new Option('--sr-kernel <kernel>', 'kernel the input was downscaled with, for back-projection').choices(['bicubic', 'area', 'lanczos', 'bilinear']).default('bicubic'))
    .option('--sr-frames <n>', 'neighbouring input frames each side that back-projection also matches, aligned by optical flow (default 1 at x3 and above: about the flicker of plain Lanczos at the single-frame PSNR gain; 0 below x3, where it cost PSNR; 0 = this frame only, about 1.3x the fps at 480p)', parseNumber('--sr-frames', 0, 4, true))
    .option('--backproject <n>', 'back-projection iterations on luma after upscaling (default 2; 0 for lanczos/bicubic by name; 0 = off)', parseNumber('--backproject', 0, 20, true))
    .option('--faces <which>', `faces to work on (identity: tracks that match --identity): ${stageChoices('faces')}`, 'all')
    .option('--restore-face <backend>', `face restoration backend, or a model name: ${stageChoices('restore-face')}`, 'auto')
    .option('--swap <backend>', `identity swap backend: ${stageChoices('swap')}`, 'auto')
    .option('--temporal <backend>', `temporal smoothing backend: ${stageChoices('temporal')}`, 'auto')
    .option('--crf <n>', 'H.264 quality (0 lossless .. 51 worst)', parseNumber('--crf', 0, 51, true), 18)
    .option('--preset <name>', `x264 preset: ${X264_PRESETS.join(' | ')}`, 'medium')
    .addOption(new Option('--device <device>', 'where models run').choices(['auto', 'cpu', 'cuda']).default('auto'))
    .option('--concurrency <n>', 'frames processed at once inside a stage', parseNumber('--concurrency', 1, 16, true), 2)
    .option('--workers <n>', 'worker threads for models and pixel work; 0 = all on the main thread (default: the core count)', parseNumber('--workers', 0, 64, true))
    .option('--max-frames <n>', 'only the first N frames (quick checks)', parseNumber('--max-frames', 1, 1e9, true))
    .option('--thumbnails <n>', 'before/after frames shown in the report', parseNumber('--thumbnails', 0, 12, true), 3)
    .option('--json', 'print the result (or the error) as JSON on stdout; no progress bar')
    .option('--dry-run', 'check every option and say what each stage would do (or why it would not run), then stop: nothing is loaded or written')
    .option('-q, --quiet', 'no progress and no log lines, errors only')
    .option('--verbose', "debug lines, and ONNX Runtime's own log (silenced otherwise)")
    .option('--no-progress', 'no progress bar');
}

export function optionsFrom(input: string, o: Record<string, any>): RestoreOptions {
  return defaultOptions({
    input,
    out: o.out,
    reportDir: o.reportDir,
    identity: o.identity,
    identityFace: o.identityFace,
    reference: o.reference,
    mask: o.mask,
    maskDilate: o.maskDilate,
    scale: o.scale,
    size: o.size,
    srKernel: o.srKernel,
    quality: o.quality,
    backproject: o.backproject,
    srFrames: o.srFrames,
    crf: o.crf,
    preset: o.preset,
    device: o.device,
    backends: { faces: o.faces, inpaint: o.inpaint, upscale: o.upscale, 'restore-face': o.restoreFace, swap: o.swap, temporal: o.temporal },
    concurrency: o.concurrency,
    workers: o.workers,
    maxFrames: o.maxFrames,
    thumbnails: o.thumbnails,
    json: !!o.json,
    quiet: !!o.quiet,
    verbose: !!o.verbose,
    progress: o.progress !== false && !o.json && !o.quiet,
  } as Partial<RestoreOptions> & { input: string });
}

addRunOptions(
  program
    .command('run <input>', { isDefault: true })
    .description('restore one video (the default command: `restore input.mp4 ...` runs this)'),
)
  .addHelpText(
    'after',
    `
Examples:
  restore clip.mp4 --identity person.jpg
  restore fixtures/videos/cases/pan-x4/input.mp4 --mask fixtures/videos/cases/pan-x4/mask.mp4 \\
          --reference fixtures/videos/cases/pan-x4/reference.mp4
  restore clip.mp4 --scale 2 --out "out dir/clip 2x.mp4" --json
  restore clip.mp4 --scale 4 --identity person.jpg --dry-run   (what each stage would do; nothing loaded or written)
${EXIT_HELP}`,
  )
  .action((input: string, o: Record<string, any>) =>
    runAction(!!o.json, async () => {
      const opts = optionsFrom(input, o);
      if (o.dryRun) {
        const p = await planRestore(opts);
        if (opts.json) printJson({ ok: true, plan: p });
        else {
          process.stdout.write(`${input}: ${p.input} -> ${p.output}${p.note ? ` (${p.note})` : ''}\n`);
          for (const s of p.stages) process.stdout.write(`  ${s.stage.padEnd(13)} ${s.run ? `${(s.backend ?? '').padEnd(16)} ${s.reason}` : `would not run: ${s.reason}`}\n`);
        }
        return;
      }
      const signal = signalController().signal;
      const log = createLogger({ quiet: opts.quiet || opts.json, verbose: opts.verbose });
      const bar = createProgressBar(path.basename(input), opts.progress);
      try {
        const r = await runRestore(opts, { signal, log, onProgress: (p) => bar.update(p) });
        bar.stop();
        if (opts.json) printJson({ ok: true, out: r.out, reportDir: r.reportDir, files: r.files, report: r.report });
        else {
          const m = r.report.metrics;
          const t = r.report.timing;
          const scoring = t.scoringMs !== undefined ? `; scoring took ${(t.scoringMs / 1000).toFixed(1)} s of it` : '';
          log.info(`restored ${r.report.output.frames} frames (${r.report.output.width}x${r.report.output.height}) in ${(t.wallMs / 1000).toFixed(1)} s (${t.fps} fps${scoring}) -> ${r.out}`);
          for (const s of r.report.stages) log.info(`  ${s.name.padEnd(13)} ${s.ran ? s.backend.padEnd(16) + ` ${s.msPerFrame} ms/frame` : 'did not run: ' + (s.reason ?? '')}`);
          if (m) {
            const b = m.before;
            if (m.ffmpeg) log.info(`  ffmpeg psnr: Y ${m.ffmpeg.psnr.y.toFixed(2)} U ${m.ffmpeg.psnr.u.toFixed(2)} V ${m.ffmpeg.psnr.v.toFixed(2)} average ${m.ffmpeg.psnr.average.toFixed(2)} dB; ffmpeg ssim: All ${m.ffmpeg.ssim.all.toFixed(4)}`);
            log.info(`  PSNR (RGB) ${m.after.psnrRgbMean.toFixed(2)} dB${b ? ` (bicubic input: ${b.psnrRgbMean.toFixed(2)})` : ''}, SSIM (Y) ${m.after.ssimYMean.toFixed(4)}${b ? ` (bicubic: ${b.ssimYMean.toFixed(4)})` : ''}`);
          } else if (r.report.metricsSkipped) log.info(`  metrics: ${r.report.metricsSkipped}`);
          log.info(`report: ${r.files.html}`);
        }
      } finally {
        bar.stop();
      }
    }),
  );

program
  .command('degrade <clean>')
  .description('make a benchmark case from a clean clip: x4 downscale (default), painted-over regions, optionally another identity')
  .requiredOption('--out <dir>', 'case folder: input.mp4, mask.mp4, reference.mp4, case.json')
  .option('--scale <n>', 'downscale factor', parseNumber('--scale', 1, 16), 4)
  .option('--mask-seed <n>', 'seed of the painted shapes (same seed, same case)', parseNumber('--mask-seed', 0, 2 ** 31, true), 1)
  .option('--shapes <n>', 'number of painted shapes', parseNumber('--shapes', 0, 50, true), 3)
  .option('--swap-identity <img>', 'first change the person in the clip into the face of this photo')
  .option('--max-frames <n>', 'only the first N frames', parseNumber('--max-frames', 1, 1e9, true))
  .option('--json', 'print case.json on stdout')
  .addHelpText('after', `\nExample:\n  restore degrade fixtures/videos/astronaut-pan.mp4 --out cases/pan-x4 --mask-seed 7\n${EXIT_HELP}`)
  .action((clean: string, o: Record<string, any>) =>
    runAction(!!o.json, async () => {
      const signal = signalController().signal;
      const log = createLogger({ quiet: !!o.json });
      const info = await degradeClip({
        clean,
        outDir: o.out,
        scale: o.scale,
        maskSeed: o.maskSeed,
        shapes: o.shapes,
        swapIdentity: o.swapIdentity,
        swapFn: async (c, id, dest) => {
          await swapIdentityInClip(c, id, dest, { log: (m) => log.info(m) });
        },
        maxFrames: o.maxFrames,
        log,
        signal,
      });
      if (o.json) printJson(info);
    }),
  );


registerExtraCommands(program, { addRunOptions, optionsFrom });

export async function main(argv: string[]): Promise<void> {
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') process.exit(EXIT.OK);
      process.exit(EXIT.USAGE);
    }
    if ((e as any)?.name === 'RestoreError') {
      process.stderr.write(`restore: error: ${(e as any).toLine()}\n`);
      process.exit((e as any).exitCode);
    }
    throw e;
  }
}

await main(process.argv);
