/**
 * One queue job = one video, run in a child process of `restore worker` (BullMQ's sandboxed
 * processor). The child keeps a crashing ffmpeg or model (even a native crash of ONNX Runtime)
 * away from the worker, and its synchronous model calls away from the worker's event loop, which
 * renews the job's lock.
 *
 * The video runs exactly as in the one-machine batch (runIntoFinal): a staging folder under
 * `<out>/.partial/` renamed whole to `<out>/<slug>/`. Its staging name holds host and pid, so that
 * two processes never share one, and a finished folder made from the same hashes is never replaced
 * by a late duplicate (a worker that lost its lock and finished anyway).
 */
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { UnrecoverableError, WaitingError, type SandboxedJob } from 'bullmq';
import { hashValue } from './hash.js';
import type { QueueJobData, QueueJobResult } from './queue.js';
import { removeStaleStaging } from './queue.js';
import { errorLine, finishedWith, hashesOf, isAlive, runIntoFinal, sameHashes, settingsOf, STAGING_DIR, type VideoPlan } from './runner.js';

const host = os.hostname();
const by = `${host}:${process.pid}`;

// The worker died (kill -9, machine lost): stop at once instead of finishing unseen. The job's lock
// expires and another worker takes it; what this process staged stays hidden under .partial/, its
// ffmpeg children end on their broken pipes. SIGKILL, not a graceful stop: with the IPC channel
// gone, every message to the parent throws and a graceful stop was seen to spin forever.
const orphaned = () => process.kill(process.pid, 'SIGKILL');
process.once('disconnect', orphaned);
// Also by watching the parent, in case 'disconnect' is missed.
const parentPid = process.ppid;
setInterval(() => {
  if (process.ppid !== parentPid || (process.send && !process.connected)) orphaned();
}, 500).unref();

export default async function processVideoJob(job: SandboxedJob<QueueJobData, QueueJobResult>, token?: string, signal?: AbortSignal): Promise<QueueJobResult> {
  const d = job.data;
  if (d?.v !== 1 || !d.runOpts || !d.hashes) throw new UnrecoverableError(`job ${job.id}: not a restore video job (enqueued by another version?)`);
  const abort = new AbortController();
  const onAbort = () => abort.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const already = await finishedWith(d.out, d.slug, d.hashes);
    if (already) return { outcome: 'already-done', id: d.id, slug: d.slug, by: already.by, finishedAt: already.finishedAt };
    const plan: VideoPlan = { job: { id: d.id, slug: d.slug, input: d.runOpts.input, source: 'file' }, runOpts: d.runOpts, settings: settingsOf(d.runOpts) };
    if (hashValue(plan.settings) !== d.hashes.settingsHash)
      throw new UnrecoverableError(`${d.id}: this worker's settings differ from the enqueue's (another restore version?); run the same version on every machine`);
    const now = await hashesOf(plan, abort.signal);
    if (!sameHashes(now, d.hashes)) throw new UnrecoverableError(`${d.runOpts.input}: changed since it was enqueued; enqueue the batch again`);
    const stagingRoot = path.join(d.out, STAGING_DIR);
    await removeStaleStaging(stagingRoot, d.slug, host, isAlive);
    const stageDir = path.join(stagingRoot, `${d.slug}@${host}@${process.pid}@${randomBytes(4).toString('hex')}`);
    let last = 0;
    const r = await runIntoFinal(plan, d.out, d.hashes, {
      stageDir,
      signal: abort.signal,
      keepFinished: true,
      jobId: job.id,
      onProgress: (p) => {
        const t = Date.now();
        if (t - last < 500 && p.done < p.total) return;
        last = t;
        void job.updateProgress({ frames: p.done, total: p.total, fps: +p.fps.toFixed(2), phase: p.phase ?? '' }).catch(() => undefined);
      },
    });
    return { outcome: r.outcome, id: d.id, slug: d.slug, by: r.record.by, finishedAt: r.record.finishedAt };
  } catch (e) {
    if (abort.signal.aborted && signal?.aborted && token) {
      // Handed back (the worker stops): the job waits for another worker, no attempt used.
      await job.moveToWait(token);
      throw new WaitingError();
    }
    if (e instanceof UnrecoverableError) throw e;
    throw new Error(errorLine(e).error);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
