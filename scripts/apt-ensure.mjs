/**
 * Shared by the set-up scripts (ensure-browser.mjs, ensure-redis.mjs): find a program, and when
 * it is missing and this process is root on a machine with apt-get, install its Debian package
 * non-interactively. Each script prints exactly one line saying what it did and exits 0.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';

export function executable(p) {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function onPath(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

export function lastLine(text) {
  const lines = String(text || '').trim().split(/\r?\n/).filter(Boolean);
  return (lines[lines.length - 1] || '').slice(0, 200);
}

/**
 * Make sure `find()` finds the program, installing Debian's `pkg` when it can.
 * `name` is what the line calls it, `tests` which tests fail without it, `version(path)` its version.
 */
export function ensure({ tag, name, pkg, tests, find, version, missingHint }) {
  const say = (msg) => process.stdout.write(`${tag}: ${msg}\n`);
  try {
    const found = find();
    if (found) return say(`found ${found} (${version(found)}), nothing to do`);
    const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
    const apt = onPath('apt-get');
    if (!isRoot || !apt) {
      return say(`no ${name} and cannot install it (${!isRoot ? 'not root' : 'no apt-get'}); ${tests} will fail: ${missingHint}`);
    }
    // Serialize with the other installers of the set-up (dpkg has its own lock, but a second
    // apt-get would fail instead of waiting).
    const flock = onPath('flock');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const run = (args) =>
      flock
        ? spawnSync('flock', ['/tmp/restore-apt.lock', ...args], { encoding: 'utf8', env, timeout: 15 * 60_000, maxBuffer: 64 << 20 })
        : spawnSync(args[0], args.slice(1), { encoding: 'utf8', env, timeout: 15 * 60_000, maxBuffer: 64 << 20 });
    const t0 = Date.now();
    const upd = run(['apt-get', 'update', '-qq']);
    if (upd.status !== 0) return say(`apt-get update failed (${lastLine(upd.stderr) || upd.error?.message || 'exit ' + upd.status}); ${tests} will fail`);
    const inst = run(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', pkg]);
    const now = find();
    if (inst.status !== 0 || !now) {
      return say(`apt-get install ${pkg} failed (${lastLine(inst.stderr) || inst.error?.message || 'exit ' + inst.status}); ${tests} will fail`);
    }
    say(`installed Debian's ${pkg} with apt-get in ${((Date.now() - t0) / 1000).toFixed(0)} s: ${now} (${version(now)})`);
  } catch (e) {
    say(`could not check for ${name} (${e?.message ?? e}); ${tests} may fail`);
  }
}
