/**
 * ONNX Runtime sessions: created lazily, cached per file and device, CUDA first when asked
 * for (or 'auto' and available), CPU otherwise, with one log line saying which ran.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { modelError } from '../errors.js';
import { addRunCost, getPool, poolKey, transferable, workClock, type WorkerPool } from '../workers/pool.js';

export type DeviceRequest = 'auto' | 'cpu' | 'cuda';
export interface LoadedSession {
  session: ort.InferenceSession;
  /** The execution provider that actually runs this session. */
  provider: 'cuda' | 'cpu';
  source: string;
}

const cache = new Map<string, Promise<LoadedSession>>();
let anon = 0;
/**
 * Why CUDA cannot be used, remembered for the rest of one run so every model of the run does
 * not try again; resetDeviceState() (called at the start of each run) forgets a failure, so
 * one bad run does not turn CUDA off for the rest of a batch.
 */
let cudaUnavailable: string | undefined;
/** Sessions created in this process (tests check that bad options fail before any is). */
let opened = 0;

export function resetDeviceState(): void {
  cudaUnavailable = undefined;
}

/** How many ONNX Runtime sessions this process has created (cache hits not counted). */
export function sessionsOpened(): number {
  return opened;
}

export interface SessionOptions {
  device?: DeviceRequest;
  /** intra-op threads; default: RESTORE_THREADS when set, else ONNX Runtime's choice (all cores). */
  threads?: number;
  log?: (msg: string) => void;
  /** Cache key for in-memory models (default: none, not cached). */
  key?: string;
  /**
   * Extra cache key part for files (e.g. size and mtime), so a file replaced on disk gets a
   * new session. Default: the file's size and mtime.
   */
  cacheTag?: string;
}

/** Whether onnxruntime-node's CUDA provider library is installed (see README "GPU"). */
export function cudaProviderInstalled(): boolean {
  try {
    const pkg = path.dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'));
    const bin = path.join(pkg, 'bin');
    for (const napi of readdirSync(bin)) {
      if (existsSync(path.join(bin, napi, process.platform, process.arch, 'libonnxruntime_providers_cuda.so'))) return true;
    }
  } catch {
    /* not installed */
  }
  return false;
}

export function ortBackends(): string[] {
  try {
    return (ort as any).listSupportedBackends?.().map((b: any) => b.name) ?? [];
  } catch {
    return [];
  }
}

/** Metadata a worker sends back for a session it opened. */
export interface SessionMeta {
  provider: 'cuda' | 'cpu';
  inputNames: string[];
  outputNames: string[];
  inputMetadata: unknown[];
  outputMetadata: unknown[];
}

/** A tensor as it crosses threads. */
export interface WireTensor {
  type: ort.Tensor.Type;
  data: ort.Tensor.DataType;
  dims: readonly number[];
}

export const toWire = (t: ort.Tensor): WireTensor => ({ type: t.type, data: t.data, dims: t.dims });
export const fromWire = (w: WireTensor): ort.Tensor => new ort.Tensor(w.type as any, w.data as any, w.dims as number[]);

/**
 * A session living in the worker pool (one per worker): `run` sends the feeds to an idle
 * worker (input buffers copied once into fresh ones that are transferred, since callers may
 * reuse theirs; outputs come back transferred) and rebuilds the output tensors.
 */
class WorkerSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata: readonly any[];
  readonly outputMetadata: readonly any[];
  constructor(
    private readonly pool: WorkerPool,
    private readonly key: string,
    meta: SessionMeta,
  ) {
    this.inputNames = meta.inputNames;
    this.outputNames = meta.outputNames;
    this.inputMetadata = meta.inputMetadata;
    this.outputMetadata = meta.outputMetadata;
  }

  async run(feeds: Record<string, ort.Tensor>, fetches?: unknown): Promise<Record<string, ort.Tensor>> {
    const wire: Record<string, WireTensor> = {};
    const views: ArrayBufferView[] = [];
    for (const [name, t] of Object.entries(feeds)) {
      const d = t.data as unknown;
      const data = ArrayBuffer.isView(d) ? (d as unknown as { slice(): ArrayBufferView }).slice() : d;
      if (ArrayBuffer.isView(data)) views.push(data);
      wire[name] = { type: t.type, data: data as ort.Tensor.DataType, dims: t.dims };
    }
    const outputs = Array.isArray(fetches) ? (fetches as string[]) : undefined;
    const res = await this.pool.call<Record<string, WireTensor>>({ op: 'ort.run', key: this.key, feeds: wire, outputs }, transferable(...views));
    return Object.fromEntries(Object.entries(res).map(([k, v]) => [k, fromWire(v)]));
  }

  async release(): Promise<void> {
    await this.pool.broadcast({ op: 'ort.release', key: this.key }).catch(() => undefined);
  }
}

/**
 * Times `session.run` (raw model time) for the stage that called it: wall time on the main
 * thread, the thread's CPU time in a pool worker (as the worker's own model calls, and as the
 * stage's work there is counted: a wall clock would also count the time other threads held the
 * core, and flatter the stage's ratio to its model time on a busy machine).
 */
