/**
 * The worker pool (--workers): model sessions and pixel tasks in worker threads, the stage
 * channels, and the promise that the pool changes nothing in the output: --workers 0 and the
 * default give bit-identical frames at --crf 0.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeFrames } from '../src/media/decode.js';
import { probeVideo } from '../src/media/probe.js';
import { frameMetrics } from '../src/metrics/frame.js';
import { scoreFrame } from '../src/pipeline/score.js';
import { loadSession, ort } from '../src/models/session.js';
import { Channel } from '../src/pipeline/chain.js';
import { defaultOptions, runRestore, type RunResult } from '../src/pipeline/run.js';
import { silentLogger } from '../src/util/log.js';
import { closeWorkers, configureWorkers, CostMeter, costScope, getPool, threadCpuMs } from '../src/workers/pool.js';
import { affineImageModel } from './helpers/tiny-models.js';
import { FaceAnalyzer } from '../src/faces/analyzer.js';
import { analyzeFacesRemote } from '../src/stages/threads/remote.js';
import { fixture, tempDir } from './helpers/media.js';

const tmp = tempDir('restore-workers-');
afterAll(async () => {
  configureWorkers(0);
  await closeWorkers();
  tmp.cleanup();
});

const seeded = (n: number, seed: number) => {
  const a = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) a[i] = (s = (s * 1664525 + 1013904223) >>> 0) >>> 24;
  return a;
};

describe('worker pool', () => {
  it('runs a model in the workers with the same result as on the main thread, and counts its cost', async () => {
    const bytes = affineImageModel({ dims: [1, 3, 'h', 'w'], a: [0.5, 1, 2], b: [0.1, 0, -0.1], scale: 2 });
    configureWorkers(0);
    const local = await loadSession(bytes, { device: 'cpu', key: 'affine' });
    configureWorkers(2);
    const remote = await loadSession(bytes, { device: 'cpu', key: 'affine' });
    expect(remote.session.inputNames).toEqual(local.session.inputNames);
    const name = local.session.inputNames[0];
    const x = Float32Array.from({ length: 3 * 8 * 8 }, (_, i) => (i % 17) / 17);
    const feed = () => ({ [name]: new ort.Tensor('float32', x, [1, 3, 8, 8]) });
    const a = await local.session.run(feed());
    const meter = new CostMeter();
    const b = await costScope.run(meter, () => remote.session.run(feed()));
    const out = local.session.outputNames[0];
    expect(Array.from(b[out].data as Float32Array)).toEqual(Array.from(a[out].data as Float32Array));
    expect(b[out].dims).toEqual(a[out].dims);
    // the caller's input buffer is still usable (copied once, then moved)
    expect(x.length).toBe(3 * 8 * 8);
    expect(meter.runs).toBe(1);
    expect(meter.tasks).toBe(1);
    expect(meter.workerMs).toBeGreaterThanOrEqual(meter.runMs);
  });

  it('scores frames in the workers exactly as on the main thread', async () => {
    configureWorkers(2);
    expect(getPool()?.size).toBe(2);
    const w = 33, h = 21;
    const mk = (seed: number) => ({ width: w, height: h, data: seeded(w * h * 3, seed) });
    const out = mk(1), ref = mk(2), before = mk(3);
    const want = { after: frameMetrics(out, ref, 4), before: frameMetrics(before, ref, 4) };
    const got = await scoreFrame({ out: mk(1), ref: mk(2), before: mk(3), width: w, height: h, index: 4 });
    expect(got).toEqual(want);
  });

  it('analyzes faces in a worker (models and pre-processing) exactly as on the main thread', async () => {
    // the faces stage and the inpaint stage's face prior both send whole analyses to the pool
    const info = await probeVideo(fixture('videos', 'astronaut-pan.mp4'));
    const frames = [];
    for await (const f of decodeFrames(info, { maxFrames: 2 })) frames.push(f);
    configureWorkers(0);
    expect(await analyzeFacesRemote(frames[0], { device: 'cpu' })).toBeUndefined();
    const local = await FaceAnalyzer.create({ device: 'cpu' });
    configureWorkers(2);
    for (const f of frames) {
      const want = await local.analyze(f);
      const copy = f.data.slice();
      const got = (await analyzeFacesRemote(f, { device: 'cpu' }))!;
      expect(want.length).toBe(1);
      expect(got.faces).toEqual(want);
      expect(got.timings.detectCalls).toBe(1);
      expect(got.timings.meshCalls).toBe(1);
      expect(Buffer.compare(Buffer.from(f.data), Buffer.from(copy))).toBe(0); // the caller's frame is kept
      // the worker's copy comes back, the same bytes in a buffer of its own (the faces stage's item.base)
      expect(Buffer.compare(Buffer.from(got.frame.data), Buffer.from(copy))).toBe(0);
      expect(got.frame.data.buffer).not.toBe(f.data.buffer);
    }
    // the analysis's model time is the worker thread's CPU time, inside the task's CPU time
    // (that clock, /proc/thread-self/schedstat, moves at the scheduler's ticks and switches: two
    // ~2 ms runs can read 0, so analyses repeat until it has moved, 20 at most)
    const meter = new CostMeter();
    let n = 0;
    while (n < 20 && !(meter.runMs > 0)) {
      await costScope.run(meter, () => analyzeFacesRemote(frames[0], { device: 'cpu' }));
      n++;
    }
    expect(meter.runs).toBe(2 * n); // detector + mesh
    expect(meter.runMs).toBeGreaterThan(0);
    expect(meter.runMs).toBeLessThanOrEqual(meter.workerMs);
  });

  it("the thread clock: each thread's own CPU time, and pools opened and closed leave no file open", async () => {
    // work until the thread's clock has moved 10 ms (at most 10 s of wall time, on a busy machine)
    const c0 = threadCpuMs(), t0 = performance.now();
    let x = 0;
    while (threadCpuMs() - c0 < 10 && performance.now() - t0 < 10_000) for (let i = 0; i < 1e5; i++) x += Math.sqrt(i);
    const used = threadCpuMs() - c0, wall = performance.now() - t0;
    expect(x).toBeGreaterThan(0);
    // one thread's CPU time: it advances while the thread works, never faster than the wall clock
    // (give or take a scheduler tick: schedstat's runtime of the running thread is brought up to
    // date at ticks and switches, so the first reading may lag; a run of the full suite saw 12.0
    // ms against 10.9 of wall time)
    expect(used).toBeGreaterThanOrEqual(10);
    expect(used).toBeLessThanOrEqual(wall + 10);
    const open = () => readdirSync('/proc/self/fd').map((f) => { try { return `${f} ${readlinkSync(`/proc/self/fd/${f}`)}`; } catch { return f; } });
    const fds = () => open().length;
    const w = 33, h = 21;
    const mk = (seed: number) => ({ width: w, height: h, data: seeded(w * h * 3, seed) });
    const cycle = async () => {
      configureWorkers(2);
      // every worker answers once (a worker terminated while it still loads its modules can leave
      // those files open: Node's doing, and no run closes a pool that early but a test would)
      await getPool()!.broadcast({ op: 'ort.release', key: 'none' });
      await scoreFrame({ out: mk(1), ref: mk(2), width: w, height: h, index: 0 }); // each worker reads its clock
      configureWorkers(0);
      await closeWorkers();
    };
    // (a terminated worker's loop and the files it opened close just after terminate() resolves,
    // later on a busy machine): wait up to 10 s for the count to reach `target`, or until it has
    // not fallen for `quiet` polls
    const settle = async (target: number, quiet = Infinity) => {
      let n = fds(), still = 0;
      for (let t = 0; t < 200 && n > target && still < quiet; t++) {
        await new Promise((r) => setTimeout(r, 50));
        const m = fds();
        still = m < n ? 0 : still + 1;
        n = m;
      }
      return n;
    };
    await cycle(); // one pool first: whatever the process opens once stays out of the count
    const before = await settle(0, 10);
    const was = open();
    for (let i = 0; i < 4; i++) await cycle();
    // within one pool too: its workers read their clocks for every task without opening a file each time
    configureWorkers(2);
    await Promise.all([0, 1, 2, 3].map((k) => scoreFrame({ out: mk(k), ref: mk(9), width: w, height: h, index: k })));
    const live = fds();
    for (let k = 0; k < 40; k++) await scoreFrame({ out: mk(k), ref: mk(9), width: w, height: h, index: k });
    // (two of slack for whatever else the process has open for a moment; a file per read is 40 more)
    expect(fds()).toBeLessThanOrEqual(live + 2);
    configureWorkers(0);
    await closeWorkers();
    const after = await settle(before);
    // (the same slack; a file left by each of the 8 workers is 8 more)
    expect(after, `files left open: ${open().filter((f) => !was.includes(f)).join(', ')}`).toBeLessThanOrEqual(before + 2);
  });

  it('a channel keeps order, reads at most `ahead` items early, and passes errors on', async () => {
    let pulled = 0;
    async function* src() {
      for (let i = 0; i < 10; i++) {
        pulled++;
        yield i;
      }
    }
    const ch = new Channel(src(), 2);
    const got: number[] = [];
    for await (const v of ch) {
      await new Promise((r) => setTimeout(r, 2));
      expect(pulled - v).toBeLessThanOrEqual(3);
      got.push(v);
    }
    expect(got).toEqual([...Array(10).keys()]);
    async function* bad() {
      yield 1;
      throw new Error('boom');
    }
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const v of new Channel(bad(), 2)) seen.push(v);
      })(),
    ).rejects.toThrow('boom');
    expect(seen).toEqual([1]);
  });
});

/** The two videos decode to the same `frames` frames, byte for byte. */
async function expectSameFrames(fileA: string, fileB: string, frames: number): Promise<void> {
  const [a, b] = await Promise.all([probeVideo(fileA), probeVideo(fileB)]);
  const ib = decodeFrames(b, {})[Symbol.asyncIterator]();
  let n = 0;
  for await (const fa of decodeFrames(a, {})) {
    const fb = await ib.next();
    expect(fb.done).toBe(false);
    expect(Buffer.compare(Buffer.from(fa.data), Buffer.from(fb.value!.data))).toBe(0);
    n++;
  }
  expect(n).toBe(frames);
}

