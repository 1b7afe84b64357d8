/**
 * Report writers: a RunReport built from real metrics on real frames (the astronaut portrait,
 * damaged two ways) is written to disk and the three files are checked.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { RgbFrame } from '../src/media/frame.js';
import { frameMetrics, summarize } from '../src/metrics/frame.js';
import { RestoreError } from '../src/errors.js';
import { fixturesDir } from '../src/util/paths.js';
import { framesCsv, reportJson, writeRunReports } from '../src/report/write.js';
import type { RunReport } from '../src/report/types.js';

const W = 96;
const H = 80;
const N = 12;
const NASTY = `we<ird>&"name's`;
const VALUE_KEY = `id<sim>,"x"&'`;
let dir: string;
let report: RunReport;
let ref: RgbFrame[];

async function frame(i: number, blur = 0): Promise<RgbFrame> {
  let img = sharp(path.join(fixturesDir, 'source', 'astronaut.png'))
    .removeAlpha()
    .extract({ left: 100 + i * 6, top: 40 + i * 4, width: 300, height: 250 })
    .resize(W, H);
  if (blur) img = img.blur(blur);
  const { data } = await img.raw().toBuffer({ resolveWithObject: true });
  return { width: W, height: H, data: new Uint8Array(data) };
}

async function jpeg(f: RgbFrame, file: string) {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await sharp(Buffer.from(f.data), { raw: { width: f.width, height: f.height, channels: 3 } }).jpeg({ quality: 80 }).toFile(file);
}

/** Minimal RFC 4180 line parser (quoted fields with doubled quotes). */
function parseCsvLine(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let q = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (q) {
      if (c === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') q = false;
      else cur += c;
    } else if (c === '"') q = true;
    else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'restore-report-'));
  ref = [];
  const perFrame: NonNullable<RunReport['metrics']>['perFrame'] = [];
  for (let i = 0; i < N; i++) {
    const r = await frame(i);
    const after = await frame(i, 0.6 + (i % 4) * 0.2); // mild blur: the "restored" output
    const before = await frame(i, 1.6); // heavier blur: the bicubic baseline
    ref.push(r);
    perFrame.push({ index: i, after: frameMetrics(after, r, i), before: frameMetrics(before, r, i) });
    if (i % 5 === 0) {
      await jpeg(before, path.join(dir, 'thumbs', `${i}-input.jpg`));
      await jpeg(after, path.join(dir, 'thumbs', `${i}-output.jpg`));
      await jpeg(r, path.join(dir, 'thumbs', `${i}-reference.jpg`));
    }
  }
  report = {
    tool: { name: 'restore', version: '0.1.0' },
    createdAt: '2026-11-22T06:00:00.000Z',
    input: { path: `/clips/${NASTY}.mp4`, width: 24, height: 20, fps: '24/1', frames: N, duration: 0.5, audioStreams: 1 },
    output: { path: `/out/${NASTY}-restored.mp4`, width: W, height: H, fps: '24/1', frames: N },
    reference: { path: '/clips/reference.mp4', width: W, height: H, fps: '24/1', frames: N, duration: 0.5 },
    mask: { source: `/clips/${NASTY}-mask.png`, coverage: 0.083 },
    settings: { scale: 4, crf: 18, preset: 'medium', backends: { inpaint: 'builtin', upscale: 'auto' }, [`odd<key>`]: `v&"'` },
    device: 'cpu',
    stages: [
      { name: 'inpaint', backend: 'builtin-telea', ran: true, reason: 'no lama model installed', frames: N, ms: 96, msPerFrame: 8 },
      {
        name: 'upscale',
        backend: 'lanczos',
        ran: true,
        frames: N,
        ms: 30,
        msPerFrame: 2.5,
        details: { factor: 4, ratio: 1.23456789, note: '<b>x</b>' },
        timing: { mainMs: 6, workerMs: 24, workerWallMs: 26, mainShare: 1, workerTasks: N, modelRunMs: 24, modelRuns: N, ratioToModelRun: 1.25, orderedMs: 12, orderedMsPerFrame: 1, orderedWallMsPerFrame: 1.5, criticalMs: 18, criticalMsPerFrame: 1.5 },
      },
      { name: 'swap', backend: 'none', ran: false, reason: `no --identity given <for ${NASTY}>`, frames: 0, ms: 0, msPerFrame: 0 },
    ],
    timing: { wallMs: 1834, fps: 6.54, pipelineMs: 1529, scoringMs: 305, scoringShare: 0.199, peakRssMb: 212 },
    metrics: {
      after: summarize(perFrame.map((p) => p.after)),
      before: summarize(perFrame.map((p) => p.before!)),
      perFrame,
    },
    perFrameValues: Array.from({ length: N }, (_, i) => ({
      index: i,
      values: { [VALUE_KEY]: 0.6 + 0.02 * i, flicker: i % 3 === 0 ? 1.5 : 0.7, idSimBefore: 0.2 + 0.01 * i, idSimAfter: 0.7 - 0.01 * i },
    })),
    notes: [`metrics over the common area <${NASTY}>`, 'audio stream copied unchanged'],
    thumbnails: [0, 5, 10].map((i) => ({
      index: i,
      input: `thumbs/${i}-input.jpg`,
      output: `thumbs/${i}-output.jpg`,
      reference: i === 10 ? `thumbs/${NASTY}.jpg` : `thumbs/${i}-reference.jpg`, // one missing file
    })),
  };
}, 60_000);

afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('writeRunReports', () => {
  let files: { json: string; csv: string; html: string };
  let html: string;

  beforeAll(async () => {
    files = await writeRunReports(report, dir);
    html = await fs.readFile(files.html, 'utf8');
  });

  test('the real numbers are sensible: the milder blur scores higher than the heavier one', () => {
    const { after, before } = report.metrics!;
    expect(after.psnrRgbMean).toBeGreaterThan(before!.psnrRgbMean + 1);
    expect(after.ssimYMean).toBeGreaterThan(before!.ssimYMean);
    expect(after.psnrRgbMean).toBeGreaterThan(20);
    expect(after.psnrRgbMean).toBeLessThan(60);
  });

  test('writes the three files atomically (no temp files left) into the report dir', async () => {
    expect(files.json).toBe(path.join(dir, 'report.json'));
    expect(files.csv).toBe(path.join(dir, 'frames.csv'));
    expect(files.html).toBe(path.join(dir, 'report.html'));
    const names = await fs.readdir(dir);
    expect(names.filter((n) => n.includes('partial'))).toEqual([]);
  });

  test('report.json parses and round-trips', async () => {
    const parsed = JSON.parse(await fs.readFile(files.json, 'utf8'));
    expect(parsed).toEqual(JSON.parse(JSON.stringify(report)));
    expect(parsed.metrics.perFrame).toHaveLength(N);
    expect(parsed.metrics.after.psnrRgbMean).toBeCloseTo(report.metrics!.after.psnrRgbMean, 12);
    expect(parsed.stages[2].ran).toBe(false);
  });

  test('NaN and Infinity are written as null', () => {
    const r = { ...report, timing: { wallMs: 1, fps: Infinity, peakRssMb: NaN } };
    const j = JSON.parse(reportJson(r));
    expect(j.timing.fps).toBeNull();
    expect(j.timing.peakRssMb).toBeNull();
  });

  test('frames.csv: header, one row per frame, values match', async () => {
    const lines = (await fs.readFile(files.csv, 'utf8')).trimEnd().split('\n');
    expect(lines).toHaveLength(N + 1);
    const header = parseCsvLine(lines[0]);
    expect(header).toEqual([
      'index',
      'after_psnr_rgb',
      'after_psnr_y',
      'after_ssim_y',
      'before_psnr_rgb',
      'before_psnr_y',
      'before_ssim_y',
      'flicker',
      VALUE_KEY,
      'idSimAfter',
      'idSimBefore',
    ]);
    // The odd key is quoted with doubled quotes.
    expect(lines[0]).toContain(`"id<sim>,""x""&'"`);
    for (let i = 0; i < N; i++) {
      const row = parseCsvLine(lines[i + 1]).map(Number);
      const p = report.metrics!.perFrame[i];
      expect(row[0]).toBe(i);
      expect(row[1]).toBeCloseTo(p.after.psnrRgb, 5);
      expect(row[2]).toBeCloseTo(p.after.psnrY, 5);
      expect(row[3]).toBeCloseTo(p.after.ssimY, 5);
      expect(row[4]).toBeCloseTo(p.before!.psnrRgb, 5);
      expect(row[6]).toBeCloseTo(p.before!.ssimY, 5);
      expect(row[7]).toBeCloseTo(i % 3 === 0 ? 1.5 : 0.7, 6);
      expect(row[8]).toBeCloseTo(0.6 + 0.02 * i, 6);
    }
  });

  test('report.html holds the plots with real paths', () => {
    for (const id of ['plot-psnr', 'plot-ssim', 'plot-stages']) expect(html).toContain(`id="${id}"`);
    const svg = (id: string) => {
      const m = new RegExp(`<svg id="${id}"[\\s\\S]*?</svg>`).exec(html);
      expect(m, id).not.toBeNull();
      return m![0];
    };
    const lines = (s: string) => [...s.matchAll(/<path class="line" d="([^"]+)"/g)].map((m) => m[1]);
    // PSNR: after/before x RGB/Y, each a polyline through all N frames.
    const psnr = lines(svg('plot-psnr'));
    expect(psnr).toHaveLength(4);
    for (const d of psnr) {
      expect(d.startsWith('M')).toBe(true);
      expect(d.split('L')).toHaveLength(N);
      // All coordinates are finite numbers inside the 760x260 view box.
      for (const n of d.replace(/[ML]/g, ' ').trim().split(/\s+/).map(Number)) {
        expect(Number.isFinite(n)).toBe(true);
        expect(n).toBeGreaterThanOrEqual(0);
        expect(n).toBeLessThanOrEqual(760);
      }
    }
    expect(lines(svg('plot-ssim'))).toHaveLength(2);
    // Per-frame stage values get their own plots.
    expect(html).toContain('id="plot-values"');
    expect(html).toContain('id="plot-value-flicker"');
    expect(lines(svg('plot-value-flicker'))[0].split('L')).toHaveLength(N);
    // idSimBefore/idSimAfter share one plot (after first).
    const id = svg('plot-value-idSim');
    expect(lines(id)).toHaveLength(2);
    expect(id).toContain('data-keys="[&quot;values.idSimAfter&quot;,&quot;values.idSimBefore&quot;]"');
    expect(html).not.toContain('id="plot-value-idSimAfter"');
    // The stage bar chart: two bars for the stages that ran, the skipped one marked with its reason.
    const bars = svg('plot-stages');
    expect([...bars.matchAll(/<rect class="bar" /g)]).toHaveLength(2);
    expect(bars).toContain('not run: no --identity given &lt;for we&lt;ird&gt;&amp;&quot;name&#39;s&gt;');
  });

  test('summary table, stages table with the skipped stage marked, definitions, thumbnails', () => {
    expect(html).toMatch(/<table class="summary" id="summary-table">/);
    const a = report.metrics!.after;
    const b = report.metrics!.before!;
    expect(html).toContain(`<tr data-metric="psnrRgbMean"><th scope="row">PSNR RGB, mean of frames</th><td class="num after">${a.psnrRgbMean.toFixed(2)}`);
    expect(html).toContain(`<td class="num before">${b.psnrRgbOfMeanMse.toFixed(2)}</td>`);
    expect(html).toContain(`<td class="num delta up">+${(a.ssimYMean - b.ssimYMean).toFixed(4)}</td>`);
    expect(html).toMatch(/<table class="stages" id="stages">/);
    const notRun = /<tr class="not-run" data-stage="swap">[\s\S]*?<\/tr>/.exec(html);
    expect(notRun).not.toBeNull();
    expect(notRun![0]).toContain('not run');
    expect(notRun![0]).toContain('no --identity given &lt;for');
    // a stage's timing: CPU ms/frame with its models' share and in-order step under it, and the wall time it held the pipeline
    const up = /<tr class="ran" data-stage="upscale">[\s\S]*?<\/tr>/.exec(html)![0];
    expect(up).toContain('<td class="num">2.50<div class="muted timing">models 2.00 (stage 1.25x)<br>in order 1.50</div></td>');
    expect(up).toContain('<td class="num critical">1.50</td>');
    // the metrics pass's share of the wall time, under the speed
    expect(html).toContain('wall 1.83 s, of which scoring 305 ms');
    const inp = /<tr class="ran" data-stage="inpaint">[\s\S]*?<\/tr>/.exec(html)![0];
    expect(inp).toContain('<td class="num critical">—</td>');
    expect(html).toContain(a.definitions.ssim.replace(/&/g, '&amp;'));
    // 3 thumbnails x 3 images, one file missing -> 8 embedded JPEGs and one placeholder.
    const uris = [...html.matchAll(/<img src="data:image\/jpeg;base64,([A-Za-z0-9+/=]+)"/g)].map((m) => m[1]);
    expect(uris).toHaveLength(8);
    for (const u of uris) {
      const buf = Buffer.from(u, 'base64');
      expect(buf[0]).toBe(0xff);
      expect(buf[1]).toBe(0xd8);
    }
    expect(html).toContain('missing: thumbs/we&lt;ird&gt;&amp;&quot;name&#39;s.jpg');
  });

  test('nothing is loaded from the network or other files', () => {
    expect(html).not.toMatch(/(?:src|href|action|xlink:href)\s*=\s*["']?\s*(?:https?:|\/\/|file:)/i);
    expect(html).not.toMatch(/https?:\/\//i);
    expect(html).not.toMatch(/<link\b|@import|url\(/i);
    expect(html).not.toMatch(/<script[^>]+src=/i);
    for (const m of html.matchAll(/\ssrc="([^"]*)"/g)) expect(m[1].startsWith('data:image/')).toBe(true);
  });

  test('every run-supplied string is escaped', () => {
    expect(html).not.toContain(NASTY);
    expect(html).not.toContain('<ird>');
    expect(html).not.toContain('id<sim>');
    expect(html).toContain('we&lt;ird&gt;&amp;&quot;name&#39;s');
    expect(html).toContain('odd&lt;key&gt;');
    // Stage details: compact, rounded, escaped.
    expect(html).toContain('<b>ratio</b> 1.235');
    expect(html).toContain('<b>note</b> &lt;b&gt;x&lt;/b&gt;');
    // In the embedded JSON data the key is escaped for <script>.
    const data = /<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(html)![1];
    expect(data).not.toMatch(/<|>|&/);
    const parsed = JSON.parse(data);
    expect(parsed.frames).toHaveLength(N);
    expect(parsed.frames[3].values[VALUE_KEY]).toBeCloseTo(0.66, 9);
    // Balanced structure.
    for (const tag of ['svg', 'section', 'table', 'script', 'figure']) {
      expect([...html.matchAll(new RegExp(`<${tag}[\\s>]`, 'g'))].length, tag).toBe([...html.matchAll(new RegExp(`</${tag}>`, 'g'))].length);
    }
  });
});

describe('reports without metrics', () => {
  test('the reason is shown, CSV rows come from the per-frame values, no metric plots', async () => {
    const d2 = path.join(dir, 'no-metrics');
    const r: RunReport = { ...report, metrics: undefined, reference: undefined, metricsSkipped: 'no --reference given', thumbnails: [] };
    const files = await writeRunReports(r, d2);
    const html = await fs.readFile(files.html, 'utf8');
    expect(html).toContain('id="metrics-skipped"');
    expect(html).toContain('Metrics were not computed: no --reference given.');
    expect(html).not.toContain('id="plot-psnr"');
    expect(html).toContain('id="plot-value-flicker"');
    const csv = framesCsv(r).trimEnd().split('\n');
    expect(csv).toHaveLength(N + 1);
    expect(parseCsvLine(csv[1]).slice(1, 7)).toEqual(['', '', '', '', '', '']);
    expect(Number(parseCsvLine(csv[1])[7])).toBeCloseTo(1.5, 9);
    const empty: RunReport = { ...r, perFrameValues: undefined };
    expect(framesCsv(empty).trimEnd().split('\n')).toHaveLength(1);
  });

  test('an unwritable report dir gives one output error line', async () => {
    const file = path.join(dir, 'a-file');
    await fs.writeFile(file, 'x');
    const err = await writeRunReports(report, path.join(file, 'sub')).catch((e) => e);
    expect(err).toBeInstanceOf(RestoreError);
    expect(err.kind).toBe('output');
    expect(err.message).toContain(path.join(file, 'sub'));
    expect(err.message).not.toContain('\n');
  });
});
