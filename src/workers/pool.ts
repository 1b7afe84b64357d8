/**
 * The worker pool (`--workers N`): N `worker_threads` that own ONNX Runtime sessions and run
 * the heavy pixel work (optical flow, the temporal smoother, PSNR/SSIM). The main thread only
 * schedules. One pool per process, so batch videos run at once share it (and the core budget).
 *
 * Tasks go to an idle worker (a queue on the main thread holds the rest, so a long task never
 * sits behind another in a busy worker); a stateful "actor" (the temporal smoother of one run)
 * lives in one worker and its calls go there in order. Typed arrays move by transfer.
 *
 * Cost accounting: a task's busy time in its worker (and, for model calls, the raw
 * `session.run` time) is added to the CostMeter of the async context that submitted it, so each
 * stage sees the work done on its behalf wherever it ran.
 */
import { AsyncLocalStorage, createHook } from 'node:async_hooks';
import { openSync, readFileSync, readSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread, MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { packageRoot } from '../util/paths.js';

/** Work done on behalf of one stage (or one pass). */
export class CostMeter {
  /** Main-thread time of callbacks running in this meter's async context (see trackMainThread). */
  mainMs = 0;
  /** CPU time of this meter's tasks inside workers (their thread's own work). */
  workerMs = 0;
  /** Wall time those tasks ran in their worker (more than workerMs when other processes hold the cores). */
  workerWallMs = 0;
  /** Raw `session.run` time of its model calls: CPU time in workers, */
  runMs = 0;
  /** and wall time on the main thread (scaled to CPU time with the rest of the main thread's, see runStages). */
  runMainMs = 0;
  runs = 0;
  /**
   * Time its models' inputs took to prepare (resizes, crops: see addPrepCost): in workers, wall
   * time scaled by the CPU share of the task it was part of (worker.ts),
   */
  prepMs = 0;
  /** and wall time on the main thread (scaled with the rest of the main thread's, see runStages). */
  prepMainMs = 0;
  /**
   * Its actors' calls (the steps that must run one after another, in order: the temporal
   * smoother's blend): the actor's own CPU time, without what peer workers computed for it,
   */
  orderedMs = 0;
  /** and their wall time in the worker, the waits for those peers included (the step's latency). */
  orderedWallMs = 0;
  orderedCalls = 0;
  /** Submit → result time of its worker tasks, as seen from the main thread. */
  taskWallMs = 0;
  tasks = 0;
}

export const costScope = new AsyncLocalStorage<CostMeter>();

/** This thread's /proc/thread-self/schedstat, opened once (each worker's module copy opens its own); false where there is none. */
let schedstat: { fd: number; buf: Buffer } | false | undefined;
/**
 * CPU time of the calling thread so far, ms (Linux /proc/thread-self/schedstat: time on a
 * core, so a thread preempted by other processes is not charged for the wait). Elsewhere:
 * wall time, which is the same on an idle machine.
 *
 * The file is opened once per thread and read again from offset 0 (one pread, ~3 µs): a
 * readFileSync per call (open, stat, read, close) took ~15-30 µs, and a worker's face
 * analysis reads the clock eight times.
 *
 * Resolution: the kernel brings a running thread's figure up to date at its scheduler ticks
 * (every 4 ms here, HZ = 250) and when the thread stops or starts, not at the read. So a span
 * inside a task (one ~2 ms model run, one crop) reads as 0 or a whole tick, right on average
 * over many spans; a whole task, which starts and ends with the thread waking and going idle,
 * reads closer to its own time.
 */
export function threadCpuMs(): number {
  if (schedstat === undefined) {
    try {
      schedstat = { fd: openSync('/proc/thread-self/schedstat', 'r'), buf: Buffer.alloc(64) };
    } catch {
      schedstat = false;
    }
  }
  if (schedstat) {
    try {
      const n = readSync(schedstat.fd, schedstat.buf, 0, schedstat.buf.length, 0);
      const end = schedstat.buf.indexOf(32);
      const ns = Number(schedstat.buf.toString('latin1', 0, end > 0 && end < n ? end : n));
      if (Number.isFinite(ns)) return ns / 1e6;
    } catch {
      // fall through to the wall clock
    }
    schedstat = false;
  }
  return performance.now();
}

/** Whether threadCpuMs reads this thread's CPU time (Linux), not the wall clock. */
export function threadClockIsCpu(): boolean {
  threadCpuMs();
  return schedstat !== false;
}

/**
 * The clock a stage's work is measured by where it runs: the thread's CPU time in a pool
 * worker (as CostMeter counts a task there), the wall clock on the main thread (where
 * trackMainThread times callbacks, scaled to CPU time at the end).
 */
export const workClock: () => number = isMainThread ? () => performance.now() : threadCpuMs;

/**
 * CPU time of the process's finished child processes (ffprobe, the ffmpeg decoders and
 * encoders) so far, ms: Linux /proc/self/stat cutime + cstime (in USER_HZ ticks, 100 per second
 * on every Linux ABI). A child counts once it has exited and been reaped. Undefined elsewhere.
 */
export function childrenCpuMs(): number | undefined {
  try {
    const stat = readFileSync('/proc/self/stat', 'latin1');
    // fields after the command name (which may hold spaces, inside parentheses): state is field 3
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(f[16 - 3]) + Number(f[17 - 3]);
    return Number.isFinite(ticks) ? ticks * 10 : undefined;
  } catch {
    return undefined;
  }
}

/** Wall time of all main-thread callbacks seen by trackMainThread (in a meter or not). */
export const mainCallbacks = { wallMs: 0 };

let tracking = false;
/**
 * Measure main-thread time per CostMeter: every callback (promise continuation, immediate,
 * stream event) that runs in a meter's async context adds its duration to that meter. Stage
 * code between two awaits is one callback, so a stage's main-thread CPU is counted where it
 * runs, whatever else interleaves with it.
 */
export function trackMainThread(): void {
  if (tracking) return;
  tracking = true;
  const open: { m: CostMeter | undefined; t: number }[] = [];
  createHook({
    before() {
      open.push({ m: costScope.getStore(), t: performance.now() });
    },
    after() {
      const o = open.pop();
      if (!o) return;
      const d = performance.now() - o.t;
      mainCallbacks.wallMs += d;
      if (o.m) o.m.mainMs += d;
      // a nested callback's time belongs to it, not to the one around it
      const outer = open[open.length - 1];
      if (outer) outer.t += d;
    },
  }).enable();
}

/** Add a raw model-run time to the current meter (sessions in this thread use this; measure it with workClock). */
export function addRunCost(ms: number): void {
  const m = costScope.getStore();
  if (!m) return;
  if (isMainThread) m.runMainMs += ms;
  else m.runMs += ms;
  m.runs++;
}

/**
 * Add the time a model's input took to prepare (the detector's letterbox, the face mesh's
 * crop) to the current meter: part of the stage's own time, shown apart from it so the stage's
 * ratio to its raw model time can be read without it. Measure it with the wall clock
 * (performance.now): these spans are ~0.5-2 ms, which the thread clock (4 ms ticks) reads as 0
 * or a whole tick, so a short clip's sum could read 0; a worker scales its task's sum by that
 * task's CPU share, the main thread's is scaled with the rest of its time.
 */
export function addPrepCost(ms: number): void {
  const m = costScope.getStore();
  if (!m) return;
  if (isMainThread) m.prepMainMs += ms;
  else m.prepMs += ms;
}

/** Cores this process may use. */
export function coreCount(): number {
  return Math.max(1, typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length);
}

/**
 * Default worker count: the core budget of one run. RESTORE_CORES caps the budget (batch sets
 * nothing: its videos share the process's single pool).
 */
export function defaultWorkers(): number {
  const env = Number(process.env.RESTORE_CORES);
  return Number.isInteger(env) && env > 0 ? env : coreCount();
}

/** Typed-array buffers that can be moved to another thread without a copy (the view covers it all). */
export function transferable(...views: (ArrayBufferView | undefined)[]): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const v of views) {
    if (!v) continue;
    const b = v.buffer;
    if (b instanceof ArrayBuffer && v.byteOffset === 0 && v.byteLength === b.byteLength && b.byteLength > 0) out.add(b);
  }
  return [...out];
}