describe('--workers 0 and the default give the same output', () => {
  const C = (f: string) => fixture('videos', 'cases', 'pan-swap-x4', f);
  const run = (workers: number): Promise<RunResult> =>
    runRestore(
      defaultOptions({
        input: C('input.mp4'),
        mask: C('mask.mp4'),
        reference: C('reference.mp4'),
        identity: [fixture('source', 'astronaut.png')],
        reportDir: path.join(tmp.dir, `w${workers}`),
        out: path.join(tmp.dir, `w${workers}.mkv`),
        crf: 0,
        maxFrames: 8,
        thumbnails: 0,
        workers,
        quiet: true,
        progress: false,
      }),
      { log: silentLogger },
    );

  it('bit-identical frames and metrics at --crf 0 (inpaint, x4, faces, swap, temporal)', async () => {
    const serial = await run(0);
    const pooled = await run(2);
    expect(serial.report.timing.workers).toBe(0);
    expect(pooled.report.timing.workers).toBe(2);
    const ran = (r: RunResult) => r.report.stages.filter((s) => s.ran).map((s) => s.name);
    expect(ran(pooled)).toEqual(ran(serial));
    expect(ran(serial)).toEqual(expect.arrayContaining(['inpaint', 'upscale', 'faces', 'swap', 'temporal']));
    await expectSameFrames(serial.out, pooled.out, 8);
    expect(pooled.report.metrics?.perFrame).toEqual(serial.report.metrics?.perFrame);
    // model stages report their raw session.run time; the pooled run's stage times are CPU, not waits
    const by = Object.fromEntries(pooled.report.stages.map((s) => [s.name, s]));
    expect(by.faces.timing?.modelRuns).toBeGreaterThan(0);
    expect(by.faces.timing?.workerMs).toBeGreaterThan(0);
    expect(by.temporal.timing?.workerMs).toBeGreaterThan(0);
    // the temporal blend is the in-order step: its actor's calls are timed apart (their own CPU
    // time is part of the stage's worker time; their wall time is the step's latency)
    const tt = by.temporal.timing!;
    expect(tt.orderedWallMsPerFrame).toBeGreaterThan(0);
    expect(tt.orderedMs).toBeGreaterThanOrEqual(0);
    expect(tt.orderedMs!).toBeLessThanOrEqual(tt.workerMs);
    expect(serial.report.stages.find((x) => x.name === 'temporal')!.timing!.orderedMs).toBeUndefined();
    // the main thread's CPU per frame: all the work without workers, a share of it with them
    expect(pooled.report.timing.mainThreadMsPerFrame).toBeGreaterThan(0);
    expect(pooled.report.timing.mainThreadMsPerFrame!).toBeLessThan(serial.report.timing.mainThreadMsPerFrame!);
    // the faces models' input preparation (letterbox, mesh crops) is timed apart, inside the stage's own time
    for (const r of [serial, pooled]) {
      const t = r.report.stages.find((x) => x.name === 'faces')!.timing!;
      expect(t.inputPrepMs).toBeGreaterThan(0);
      expect(t.inputPrepMs! + t.modelRunMs!).toBeLessThanOrEqual(t.mainMs + t.workerMs + 2);
      expect(t.ratioWithoutInputPrep).toBeLessThan(t.ratioToModelRun!);
    }
    const critical = pooled.report.stages.reduce((s, r) => s + (r.timing?.criticalMs ?? 0), 0);
    expect(critical).toBeLessThanOrEqual(pooled.report.timing.wallMs);
    // the metrics pass against --reference is timed apart: after the encoded output, inside the run's wall time
    for (const r of [serial, pooled]) {
      const t = r.report.timing;
      expect(t.scoringMs).toBeGreaterThan(0);
      expect(t.pipelineMs! + t.scoringMs!).toBeLessThanOrEqual(t.wallMs + 1);
      expect(t.scoringShare).toBeCloseTo(t.scoringMs! / t.pipelineMs!, 2);
    }
  });

  it('bit-identical with back-projection over neighbouring frames (--sr-frames 1): flows and finish in the workers', async () => {
    const runSr = (workers: number) =>
      runRestore(
        defaultOptions({
          input: C('input.mp4'),
          reportDir: path.join(tmp.dir, `sr${workers}`),
          out: path.join(tmp.dir, `sr${workers}.mkv`),
          scale: 4,
          srFrames: 1,
          crf: 0,
          maxFrames: 6,
          thumbnails: 0,
          backends: { faces: 'none', temporal: 'none' },
          workers,
          quiet: true,
          progress: false,
        }),
        { log: silentLogger },
      );
    const serial = await runSr(0);
    const pooled = await runSr(2);
    const up = (r: RunResult) => r.report.stages.find((s) => s.name === 'upscale')!;
    expect((up(pooled).details as { backprojection: { neighbourFrames: number } }).backprojection.neighbourFrames).toBe(1);
    // the neighbour work ran in the workers, not on the main thread
    expect(up(pooled).timing?.workerMs).toBeGreaterThan(up(pooled).timing!.mainMs);
    await expectSameFrames(serial.out, pooled.out, 6);
  });
});
