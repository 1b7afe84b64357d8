#!/usr/bin/env node
/**
 * Make sure a redis-server for the queue tests is present.
 *
 * Looks for Debian's redis-server (/usr/bin/redis-server, or $RESTORE_REDIS_SERVER, or one on
 * PATH). When it is missing and this process runs as root on a machine with apt-get, installs
 * Debian's `redis-server` package non-interactively (the tests start their own server on a
 * loopback port; the package's service is not needed). Prints exactly one line saying what it did
 * and always exits 0: the rest of the tests still run, and the queue tests then fail with a
 * message naming this script.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';

function executable(p) {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function findRedis() {
  return [process.env.RESTORE_REDIS_SERVER, '/usr/bin/redis-server', onPath('redis-server')].filter(Boolean).find(executable);
}

function version(p) {
  const r = spawnSync(p, ['--version'], { encoding: 'utf8', timeout: 20_000 });
  return /v=([0-9.]+)/.exec(r.stdout || '')?.[1] ?? 'version unknown';
}

function lastLine(text) {
  const lines = String(text || '').trim().split(/\r?\n/).filter(Boolean);
  return (lines[lines.length - 1] || '').slice(0, 200);
}

function say(msg) {
  process.stdout.write(`ensure-redis: ${msg}\n`);
}

function main() {
  const found = findRedis();
  if (found) return say(`found ${found} (Redis ${version(found)}), nothing to do`);

  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const apt = onPath('apt-get');
  if (!isRoot || !apt) {
    return say(
      `no redis-server and cannot install it (${!isRoot ? 'not root' : 'no apt-get'}); ` +
        "queue tests will fail: install Debian's redis-server package (or set RESTORE_REDIS_SERVER)",
    );
  }
  // Serialized with the other installers of the set-up (see ensure-browser.mjs).
  const flock = onPath('flock');
  const wrap = (args) => (flock ? ['flock', ['/tmp/restore-apt.lock', ...args]] : [args[0], args.slice(1)]);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const run = (args) => {
    const [cmd, rest] = wrap(args);
    return spawnSync(cmd, rest, { encoding: 'utf8', env, timeout: 15 * 60_000, maxBuffer: 64 << 20 });
  };
  const t0 = Date.now();
  const upd = run(['apt-get', 'update', '-qq']);
  if (upd.status !== 0) {
    return say(`apt-get update failed (${lastLine(upd.stderr) || upd.error?.message || 'exit ' + upd.status}); queue tests will fail`);
  }
  const inst = run(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', 'redis-server']);
  const now = findRedis();
  if (inst.status !== 0 || !now) {
    return say(`apt-get install redis-server failed (${lastLine(inst.stderr) || inst.error?.message || 'exit ' + inst.status}); queue tests will fail`);
  }
  say(`installed Debian's redis-server with apt-get in ${((Date.now() - t0) / 1000).toFixed(0)} s: ${now} (Redis ${version(now)})`);
}

try {
  main();
} catch (e) {
  say(`could not check for redis-server (${e?.message ?? e}); queue tests may fail`);
}