interface Job {
  msg: Record<string, unknown>;
  transfer: ArrayBuffer[];
  resolve(v: any): void;
  reject(e: unknown): void;
  meter?: CostMeter;
  t0: number;
}

interface Slot {
  worker: Worker;
  busy: number;
  /** Actors living here: shared tasks go elsewhere when another worker is idle, so an actor's next call waits less. */
  actors: number;
  jobs: Map<number, Job>;
}

/**
 * The worker's script: the compiled sibling of this module when this module is compiled (so a
 * build in another folder runs its own worker code), else dist's (tests run the TypeScript
 * sources, which a worker thread cannot load).
 */
function workerScript(): string {
  const here = fileURLToPath(import.meta.url);
  return here.endsWith('.js') ? path.join(path.dirname(here), '..', 'stages', 'threads', 'worker.js') : path.join(packageRoot, 'dist', 'stages', 'threads', 'worker.js');
}

let nextId = 1;

export class WorkerPool {
  readonly size: number;
  /** ONNX Runtime intra-op threads per worker (workers x threads ~ cores). */
  readonly threads: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private closed = false;

  constructor(size: number, threads?: number) {
    this.size = Math.max(1, Math.floor(size));
    this.threads = threads ?? Math.max(1, Math.floor(coreCount() / this.size));
    const file = workerScript();
    // one direct channel per pair of workers (peer.ts: the temporal actor's helper flows)
    const ports: MessagePort[][] = Array.from({ length: this.size }, () => []);
    for (let i = 0; i < this.size; i++) {
      for (let j = i + 1; j < this.size; j++) {
        const { port1, port2 } = new MessageChannel();
        ports[i].push(port1);
        ports[j].push(port2);
      }
    }
    for (let i = 0; i < this.size; i++) {
      const worker = new Worker(file, { workerData: { index: i, peers: ports[i] }, transferList: ports[i] });
      worker.unref();
      const slot: Slot = { worker, busy: 0, actors: 0, jobs: new Map() };
      worker.on('message', (m: { id: number; ok: boolean; value?: unknown; error?: { message: string; stack?: string; name?: string }; ms?: number; cpuMs?: number; ownCpuMs?: number; runMs?: number; runs?: number; prepMs?: number }) => {
        const job = slot.jobs.get(m.id);
        if (!job) return;
        slot.jobs.delete(m.id);
        slot.busy--;
        if (job.meter) {
          job.meter.workerMs += m.cpuMs ?? m.ms ?? 0;
          job.meter.workerWallMs += m.ms ?? 0;
          job.meter.runMs += m.runMs ?? 0;
          job.meter.runs += m.runs ?? 0;
          job.meter.prepMs += m.prepMs ?? 0;
          job.meter.taskWallMs += performance.now() - job.t0;
          job.meter.tasks++;
          if (job.msg.op === 'actor.call') {
            job.meter.orderedMs += m.ownCpuMs ?? 0;
            job.meter.orderedWallMs += m.ms ?? 0;
            job.meter.orderedCalls++;
          }
        }
        if (m.ok) job.resolve(m.value);
        else {
          const e = new Error(m.error?.message ?? 'worker task failed');
          if (m.error?.stack) e.stack = m.error.stack;
          job.reject(e);
        }
        this.pump();
      });
      const fail = (e: unknown) => {
        for (const job of slot.jobs.values()) job.reject(e);
        slot.jobs.clear();
        slot.busy = 0;
      };
      worker.on('error', fail);
      worker.on('exit', (code) => fail(new Error(`worker ${i} exited (${code})`)));
      this.slots.push(slot);
    }
  }

