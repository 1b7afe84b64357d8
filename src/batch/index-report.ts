/**
 * The batch index: `index.json` (machine-readable) and `index.html` (self-contained: inline CSS,
 * inline SVG and a small inline script for sorting; no network; every name escaped).
 */
import path from 'node:path';
import { writeFileAtomic } from '../media/encode.js';
import { escapeHtml, hrefOf, jsonForScript } from './escape.js';
import type { Comparison, HistoryRecord, MetricKey, Thresholds } from './history.js';
import type { VideoMetrics } from './metrics.js';

export interface IndexRow {
  id: string;
  slug: string;
  /** Input path relative to the batch folder. */
  input: string;
  status: 'done' | 'failed' | 'pending';
  /** Done in an earlier run with the same input and settings; not redone. */
  resumed: boolean;
  error?: string;
  errorKind?: string;
  metrics?: VideoMetrics;
  compare: Comparison;
  regression: boolean;
  /** Links relative to the --out folder ('/'-separated), present only when the file exists. */
  links: { report?: string; output?: string; json?: string };
  attempts: number;
  finishedAt?: string;
}

/** How many videos of a batch are in which state (index totals and the run summary). */
export interface BatchCounts {
  videos: number;
  done: number;
  failed: number;
  pending: number;
  resumed: number;
  processed: number;
  regressions: number;
}

export interface BatchIndex {
  tool: { name: 'restore'; version: string };
  generatedAt: string;
  runId: string;
  dir: string;
  out: string;
  settingsHash: string;
  settings: Record<string, unknown>;
  thresholds: Thresholds;
  concurrency: number;
  /** Wall time of this batch run. */
  wallMs: number;
  totals: BatchCounts & {
    frames: number;
    /** Sum of per-video processing time (includes results carried over from earlier runs). */
    videoMs: number;
    /** Videos processed in this run per minute of batch wall time. */
    videosPerMinute?: number;
    psnr?: number;
    ssim?: number;
    idSim?: number;
    flicker?: number;
  };
  /** This run's means against the previous run's, over the videos done in both. */
  run: Comparison & { common: number };
  rows: IndexRow[];
  /** Earlier runs and this one, oldest first (for the trend plot). */
  history: { runId: string; finishedAt: string; done: number; failed: number; psnr?: number; ssim?: number }[];
}

const finite = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

function fmt(x: number | undefined, digits: number): string {
  return finite(x) ? x.toFixed(digits) : '–';
}

function fmtDelta(d: number | undefined, digits: number, higherIsBetter: boolean): string {
  if (!finite(d)) return '';
  const cls = Math.abs(d) < 0.5 * 10 ** -digits ? 'same' : (d > 0) === higherIsBetter ? 'better' : 'worse';
  const sign = d > 0 ? '+' : d < 0 ? '−' : '±';
  return ` <span class="delta ${cls}" title="change since the previous run">${sign}${Math.abs(d).toFixed(digits)}</span>`;
}

function fmtMs(ms: number | undefined): string {
  if (!finite(ms)) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 120) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

interface Column {
  key: string;
  label: string;
  type: 'text' | 'num';
  title?: string;
  cell(r: IndexRow): { html: string; sort: string | number | undefined };
}

const METRIC_COLS: { key: Exclude<MetricKey, 'fps'>; label: string; digits: number; higher: boolean; title: string }[] = [
  { key: 'psnr', label: 'PSNR dB', digits: 2, higher: true, title: 'mean RGB PSNR of the output against the reference' },
  { key: 'ssim', label: 'SSIM', digits: 4, higher: true, title: 'mean luma SSIM of the output against the reference' },
  { key: 'idSim', label: 'ID sim', digits: 3, higher: true, title: 'mean identity similarity (cosine) to the identity photo' },
  { key: 'flicker', label: 'Flicker', digits: 4, higher: false, title: 'mean temporal flicker (lower is better)' },
];

