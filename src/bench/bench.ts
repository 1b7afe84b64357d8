/**
 * `npm run bench`: speed and memory on this machine, as ratios that mean something elsewhere.
 *  - a 720p clip made from the fixture: plain ffmpeg decode→encode vs the restore pipeline
 *    (inpaint + faces + swap at 720p), end-to-end fps and their ratio, time per stage;
 *  - the x4 path to 720p (320x180 → 1280x720, tiled RDN), time per stage;
 *  - peak RSS for a short and a 4x longer clip (their ratio shows memory is bounded);
 *  - micro timings: face detection, mesh per face, optical flow at 360p, swap per face;
 *  - workers: the default pipeline (x4, mask, faces, temporal) at 480p and 720p output with
 *    --workers 0 and the default, alternated in this one run: fps, CPU use (process CPU time /
 *    wall, and with the ffmpeg children), each model stage's time over its raw session.run
 *    time (and without its models' input preparation), and peak RSS for a clip and one 4x
 *    longer (24/96 frames three times; 48/192, past most of the frames it takes the stages'
 *    windows to fill; 375/1500, past where the level settles: BENCH_RSS_LONG=N for another
 *    long length, 0 to leave that pair out); and a model-bound stage's ratio to its
 *    session.run (RRDN, --quality best, 8 frames); and the 480p default pipeline pinned to 1, 2,
 *    4, ... cores and all of them (taskset): fps, speed-up and efficiency against one core, and
 *    the two per-frame serial parts that cap the fps on any core count (the in-order temporal
 *    step, the main thread).
 *    BENCH_ONLY=workers runs just this part, BENCH_ONLY=cores just the core scaling;
 *  - scoring: what the metrics pass against --reference adds to the 480p default pipeline,
 *    with the default workers and --workers 0 (BENCH_ONLY=scoring runs just this).
 * Writes reports/bench.json.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { resolveFfmpeg } from '../media/ffmpeg.js';
import { decodeFrames } from '../media/decode.js';
import { lumaBt601 } from '../media/frame.js';
import { probeVideo } from '../media/probe.js';
import { packageRoot } from '../util/paths.js';
import { rasterizeShapes, makeShapes } from '../pipeline/degrade.js';
import type { RunReport } from '../report/types.js';
import { benchFaces } from './faces.js';
import { estimateFlow } from '../flow/flow.js';
import { benchSwapBackend } from './swap.js';

const CLI = path.join(packageRoot, 'dist', 'cli', 'main.js');
const fixture = (...p: string[]) => path.join(packageRoot, 'fixtures', ...p);
const round = (x: number, d = 2) => +x.toFixed(d);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function ff(args: string[]): void {
  execFileSync(resolveFfmpeg().ffmpeg, ['-hide_banner', '-loglevel', 'error', '-y', ...args]);
}

/** Run the CLI with --json; returns the run report (timing, stages). BENCH_TASKSET=0,1 pins it to those cores (`pinTo` overrides). */
function restore(args: string[], pinTo?: string): RunReport {
  const pin = pinTo ?? process.env.BENCH_TASKSET;
  const [cmd, argv] = pin ? ['taskset', ['-c', pin, process.execPath, CLI, ...args, '--json']] : [process.execPath, [CLI, ...args, '--json']];
  const r = spawnSync(cmd, argv, { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`restore ${args.join(' ')} failed (${r.status}): ${r.stderr.trim().split('\n').pop()}`);
  return JSON.parse(r.stdout).report as RunReport;
}

function stageTable(rep: RunReport): Record<string, number | string> {
  const t: Record<string, number | string> = {};
  for (const s of rep.stages) t[s.name] = s.ran ? s.msPerFrame : `not run: ${s.reason}`;
  return t;
}

/** The fixture looped to `frames` frames and shrunk to side x side (the workers bench's input). */
function squareClip(tmp: string, side: number, frames: number): string {
  const f = path.join(tmp, `w${side}-${frames}.mp4`);
  if (existsSync(f)) return f; // made already by another part of this run (same folder, same arguments)
  ff(['-stream_loop', '-1', '-i', fixture('videos', 'astronaut-pan.mp4'), '-vf', `scale=${side}:${side}:flags=area`, '-frames:v', String(frames), '-c:v', 'libx264', '-crf', '14', '-pix_fmt', 'yuv420p', '-an', f]);
  return f;
}

/** A painted-region mask for squareClip's frames, as `restore degrade` draws them. */
async function squareMask(tmp: string, side: number): Promise<string> {
  const { mask } = rasterizeShapes(side, side, makeShapes(side, side, 1, 3));
  const f = path.join(tmp, `mask${side}.png`);
  if (existsSync(f)) return f;
  await sharp(Buffer.from(mask.data), { raw: { width: side, height: side, channels: 1 } }).png().toFile(f);
  return f;
}

/** The CLI arguments of the workers bench's default pipeline (x4, the mask, faces, temporal); `workers` undefined = the default. */
function defaultPipelineArgs(input: string, mask: string, reportDir: string, workers?: number): string[] {
  return [input, '--scale', '4', '--mask', mask, '--thumbnails', '0', '--report-dir', reportDir, ...(workers === undefined ? [] : ['--workers', String(workers)])];
}

/** The default pipeline (x4 from 120x120 or 180x180, mask, faces, temporal) with --workers 0 and the default. */
async function workersBench(tmp: string, log: (m: string) => void): Promise<Record<string, unknown>> {
  const clip = (side: number, frames: number) => squareClip(tmp, side, frames);
  const maskFor = (side: number) => squareMask(tmp, side);
  const frames480 = Number(process.env.BENCH_FRAMES_480 ?? 90);
  const frames720 = Number(process.env.BENCH_FRAMES_720 ?? 24);
  const load = () => os.loadavg().map((x) => round(x, 2));
  const one = (input: string, mask: string, workers: number | undefined, tag: string) => {
    const before = load();
    const rep = restore(defaultPipelineArgs(input, mask, path.join(tmp, tag), workers));
    const models: Record<string, unknown> = {};
    for (const st of rep.stages) {
      if (!st.timing?.modelRuns) continue;
      const runPerFrame = st.timing.modelRunMs! / st.frames;
      models[st.name] = {
        stageMsPerFrame: st.msPerFrame,
        modelRunMsPerFrame: round(runPerFrame),
        ratio: st.timing.ratioToModelRun,
        workerBusyOverRun: round(st.timing.workerMs / Math.max(1e-3, st.timing.modelRunMs!), 3),
        // the models' input preparation (letterbox, face-mesh crops), where the stage has some
        ...(st.timing.inputPrepMs === undefined ? {} : { inputPrepMsPerFrame: round(st.timing.inputPrepMs / st.frames), ratioWithoutInputPrep: st.timing.ratioWithoutInputPrep }),
      };
    }
    return {
      workers: rep.timing.workers,
      fps: rep.timing.fps,
      cpuPercent: rep.timing.cpuPercent,
      cpuPercentWithFfmpeg: rep.timing.cpuPercentWithFfmpeg ?? null,
      peakRssMb: rep.timing.peakRssMb,
      loadAvgBefore: before,
      stagesCpuMsPerFrame: Object.fromEntries(rep.stages.filter((x) => x.ran).map((x) => [x.name, x.msPerFrame])),
      stagesCriticalMsPerFrame: Object.fromEntries(rep.stages.filter((x) => x.ran).map((x) => [x.name, x.timing?.criticalMsPerFrame ?? null])),
      modelStages: models,
    };
  };
  const res: Record<string, unknown> = { cores: os.availableParallelism?.() ?? os.cpus().length, taskset: process.env.BENCH_TASKSET ?? null };
  for (const [side, frames] of [[120, frames480], [180, frames720]] as const) {
    const out = `${side * 4}p`;
    log(`bench: workers, default pipeline at ${side * 4}x${side * 4} (x4 from ${side}, ${frames} frames): --workers 0, default, alternated ...`);
    const input = clip(side, frames);
    const mask = await maskFor(side);
    // alternate so both see the same machine load; twice at 480p
    const runs = side === 120 ? [0, undefined, 0, undefined] : [0, undefined];
    const got = runs.map((w, i) => one(input, mask, w, `w${side}-${i}`));
    const serial = got.filter((g) => g.workers === 0);
    const pooled = got.filter((g) => g.workers !== 0);
    res[out] = {
      clip: `${side}x${side} x4 -> ${side * 4}x${side * 4}, ${frames} frames, mask + faces + temporal`,
      fpsWorkers0: round(mean(serial.map((g) => g.fps)), 3),
      fpsDefault: round(mean(pooled.map((g) => g.fps)), 3),
      ratio: round(mean(pooled.map((g) => g.fps)) / mean(serial.map((g) => g.fps)), 3),
      ratioPerPair: serial.map((g, i) => round(pooled[i].fps / g.fps, 3)),
      cpuPercentWorkers0: serial.map((g) => g.cpuPercent),
      cpuPercentDefault: pooled.map((g) => g.cpuPercent),
      cpuPercentWithFfmpegWorkers0: serial.map((g) => g.cpuPercentWithFfmpeg),
      cpuPercentWithFfmpegDefault: pooled.map((g) => g.cpuPercentWithFfmpeg),
      runs: got,
    };
  }
  res.coreScaling = await coreScalingBench(clip(120, frames480), await maskFor(120), frames480, tmp, log);
  res.modelHeavy = modelHeavyBench(clip(120, 8), tmp, log);
  const longFrames = Math.round(Number(process.env.BENCH_RSS_LONG ?? 1500) / 4) * 4;
  const settledPair = longFrames ? `, ${longFrames / 4}/${longFrames}` : '';
  log(`bench: workers, peak RSS for a 480p clip and one 4x longer: 24/96 frames three times, 48/192${settledPair} once (default workers) ...`);
  const short = clip(120, 24);
  const long = clip(120, 96);
  const mask = await maskFor(120);
  // The peaks of identical runs differ by tens of MB (a short run's peak depends on where the
  // heaps and malloc's arenas stand when it ends), so the 24/96 pair runs three times,
  // alternated, and the ratio of the median peaks is given beside each pair's.
  const pairs = [0, 1, 2].map((i) => ({ s: one(short, mask, undefined, `rss-s${i}`).peakRssMb, l: one(long, mask, undefined, `rss-l${i}`).peakRssMb }));
  // a clip of shortFrames and one 4x longer, once each
  const onePair = (shortFrames: number) => {
    const s = one(clip(120, shortFrames), mask, undefined, `rss-s${shortFrames}`).peakRssMb;
    const l = one(clip(120, shortFrames * 4), mask, undefined, `rss-l${shortFrames * 4}`).peakRssMb;
    return { shortFrames, longFrames: shortFrames * 4, peakRssShortMb: s, peakRssLongMb: l, ratioLongToShort: round(l / s, 3) };
  };
  // A 24-frame clip ends before the stages' windows are full (the inpaint window holds up to 61
  // frames), so a pair that starts past most of that is measured too.
  const windowsFull = onePair(48);
  // and a pair long enough for the level to settle: a 1500-frame run's RSS, sampled every 10 s,
  // rose to ~560 MB by frame ~370 and stayed within 549-568 MB to the end (peak 574)
  const settled = longFrames ? onePair(longFrames / 4) : undefined;
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  const ms = median(pairs.map((p) => p.s)), ml = median(pairs.map((p) => p.l));
  res.memory = {
    shortFrames: 24,
    longFrames: 96,
    peakRssShortMb: pairs.map((p) => p.s),
    peakRssLongMb: pairs.map((p) => p.l),
    ratioPerPair: pairs.map((p) => round(p.l / p.s, 3)),
    medianShortMb: ms,
    medianLongMb: ml,
    ratioOfMedians: round(ml / ms, 3),
    windowsFull,
    ...(settled ? { settled } : {}),
  };
  res.loadAvgAfter = load();
  return res;
}

/** CPU ids in a Linux CPU list ("0-3,8"), in order. */
function parseCpuList(list: string): number[] {
  const out: number[] = [];
  for (const part of list.trim().split(',')) {
    const [a, b] = part.split('-').map(Number);
    if (!Number.isInteger(a)) continue;
    for (let c = a; c <= (Number.isInteger(b) ? b : a); c++) out.push(c);
  }
  return out;
}

/** The CPUs the bench may use: BENCH_TASKSET's, else this process's affinity (Linux); undefined elsewhere. */
function benchCpus(): number[] | undefined {
  if (process.env.BENCH_TASKSET) return parseCpuList(process.env.BENCH_TASKSET);
  try {
    const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('Cpus_allowed_list:'));
    return line ? parseCpuList(line.slice(line.indexOf(':') + 1)) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * How the default pipeline scales with cores, measured: the 480p clip (x4, mask, faces,
 * temporal) pinned by taskset to the first 1, 2, 4, ... of the bench's CPUs and to all of them,
 * the default --workers each time (it follows the affinity). Speed-up and efficiency are
 * against the one-core run; on a 2-core machine that is the one step 1 -> 2.
 */
async function coreScalingBench(input: string, mask: string, frames: number, tmp: string, log: (m: string) => void): Promise<Record<string, unknown>> {
  const cpus = benchCpus();
  if (!cpus?.length || spawnSync('taskset', ['-V']).status !== 0) return { ran: false, reason: 'needs Linux and taskset (util-linux) to pin the runs to cores' };
  const counts = [...new Set([1, 2, 4, 8, 16, 32, 64].filter((k) => k < cpus.length).concat(cpus.length))];
  log(`bench: workers, core scaling of the 480p default pipeline on ${counts.join(', ')} of ${cpus.length} CPUs ...`);
  const pinned = (k: number, workers?: number) => {
    const rep = restore(defaultPipelineArgs(input, mask, path.join(tmp, `cores-${k}-${workers ?? 'd'}`), workers), cpus.slice(0, k).join(','));
    return {
      cores: k,
      workers: rep.timing.workers,
      fps: rep.timing.fps,
      cpuPercent: rep.timing.cpuPercent,
      cpuMsPerFrame: rep.timing.cpuPercent === undefined ? null : round((rep.timing.cpuPercent / 100) * (1000 / rep.timing.fps), 1),
      peakRssMb: rep.timing.peakRssMb,
      stagesCriticalMsPerFrame: Object.fromEntries(rep.stages.filter((x) => x.ran).map((x) => [x.name, x.timing?.criticalMsPerFrame ?? null])),
      mainThreadMsPerFrame: rep.timing.mainThreadMsPerFrame ?? null,
      // the in-order step (the temporal blend): its own CPU and its wall time per frame
      orderedStep: Object.fromEntries(rep.stages.filter((x) => x.timing?.orderedWallMsPerFrame).map((x) => [x.name, { cpuMsPerFrame: x.timing!.orderedMsPerFrame, wallMsPerFrame: x.timing!.orderedWallMsPerFrame }])),
    };
  };
  // Two rounds over every core count (identical runs here differ by up to a quarter as the
  // host's load moves), the figures their means. On one core, --workers 0 runs beside the
  // default: what the pool costs where it cannot overlap anything.
  const rounds = [0, 1].map(() => ({ serial: pinned(1, 0), runs: counts.map((k) => pinned(k)) }));
  const fpsOf = (i: number) => round(mean(rounds.map((r) => r.runs[i].fps)), 3);
  const base = fpsOf(0);
  const serialFps = round(mean(rounds.map((r) => r.serial.fps)), 3);
  return {
    clip: `120x120 x4 -> 480x480, ${frames} frames, mask + faces + temporal, default --workers; two rounds, means`,
    cpus: cpus.length,
    scaling: counts.map((k, i) => ({ cores: k, fps: fpsOf(i), speedup: round(fpsOf(i) / base, 3), efficiency: round(fpsOf(i) / (base * k), 3) })),
    oneCore: { fpsWorkers0: serialFps, fpsDefault: base, defaultOverWorkers0: round(base / serialFps, 3) },
    // Two steps take every frame one at a time, so they cap the fps on any number of cores: the
    // in-order step (its wall time per frame on all the cores) and the main thread (its CPU time
    // per frame). Per round the slowest in-order step (one stage has one today), then the rounds' mean.
    fpsCapFromOrderedStep: (() => {
      const walls = rounds.map((r) => Math.max(0, ...Object.values(r.runs[r.runs.length - 1].orderedStep).map((o) => o.wallMsPerFrame ?? 0)));
      return walls.every((w) => w > 0) ? round(1000 / mean(walls), 1) : null;
    })(),
    fpsCapFromMainThread: (() => {
      const ms = rounds.map((r) => r.runs[r.runs.length - 1].mainThreadMsPerFrame ?? 0);
      return ms.every((m) => m > 0) ? round(1000 / mean(ms), 1) : null;
    })(),
    rounds,
  };
}

/**
 * A stage that is mostly model: the embedded RRDN x4 (--quality best) on 8 frames of a 120x120
 * clip, default workers: its time over its raw session.run time (the faces stage's two models
 * are ~2 ms each, small beside the JavaScript that prepares their inputs; RRDN is seconds).
 */
function modelHeavyBench(input: string, tmp: string, log: (m: string) => void): Record<string, unknown> {
  log('bench: workers, a model-bound stage: --quality best (RRDN x4), 8 frames at 480p ...');
  const rep = restore([input, '--scale', '4', '--quality', 'best', '--thumbnails', '0', '--report-dir', path.join(tmp, 'rrdn')]);
  const up = rep.stages.find((x) => x.name === 'upscale')!;
  return {
    clip: '120x120 x4 -> 480x480, 8 frames, --quality best',
    backend: up.backend,
    stageMsPerFrame: up.msPerFrame,
    modelRunMsPerFrame: up.timing?.modelRunMs !== undefined ? round(up.timing.modelRunMs / up.frames) : null,
    ratio: up.timing?.ratioToModelRun ?? null,
  };
}

/**
 * What scoring against a reference adds (issue: the metrics pass runs in workers too, so that
 * scoring does not double the run): the 480p default pipeline with --reference (the same frames
 * at 480x480), default workers and --workers 0, alternated. The metrics pass decodes output,
 * reference and the bicubic "before" in lock-step and scores each frame (in a worker when there
 * are workers) while ffmpeg's psnr/ssim filters run alongside.
 */
async function scoringBench(tmp: string, log: (m: string) => void): Promise<Record<string, unknown>> {
  const frames = Number(process.env.BENCH_FRAMES_480 ?? 90);
  log(`bench: scoring, the 480p default pipeline with --reference (${frames} frames): default, --workers 0, alternated ...`);
  const input = squareClip(tmp, 120, frames);
  const reference = squareClip(tmp, 480, frames);
  const mask = await squareMask(tmp, 120);
  const one = (workers: number | undefined, i: number) => {
    const rep = restore([...defaultPipelineArgs(input, mask, path.join(tmp, `score-${workers ?? 'd'}-${i}`), workers), '--reference', reference]);
    const t = rep.timing;
    if (t.scoringMs === undefined || t.pipelineMs === undefined) throw new Error(`bench: the run with --reference reported no scoring time (${rep.metricsSkipped ?? 'no reason given'})`);
    return {
      workers: t.workers ?? 0,
      pipelineMs: t.pipelineMs,
      scoringMs: t.scoringMs,
      scoringMsPerFrame: round(t.scoringMs / rep.output.frames),
      scoringShare: round(t.scoringMs / t.pipelineMs, 3),
      psnrY: rep.metrics?.ffmpeg?.psnr?.y ?? null,
    };
  };
  const runs = [undefined, 0, undefined, 0].map((w, i) => one(w, i));
  const pooled = runs.filter((r) => r.workers !== 0), serial = runs.filter((r) => r.workers === 0);
  return {
    clip: `120x120 x4 -> 480x480, ${frames} frames, mask + faces + temporal, --reference 480x480`,
    scoringMsPerFrameDefault: round(mean(pooled.map((r) => r.scoringMsPerFrame))),
    scoringMsPerFrameWorkers0: round(mean(serial.map((r) => r.scoringMsPerFrame))),
    // what the metrics pass adds to the run's wall time up to the encoded output
    scoringShareDefault: round(mean(pooled.map((r) => r.scoringShare)), 3),
    scoringShareWorkers0: round(mean(serial.map((r) => r.scoringShare)), 3),
    scoringSpeedUp: round(mean(serial.map((r) => r.scoringMs)) / mean(pooled.map((r) => r.scoringMs)), 3),
    runs,
  };
}

async function main() {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'restore-bench-'));
  const log = (m: string) => process.stderr.write(`${m}\n`);
  const out: Record<string, unknown> = { machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memGb: round(os.totalmem() / 2 ** 30, 1), node: process.version, ffmpeg: resolveFfmpeg().version }, createdAt: new Date().toISOString() };
  try {
    if (process.env.BENCH_ONLY === 'cores') {
      // the core-scaling runs alone (e.g. on a machine with many cores)
      const frames = Number(process.env.BENCH_FRAMES_480 ?? 90);
      out.coreScaling = await coreScalingBench(squareClip(tmp, 120, frames), await squareMask(tmp, 120), frames, tmp, log);
      return;
    }
    if (process.env.BENCH_ONLY === 'workers') {
      out.workers = await workersBench(tmp, log);
      return;
    }
    if (process.env.BENCH_ONLY === 'scoring') {
      out.scoring = await scoringBench(tmp, log);
      return;
    }
    // ---- 720p clips from the fixture (square 384 → 720x720, centred in 1280x720)
    const src = fixture('videos', 'astronaut-pan.mp4');
    const vf = 'scale=720:720:flags=lanczos,pad=1280:720:280:0:color=0x303030';
    const short = path.join(tmp, 'short 720p.mp4');
    const long = path.join(tmp, 'long 720p.mp4');
    ff(['-i', src, '-vf', vf, '-frames:v', '24', '-c:v', 'libx264', '-crf', '16', '-pix_fmt', 'yuv420p', '-an', short]);
    ff(['-stream_loop', '3', '-i', src, '-vf', vf, '-frames:v', '96', '-c:v', 'libx264', '-crf', '16', '-pix_fmt', 'yuv420p', '-an', long]);
    const shortInfo = await probeVideo(short);
    // A painted-region mask at 720p, as `restore degrade` draws them.
    const { mask } = rasterizeShapes(1280, 720, makeShapes(1280, 720, 5, 3));
    const maskPng = path.join(tmp, 'mask.png');
    await sharp(Buffer.from(mask.data), { raw: { width: 1280, height: 720, channels: 1 } }).png().toFile(maskPng);
    const identity = fixture('source', 'astronaut.png');

    // ---- plain ffmpeg decode → encode, same encoder settings
    log('bench: ffmpeg transcode at 720p ...');
    let t0 = performance.now();
    ff(['-i', short, '-c:v', 'libx264', '-preset', 'medium', '-crf', '18', '-pix_fmt', 'yuv420p', path.join(tmp, 'plain.mp4')]);
    const ffmpegFps = shortInfo.frameCount / ((performance.now() - t0) / 1000);

    // ---- the pipeline at 720p: inpaint (builtin temporal) + faces + swap (mesh)
    log('bench: restore pipeline at 720p (inpaint + faces + swap) ...');
    t0 = performance.now();
    const e2e = restore([short, '--mask', maskPng, '--identity', identity, '--report-dir', path.join(tmp, 'e2e'), '--thumbnails', '0']);
    const e2eFps = shortInfo.frameCount / ((performance.now() - t0) / 1000);
    out.e2e720p = {
      clip: '1280x720, 24 frames',
      stages: 'inpaint builtin + faces + swap mesh (+ temporal when built), no upscale',
      ffmpegTranscodeFps: round(ffmpegFps),
      pipelineFps: round(e2eFps, 3),
      pipelineFpsInsideRun: e2e.timing.fps,
      ratioPipelineToFfmpeg: round(e2eFps / ffmpegFps, 4),
      msPerFrameByStage: stageTable(e2e),
    };

    // ---- x4 to 720p: 320x180 input, tiled RDN
    log('bench: x4 super-resolution 320x180 → 1280x720 (RDN, tiled) ...');
    const small = path.join(tmp, 'small 180p.mp4');
    ff(['-i', short, '-vf', 'scale=320:180:flags=area', '-frames:v', '6', '-c:v', 'libx264', '-crf', '14', '-pix_fmt', 'yuv420p', small]);
    const sr = restore([small, '--scale', '4', '--report-dir', path.join(tmp, 'sr'), '--thumbnails', '0', '--faces', 'none']);
    const srL = restore([small, '--scale', '4', '--upscale', 'lanczos', '--report-dir', path.join(tmp, 'srl'), '--thumbnails', '0', '--faces', 'none']);
    const upscale = sr.stages.find((s) => s.name === 'upscale');
    const lanczos = srL.stages.find((s) => s.name === 'upscale');
    out.superResolution720p = {
      clip: '320x180 → 1280x720, 6 frames',
      backend: upscale?.backend,
      rdnMsPerFrame: upscale?.msPerFrame,
      tilesPerFrame: (upscale?.details as any)?.tilesPerFrame,
      lanczosMsPerFrame: lanczos?.msPerFrame,
      ratioRdnToLanczos: upscale && lanczos ? round(upscale.msPerFrame / Math.max(0.01, lanczos.msPerFrame), 1) : null,
      pipelineFps: sr.timing.fps,
    };

    // ---- memory: the same pipeline on 24 and 96 frames
    log('bench: peak RSS, 24 vs 96 frames at 720p ...');
    const rssArgs = ['--mask', maskPng, '--inpaint', 'harmonic', '--identity', identity, '--thumbnails', '0'];
    const rShort = restore([short, ...rssArgs, '--report-dir', path.join(tmp, 'rss-s')]);
    const rLong = restore([long, ...rssArgs, '--report-dir', path.join(tmp, 'rss-l')]);
    out.memory = {
      config: '720p, inpaint harmonic + faces + swap mesh',
      shortFrames: rShort.output.frames,
      longFrames: rLong.output.frames,
      peakRssShortMb: rShort.timing.peakRssMb,
      peakRssLongMb: rLong.timing.peakRssMb,
      ratioLongToShort: round(rLong.timing.peakRssMb / rShort.timing.peakRssMb, 3),
    };

    // ---- micro timings
    log('bench: faces, flow, swap per face ...');
    const fb = await benchFaces({ frames: 24 });
    // Optical flow on 640x360 luma from the 720p clip: full size and at 0.5 scale (as inpainting uses it).
    const frames360: Float32Array[] = [];
    for await (const f of decodeFrames(shortInfo, { size: { width: 640, height: 360 }, maxFrames: 6 })) frames360.push(lumaBt601(f));
    const flowMs = (scale: number) => {
      const times: number[] = [];
      for (let i = 1; i < frames360.length; i++) {
        const t = performance.now();
        estimateFlow(frames360[i - 1], frames360[i], { width: 640, height: 360, scale });
        times.push(performance.now() - t);
      }
      return times.reduce((a, b) => a + b, 0) / times.length;
    };
    const flowFull = flowMs(1);
    const flowHalf = flowMs(0.5);
    const swap = await benchSwapBackend('mesh', { identityPhoto: fixture('identities', 'grace-hopper.jpg'), targetPhoto: identity, iterations: 5 });
    out.micro = {
      faceDetectMsPerFrame: round(fb.detectMsPerFrame),
      faceDetectMsMedian: round(fb.detectMsMedian),
      meshMsPerFace: round(fb.meshMsPerFace),
      flowMsPerFrame640x360: round(flowFull),
      flowMsPerFrame640x360AtHalfScale: round(flowHalf),
      swapMeshMsPerFace: round(swap.msPerFace),
      swapMeshFaceWidth: swap.faceWidth,
    };
    out.workers = await workersBench(tmp, log);
    out.scoring = await scoringBench(tmp, log);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
    writeOut(out);
  }
}

function writeOut(out: Record<string, unknown>): void {
  mkdirSync(path.join(packageRoot, 'reports'), { recursive: true });
  const file = path.join(packageRoot, 'reports', process.env.BENCH_ONLY ? `bench-${process.env.BENCH_ONLY}.json` : 'bench.json');
  writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
  process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  process.stderr.write(`bench: wrote ${file}\n`);
}

await main();