  private send(slot: Slot, job: Job): void {
    const id = nextId++;
    slot.jobs.set(id, job);
    slot.busy++;
    if (slot.busy === 1) slot.worker.ref();
    try {
      slot.worker.postMessage({ ...job.msg, id }, job.transfer);
    } catch (e) {
      slot.jobs.delete(id);
      slot.busy--;
      job.reject(e);
    }
  }

  private pump(): void {
    for (const s of this.slots) if (s.busy === 0) s.worker.unref();
    while (this.queue.length) {
      let idle: Slot | undefined;
      for (const s of this.slots) if (s.busy === 0 && (!idle || s.actors < idle.actors)) idle = s;
      if (!idle) return;
      this.send(idle, this.queue.shift()!);
    }
  }

  private job<T>(msg: Record<string, unknown>, transfer: ArrayBuffer[]): { job: Job; promise: Promise<T> } {
    if (this.closed) throw new Error('worker pool is closed');
    let job!: Job;
    const promise = new Promise<T>((resolve, reject) => {
      job = { msg, transfer, resolve, reject, meter: costScope.getStore(), t0: performance.now() };
    });
    return { job, promise };
  }

  /** Run a task on the next idle worker. */
  call<T>(msg: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<T> {
    const { job, promise } = this.job<T>(msg, transfer);
    this.queue.push(job);
    this.pump();
    return promise;
  }

  /** Run a task on worker `index` (its actors live there); queued behind that worker's own tasks. */
  callOn<T>(index: number, msg: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<T> {
    const { job, promise } = this.job<T>(msg, transfer);
    this.send(this.slots[index % this.size], job);
    return promise;
  }

  /** The same task on every worker (load a session everywhere); copies, never transfers. */
  broadcast<T>(msg: Record<string, unknown>): Promise<T[]> {
    return Promise.all(this.slots.map((_, i) => this.callOn<T>(i, msg)));
  }

  /** Where the next actor goes: round robin, so two runs' actors do not share one worker. */
  placeActor(): number {
    const i = this.placed++ % this.size;
    this.slots[i].actors++;
    return i;
  }

  actorFreed(index: number): void {
    this.slots[index].actors = Math.max(0, this.slots[index].actors - 1);
  }
  private placed = 0;

  /** Whether no task is queued or running. */
  idle(): boolean {
    return !this.queue.length && this.slots.every((s) => s.busy === 0);
  }

  /** Close once the tasks in flight are done (a run still using this pool finishes first). */
  async closeWhenIdle(): Promise<void> {
    while (!this.idle()) await new Promise((r) => setTimeout(r, 50).unref());
    await this.close();
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}

let pool: WorkerPool | undefined;
let wanted = 0;
let generation = 0;

/**
 * Set the worker count for this process (0 = everything on the main thread, today's path).
 * A pool of another size is replaced; sessions opened on the old one are opened again.
 */
export function configureWorkers(n: number | undefined): number {
  const size = n === undefined ? defaultWorkers() : Math.max(0, Math.floor(n));
  wanted = size;
  if (pool && pool.size !== size) {
    const old = pool;
    pool = undefined;
    void old.closeWhenIdle();
  }
  return size;
}

/** The process's pool, or undefined with --workers 0 (or before configureWorkers). */
export function getPool(): WorkerPool | undefined {
  if (!wanted) return undefined;
  if (!pool) {
    pool = new WorkerPool(wanted);
    generation++;
  }
  return pool;
}

/** A per-pool generation key (cache keys of things living in the workers). */
export function poolKey(): string {
  return pool ? `w${pool.size}.${generation}` : 'main';
}

/**
 * Before the process exits: let the tasks in flight finish (at most `maxMs`), then end the
 * workers. Exiting while a worker is inside ONNX Runtime's native run aborts the process.
 */
export async function closeWorkersGracefully(maxMs = 20_000): Promise<void> {
  const p = pool;
  pool = undefined;
  if (!p) return;
  const deadline = Date.now() + maxMs;
  while (!p.idle() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  await p.close();
}

export async function closeWorkers(): Promise<void> {
  const p = pool;
  pool = undefined;
  await p?.close();
}

/** An actor: an object constructed in one worker, its methods called there in order. */
export class RemoteActor {
  private constructor(
    private readonly p: WorkerPool,
    private readonly worker: number,
    private readonly id: number,
  ) {}

  static async create(p: WorkerPool, kind: string, args: unknown): Promise<RemoteActor> {
    const worker = p.placeActor();
    const id = nextId++;
    await p.callOn(worker, { op: 'actor.new', actor: id, kind, args });
    return new RemoteActor(p, worker, id);
  }

  call<T>(method: string, args: unknown, transfer: ArrayBuffer[] = []): Promise<T> {
    return this.p.callOn<T>(this.worker, { op: 'actor.call', actor: this.id, method, args }, transfer);
  }

  free(): Promise<void> {
    this.p.actorFreed(this.worker);
    return this.p.callOn(this.worker, { op: 'actor.free', actor: this.id });
  }
}