const COLUMNS: Column[] = [
  {
    key: 'name',
    label: 'Video',
    type: 'text',
    cell: (r) => ({
      html: `<span class="name">${escapeHtml(r.id)}</span><div class="sub">${escapeHtml(r.input)}</div>`,
      sort: r.id,
    }),
  },
  {
    key: 'status',
    label: 'Status',
    type: 'text',
    cell: (r) => {
      const badges = [
        `<span class="status status-${r.status}">${r.status}</span>`,
        r.resumed ? '<span class="badge resumed" title="unchanged since an earlier run; not redone">resumed</span>' : '',
        r.regression ? '<span class="badge regression">regression</span>' : '',
      ].join(' ');
      const err = r.error ? `<div class="error">${escapeHtml(r.errorKind ? `${r.errorKind}: ` : '')}${escapeHtml(r.error)}</div>` : '';
      const reg = r.compare.regressions.length ? `<div class="error">${r.compare.regressions.map(escapeHtml).join('<br>')}</div>` : '';
      return { html: badges + err + reg, sort: `${r.status === 'failed' ? 0 : r.regression ? 1 : r.status === 'pending' ? 2 : 3}${r.id}` };
    },
  },
  {
    key: 'frames',
    label: 'Frames',
    type: 'num',
    cell: (r) => ({ html: r.metrics ? String(r.metrics.frames) : '–', sort: r.metrics?.frames }),
  },
  {
    key: 'fps',
    label: 'fps',
    type: 'num',
    title: 'processing speed, frames per second',
    cell: (r) => ({ html: fmt(r.metrics?.fps, 2) + fmtDelta(r.compare.delta.fps, 2, true), sort: r.metrics?.fps }),
  },
  ...METRIC_COLS.map<Column>((c) => ({
    key: c.key,
    label: c.label,
    type: 'num',
    title: c.title,
    cell: (r) => {
      const v = r.metrics?.[c.key];
      const why = v === undefined && (c.key === 'psnr' || c.key === 'ssim') ? r.metrics?.metricsSkipped : undefined;
      const shown = why ? `<span class="muted" title="${escapeHtml(`not scored: ${why}`)}">–</span>` : fmt(v, c.digits);
      return { html: shown + fmtDelta(r.compare.delta[c.key], c.digits, c.higher), sort: v };
    },
  })),
  {
    key: 'time',
    label: 'Time',
    type: 'num',
    title: 'processing wall time of the video',
    cell: (r) => ({ html: fmtMs(r.metrics?.wallMs), sort: r.metrics?.wallMs }),
  },
  {
    key: 'report',
    label: 'Report',
    type: 'text',
    cell: (r) => {
      const parts: string[] = [];
      if (r.links.report) parts.push(`<a href="${escapeHtml(hrefOf(r.links.report))}">report</a>`);
      if (r.links.output) parts.push(`<a href="${escapeHtml(hrefOf(r.links.output))}">video</a>`);
      return { html: parts.join(' · ') || '–', sort: r.links.report ? 0 : 1 };
    },
  },
];

