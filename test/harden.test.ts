/**
 * Issue #15: option values checked before any work, outputs never overwrite inputs, a killed
 * run's partial files removed by the next run, one result or none, audio cut to the video,
 * disk-full and read-only outputs named, the frames scored said on screen.
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RestoreError } from '../src/errors.js';
import { ffmpegWriteCause, removeStalePartials } from '../src/media/encode.js';
import { resolveFfmpeg } from '../src/media/ffmpeg.js';
import { STAGES } from '../src/stages/index.js';
import { shownChoices } from '../src/pipeline/backends.js';
import { defaultOptions, planOutputSize, runRestore, scoredFramesLine } from '../src/pipeline/run.js';
import { silentLogger } from '../src/util/log.js';
import type { RestoreOptions } from '../src/stages/types.js';
import { CLI, oneErrorLine, restore } from './helpers/cli.js';
import { ffmpegRun, fixture, tempDir } from './helpers/media.js';

const tmp = tempDir('restore-harden-');
afterAll(() => tmp.cleanup());
const CASE = (f: string) => fixture('videos', 'cases', 'pan-x4', f);
/** The cheapest full run: no model stage. */
const FAST = ['--upscale', 'lanczos', '--faces', 'none', '--swap', 'none', '--temporal', 'none', '--thumbnails', '2'];

/** Every file under `dir` (relative paths). */
function tree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => path.relative(dir, path.join(d.parentPath, d.name)))
    .sort();
}
const partials = (dir: string) => tree(dir).filter((f) => /\.partial-/.test(f));

/** Seconds of each stream of a media file (ffprobe). */
function streamSeconds(file: string): { video: number; audio: number } {
  const r = spawnSync(resolveFfmpeg().ffprobe, ['-v', 'error', '-show_entries', 'stream=codec_type,duration', '-of', 'json', file], { encoding: 'utf8' });
  const streams = JSON.parse(r.stdout).streams as { codec_type: string; duration: string }[];
  const of = (t: string) => Number(streams.find((s) => s.codec_type === t)?.duration ?? NaN);
  return { video: of('video'), audio: of('audio') };
}

