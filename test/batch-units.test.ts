/** The batch's pure parts: metrics extraction, history comparison, escaping, JUnit, the output lock. */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { escapeHtml, escapeXml, hrefOf, jsonForScript } from '../src/batch/escape.js';
import { compareRun, compareVideo, type HistoryRecord } from '../src/batch/history.js';
import { renderIndexHtml, type BatchIndex } from '../src/batch/index-report.js';
import { renderJUnit } from '../src/batch/junit.js';
import { metricsOf } from '../src/batch/metrics.js';
import { runBatch } from '../src/batch/runner.js';
import type { RunReport } from '../src/report/types.js';

const T = { psnrDb: 0.5, ssim: 0.01 };

function report(partial: Partial<RunReport>): RunReport {
  return {
    tool: { name: 'restore', version: '0' },
    createdAt: '',
    input: { path: 'a', width: 96, height: 96, fps: '24', frames: 4 },
    output: { path: 'b', width: 384, height: 384, fps: '24', frames: 4 },
    settings: {},
    device: 'cpu',
    stages: [
      { name: 'upscale', backend: 'rdn', ran: true, frames: 4, ms: 40, msPerFrame: 10 },
      { name: 'swap', backend: 'none', ran: false, reason: 'x', frames: 0, ms: 0, msPerFrame: 0 },
    ],
    timing: { wallMs: 1234.4, fps: 3.2456, peakRssMb: 100 },
    notes: [],
    thumbnails: [],
    ...partial,
  };
}

describe('metricsOf', () => {
  it('takes means from the report, prefers idSimAfter over other id keys, averages flicker values', () => {
    const m = metricsOf(
      report({
        metrics: {
          after: { frames: 4, psnrRgbMean: 27.123456, ssimYMean: 0.8123456 } as any,
          before: { frames: 4, psnrRgbMean: 26.5, ssimYMean: 0.8 } as any,
          perFrame: [],
        },
        perFrameValues: [
          { index: 0, values: { idSimBefore: 0.1, idSimAfter: 0.6, flickerAfter: 2 } },
          { index: 1, values: { idSimBefore: 0.2, idSimAfter: 0.8 } },
          { index: 2, values: { flickerAfter: 4 } },
        ],
      }),
    );
    expect(m).toMatchObject({ frames: 4, fps: 3.246, wallMs: 1234, psnr: 27.1235, ssim: 0.81235, psnrBefore: 26.5, ssimBefore: 0.8 });
    expect(m.idSim).toBeCloseTo(0.7, 6);
    expect(m.flicker).toBeCloseTo(3, 6);
    expect(m.backends).toEqual({ upscale: 'rdn', swap: 'none' });
  });

  it('reads the temporal stage\'s per-frame "flicker" and ignores "flickerBefore"', () => {
    const m = metricsOf(
      report({
        perFrameValues: [
          { index: 1, values: { flicker: 1.5, flickerBefore: 9 } },
          { index: 2, values: { flicker: 2.5, flickerBefore: 9 } },
        ],
      }),
    );
    expect(m.flicker).toBeCloseTo(2, 6);
  });

  it('without a reference there are no PSNR/SSIM numbers and the reason is kept', () => {
    const m = metricsOf(report({ metricsSkipped: 'no --reference given' }));
    expect(m.psnr).toBeUndefined();
    expect(m.ssim).toBeUndefined();
    expect(m.idSim).toBeUndefined();
    expect(m.metricsSkipped).toBe('no --reference given');
  });
});

function rec(runId: string, videos: HistoryRecord['videos']): HistoryRecord {
  return { runId, startedAt: runId, finishedAt: runId, settingsHash: '', settings: {}, totals: { videos: 0, done: 0, failed: 0 }, videos };
}

