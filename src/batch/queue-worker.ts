/**
 * `restore worker`: takes video jobs from the queue and runs each in a child process (see
 * queue-processor.ts) into the shared --out folder named by the job. BullMQ holds a lock on each
 * running job and this process renews it; a worker killed with SIGKILL stops renewing, and after
 * the lock expires another worker's stalled-job check puts the job back and takes it.
 *
 * stop(): take no new job, let the running ones finish, then resolve. handBack(): abort the running
 * ones and put them back on the queue (no attempt used), then resolve.
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, type Job } from 'bullmq';
import { packageRoot } from '../util/paths.js';
import { checkQueue, connectionOf, type QueueJobData, type QueueJobResult, type QueueTarget } from './queue.js';

export interface WorkerEvent {
  event: 'ready' | 'active' | 'done' | 'kept' | 'already-done' | 'failed' | 'retry' | 'stalled' | 'error' | 'stopping' | 'handing-back' | 'stopped';
  worker: string;
  at: string;
  jobId?: string;
  id?: string;
  attempt?: number;
  attempts?: number;
  ms?: number;
  error?: string;
  message?: string;
}

export interface WorkerOptions {
  queue: QueueTarget;
  /** Videos run at once by this worker, each in its own child process (default 1). */
  concurrency?: number;
  /** Lock on a running job, ms: a killed worker's job is taken by another after about this (default 30 000). */
  lockDurationMs?: number;
  onEvent?(e: WorkerEvent): void;
  /** The sandboxed processor module (default: dist/batch/queue-processor.js). */
  processorFile?: string;
}

export interface RunningWorker {
  /** Finish the running jobs, take no new one, close. */
  stop(): Promise<void>;
  /** Abort the running jobs, put them back on the queue, close. */
  handBack(): Promise<void>;
  closed: Promise<void>;
  counts: { done: number; failed: number; retried: number; kept: number };
}

function processorPath(): string {
  const here = fileURLToPath(new URL('./queue-processor.js', import.meta.url));
  return existsSync(here) ? here : path.join(packageRoot, 'dist', 'batch', 'queue-processor.js');
}

export async function startWorker(o: WorkerOptions): Promise<RunningWorker> {
  await checkQueue(o.queue);
  const name = `${os.hostname()}:${process.pid}`;
  const emit = (e: Omit<WorkerEvent, 'worker' | 'at'>) => o.onEvent?.({ ...e, worker: name, at: new Date().toISOString() });
  const lockDuration = Math.max(1000, o.lockDurationMs ?? 30_000);
  const worker = new Worker<QueueJobData, QueueJobResult>(o.queue.name, o.processorFile ?? processorPath(), {
    connection: connectionOf(o.queue, 'worker'),
    concurrency: Math.max(1, o.concurrency ?? 1),
    lockDuration,
    // Check for jobs whose lock expired (their worker died) every half lock.
    stalledInterval: Math.max(500, Math.round(lockDuration / 2)),
    // A job may lose its worker twice before it counts as failed.
    maxStalledCount: 2,
    useWorkerThreads: false,
    name,
  });
  const counts = { done: 0, failed: 0, retried: 0, kept: 0 };
  const started = new Map<string, number>();
  const tag = (job?: Job<QueueJobData>) => ({ jobId: job?.id, id: job?.data?.id });
  worker.on('active', (job) => {
    started.set(job.id!, Date.now());
    emit({ event: 'active', ...tag(job), attempt: (job.attemptsMade ?? 0) + 1, attempts: job.opts.attempts });
  });
  worker.on('completed', (job, r) => {
    const ms = Date.now() - (started.get(job.id!) ?? Date.now());
    started.delete(job.id!);
    if (r?.outcome === 'done') counts.done++;
    else counts.kept++;
    emit({ event: r?.outcome ?? 'done', ...tag(job), ms });
  });
  worker.on('failed', (job, err) => {
    if (!job) return;
    started.delete(job.id!);
    const final = job.attemptsMade >= (job.opts.attempts ?? 1) || err?.name === 'UnrecoverableError';
    if (final) counts.failed++;
    else counts.retried++;
    emit({ event: final ? 'failed' : 'retry', ...tag(job), attempt: job.attemptsMade, attempts: job.opts.attempts, error: String(err?.message ?? err).split('\n')[0] });
  });
  worker.on('stalled', (jobId) => emit({ event: 'stalled', jobId, message: 'its worker stopped renewing the lock; put back on the queue' }));
  let lastError = '';
  worker.on('error', (err) => {
    const m = String((err as Error)?.message ?? err).split('\n')[0]!;
    if (m !== lastError) emit({ event: 'error', message: m }); // e.g. Redis restarting: the worker reconnects
    lastError = m;
  });
  await worker.waitUntilReady();
  emit({ event: 'ready', message: `${o.queue.display} ${o.queue.name}, concurrency ${o.concurrency ?? 1}, lock ${lockDuration} ms` });
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= worker
      .close()
      .catch(() => undefined)
      .then(() => {
        emit({ event: 'stopped', message: `${counts.done} done, ${counts.failed} failed, ${counts.retried} retried, ${counts.kept} already done elsewhere` });
        resolveClosed();
      }));
  return {
    counts,
    closed,
    stop() {
      emit({ event: 'stopping', message: started.size ? `finishing ${started.size} running job(s), taking no new one` : 'no job running' });
      return close();
    },
    handBack() {
      emit({ event: 'handing-back', message: `putting ${started.size} running job(s) back on the queue` });
      worker.cancelAllJobs('handed back: the worker stops');
      return close();
    },
  };
}