describe('every option value is checked before any work', () => {
  const bad: [string[], RegExp][] = [
    [['--preset', 'nonsense'], /--preset must be one of ultrafast, .*veryslow.* \(got "nonsense"\)/],
    [['--out', tmp.dir], /is a folder/],
    [['--out', path.join(tmp.dir, 'no-extension')], /the name has no extension/],
    [['--out', path.join(tmp.dir, 'clip.avi')], /'\.avi' is not a video container/],
    [['--temporal', 'foo'], /--temporal must be one of auto, flow, none/],
    [['--swap', 'foo'], /--swap must be one of/],
    [['--restore-face', 'foo'], /--restore-face must be one of auto, gpen/],
    [['--inpaint', 'foo'], /--inpaint must be one of/], // no --mask: the stage would not even run
    [['--upscale', 'foo'], /--upscale must be one of/], // no --scale: the stage would not even run
    [['--faces', 'foo'], /--faces must be one of/],
    [['--restore-face', 'gpen'], /face restoration model gpen_bfr_256 is not installed/], // valid name, no file: before the face models load
    [['--scale', '2', '--size', '200x200'], /--scale and --size both set the output size/],
    [['--reference', CASE('reference.mp4'), '--scale', '2'], /output will be 192x192 \(--scale 2\) but the reference is 384x384/],
    [['--reference', CASE('reference.mp4'), '--size', '200x200'], /output will be 200x200 \(--size\) but the reference is 384x384/],
    [['--reference', fixture('videos', 'astronaut-turn.mp4'), '--size', '384x200'], /reference is 384x384/],
  ];

  it('in process: each fails in under a second with a usage error and no model loaded', async () => {
    const models = path.join(tmp.dir, 'no-models');
    mkdirSync(models);
    const prev = process.env.RESTORE_MODELS_DIR;
    process.env.RESTORE_MODELS_DIR = models; // any model load would convert an embedded model into it
    const times: number[] = [];
    try {
      const cli = (args: string[]): Partial<RestoreOptions> => {
        const o: Record<string, any> = {};
        for (let i = 0; i < args.length; i += 2) o[args[i].slice(2)] = args[i + 1];
        const backends = Object.fromEntries(STAGES.map((s) => [s.key, o[s.flag.slice(2)]]).filter(([, v]) => v !== undefined));
        const [w, h] = (o.size ?? '').split('x').map(Number);
        return {
          out: o.out,
          preset: o.preset,
          reference: o.reference,
          scale: o.scale ? Number(o.scale) : undefined,
          size: o.size ? { width: w, height: h } : undefined,
          backends,
        };
      };
      for (const [args, pattern] of bad) {
        const t0 = performance.now();
        const err = await runRestore(defaultOptions({ input: CASE('input.mp4'), reportDir: path.join(tmp.dir, 'bad-inproc'), ...cli(args) }), { log: silentLogger }).then(
          () => undefined,
          (e) => e,
        );
        const ms = performance.now() - t0;
        times.push(ms);
        expect(err, args.join(' ')).toBeInstanceOf(RestoreError);
        expect(err.kind, args.join(' ')).toBe('usage');
        expect(err.toLine(), args.join(' ')).toMatch(pattern);
        expect(ms, args.join(' ')).toBeLessThan(1000);
      }
    } finally {
      if (prev === undefined) delete process.env.RESTORE_MODELS_DIR;
      else process.env.RESTORE_MODELS_DIR = prev;
    }
    expect(readdirSync(models)).toEqual([]);
    expect(tree(path.join(tmp.dir, 'bad-inproc')).filter((f) => !f.endsWith('.json'))).toEqual([]);
    console.log(`bad option values: ${bad.length} refused in process, slowest ${Math.max(...times).toFixed(0)} ms`);
  });

  it('through the CLI: exit 2, one line, nothing written', () => {
    const dir = path.join(tmp.dir, 'bad-cli');
    const models = path.join(tmp.dir, 'no-models-cli');
    mkdirSync(models);
    const times: number[] = [];
    for (const [args, pattern] of bad) {
      const r = restore([CASE('input.mp4'), '--report-dir', dir, ...args], 60_000, { RESTORE_MODELS_DIR: models });
      times.push(r.ms);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(oneErrorLine(r.stderr)).toMatch(pattern);
    }
    expect(readdirSync(models)).toEqual([]);
    expect(tree(dir)).toEqual([]);
    console.log(`bad option values through the CLI: ${bad.length} exit 2, slowest process ${Math.max(...times).toFixed(0)} ms (node start included)`);
  });

  it('--help lists the names validation accepts (one table)', () => {
    const help = restore(['run', '--help']).stdout.replace(/\s+/g, ' ');
    for (const s of STAGES) expect(help, s.flag).toContain(shownChoices(s.key).join(' | '));
  });

  it('--device cuda without CUDA: exactly one line on stderr, no native log lines', () => {
    const r = restore([CASE('input.mp4'), '--device', 'cuda', '--report-dir', path.join(tmp.dir, 'cuda'), ...FAST, '--max-frames', '2']);
    if (r.code === 0) return; // a machine with CUDA
    expect(r.code).toBe(3);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(oneErrorLine(r.stderr)).toMatch(/CUDA/);
  });

  it('output size rules (unit): uniform reference scale is followed and said, another shape refused', () => {
    const v = { width: 96, height: 96 };
    expect(planOutputSize(v, { width: 384, height: 384 }, {})).toMatchObject({ size: { width: 384, height: 384 }, note: expect.stringMatching(/upscaling x4 to the reference size 384x384/) });
    expect(planOutputSize(v, { width: 384, height: 384 }, { size: { width: 384, height: 384 } })).toEqual({ size: { width: 384, height: 384 } });
    expect(planOutputSize(v, { width: 96, height: 96 }, {})).toEqual({});
    expect(() => planOutputSize(v, { width: 400, height: 300 }, {})).toThrow(/reference is 400x300, the input 96x96: another shape/);
    expect(planOutputSize({ width: 101, height: 77 }, { width: 202, height: 154 }, { scale: 2 }).size).toEqual({ width: 202, height: 154 });
    expect(scoredFramesLine(10, 16, 10)).toBe('metrics: the reference has 10 frames, the output 16: scored the first 10');
    expect(scoredFramesLine(8, 8, 48)).toMatch(/scored the output's 8 frames against the first 8 of the reference's 48/);
    expect(scoredFramesLine(8, 8, 8)).toBeUndefined();
  });
});

