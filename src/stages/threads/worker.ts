/**
 * One pool worker (see pool.ts): owns its ONNX Runtime sessions (one per model), runs the
 * named pixel tasks of tasks.ts, and keeps the actors placed on it. Replies carry the task's
 * busy time (`ms` wall, `cpuMs` CPU with what peers did for it, `ownCpuMs` this thread's alone)
 * and, for model calls, the raw `session.run` time (`runMs`).
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { helperCpu, setPeers } from './peer.js';
import { createLocalSession, fromWire, toWire, type SessionOptions, type WireTensor } from '../../models/session.js';
import type * as ortTypes from 'onnxruntime-node';
import { CostMeter, costScope, threadCpuMs, transferable } from '../../workers/pool.js';
import { actorKinds, tasks, type Actor } from './tasks.js';

const sessions = new Map<string, Promise<ortTypes.InferenceSession>>();
const actors = new Map<number, Actor>();

interface Msg {
  id: number;
  op: string;
  [k: string]: any;
}

async function handle(m: Msg): Promise<{ value: unknown; transfer?: ArrayBuffer[]; runMs?: number; runs?: number; prepMs?: number }> {
  switch (m.op) {
    case 'ort.load': {
      if (!sessions.has(m.key)) {
        const p = createLocalSession(m.src, m.opts as SessionOptions, m.label).then((l) => Object.assign(l.session, { provider: l.provider }));
        sessions.set(m.key, p);
        p.catch(() => sessions.delete(m.key));
      }
      const s = (await sessions.get(m.key)!) as ortTypes.InferenceSession & { provider: 'cpu' | 'cuda' };
      const meta = (list: readonly unknown[] | undefined) => JSON.parse(JSON.stringify(list ?? []));
      return {
        value: {
          provider: s.provider,
          inputNames: [...s.inputNames],
          outputNames: [...s.outputNames],
          inputMetadata: meta((s as any).inputMetadata),
          outputMetadata: meta((s as any).outputMetadata),
        },
      };
    }
    case 'ort.run': {
      const s = await sessions.get(m.key);
      if (!s) throw new Error(`no session ${m.key} in this worker`);
      const feeds: Record<string, ortTypes.Tensor> = {};
      for (const [k, v] of Object.entries(m.feeds as Record<string, WireTensor>)) feeds[k] = fromWire(v);
      // one intra-op thread runs on this thread, so its CPU time is the model's
      const c0 = threadCpuMs();
      const res = m.outputs ? await s.run(feeds, m.outputs) : await s.run(feeds);
      const runMs = threadCpuMs() - c0;
      const out: Record<string, WireTensor> = {};
      for (const [k, t] of Object.entries(res)) out[k] = toWire(t);
      const views = Object.values(out).map((w) => w.data).filter((d): d is Float32Array => ArrayBuffer.isView(d));
      return { value: out, transfer: transferable(...views), runMs, runs: 1 };
    }
    case 'ort.release': {
      const s = sessions.get(m.key);
      sessions.delete(m.key);
      await (await s)?.release();
      return { value: null };
    }
    case 'task': {
      const fn = tasks[m.name];
      if (!fn) throw new Error(`unknown worker task ${m.name}`);
      // a task that runs models opened in this thread: their raw run time (and their inputs' preparation) is reported too
      const meter = new CostMeter();
      const r = await costScope.run(meter, () => fn(m.args));
      return meter.runs ? { ...r, runMs: meter.runMs, runs: meter.runs, prepMs: meter.prepMs } : r;
    }
    case 'actor.new': {
      const make = actorKinds[m.kind];
      if (!make) throw new Error(`unknown worker actor ${m.kind}`);
      actors.set(m.actor, make(m.args));
      return { value: null };
    }
    case 'actor.call': {
      const a = actors.get(m.actor);
      if (!a) throw new Error(`no actor ${m.actor} in this worker`);
      return a.call(m.method, m.args);
    }
    case 'actor.free':
      actors.delete(m.actor);
      return { value: null };
    default:
      throw new Error(`unknown worker op ${m.op}`);
  }
}

setPeers((workerData?.peers ?? []) as MessagePort[]);

// Tasks run one at a time in arrival order (the pool only sends to an idle worker, except an
// actor's calls, which must keep their order).
let chain: Promise<void> = Promise.resolve();
parentPort!.on('message', (m: Msg) => {
  chain = chain.then(async () => {
    const t0 = performance.now();
    const c0 = threadCpuMs();
    helperCpu.ms = 0;
    try {
      const r = await handle(m);
      const own = threadCpuMs() - c0;
      const wall = performance.now() - t0;
      // input preparation was timed by the wall clock (see addPrepCost): its share of the task's CPU time
      const prepMs = r.prepMs === undefined ? undefined : r.prepMs * Math.min(1, own / Math.max(1e-3, wall));
      parentPort!.postMessage({ id: m.id, ok: true, value: r.value, ms: wall, cpuMs: own + helperCpu.ms, ownCpuMs: own, runMs: r.runMs, runs: r.runs, prepMs }, r.transfer ?? []);
    } catch (e) {
      const err = e as Error;
      parentPort!.postMessage({ id: m.id, ok: false, error: { message: err?.message ?? String(e), stack: err?.stack, name: err?.name }, ms: performance.now() - t0 });
    }
  });
});