/** Inline SVG: mean PSNR (left panel) and mean SSIM (right panel) over runs, oldest first. */
function historyPlot(h: BatchIndex['history']): string {
  const pts = h.filter((r) => finite(r.psnr) || finite(r.ssim)).slice(-40);
  if (!pts.length) return '<p class="muted" id="plot-history-empty">No run with PSNR/SSIM yet.</p>';
  const PW = 360;
  const H = 190;
  const gap = 30;
  const W = PW * 2 + gap;
  const m = { l: 52, r: 12, t: 22, b: 30 };
  const panel = (key: 'psnr' | 'ssim', x0: number, title: string, digits: number) => {
    const v = pts.map((p) => p[key]).filter(finite);
    if (!v.length) return `<text class="axis" x="${x0 + PW / 2}" y="${H / 2}" text-anchor="middle">${escapeHtml(title)}: no data</text>`;
    let lo = Math.min(...v);
    let hi = Math.max(...v);
    const pad = Math.max((hi - lo) * 0.1, key === 'psnr' ? 0.25 : 0.0025);
    lo -= pad;
    hi += pad;
    const iw = PW - m.l - m.r;
    const ih = H - m.t - m.b;
    const x = (i: number) => x0 + m.l + (pts.length === 1 ? iw / 2 : (i * iw) / (pts.length - 1));
    const y = (val: number) => m.t + (1 - (val - lo) / (hi - lo)) * ih;
    const coords = pts.map((p, i) => (finite(p[key]) ? ([x(i), y(p[key]!), i] as const) : undefined)).filter((c) => !!c) as (readonly [number, number, number])[];
    const d = coords.map((c, i) => `${i ? 'L' : 'M'}${c[0].toFixed(1)},${c[1].toFixed(1)}`).join(' ');
    const dots = coords
      .map(([cx, cy, i]) => `<circle class="${key}" cx="${cx.toFixed(1)}" cy="${cy.toFixed(1)}" r="3.5"><title>${escapeHtml(`${pts[i]!.finishedAt}: ${title} ${pts[i]![key]!.toFixed(digits)}`)}</title></circle>`)
      .join('');
    const ticks = [lo + pad, (lo + hi) / 2, hi - pad]
      .map((t) => `<line class="grid" x1="${x0 + m.l}" x2="${x0 + PW - m.r}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}"/><text class="axis" x="${x0 + m.l - 6}" y="${(y(t) + 3).toFixed(1)}" text-anchor="end">${t.toFixed(digits)}</text>`)
      .join('');
    const labels = pts
      .map((p, i) =>
        pts.length <= 6 || i === 0 || i === pts.length - 1
          ? `<text class="axis" x="${x(i).toFixed(1)}" y="${H - 10}" text-anchor="${pts.length === 1 ? 'middle' : i === 0 ? 'start' : i === pts.length - 1 ? 'end' : 'middle'}">${escapeHtml(p.finishedAt.slice(5, 19).replace('T', ' '))}</text>`
          : '',
      )
      .join('');
    return `<text class="plot-title" x="${x0 + m.l}" y="14">${escapeHtml(title)}</text><rect class="frame" x="${x0 + m.l}" y="${m.t}" width="${iw}" height="${ih}"/>${ticks}<path class="${key}" d="${d}" fill="none"/>${dots}${labels}`;
  };
  return `<svg id="plot-history" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="mean PSNR and SSIM per batch run">
${panel('psnr', 0, 'mean PSNR (dB) per run', 2)}${panel('ssim', PW + gap, 'mean SSIM per run', 4)}
</svg>`;
}

const CSS = `
:root{--fg:#1d232a;--muted:#667085;--line:#d0d5dd;--bg:#fff;--head:#f2f4f7;--bad:#b42318;--good:#067647;--warn:#b54708}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg);margin:24px}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px}
.muted,.sub{color:var(--muted)} .sub{font-size:12px;word-break:break-all}
.summary{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}
.card{border:1px solid var(--line);border-radius:8px;padding:8px 12px;min-width:110px}
.card b{display:block;font-size:18px}
.card.bad{border-color:var(--bad);color:var(--bad)}
.alert{border:1px solid var(--bad);background:#fef3f2;color:var(--bad);border-radius:8px;padding:8px 12px;margin:12px 0}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid var(--line);padding:6px 8px;text-align:left;vertical-align:top}
td.num,th.num{text-align:right;white-space:nowrap}
thead th{background:var(--head);position:sticky;top:0}
th button{font:inherit;font-weight:600;background:none;border:0;padding:0;cursor:pointer;color:inherit}
th[aria-sort=ascending] button::after{content:" ▲"} th[aria-sort=descending] button::after{content:" ▼"}
tfoot td{font-weight:600;background:var(--head)}
tr.failed td{background:#fef3f2} tr.regression td{background:#fffaeb}
.status{font-weight:600} .status-done{color:var(--good)} .status-failed{color:var(--bad)} .status-pending{color:var(--warn)}
.badge{font-size:11px;border-radius:10px;padding:1px 7px;border:1px solid var(--line)}
.badge.regression{border-color:var(--warn);color:var(--warn)} .badge.resumed{color:var(--muted)}
.error{color:var(--bad);font-size:12px;max-width:42em;word-break:break-word}
.delta{font-size:11px} .delta.better{color:var(--good)} .delta.worse{color:var(--bad)} .delta.same{color:var(--muted)}
svg .frame{fill:none;stroke:var(--line)} svg .grid{stroke:#eaecf0} svg .axis{font-size:10px;fill:var(--muted)} svg .plot-title{font-size:12px;font-weight:600;fill:var(--fg)}
svg path.psnr{stroke:#1570ef;stroke-width:2} svg circle.psnr{fill:#1570ef}
svg path.ssim{stroke:#dd2590;stroke-width:2} svg circle.ssim{fill:#dd2590}
code{font-size:12px}
`;

