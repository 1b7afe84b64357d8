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
import { ensure, executable } from './apt-ensure.mjs';

const CANDIDATES = [process.env.RESTORE_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter(Boolean);

ensure({
  tag: 'ensure-browser',
  name: 'Chromium at /usr/bin/chromium',
  pkg: 'chromium',
  tests: 'browser tests',
  missingHint: "install Debian's chromium package",
  find: () => CANDIDATES.find(executable),
  version: (p) => (spawnSync(p, ['--version'], { encoding: 'utf8', timeout: 20_000 }).stdout || '').trim() || 'version unknown',
});
