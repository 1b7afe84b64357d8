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
import { ensure, executable, onPath } from './apt-ensure.mjs';

ensure({
  tag: 'ensure-redis',
  name: 'redis-server',
  pkg: 'redis-server',
  tests: 'queue tests',
  missingHint: "install Debian's redis-server package (or set RESTORE_REDIS_SERVER)",
  find: () => [process.env.RESTORE_REDIS_SERVER, '/usr/bin/redis-server', onPath('redis-server')].filter(Boolean).find(executable),
  version: (p) => `Redis ${/v=([0-9.]+)/.exec(spawnSync(p, ['--version'], { encoding: 'utf8', timeout: 20_000 }).stdout || '')?.[1] ?? 'version unknown'}`,
});
