/**
 * The HTML reports in a real headless Chromium (Debian's package, driven with playwright-core):
 * the single-run report.html and the batch index.html load with no console error and no request
 * leaving file://, their plots render, the index sorts on a header click, names with <, & and
 * quotes show as text, links resolve, the JUnit file is well-formed XML; a screenshot of each page
 * goes to reports/screenshots/ for a person to look at.
 *
 * Without Chromium these tests fail with a message naming scripts/ensure-browser.mjs; never skipped.
 */
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBatch } from '../src/batch/runner.js';
import { makeBatchFixture, ODD_NAME } from '../src/batch/fixtures.js';
import type { BatchIndex } from '../src/batch/index-report.js';
import { packageRoot } from '../src/util/paths.js';
import { launchBrowser, openFile, type BrowserSession } from './helpers/browser.js';

const SHOTS = path.join(packageRoot, 'reports', 'screenshots');
const RUN = { maxFrames: 6, thumbnails: 2, preset: 'veryfast', backends: { inpaint: 'harmonic' } };
let work: string;
let out: string;
let junit: string;
let ix: BatchIndex;
let browser: BrowserSession;

beforeAll(async () => {
  browser = await launchBrowser(); // first: without Chromium, fail at once with the message saying how to get it
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'restore-browser-'));
  out = path.join(work, 'out');
  junit = path.join(work, 'junit.xml');
  const input = path.join(work, 'in');
  await makeBatchFixture(input);
  // Two nightly runs: the second with a much worse encode, so the index has history and regressions.
  await runBatch(input, { out, run: RUN, concurrency: 2 });
  await runBatch(input, { out, run: { ...RUN, crf: 45 }, concurrency: 2, junit });
  ix = JSON.parse(await fs.readFile(path.join(out, 'index.json'), 'utf8'));
  await fs.mkdir(SHOTS, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  if (work) await fs.rm(work, { recursive: true, force: true });
});

describe('single-run report.html in Chromium', () => {
  it('loads offline without errors and draws the PSNR and SSIM plots', async () => {
    const row = ix.rows.find((r) => r.id === 'cases/pan-x4')!;
    const file = path.join(out, row.links.report!);
    const { page, errors, outgoing, requests } = await openFile(browser, file);
    try {
      expect(errors).toEqual([]);
      expect(outgoing).toEqual([]);
      expect(requests.length).toBeGreaterThanOrEqual(1);
      for (const id of ['plot-psnr', 'plot-ssim']) {
        const plot = await page.evaluate((pid) => {
          const svg = document.getElementById(pid) as SVGSVGElement | null;
          if (!svg) return undefined;
          const box = svg.getBoundingClientRect();
          const marks = [...svg.querySelectorAll('path, polyline, circle')].filter((e) => {
            const d = e.getAttribute('d') ?? e.getAttribute('points') ?? e.getAttribute('r');
            const b = (e as SVGGraphicsElement).getBBox();
            return !!d && (b.width > 0 || b.height > 0);
          }).length;
          return { tag: svg.tagName.toLowerCase(), width: box.width, height: box.height, marks, empty: svg.classList.contains('empty') };
        }, id);
        expect(plot, id).toBeDefined();
        expect(plot!.tag).toBe('svg');
        expect(plot!.empty).toBe(false);
        expect(plot!.width).toBeGreaterThan(200);
        expect(plot!.height).toBeGreaterThan(80);
        expect(plot!.marks).toBeGreaterThanOrEqual(1);
      }
      // Thumbnails are local files that loaded.
      const imgs = await page.evaluate(() => [...document.images].map((i) => ({ src: i.src, ok: i.complete && i.naturalWidth > 0 })));
      expect(imgs.length).toBeGreaterThanOrEqual(2);
      for (const i of imgs) expect(i, i.src).toMatchObject({ ok: true });
      const shot = path.join(SHOTS, 'run-report.png');
      await page.screenshot({ path: shot, fullPage: true });
      expect((await fs.stat(shot)).size).toBeGreaterThan(10_000);
    } finally {
      await page.close();
    }
  });
});

