/**
 * Worker-to-worker help for the one sequential pixel job, the temporal smoother's two optical
 * flows per frame: the actor's worker hands the backward flow to a peer worker (a direct
 * MessagePort, the result in shared memory) and computes the forward flow itself. If the peer
 * has not started it by then (busy with a model call), the actor takes it back and computes it
 * too, so waiting never costs more than the serial path. Same function, same inputs: the same
 * numbers as one thread.
 */
import type { MessagePort } from 'node:worker_threads';
import { estimateFlow } from '../../flow/flow.js';
import { serialFlows, type BothFlows } from '../../metrics/flicker.js';
import { threadCpuMs } from '../../workers/pool.js';

interface FlowJob {
  /** 0 pending, 1 taken, 2 done */
  state: Int32Array;
  out: Float32Array;
  /** The peer's CPU time for the job, ms (added to the task that asked for it). */
  cpu: Float64Array;
  a: Float32Array;
  b: Float32Array;
  w: number;
  h: number;
}

let peers: MessagePort[] = [];
/** CPU time peers spent on this worker's behalf since the last reset (worker.ts adds it to the task's). */
export const helperCpu = { ms: 0 };
let next = 0;

function onJob(j: FlowJob): void {
  if (Atomics.compareExchange(j.state, 0, 0, 1) !== 0) return;
  const c0 = threadCpuMs();
  const f = estimateFlow(j.a, j.b, { width: j.w, height: j.h });
  j.cpu[0] = threadCpuMs() - c0;
  j.out.set(f.u, 0);
  j.out.set(f.v, j.w * j.h);
  Atomics.store(j.state, 0, 2);
  Atomics.notify(j.state, 0);
}

/** This worker's ports to the other workers (pool.ts makes one channel per pair). */
export function setPeers(ports: MessagePort[]): void {
  peers = ports;
  for (const p of ports) {
    p.on('message', onJob);
    p.unref();
  }
}

/** [back, fwd] with the backward flow on a peer worker when there is one. */
export const peerFlows: BothFlows = (prev, cur, w, h) => {
  if (!peers.length) return serialFlows(prev, cur, w, h);
  const n = w * h;
  const state = new Int32Array(new SharedArrayBuffer(4));
  const out = new Float32Array(new SharedArrayBuffer(8 * n));
  const cpu = new Float64Array(new SharedArrayBuffer(8));
  const job: FlowJob = { state, out, cpu, a: cur, b: prev, w, h };
  peers[next++ % peers.length].postMessage(job);
  const fwd = estimateFlow(prev, cur, { width: w, height: h });
  if (Atomics.compareExchange(state, 0, 0, 1) === 0) return [estimateFlow(cur, prev, { width: w, height: h }), fwd];
  while (Atomics.load(state, 0) !== 2) Atomics.wait(state, 0, 1);
  helperCpu.ms += cpu[0];
  return [{ width: w, height: h, u: out.slice(0, n), v: out.slice(n) }, fwd];
};