function timed(session: ort.InferenceSession): ort.InferenceSession {
  const run = session.run.bind(session);
  return new Proxy(session, {
    get(target, prop, receiver) {
      if (prop === 'run') {
        return async (...args: Parameters<typeof run>) => {
          // onnxruntime-node runs the model synchronously in a setImmediate callback: one queued
          // just before it starts the clock right when the model starts (not while it waits).
          // (it runs before ORT's own callback, which is queued inside run)
          let t0 = NaN;
          setImmediate(() => (t0 = workClock()));
          try {
            return await run(...args);
          } finally {
            if (!Number.isNaN(t0)) addRunCost(workClock() - t0);
          }
        };
      }
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

/** Open a session in this thread (the main thread with --workers 0, or inside a worker). */
export function createLocalSession(src: string | Uint8Array, opts: SessionOptions, label: string): Promise<LoadedSession> {
  return create(src, opts, label);
}

async function createInPool(pool: WorkerPool, key: string, src: string | Uint8Array, opts: SessionOptions, label: string): Promise<LoadedSession> {
  // workers x threads ~ cores: a caller's own thread count is kept when it asks for fewer
  const threads = Math.min(opts.threads ?? pool.threads, pool.threads);
  opened++;
  const metas = await pool.broadcast<SessionMeta>({ op: 'ort.load', key, src, label, opts: { device: opts.device, threads } });
  opts.log?.(`${label}: running on ${metas[0].provider.toUpperCase()} in ${pool.size} worker thread(s), ${threads} intra-op thread(s) each`);
  return { session: new WorkerSession(pool, key, metas[0]) as unknown as ort.InferenceSession, provider: metas[0].provider, source: label };
}

async function create(src: string | Uint8Array, opts: SessionOptions, label: string): Promise<LoadedSession> {
  opened++;
  const want = opts.device ?? 'auto';
  const base: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all',
    ...(opts.threads ? { intraOpNumThreads: opts.threads } : {}),
    // Several sessions take turns on few cores: threads that spin while idle steal the CPU
    // the next session needs (RESTORE_ORT_SPIN=1 turns spinning back on).
    ...(process.env.RESTORE_ORT_SPIN === '1' ? {} : { extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } } }),
  };
  const tryCreate = (eps: string[]) =>
    typeof src === 'string'
      ? ort.InferenceSession.create(src, { ...base, executionProviders: eps as any })
      : ort.InferenceSession.create(src, { ...base, executionProviders: eps as any });
  if (want === 'auto' && !cudaUnavailable && !cudaProviderInstalled()) {
    cudaUnavailable = 'the CUDA execution provider of onnxruntime-node is not installed';
  }
  if (want !== 'cpu' && !cudaUnavailable) {
    try {
      const session = await tryCreate(['cuda']);
      opts.log?.(`${label}: running on CUDA`);
      return { session, provider: 'cuda', source: label };
    } catch (e) {
      cudaUnavailable = (e as Error).message.split('\n')[0].slice(0, 160);
      if (want === 'cuda') {
        throw modelError(`${label}: CUDA requested but not available (${cudaUnavailable})`, 'install the CUDA build of onnxruntime-node: see README "GPU"');
      }
    }
  } else if (want === 'cuda') {
    throw modelError(`${label}: CUDA requested but not available (${cudaUnavailable})`, 'see README "GPU"');
  }
  try {
    const session = await tryCreate(['cpu']);
    opts.log?.(`${label}: running on CPU`);
    return { session, provider: 'cpu', source: label };
  } catch (e) {
    throw modelError(`${label}: not a loadable ONNX model (${(e as Error).message.split('\n')[0].slice(0, 200)})`);
  }
}

/** Load (or reuse) a session for a model file or in-memory model bytes. */
export function loadSession(src: string | Uint8Array, opts: SessionOptions = {}): Promise<LoadedSession> {
  if (opts.threads === undefined && process.env.RESTORE_THREADS) {
    const t = Number(process.env.RESTORE_THREADS);
    if (Number.isInteger(t) && t > 0) opts = { ...opts, threads: t };
  }
  const label = typeof src === 'string' ? src : opts.key ?? 'in-memory model';
  let tag = opts.cacheTag ?? '';
  if (typeof src === 'string' && opts.cacheTag === undefined) {
    try {
      const st = statSync(src);
      tag = `${st.size}:${st.mtimeMs}`;
    } catch {
      /* missing file: create() reports it */
    }
  }
  const pool = getPool();
  const key = typeof src === 'string' || opts.key ? `${label}|${opts.device ?? 'auto'}|${opts.threads ?? 0}|${tag}|${poolKey()}` : undefined;
  if (key && cache.has(key)) return cache.get(key)!;
  const p = pool
    ? createInPool(pool, key ?? `anon-${++anon}`, src, opts, label)
    : create(src, opts, label).then((l) => ({ ...l, session: timed(l.session) }));
  if (key) {
    cache.set(key, p);
    p.catch(() => cache.delete(key));
  }
  return p;
}

/** Whether a CUDA session could be created (the answer is remembered). */
export function cudaFailure(): string | undefined {
  return cudaUnavailable;
}

export async function releaseSessions(): Promise<void> {
  const all = [...cache.values()];
  cache.clear();
  for (const p of all) {
    try {
      await (await p).session.release();
    } catch {
      /* ignore */
    }
  }
}

export { ort };

/**
 * ONNX Runtime's own logger writes native error lines (e.g. a CUDA provider that fails to
 * load) before the tool's one-line error. Silence it unless `verbose`; the error text still
 * reaches the tool's message. Takes effect for sessions created afterwards.
 */
export function setNativeLogging(verbose: boolean): void {
  ort.env.logLevel = verbose ? 'warning' : 'fatal';
}