describe('batch index.html in Chromium', () => {
  it('loads offline without errors, shows all videos with escaped names, totals and the history plot', async () => {
    const { page, errors, outgoing } = await openFile(browser, path.join(out, 'index.html'));
    try {
      expect(errors).toEqual([]);
      expect(outgoing).toEqual([]);
      const ids = await page.$$eval('#videos tbody tr', (trs) => trs.map((t) => t.getAttribute('data-id')));
      expect(ids.length).toBe(6);
      expect(ids).toContain(`odd/${ODD_NAME}`);
      const names = await page.$$eval('#videos tbody .name', (els) => els.map((e) => e.textContent));
      expect(names).toContain(`odd/${ODD_NAME}`);
      expect(await page.$$eval('#videos tbody b', (els) => els.length)).toBe(0); // no markup leaked from a name
      expect(await page.title()).toMatch(/restore batch/);
      const foot = await page.textContent('#videos tfoot');
      expect(foot).toContain(`Total: 6 videos`);
      expect(foot).toContain(`${ix.totals.done} done, ${ix.totals.failed} failed`);
      // Failures show their message; regressions are marked.
      const failedText = await page.$$eval('#videos tbody tr.failed .error', (els) => els.map((e) => e.textContent ?? ''));
      expect(failedText.some((t) => /truncated or corrupt/.test(t))).toBe(true);
      expect(await page.$$eval('#videos tbody tr.regression', (els) => els.length)).toBe(ix.totals.regressions);
      expect(ix.totals.regressions).toBeGreaterThanOrEqual(3);
      expect(await page.isVisible('#regressions')).toBe(true);
      // History plot: two runs, two series.
      const hist = await page.evaluate(() => {
        const svg = document.getElementById('plot-history');
        return svg ? { paths: svg.querySelectorAll('path').length, dots: svg.querySelectorAll('circle').length, w: svg.getBoundingClientRect().width } : undefined;
      });
      expect(hist).toEqual({ paths: 2, dots: 4, w: expect.any(Number) });
      expect(hist!.w).toBeGreaterThan(300);
      // Every link points at a file that exists.
      const hrefs = await page.$$eval('#videos a', (as) => as.map((a) => (a as HTMLAnchorElement).href));
      expect(hrefs.length).toBe(2 * ix.totals.done);
      for (const h of hrefs) expect(existsSync(fileURLToPath(h)), h).toBe(true);
      await page.screenshot({ path: path.join(SHOTS, 'index.png'), fullPage: true });
    } finally {
      await page.close();
    }
  });

  it('sorts by a column when its header is clicked, numbers as numbers, missing values last', async () => {
    const { page, errors } = await openFile(browser, path.join(out, 'index.html'));
    try {
      const order = () => page.$$eval('#videos tbody tr', (trs) => trs.map((t) => t.getAttribute('data-id')!));
      const initial = await order();
      expect(initial).toEqual([...initial].sort());
      const psnrOf = (id: string) => ix.rows.find((r) => r.id === id)!.metrics?.psnr;
      const header = page.locator('#videos thead th[data-key="psnr"] button');
      await header.click();
      const asc = await order();
      expect(await page.getAttribute('#videos thead th[data-key="psnr"]', 'aria-sort')).toBe('ascending');
      const ascVals = asc.map(psnrOf);
      const known = ascVals.filter((v): v is number => v !== undefined);
      expect(known).toEqual([...known].sort((a, b) => a - b));
      expect(ascVals.slice(known.length).every((v) => v === undefined)).toBe(true); // failed rows last
      expect(asc).not.toEqual(initial);
      await header.click();
      const desc = await order();
      const descKnown = desc.map(psnrOf).filter((v): v is number => v !== undefined);
      expect(descKnown).toEqual([...known].reverse());
      expect(await page.getAttribute('#videos thead th[data-key="psnr"]', 'aria-sort')).toBe('descending');
      await page.locator('#videos thead th[data-key="name"] button').click();
      expect(await order()).toEqual([...initial].sort());
      await page.locator('#videos thead th[data-key="name"] button').click();
      expect(await order()).toEqual([...initial].sort().reverse());
      await header.click();
      await page.screenshot({ path: path.join(SHOTS, 'index-sorted-psnr.png'), fullPage: true });
      // Following a report link opens the video's report, still offline.
      const first = ix.rows.find((r) => r.links.report)!;
      await page.click(`#videos tbody tr[data-id="${first.id}"] a[href$="report.html"]`);
      await page.waitForLoadState('load');
      expect(page.url()).toMatch(/report\/report\.html$/);
      expect(await page.$('#plot-psnr')).not.toBeNull();
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('the JUnit file is well-formed XML with the failures and regressions (parsed by the browser)', async () => {
    const xml = await fs.readFile(junit, 'utf8');
    const page = await browser.context.newPage();
    try {
      const parsed = await page.evaluate((text) => {
        const doc = new DOMParser().parseFromString(text, 'application/xml');
        const err = doc.querySelector('parsererror');
        const suite = doc.querySelector('testsuite')!;
        return {
          error: err?.textContent ?? null,
          tests: Number(suite.getAttribute('tests')),
          failures: Number(suite.getAttribute('failures')),
          errors: Number(suite.getAttribute('errors')),
          cases: doc.querySelectorAll('testcase').length,
          regressions: doc.querySelectorAll('failure[type="regression"]').length,
          errored: [...doc.querySelectorAll('testcase')].filter((c) => c.querySelector('error')).map((c) => c.getAttribute('name')),
          names: [...doc.querySelectorAll('testcase')].map((c) => c.getAttribute('name')),
        };
      }, xml);
      expect(parsed.error).toBeNull();
      expect(parsed.cases).toBe(7);
      expect(parsed.tests).toBe(7);
      expect(parsed.errors).toBe(ix.totals.failed);
      expect(parsed.regressions).toBe(ix.totals.regressions + 1);
      expect(parsed.failures).toBe(parsed.regressions);
      expect(parsed.errored).toContain('broken');
      expect(parsed.names).toContain(`odd/${ODD_NAME}`);
    } finally {
      await page.close();
    }
  });
});