describe('outputs never overwrite inputs', () => {
  it('--out equal to the reference, the mask, a link to the input: refused, files unchanged', () => {
    const dir = path.join(tmp.dir, 'same');
    mkdirSync(dir);
    const input = path.join(dir, 'input.mp4');
    const ref = path.join(dir, 'reference.mp4');
    const mask = path.join(dir, 'mask.mp4');
    copyFileSync(CASE('input.mp4'), input);
    copyFileSync(CASE('reference.mp4'), ref);
    copyFileSync(CASE('mask.mp4'), mask);
    symlinkSync(input, path.join(dir, 'sym.mp4'));
    linkSync(ref, path.join(dir, 'hard.mp4'));
    const before = [input, ref, mask].map((f) => readFileSync(f));
    const cases: [string, RegExp][] = [
      [ref, /is --reference .*: it would be overwritten/],
      [mask, /is --mask .*: it would be overwritten/],
      [path.join(dir, 'sym.mp4'), /is the input video .* through a link/],
      [path.join(dir, 'hard.mp4'), /is --reference .* through a link/],
      [input, /is the input video/],
    ];
    for (const [out, pattern] of cases) {
      const r = restore([input, '--reference', ref, '--mask', mask, '--out', out, '--report-dir', path.join(dir, 'r'), ...FAST]);
      expect(r.code, r.stderr).toBe(2);
      expect(oneErrorLine(r.stderr)).toMatch(pattern);
    }
    expect([input, ref, mask].map((f) => readFileSync(f))).toEqual(before);
  });
});