/** Sorting: click a header; numbers compare as numbers, missing values always go last. */
const SCRIPT = `
(function(){
  var table=document.getElementById('videos'); if(!table) return;
  var tbody=table.tBodies[0];
  var heads=table.tHead.rows[0].cells;
  function key(tr,i){return tr.cells[i].getAttribute('data-sort');}
  Array.prototype.forEach.call(heads,function(th,i){
    var b=th.querySelector('button'); if(!b) return;
    b.addEventListener('click',function(){
      var dir=th.getAttribute('aria-sort')==='ascending'?'descending':'ascending';
      Array.prototype.forEach.call(heads,function(h){h.removeAttribute('aria-sort');});
      th.setAttribute('aria-sort',dir);
      var num=th.getAttribute('data-type')==='num', sgn=dir==='ascending'?1:-1;
      var rows=Array.prototype.slice.call(tbody.rows);
      rows.sort(function(a,b){
        var x=key(a,i), y=key(b,i);
        if(x===null||x==='') return (y===null||y==='')?0:1;
        if(y===null||y==='') return -1;
        if(num) return sgn*(parseFloat(x)-parseFloat(y));
        return sgn*x.localeCompare(y);
      });
      rows.forEach(function(r){tbody.appendChild(r);});
    });
  });
})();
`;