describe('history comparison', () => {
  const history = [
    rec('r1', { a: { status: 'done', psnr: 30, ssim: 0.9 }, b: { status: 'done', psnr: 25, ssim: 0.8 } }),
    rec('r2', { a: { status: 'failed', error: 'x' }, b: { status: 'done', psnr: 25.2, ssim: 0.8 } }),
  ];
  it('compares with the last run in which the video was done; flags drops past the thresholds only', () => {
    const a = compareVideo('a', { status: 'done', psnr: 29.4, ssim: 0.895 }, history, T);
    expect(a.previousRunId).toBe('r1'); // r2 failed for 'a'
    expect(a.delta.psnr).toBeCloseTo(-0.6, 6);
    expect(a.regressions).toEqual(['PSNR fell 0.60 dB (30.00 → 29.40; threshold 0.5 dB)']);
    const b = compareVideo('b', { status: 'done', psnr: 24.8, ssim: 0.785 }, history, T);
    expect(b.previousRunId).toBe('r2');
    expect(b.regressions.length).toBe(1);
    expect(b.regressions[0]).toMatch(/^SSIM fell 0\.0150/);
    expect(compareVideo('b', { status: 'done', psnr: 24.8, ssim: 0.795 }, history, T).regressions).toEqual([]);
    expect(compareVideo('new', { status: 'done', psnr: 1 }, history, T)).toEqual({ delta: {}, regressions: [] });
    expect(compareVideo('b', { status: 'failed' }, history, T).regressions).toEqual([]);
  });

  it('run means are taken over the videos done in both runs', () => {
    const r = compareRun({ a: { status: 'done', psnr: 10, ssim: 0.5 }, b: { status: 'done', psnr: 24.2, ssim: 0.8 } }, history, T);
    expect(r.common).toBe(1); // 'a' failed in r2
    expect(r.delta.psnr).toBeCloseTo(-1, 6);
    expect(r.regressions).toEqual(['PSNR fell 1.00 dB (25.20 → 24.20; threshold 0.5 dB)']);
  });
});

describe('escaping', () => {
  const nasty = `</script><img src=x onerror=alert(1)>&"'\u0001`;
  it('HTML, URL paths and inline JSON', () => {
    expect(escapeHtml(`<a href="x">&'`)).toBe('&lt;a href=&quot;x&quot;&gt;&amp;&#39;');
    expect(hrefOf(`a b/<c>&"d'#?.html`)).toBe('a%20b/%3Cc%3E%26%22d\'%23%3F.html');
    const j = jsonForScript({ s: nasty });
    expect(j).not.toMatch(/<|>|&/);
    expect(JSON.parse(j).s).toBe(nasty);
    expect(escapeXml(nasty)).toBe('&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&amp;&quot;&apos;\uFFFD');
  });

  it('a hostile file name and error message cannot inject markup into the index or the JUnit file', () => {
    const ix: BatchIndex = {
      tool: { name: 'restore', version: '0' },
      generatedAt: '2026-01-01T00:00:00.000Z',
      runId: 'r',
      dir: `/d/${nasty}`,
      out: '/o',
      settingsHash: 'h',
      settings: { crf: 18, note: nasty },
      thresholds: T,
      concurrency: 1,
      wallMs: 1000,
      totals: { videos: 1, done: 0, failed: 1, pending: 0, resumed: 0, processed: 1, regressions: 0, frames: 0, videoMs: 0 },
      run: { delta: {}, regressions: [], common: 0 },
      rows: [{ id: nasty, slug: 's', input: nasty, status: 'failed', resumed: false, error: nasty, errorKind: 'input', compare: { delta: {}, regressions: [] }, regression: false, links: {}, attempts: 1 }],
      history: [],
    };
    const html = renderIndexHtml(ix);
    expect(html).not.toContain('<img');
    expect(html).not.toContain('</script><');
    expect(html.match(/<script/g)!.length).toBe(2); // the data block and the sorter, nothing else
    const xml = renderJUnit(ix);
    expect(xml).not.toContain('<img');
    expect(xml).not.toContain('\u0001');
    expect(xml).toMatch(/tests="1" failures="0" errors="1" skipped="0"/);
  });
});

describe('output lock', () => {
  it('refuses a second batch on the same output while the first lives; takes over a stale lock', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'restore-lock-'));
    try {
      const vids = path.join(dir, 'in');
      await fs.mkdir(vids);
      await fs.writeFile(path.join(vids, 'a.mp4'), 'not a video');
      const out = path.join(dir, 'out');
      await fs.mkdir(out);
      const sleeper = spawn('sleep', ['30']);
      await fs.writeFile(path.join(out, '.batch.lock'), JSON.stringify({ pid: sleeper.pid, host: os.hostname() }));
      await expect(runBatch(vids, { out })).rejects.toThrow(new RegExp(`another batch \\(pid ${sleeper.pid}\\) is writing to`));
      sleeper.kill('SIGKILL');
      await new Promise((r) => sleeper.on('exit', r));
      // Dead owner: the lock is stale and taken over; the only video is not a video -> exit code 7.
      const s = await runBatch(vids, { out });
      expect(s.exitCode).toBe(7);
      expect(s.failures[0]!.error).toMatch(/a\.mp4: not a readable video/);
      await expect(fs.stat(path.join(out, '.batch.lock'))).rejects.toThrow();
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
