/**
 * How many jobs per second the queue itself takes: enqueue N no-op jobs (in bulk, as
 * `restore batch --queue` does), then consume them with W in-process workers whose processor does
 * nothing; prints enqueue and consume rates. The videos themselves are not run: this is the ceiling
 * the queue puts on a batch, to compare with a video's seconds of work.
 *
 *   node dist/bench/queue-throughput.js redis://127.0.0.1:6379/15 [jobs=5000] [workers=2] [concurrency=8]
 *
 * Uses the queue name `restore-bench-<pid>` and removes it after (obliterate).
 */
import { Queue, Worker } from 'bullmq';
import { checkQueue, connectionOf, parseQueueUrl } from '../batch/queue.js';

const [url, nArg, wArg, cArg] = process.argv.slice(2);
if (!url) {
  process.stderr.write('usage: node dist/bench/queue-throughput.js redis://HOST:PORT[/DB] [jobs] [workers] [concurrency]\n');
  process.exit(2);
}
const n = Number(nArg ?? 5000);
const workers = Number(wArg ?? 2);
const concurrency = Number(cArg ?? 8);
const target = parseQueueUrl(url, `restore-bench-${process.pid}`);
await checkQueue(target);
const queue = new Queue(target.name, { connection: connectionOf(target, 'client') });
const t0 = performance.now();
for (let i = 0; i < n; i += 500)
  await queue.addBulk(Array.from({ length: Math.min(500, n - i) }, (_, k) => ({ name: 'noop', data: { i: i + k }, opts: { jobId: `noop-${i + k}`, attempts: 3 } })));
const tEnq = performance.now() - t0;
let done = 0;
let resolveAll!: () => void;
const all = new Promise<void>((r) => (resolveAll = r));
const t1 = performance.now();
const ws = Array.from({ length: workers }, () => {
  const w = new Worker(target.name, async () => null, { connection: connectionOf(target, 'worker'), concurrency, lockDuration: 30_000 });
  w.on('completed', () => {
    if (++done === n) resolveAll();
  });
  return w;
});
await all;
const tCon = performance.now() - t1;
await Promise.all(ws.map((w) => w.close()));
await queue.obliterate({ force: true });
await queue.close();
const out = {
  jobs: n,
  workers,
  concurrency,
  enqueuePerS: Math.round(n / (tEnq / 1000)),
  consumePerS: Math.round(n / (tCon / 1000)),
  enqueueMs: Math.round(tEnq),
  consumeMs: Math.round(tCon),
};
process.stdout.write(JSON.stringify(out) + '\n');
process.exit(0);