describe('kill -9, then a rerun', () => {
  it('after kills at 5 moments, a rerun into the same folder leaves no partial file (and keeps a live run\'s)', async () => {
    const dir = path.join(tmp.dir, 'killed');
    const args = [CASE('input.mp4'), '--mask', CASE('mask.mp4'), '--inpaint', 'harmonic', '--scale', '4', '--report-dir', dir, ...FAST];
    let seen = 0;
    const moments = [
      { label: 'at start', after: 150 },
      { label: 'first partial', waitFor: 1 },
      { label: 'partial + 300 ms', waitFor: 1, extra: 300 },
      { label: 'mask and video partials', waitFor: 2 },
      { label: 'thumbnails written', waitFor: 2, thumbs: true },
    ];
    const t0 = performance.now();
    for (const m of moments) {
      const child = spawn(process.execPath, [CLI, ...args], { stdio: 'ignore' });
      const exited = new Promise<void>((r) => child.on('exit', () => r()));
      let running = true;
      void exited.then(() => (running = false));
      const deadline = performance.now() + 60_000;
      if (m.after) await new Promise((r) => setTimeout(r, m.after));
      else {
        for (;;) {
          const p = partials(dir).filter((f) => f.includes(`-${child.pid}-`));
          const th = tree(path.join(dir, 'thumbs')).filter((f) => !f.includes('.partial-'));
          if (p.length >= (m.waitFor ?? 0) && (!m.thumbs || th.length > 0)) break;
          if (!running || performance.now() > deadline) break;
          await new Promise((r) => setTimeout(r, 20));
        }
        if (m.extra) await new Promise((r) => setTimeout(r, m.extra));
      }
      child.kill('SIGKILL');
      await exited;
      seen += partials(dir).filter((f) => f.includes(`-${child.pid}-`)).length;
    }
    expect(seen).toBeGreaterThan(0); // the kills did leave partial files behind
    // A partial whose process is alive (this test runner) belongs to a running run: kept.
    const live = path.join(dir, `.other.partial-${process.pid}-abcdef.mp4`);
    writeFileSync(live, 'x');
    const r = restore([...args, '--max-frames', '2']);
    expect(r.code, r.stderr).toBe(0);
    expect(partials(dir)).toEqual([path.basename(live)]);
    console.log(`kill -9 at ${moments.length} moments: ${seen} partial files left by the kills, 0 after the rerun (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  });

  it('removeStalePartials removes only the names of dead processes', () => {
    const dir = path.join(tmp.dir, 'stale');
    mkdirSync(dir);
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    const names = [`.out.partial-${dead}-0a1b2c.mp4`, `.mask.partial-${dead}-ffffff.mp4`, `.out.partial-${process.pid}-0a1b2c.mp4`, 'out.partial-1-0a1b2c.mp4', 'keep.mp4'];
    for (const n of names) writeFileSync(path.join(dir, n), 'x');
    expect(removeStalePartials(dir).sort()).toEqual([names[1], names[0]].sort());
    expect(readdirSync(dir).sort()).toEqual([names[2], names[3], 'keep.mp4'].sort());
  });
});

describe('one result or none', () => {
  it('report.html cannot be written: exit 4, no video under its name, no thumbs/, no partials', () => {
    const dir = path.join(tmp.dir, 'no-html');
    mkdirSync(path.join(dir, 'report.html'), { recursive: true }); // a folder where the file must go
    const out = path.join(dir, 'out.mp4');
    const r = restore([CASE('input.mp4'), '--out', out, '--report-dir', dir, ...FAST, '--max-frames', '4']);
    expect(r.code, r.stderr).toBe(4);
    expect(oneErrorLine(r.stderr)).toMatch(/report/);
    expect(existsSync(out)).toBe(false);
    expect(tree(dir)).toEqual([]);
    expect(readdirSync(dir)).toEqual(['report.html']);
  });

  it('face models that cannot be prepared while the first frames decode: exit 3, their one line, nothing written', () => {
    // the face analyzer loads in the background (stages open at once); its failure must stop the
    // run with its own error, not as "interrupted" or an unhandled rejection
    const dir = path.join(tmp.dir, 'no-models-dir');
    mkdirSync(dir);
    const blocker = path.join(tmp.dir, 'models-is-a-file');
    writeFileSync(blocker, 'not a folder');
    const out = path.join(dir, 'out.mp4');
    const r = restore([CASE('input.mp4'), '--mask', CASE('mask.mp4'), '--scale', '4', '--out', out, '--report-dir', path.join(dir, 'rep'), '--max-frames', '12'], 120_000, {
      RESTORE_MODELS_DIR: path.join(blocker, 'models'),
    });
    expect(r.code, r.stderr).toBe(3);
    expect(oneErrorLine(r.stderr)).toMatch(/cannot write the converted model .*ENOTDIR/);
    expect(r.stderr).not.toMatch(/interrupted|Unhandled|at .*\.js:\d+/);
    expect(tree(dir)).toEqual([]);
  });

  it('disk full says no space left (ENOSPC); a read-only mount says so (EROFS)', () => {
    expect(ffmpegWriteCause('[mp4 @ 0x1] av_interleaved_write_frame(): No space left on device\nConversion failed!')).toBe('no space left on device (ENOSPC)');
    expect(ffmpegWriteCause('x: Read-only file system')).toBe('read-only file system (EROFS)');
    expect(ffmpegWriteCause('Conversion failed!')).toBeUndefined();
    // Real mounts, in a private mount namespace (gone with the process); skipped where not allowed.
    const mnt = path.join(tmp.dir, 'mnt');
    mkdirSync(mnt);
    const probe = spawnSync('unshare', ['-m', 'sh', '-c', `mount -t tmpfs -o size=64k tmpfs '${mnt}'`], { encoding: 'utf8' });
    if (probe.status !== 0) {
      console.log('ENOSPC/EROFS with real mounts skipped: no unshare/mount here');
      return;
    }
    const run = (opts: string) =>
      spawnSync('unshare', ['-m', 'sh', '-c', `mount -t tmpfs -o ${opts} tmpfs "$0" && exec "$1" "$2" "$3" --out "$0/out.mp4" --report-dir "$4" --scale 4 --crf 0 --upscale lanczos --faces none --swap none --temporal none`, mnt, process.execPath, CLI, CASE('input.mp4'), path.join(tmp.dir, 'mnt-report')], { encoding: 'utf8', timeout: 120_000 });
    const full = run('size=64k');
    expect(full.status, full.stderr).toBe(4);
    expect(oneErrorLine(full.stderr)).toMatch(/no space left on device \(ENOSPC\)/);
    const ro = run('ro');
    expect(ro.status, ro.stderr).toBe(4);
    expect(oneErrorLine(ro.stderr)).toMatch(/read-only file system \(EROFS\)/);
  });
});

describe('length and scoring', () => {
  it('--max-frames: the audio is cut to the video length (within one frame)', () => {
    const dir = path.join(tmp.dir, 'audio');
    const r = restore([fixture('videos', 'astronaut-pan.mp4'), '--max-frames', '8', '--report-dir', dir, '--json', ...FAST]);
    expect(r.code, r.stderr).toBe(0);
    const { video, audio } = streamSeconds(JSON.parse(r.stdout).out);
    expect(video).toBeCloseTo(8 / 24, 2);
    expect(Math.abs(audio - video)).toBeLessThanOrEqual(1 / 24);
    console.log(`--max-frames 8: video ${video.toFixed(3)} s, audio ${audio.toFixed(3)} s`);
  });

  it('a reference with fewer frames: one line on screen says what was scored', () => {
    const short = path.join(tmp.dir, 'short-ref.mp4');
    ffmpegRun(['-i', CASE('reference.mp4'), '-frames:v', '5', '-c:v', 'libx264', '-crf', '12', '-an', short]);
    const r = restore([CASE('input.mp4'), '--reference', short, '--max-frames', '8', '--report-dir', path.join(tmp.dir, 'short'), ...FAST]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^no --scale or --size: upscaling x4 to the reference size 384x384$/m);
    expect(r.stderr).toMatch(/^metrics: the reference has 5 frames, the output 8: scored the first 5$/m);
  });
});
