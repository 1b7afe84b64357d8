/**
 * `restore worker --queue redis://HOST:PORT`: run the videos that `restore batch --queue` enqueued,
 * until stopped. SIGTERM or Ctrl-C: finish the running video(s), take no new one, exit 0; a second
 * signal (or --grace seconds after the first) hands the running ones back to the queue, exit 0.
 */
import type { Command } from 'commander';
import { DEFAULT_QUEUE_NAME, parseQueueUrl } from '../../batch/queue.js';
import { startWorker, type WorkerEvent } from '../../batch/queue-worker.js';
import { EXIT, usageError } from '../../errors.js';
import { parseNumber, runAction } from '../util.js';

export interface WorkerCommandOptions {
  queue: string;
  queueName?: string;
  concurrency?: number;
  /** Seconds (default 30). */
  lockDuration?: number;
  /** Seconds after the first SIGTERM before running jobs are handed back (default: wait for them). */
  grace?: number;
  json?: boolean;
  quiet?: boolean;
}

function line(e: WorkerEvent): string {
  const who = e.id ? ` ${e.id}` : '';
  switch (e.event) {
    case 'active':
      return `worker: running${who} (try ${e.attempt}/${e.attempts})`;
    case 'done':
      return `worker: done${who} in ${((e.ms ?? 0) / 1000).toFixed(1)} s`;
    case 'kept':
    case 'already-done':
      return `worker: ${who.trim()} was already finished by another worker: kept its output`;
    case 'retry':
      return `worker: try ${e.attempt}/${e.attempts} of${who} failed, will be retried: ${e.error}`;
    case 'failed':
      return `worker: failed${who} after ${e.attempt} tries: ${e.error}`;
    default:
      return `worker: ${e.event}${who}${e.jobId && !e.id ? ` ${e.jobId}` : ''}${e.message ? `: ${e.message}` : ''}`;
  }
}

export async function workerCommand(o: WorkerCommandOptions): Promise<number> {
  if (!o.queue) throw usageError('restore worker needs --queue redis://HOST:PORT', 'the Redis that `restore batch --queue` enqueued on');
  const target = parseQueueUrl(o.queue, o.queueName);
  const say = (e: WorkerEvent) => {
    if (o.json) process.stdout.write(JSON.stringify(e) + '\n'); // one object per line
    else if (!o.quiet) process.stderr.write(line(e) + '\n');
  };
  // The handlers come first: the queue hands out jobs while startWorker is still setting up, and
  // a SIGTERM then must not kill the process with its video half done. Signals that arrive
  // before the worker exists are acted on once it does.
  let w: Awaited<ReturnType<typeof startWorker>> | undefined;
  let signals = 0, acted = 0;
  const act = () => {
    for (; w && acted < signals; acted++) {
      const worker = w;
      if (acted === 0) {
        void worker.stop();
        if (o.grace !== undefined) setTimeout(() => void worker.handBack(), o.grace * 1000).unref();
      } else if (acted === 1) void worker.handBack();
      else process.exit(EXIT.INTERRUPTED);
    }
  };
  const onSignal = () => {
    signals++;
    act();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  w = await startWorker({ queue: target, concurrency: o.concurrency ?? 1, lockDurationMs: Math.round((o.lockDuration ?? 30) * 1000), onEvent: say });
  act();
  await w.closed;
  return EXIT.OK;
}

export function registerWorkerCommand(program: Command): Command {
  return program
    .command('worker')
    .description('run the videos of `restore batch --queue` from a Redis queue, into the --out folder each job names (shared between machines)')
    .requiredOption('--queue <url>', 'the Redis holding the jobs: redis://HOST:PORT[/DB] (rediss:// for TLS)')
    .option('--queue-name <name>', `the queue's name (default ${DEFAULT_QUEUE_NAME})`)
    .option('--concurrency <n>', 'videos run at once, each in its own process (default 1)', parseNumber('--concurrency', 1, 64, true))
    .option('--lock-duration <s>', 'lock on a running job: a killed worker\'s job is taken by another after about this (default 30)', parseNumber('--lock-duration', 1, 3600))
    .option('--grace <s>', 'after SIGTERM, hand the running videos back to the queue after this many seconds (default: finish them)', parseNumber('--grace', 0, 86400))
    .option('--json', 'one JSON object per line on stdout for each event (ready, active, done, retry, failed, stalled, stopped)')
    .option('-q, --quiet', 'errors only')
    .addHelpText(
      'after',
      `
Examples:
  restore worker --queue redis://queue-host:6379
  restore worker --queue redis://10.0.0.5:6379/2 --concurrency 2 --json
  restore batch /data/clips --out /data/nightly --queue redis://queue-host:6379 --wait   # the controller

Every worker must see the input folder and --out at the same paths as the controller (a shared
filesystem). A video that fails is retried with back-off (restore batch --attempts), then marked
failed; a crashing ffmpeg or model fails only that try. SIGTERM/Ctrl-C: finish the running videos and
exit 0 (a second signal, or --grace, hands them back to the queue). A worker killed with SIGKILL loses
its lock: after --lock-duration another worker takes the video over.

Exit codes: 0 stopped, 2 usage, 8 the queue (Redis) cannot be reached, 130 a third signal.`,
    )
    .action((o: Record<string, any>) =>
      runAction(!!o.json, () =>
        workerCommand({ queue: o.queue, queueName: o.queueName, concurrency: o.concurrency, lockDuration: o.lockDuration, grace: o.grace, json: !!o.json, quiet: !!o.quiet }),
      ),
    );
}
