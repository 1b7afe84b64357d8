/**
 * A real redis-server for the queue tests: on a free loopback port, in a temporary folder, with
 * its append-only file on (fsync on every write), stopped after. `restart()` stops it the way a
 * service manager does (SIGTERM) and starts it again on the same port and folder.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';

export interface TestRedis {
  port: number;
  url: string;
  dir: string;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

function redisBinary(): string {
  const cands = [process.env.RESTORE_REDIS_SERVER, '/usr/bin/redis-server', spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).stdout.trim()].filter(Boolean) as string[];
  for (const c of cands) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      /* next */
    }
  }
  throw new Error('no redis-server: run `node scripts/ensure-redis.mjs` (npm test does) or install Debian\'s redis-server');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function waitReady(port: number, ms = 15_000): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    const r = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
    r.on('error', () => undefined);
    try {
      await r.connect();
      // Ready only once the append-only file is loaded (PING answers LOADING before that).
      const info = String(await r.info('persistence'));
      if (/loading:0/.test(info)) return;
    } catch {
      /* not yet */
    } finally {
      r.disconnect();
    }
    if (Date.now() - t0 > ms) throw new Error(`redis-server on port ${port} did not become ready in ${ms} ms`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

export async function startRedis(): Promise<TestRedis> {
  const bin = redisBinary();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'restore-redis-'));
  const port = await freePort();
  let child: ChildProcess | undefined;
  const launch = async () => {
    child = spawn(
      bin,
      ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--daemonize', 'no', '--logfile', path.join(dir, 'redis.log'), '--maxmemory-policy', 'noeviction'],
      { stdio: 'ignore' },
    );
    await waitReady(port);
  };
  const halt = async () => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await exited;
  };
  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    restart: async () => {
      await halt();
      await launch();
    },
    stop: async () => {
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
