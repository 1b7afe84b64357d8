#!/usr/bin/env node
/**
 * Make sure a Chromium for the browser tests is present.
 *
 * Looks for Debian's Chromium (/usr/bin/chromium, or $RESTORE_CHROMIUM). When it is missing and
 * this process runs as root on a machine with apt-get, installs Debian's `chromium` package
 * non-interactively. Prints exactly one line saying what it did and always exits 0: a machine
 * where nothing can be installed still runs the rest of the tests, and the browser tests then
 * fail with a message naming this script.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';

const CANDIDATES = [process.env.RESTORE_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter(Boolean);

function executable(p) {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function findChromium() {
  return CANDIDATES.find(executable);
}

function version(p) {
  const r = spawnSync(p, ['--version'], { encoding: 'utf8', timeout: 20_000 });
  return (r.stdout || '').trim() || 'version unknown';
}

function onPath(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function lastLine(text) {
  const lines = String(text || '').trim().split(/\r?\n/).filter(Boolean);
  return (lines[lines.length - 1] || '').slice(0, 200);
}

function say(msg) {
  process.stdout.write(`ensure-browser: ${msg}\n`);
}

function main() {
  const found = findChromium();
  if (found) return say(`found ${found} (${version(found)}), nothing to do`);

  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const apt = onPath('apt-get');
  if (!isRoot || !apt) {
    return say(
      `no Chromium at /usr/bin/chromium and cannot install it (${!isRoot ? 'not root' : 'no apt-get'}); ` +
        'browser tests will fail: install Debian\'s chromium package',
    );
  }

  // Serialize with any other installer on this machine (dpkg has its own lock, but a second
  // apt-get would fail instead of waiting).
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
    return say(`apt-get update failed (${lastLine(upd.stderr) || upd.error?.message || 'exit ' + upd.status}); browser tests will fail`);
  }
  const inst = run(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', 'chromium']);
  const now = findChromium();
  if (inst.status !== 0 || !now) {
    return say(`apt-get install chromium failed (${lastLine(inst.stderr) || inst.error?.message || 'exit ' + inst.status}); browser tests will fail`);
  }
  say(`installed Debian's chromium with apt-get in ${((Date.now() - t0) / 1000).toFixed(0)} s: ${now} (${version(now)})`);
}

try {
  main();
} catch (e) {
  say(`could not check for Chromium (${e?.message ?? e}); browser tests may fail`);
}
