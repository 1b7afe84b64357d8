/**
 * Headless Chromium (Debian's package) driven with playwright-core, kept off the network:
 * every request that is not file:// (or data:/blob:) is recorded and aborted, so a test can
 * assert that a report made none; console errors and uncaught page errors are collected.
 */
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM_PATH = process.env.RESTORE_CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Throws one clear line when Chromium is missing (never a silent skip). */
export function assertChromium(): void {
  try {
    accessSync(CHROMIUM_PATH, constants.X_OK);
  } catch {
    throw new Error(
      `Chromium not found at ${CHROMIUM_PATH}: run \`node scripts/ensure-browser.mjs\` as root (installs Debian's chromium with apt-get), ` +
        'or set RESTORE_CHROMIUM to a Chromium binary',
    );
  }
}

export interface BrowserSession {
  context: BrowserContext;
  close(): Promise<void>;
}

/** Launch with a fresh user-data folder (removed on close). */
export async function launchBrowser(): Promise<BrowserSession> {
  assertChromium();
  const userDataDir = await mkdtemp(path.join(os.tmpdir(), 'restore-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 },
    offline: false,
    timeout: 60_000,
  });
  return {
    context,
    async close() {
      await context.close().catch(() => undefined);
      await rm(userDataDir, { recursive: true, force: true });
    },
  };
}

const LOCAL = /^(file|data|blob|about):/i;

export interface OpenedPage {
  page: Page;
  /** Console messages of type error, and uncaught exceptions. */
  errors: string[];
  /** URLs the page tried to reach outside file:// (all were aborted). */
  outgoing: string[];
  /** Every request URL seen (local ones included). */
  requests: string[];
}

/** Open a local file in a new page with request routing and error collection in place. */
export async function openFile(session: BrowserSession, file: string): Promise<OpenedPage> {
  const page = await session.context.newPage();
  const errors: string[] = [];
  const outgoing: string[] = [];
  const requests: string[] = [];
  await page.route('**/*', async (route) => {
    const url = route.request().url();
    if (LOCAL.test(url)) return route.continue();
    outgoing.push(url);
    return route.abort('blockedbyclient');
  });
  page.on('request', (r) => {
    requests.push(r.url());
    if (!LOCAL.test(r.url()) && !outgoing.includes(r.url())) outgoing.push(r.url());
  });
  page.on('websocket', (ws) => outgoing.push(ws.url()));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  await page.goto(pathToFileURL(path.resolve(file)).href, { waitUntil: 'load' });
  return { page, errors, outgoing, requests };
}