export function renderIndexHtml(ix: BatchIndex): string {
  const t = ix.totals;
  const head = COLUMNS.map(
    (c) =>
      `<th scope="col" data-key="${c.key}" data-type="${c.type}" class="${c.type === 'num' ? 'num' : ''}"${c.title ? ` title="${escapeHtml(c.title)}"` : ''}><button type="button">${escapeHtml(c.label)}</button></th>`,
  ).join('');
  const body = ix.rows
    .map((r) => {
      const cls = [r.status === 'failed' ? 'failed' : '', r.regression ? 'regression' : ''].filter(Boolean).join(' ');
      const cells = COLUMNS.map((c) => {
        const { html, sort } = c.cell(r);
        const sv = sort === undefined || (typeof sort === 'number' && !Number.isFinite(sort)) ? '' : String(sort);
        return `<td class="${c.type === 'num' ? 'num' : ''}" data-sort="${escapeHtml(sv)}">${html}</td>`;
      }).join('');
      return `<tr class="${cls}" data-id="${escapeHtml(r.id)}">${cells}</tr>`;
    })
    .join('\n');
  const foot = `<tr><td>Total: ${t.videos} videos</td><td>${t.done} done, ${t.failed} failed${t.pending ? `, ${t.pending} pending` : ''}${t.regressions ? `, ${t.regressions} regressions` : ''}</td><td class="num">${t.frames}</td><td class="num">${ix.totals.videosPerMinute !== undefined ? `${fmt(ix.totals.videosPerMinute, 2)} videos/min` : ''}</td>${METRIC_COLS.map(
    (c) => `<td class="num">${fmt(t[c.key], c.digits)}${fmtDelta(ix.run.delta[c.key], c.digits, c.higher)}</td>`,
  ).join('')}<td class="num">${fmtMs(t.videoMs)}</td><td></td></tr>`;
  const cards = [
    ['Videos', String(t.videos), ''],
    ['Succeeded', String(t.done), ''],
    ['Failed', String(t.failed), t.failed ? 'bad' : ''],
    ['Regressions', `${t.regressions} video${t.regressions === 1 ? '' : 's'}${ix.run.regressions.length ? ' + mean' : ''}`, t.regressions || ix.run.regressions.length ? 'bad' : ''],
    ['Processed now', `${t.processed} (${t.resumed} resumed)`, ''],
    ['Mean PSNR', `${fmt(t.psnr, 2)} dB`, ''],
    ['Mean SSIM', fmt(t.ssim, 4), ''],
    ['Batch time', fmtMs(ix.wallMs), ''],
  ]
    .map(([k, v, cls]) => `<div class="card ${cls}"><span class="muted">${escapeHtml(k)}</span><b>${escapeHtml(v)}</b></div>`)
    .join('');
  const alerts = [
    ...ix.run.regressions.map((r) => `Run regression against the previous run (${ix.run.common} videos in common): ${r}`),
    ...ix.rows.filter((r) => r.regression).map((r) => `${r.id}: ${r.compare.regressions.join('; ')}`),
  ];
  const settings = Object.entries(ix.settings)
    .map(([k, v]) => `<code>${escapeHtml(k)}=${escapeHtml(typeof v === 'string' ? v : JSON.stringify(v))}</code>`)
    .join(' ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>restore batch: ${escapeHtml(path.basename(ix.dir))} (${t.done}/${t.videos} done)</title>
<style>${CSS}</style>
</head>
<body>
<h1>restore batch: ${escapeHtml(ix.dir)}</h1>
<div class="muted">run ${escapeHtml(ix.runId)} · generated ${escapeHtml(ix.generatedAt)} · concurrency ${ix.concurrency} · regression thresholds: PSNR −${ix.thresholds.psnrDb} dB, SSIM −${ix.thresholds.ssim}${ix.run.previousAt ? ` · compared with the run of ${escapeHtml(ix.run.previousAt)}` : ' · first run: nothing to compare with'}</div>
<div class="summary" id="totals">${cards}</div>
${alerts.length ? `<div class="alert" id="regressions"><b>Regressions</b><ul>${alerts.map((a) => `<li>${escapeHtml(a)}</li>`).join('')}</ul></div>` : ''}
<h2>Videos</h2>
<table id="videos" class="sortable">
<thead><tr>${head}</tr></thead>
<tbody>
${body}
</tbody>
<tfoot>${foot}</tfoot>
</table>
<h2>History</h2>
${historyPlot(ix.history)}
<h2>Settings</h2>
<p class="settings">${settings} <span class="muted">(hash ${escapeHtml(ix.settingsHash.slice(0, 12))})</span></p>
<script type="application/json" id="index-data">${jsonForScript({ runId: ix.runId, totals: ix.totals, rows: ix.rows.map((r) => ({ id: r.id, status: r.status })) })}</script>
<script>${SCRIPT}</script>
</body>
</html>
`;
}

export async function writeIndex(outDir: string, ix: BatchIndex): Promise<{ json: string; html: string }> {
  const json = path.join(outDir, 'index.json');
  const html = path.join(outDir, 'index.html');
  await writeFileAtomic(json, JSON.stringify(ix, null, 2) + '\n');
  await writeFileAtomic(html, renderIndexHtml(ix));
  return { json, html };
}

/** History records plus the current one, reduced to what the trend plot needs. */
export function historySeries(history: HistoryRecord[]): BatchIndex['history'] {
  return history.map((h) => ({ runId: h.runId, finishedAt: h.finishedAt, done: h.totals.done, failed: h.totals.failed, psnr: h.totals.psnr, ssim: h.totals.ssim }));
}
