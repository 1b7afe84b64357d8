/**
 * report.html: one self-contained page (inline CSS, a little inline JS, inline SVG plots,
 * thumbnails as data: URIs). Nothing is loaded from the network or from other files when it
 * is opened. Every string that comes from the run is escaped.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { FfmpegScores } from '../metrics/ffmpeg.js';
import type { FrameMetrics, MetricsSummary } from '../metrics/types.js';
import type { StageReport } from '../stages/types.js';
import { frameIndices, valueKeys } from './csv.js';
import { jsonForScript } from './escape.js';
import { barChart, escapeHtml as esc, lineChart, type Series } from './svg.js';
import type { RunReport, VideoSummary } from './types.js';

const COLORS = {
  after: '#2563eb',
  afterY: '#60a5fa',
  before: '#ea8a0c',
  beforeY: '#f5b963',
  values: ['#7c3aed', '#059669', '#db2777', '#0891b2', '#65a30d', '#dc2626'],
};

function fmt(v: unknown, digits = 2): string {
  return typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '—';
}

/** "24/1" -> "24", "30000/1001" -> "29.97"; anything else as given. */
export function fpsLabel(fps: string): string {
  const m = /^(\d+(?:\.\d+)?)(?:\/(\d+(?:\.\d+)?))?$/.exec(String(fps).trim());
  if (!m) return String(fps);
  const v = Number(m[1]) / (m[2] ? Number(m[2]) : 1);
  return Number.isFinite(v) ? String(+v.toFixed(3)) : String(fps);
}

function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  if (ms >= 60_000) return `${Math.floor(ms / 60_000)} min ${((ms % 60_000) / 1000).toFixed(0)} s`;
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  return `${ms.toFixed(0)} ms`;
}


const ROLE = /^(.*?)[_-]?(before|after)$/i;

function valueRole(key: string): 'before' | 'after' | undefined {
  const m = ROLE.exec(key);
  return m && m[1] ? (m[2].toLowerCase() as 'before' | 'after') : undefined;
}

/** Per-frame value keys grouped into plots: keys that differ only by a Before/After suffix share one. */
export function groupValueKeys(keys: string[]): { name: string; keys: string[] }[] {
  const groups = new Map<string, string[]>();
  for (const k of keys) {
    const m = ROLE.exec(k);
    const name = m && m[1] ? m[1] : k;
    groups.set(name, [...(groups.get(name) ?? []), k]);
  }
  const out: { name: string; keys: string[] }[] = [];
  for (const [name, ks] of groups) {
    if (ks.length === 1) out.push({ name: ks[0], keys: ks });
    else out.push({ name, keys: ks.sort((a, b) => (valueRole(a) === 'after' ? -1 : 0) - (valueRole(b) === 'after' ? -1 : 0)) });
  }
  return out;
}

const slug = (s: string) => s.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '') || 'value';

const MIME: Record<string, string> = { '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.png': 'image/png', '.webp': 'image/webp' };

/** Read an image listed in the report (relative to `dir`) as a data: URI; undefined when unreadable. */
async function dataUri(dir: string, name: string | undefined): Promise<string | undefined> {
  if (!name) return undefined;
  const mime = MIME[path.extname(name).toLowerCase()];
  if (!mime) return undefined;
  try {
    const buf = await fs.readFile(path.resolve(dir, name));
    return `data:${mime};base64,${buf.toString('base64')}`;
  } catch {
    return undefined;
  }
}

function delta(after: number, before: number | undefined, digits: number, higherIsBetter = true): string {
  if (before === undefined || !Number.isFinite(after) || !Number.isFinite(before)) return '<td class="num">—</td>';
  const d = after - before;
  const cls = d === 0 ? '' : (d > 0) === higherIsBetter ? 'up' : 'down';
  return `<td class="num delta ${cls}">${d > 0 ? '+' : d < 0 ? '−' : '±'}${Math.abs(d).toFixed(digits)}</td>`;
}

function summaryTable(after: MetricsSummary, before?: MetricsSummary): string {
  const rows: [string, keyof MetricsSummary, number, string][] = [
    ['PSNR RGB, mean of frames', 'psnrRgbMean', 2, 'dB'],
    ['PSNR RGB, worst frame', 'psnrRgbMin', 2, 'dB'],
    ['PSNR RGB of mean MSE', 'psnrRgbOfMeanMse', 2, 'dB'],
    ['PSNR Y (BT.601), mean of frames', 'psnrYMean', 2, 'dB'],
    ['PSNR Y (BT.601), worst frame', 'psnrYMin', 2, 'dB'],
    ['PSNR Y of mean MSE', 'psnrYOfMeanMse', 2, 'dB'],
    ['SSIM Y, mean of frames', 'ssimYMean', 4, ''],
    ['SSIM Y, worst frame', 'ssimYMin', 4, ''],
  ];
  const body = rows
    .map(([label, key, d, unit]) => {
      const a = after[key] as number;
      const b = before?.[key] as number | undefined;
      return `<tr data-metric="${key}"><th scope="row">${esc(label)}</th><td class="num after">${fmt(a, d)}${unit ? ` <span class="unit">${unit}</span>` : ''}</td><td class="num before">${before ? fmt(b, d) : '—'}</td>${delta(a, b, d)}</tr>`;
    })
    .join('');
  return (
    `<table class="summary" id="summary-table"><thead><tr><th>Metric (vs reference)</th><th class="num">After (restored)</th>` +
    `<th class="num">Before (bicubic)</th><th class="num">Δ</th></tr></thead><tbody>${body}</tbody>` +
    `<tfoot><tr><td colspan="4" class="muted">${after.frames} frame${after.frames === 1 ? '' : 's'} scored.` +
    `${before ? ' Before = the input resized to the reference size with bicubic, i.e. what a plain upscale gives.' : ' No before (bicubic) scores in this run.'}</td></tr></tfoot></table>`
  );
}

/** ffmpeg's psnr/ssim filter figures: per plane and their average, as the filters print them. */
function ffmpegTable(f: FfmpegScores): string {
  const row = (label: string, p: { y: number; u: number; v: number }, last: number, digits: number) =>
    `<tr><th scope="row">${esc(label)}</th><td class="num">${fmt(p.y, digits)}</td><td class="num">${fmt(p.u, digits)}</td><td class="num">${fmt(p.v, digits)}</td><td class="num">${fmt(last, digits)}</td></tr>`;
  return (
    `<table id="ffmpeg-metrics" class="summary"><caption>ffmpeg's <code>psnr</code> / <code>ssim</code> filters, stored planes, ${f.frames} frames</caption>` +
    `<thead><tr><th></th><th class="num">Y</th><th class="num">U</th><th class="num">V</th><th class="num">average / all</th></tr></thead><tbody>` +
    row('PSNR (dB), of the mean MSE', f.psnr, f.psnr.average, 3) +
    row('PSNR (dB), mean of frames', f.psnrFrameMean, f.psnrFrameMean.average, 3) +
    row('SSIM', f.ssim, f.ssim.all, 4) +
    `</tbody></table>`
  );
}

function definitions(s: MetricsSummary): string {
  return `<dl class="definitions"><dt>PSNR</dt><dd>${esc(s.definitions.psnr)}</dd><dt>SSIM</dt><dd>${esc(s.definitions.ssim)}</dd></dl>`;
}

function detailValue(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(+v.toPrecision(4));
  if (typeof v === 'string' || typeof v === 'boolean') return String(v);
  const j = JSON.stringify(v, (_k, x) => (typeof x === 'number' && !Number.isInteger(x) ? +x.toPrecision(4) : x)) ?? String(v);
  return j.length > 160 ? `${j.slice(0, 159)}…` : j;
}

/** A stage's details as a compact key: value list. */
function detailsHtml(d: Record<string, unknown> | undefined): string {
  if (!d) return '';
  const items = Object.entries(d).filter(([, v]) => v !== undefined);
  if (!items.length) return '';
  return `<div class="details">${items.map(([k, v]) => `<span><b>${esc(k)}</b> ${esc(detailValue(v))}</span>`).join('')}</div>`;
}

function stagesTable(stages: StageReport[]): string {
  const rows = stages
    .map((s) => {
      const ran = s.ran
        ? '<span class="badge ok">ran</span>'
        : '<span class="badge skip">not run</span>';
      return (
        `<tr class="${s.ran ? 'ran' : 'not-run'}" data-stage="${esc(s.name)}"><th scope="row">${esc(s.name)}</th><td><code>${esc(s.backend)}</code></td>` +
        `<td>${ran}</td><td class="reason">${s.reason ? esc(s.reason) : '<span class="muted">—</span>'}${detailsHtml(s.details)}</td>` +
        `<td class="num">${s.frames}</td><td class="num">${s.ran ? fmtMs(s.ms) : '—'}</td><td class="num">${s.ran ? fmt(s.msPerFrame, 2) + timingNotes(s) : '—'}</td>` +
        `<td class="num critical">${s.ran && s.timing ? fmt(s.timing.criticalMsPerFrame, 2) : '—'}</td></tr>`
      );
    })
    .join('');
  return (
    `<table class="stages" id="stages"><thead><tr><th>Stage</th><th>Backend that ran</th><th>Ran</th><th>Reason / choice</th>` +
    `<th class="num">Frames</th><th class="num">Total (CPU)</th><th class="num">CPU ms / frame</th><th class="num" title="wall time the stage held the pipeline: the encoder waited on it while it was not waiting on its input">Held the pipeline, ms / frame</th></tr></thead>` +
    `<tbody>${rows || '<tr><td colspan="8" class="muted">no stages</td></tr>'}</tbody></table>`
  );
}

/** Under a stage's CPU ms/frame: its models' share (and its ratio to them), its in-order step. */
function timingNotes(s: StageReport): string {
  const t = s.timing;
  if (!t || !s.frames) return '';
  const notes: string[] = [];
  if (t.modelRunMs !== undefined && t.ratioToModelRun !== undefined) notes.push(`models ${fmt(t.modelRunMs / s.frames, 2)} (stage ${fmt(t.ratioToModelRun, 2)}x)`);
  if (t.orderedWallMsPerFrame !== undefined) notes.push(`in order ${fmt(t.orderedWallMsPerFrame, 2)}`);
  return notes.length ? `<div class="muted timing">${notes.map(esc).join('<br>')}</div>` : '';
}

function videoRow(role: string, v: VideoSummary | undefined): string {
  if (!v) return '';
  const extra = [
    v.rotation ? `rotation ${v.rotation}°` : '',
    v.vfr ? 'variable frame rate (decoded at constant rate)' : '',
    v.audioStreams !== undefined ? `${v.audioStreams} audio stream${v.audioStreams === 1 ? '' : 's'}` : '',
  ]
    .filter(Boolean)
    .join(', ');
  return (
    `<tr data-role="${esc(role)}"><th scope="row">${esc(role)}</th><td class="path"><code>${esc(v.path)}</code></td><td class="num">${v.width}×${v.height}</td>` +
    `<td class="num" title="${esc(v.fps)}">${esc(fpsLabel(v.fps))}</td><td class="num">${v.frames}</td><td class="num">${v.duration !== undefined ? `${fmt(v.duration, 2)} s` : '—'}</td><td>${esc(extra) || '<span class="muted">—</span>'}</td></tr>`
  );
}

function settingValue(v: unknown): string {
  if (v === null || v === undefined) return '<span class="muted">—</span>';
  if (typeof v === 'string') return `<code>${esc(v)}</code>`;
  return `<code>${esc(JSON.stringify(v))}</code>`;
}

function kpi(label: string, value: string, sub?: string, cls = ''): string {
  return `<div class="kpi ${cls}"><div class="kpi-label">${esc(label)}</div><div class="kpi-value">${value}</div>${sub ? `<div class="kpi-sub">${sub}</div>` : ''}</div>`;
}

const CSS = `
.face-sheet { max-width: 100%; image-rendering: auto; border-radius: 6px; }
:root{--fg:#1f2937;--muted:#6b7280;--line:#e5e7eb;--bg:#f6f7f9;--card:#fff;--accent:#2563eb;--up:#047857;--down:#b91c1c}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header{background:#111827;color:#f9fafb;padding:22px 32px}
header h1{margin:0;font-size:22px;font-weight:600;letter-spacing:.2px}
header .sub{color:#9ca3af;margin-top:4px;word-break:break-all}
header .sub code{color:#e5e7eb;background:rgba(255,255,255,.08)}
main{max-width:1120px;margin:0 auto;padding:24px 24px 48px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 22px;margin:0 0 18px}
h2{font-size:16px;margin:0 0 12px;font-weight:600}
h3{font-size:14px;margin:16px 0 8px;font-weight:600}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
thead th{font-weight:600;color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em;border-bottom:2px solid var(--line)}
tbody tr:hover{background:#f9fafb}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.path code{word-break:break-all}
code{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f3f4f6;padding:1px 4px;border-radius:4px}
.unit{color:var(--muted);font-size:11px}
.muted{color:var(--muted)}
.delta.up{color:var(--up);font-weight:600}.delta.down{color:var(--down);font-weight:600}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:12px;margin-bottom:18px}
.kpi{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 14px}
.kpi-label{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.kpi-value{font-size:22px;font-weight:600;margin-top:2px;font-variant-numeric:tabular-nums}
.kpi-sub{color:var(--muted);font-size:12px}
.kpi.good .kpi-sub b{color:var(--up)}.kpi.bad .kpi-sub b{color:var(--down)}
.notice{border-left:4px solid #f59e0b;background:#fffbeb;padding:10px 14px;border-radius:6px;margin:0}
.badge{display:inline-block;white-space:nowrap;padding:1px 8px;border-radius:999px;font-size:12px;font-weight:600}
.badge.ok{background:#dcfce7;color:#166534}.badge.skip{background:#fee2e2;color:#991b1b}
table.stages th[scope=row]{white-space:nowrap}
tr.not-run th,tr.not-run td{color:#9ca3af}tr.not-run td.reason{color:#991b1b}
.plot{width:100%;height:auto;display:block;margin:6px 0 14px}
.plot text{font-size:11px;fill:#4b5563}
.plot .plot-title{font-size:13px;font-weight:600;fill:#111827}
.plot .grid line{stroke:#eef0f3}
.plot .axis line{stroke:#9ca3af}
.plot .axis-label{fill:#6b7280}
.plot .hover-line{stroke:#111827;stroke-width:1;stroke-dasharray:3 3}
.plot .bar{fill:#3b82f6}.plot .bar-missing{fill:#f3f4f6;stroke:#e5e7eb}
.plot .bar-value{fill:#111827}
.plot text.muted{fill:#9ca3af}
.details{margin-top:4px;font-size:11.5px;color:#4b5563;display:flex;flex-wrap:wrap;gap:2px 12px}.details b{font-weight:600;color:#374151}
.definitions{margin:12px 0 0;font-size:12.5px;color:#374151}
.definitions dt{font-weight:600;margin-top:6px}.definitions dd{margin:2px 0 0 0}
.thumbs{display:flex;flex-direction:column;gap:16px}
figure{margin:0}
.triple{display:grid;grid-template-columns:repeat(3,1fr);gap:8px}
.triple div{background:#f3f4f6;border-radius:6px;overflow:hidden;display:flex;flex-direction:column}
.triple img{width:100%;height:auto;display:block;image-rendering:auto}
.triple .cap{font-size:12px;color:var(--muted);padding:4px 8px}
.triple .missing{padding:40px 8px;text-align:center;color:#9ca3af;font-size:12px}
figcaption{font-size:12.5px;color:#374151;margin-top:6px}
ul.notes{margin:0;padding-left:20px}ul.notes li{margin:3px 0}
details summary{cursor:pointer;color:var(--accent);font-weight:500}
#frames{margin-top:10px}
#tooltip{position:fixed;pointer-events:none;background:#111827;color:#f9fafb;font-size:12px;padding:6px 9px;border-radius:6px;box-shadow:0 4px 14px rgba(0,0,0,.2);display:none;z-index:10;white-space:nowrap}
#tooltip .sw{display:inline-block;width:9px;height:9px;border-radius:2px;margin-right:5px}
footer{color:var(--muted);font-size:12px;text-align:center;margin-top:8px}
@media print{header{background:#fff;color:#000}section{break-inside:avoid}}
`;

const SCRIPT = `
(function(){
  var el=document.getElementById('report-data');
  if(!el)return;
  var data=JSON.parse(el.textContent||'{}');
  var byIndex={};
  (data.frames||[]).forEach(function(r){byIndex[r.i]=r;});
  var tip=document.getElementById('tooltip');
  function get(row,key){var j=key.indexOf('.');var g=row[key.slice(0,j)];var v=g==null?null:g[key.slice(j+1)];return typeof v==='number'?v:null;}
  document.querySelectorAll('svg.plot[data-keys]').forEach(function(svg){
    var d=svg.dataset,keys=JSON.parse(d.keys||'[]'),names=JSON.parse(d.names||'[]'),colors=(d.colors||'').split(',');
    var L=+d.left,R=+d.right,x0=+d.xmin,x1=+d.xmax,W=+d.width,digits=+d.digits||3;
    var line=svg.querySelector('.hover-line');
    svg.addEventListener('mousemove',function(ev){
      var b=svg.getBoundingClientRect();var x=(ev.clientX-b.left)/b.width*W;
      if(x<L||x>R){line.setAttribute('visibility','hidden');tip.style.display='none';return;}
      var f=Math.round(x0+(x-L)/(R-L)*(x1-x0));var row=byIndex[f];
      if(!row){tip.style.display='none';return;}
      var lx=L+(f-x0)/(x1-x0)*(R-L);line.setAttribute('x1',lx);line.setAttribute('x2',lx);line.setAttribute('visibility','visible');
      var html='<b>frame '+f+'</b>';
      keys.forEach(function(k,i){if(!k)return;var v=get(row,k);html+='<br><span class="sw" style="background:'+colors[i]+'"></span>'+names[i].replace(/[&<>"]/g,function(c){return {'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c];})+': '+(v==null?'—':v.toFixed(digits));});
      tip.innerHTML=html;tip.style.display='block';
      var tx=ev.clientX+14,ty=ev.clientY+14;if(tx+tip.offsetWidth>window.innerWidth)tx=ev.clientX-tip.offsetWidth-14;
      tip.style.left=tx+'px';tip.style.top=ty+'px';
    });
    svg.addEventListener('mouseleave',function(){line.setAttribute('visibility','hidden');tip.style.display='none';});
  });
})();
`;

export interface RenderOptions {
  /** Folder the thumbnail names are relative to (the report directory). */
  dir: string;
}

/** The whole report page as one string. */
export async function renderReportHtml(report: RunReport, opts: RenderOptions): Promise<string> {
  const m = report.metrics;
  const keys = valueKeys(report);
  const values = new Map(report.perFrameValues?.map((v) => [v.index, v.values]) ?? []);
  const metricsBy = new Map(m?.perFrame.map((p) => [p.index, p]) ?? []);
  const base = (p: string) => path.basename(p);

  // ---- key numbers
  const kpis: string[] = [];
  if (m) {
    const a = m.after.psnrRgbMean;
    const b = m.before?.psnrRgbMean;
    const up = b !== undefined && Number.isFinite(b) ? a - b : undefined;
    kpis.push(
      kpi('PSNR RGB (mean)', `${fmt(a)} <span class="unit">dB</span>`, up !== undefined ? `<b>${up >= 0 ? '+' : '−'}${Math.abs(up).toFixed(2)} dB</b> vs bicubic ${fmt(b)}` : 'after restoration', up === undefined ? '' : up >= 0 ? 'good' : 'bad'),
    );
    const sa = m.after.ssimYMean;
    const sb = m.before?.ssimYMean;
    const sup = sb !== undefined && Number.isFinite(sb) ? sa - sb : undefined;
    kpis.push(kpi('SSIM Y (mean)', fmt(sa, 4), sup !== undefined ? `<b>${sup >= 0 ? '+' : '−'}${Math.abs(sup).toFixed(4)}</b> vs bicubic ${fmt(sb, 4)}` : 'after restoration', sup === undefined ? '' : sup >= 0 ? 'good' : 'bad'));
  } else {
    kpis.push(kpi('Quality metrics', '—', esc(report.metricsSkipped ?? 'not computed')));
  }
  kpis.push(kpi('Frames', String(report.output.frames), `${esc(report.output.width)}×${esc(report.output.height)} @ ${esc(fpsLabel(report.output.fps))} fps`));
  kpis.push(kpi('Speed', `${fmt(report.timing.fps, 2)} <span class="unit">fps</span>`, `wall ${fmtMs(report.timing.wallMs)}${report.timing.scoringMs !== undefined ? `, of which scoring ${fmtMs(report.timing.scoringMs)}` : ''}`));
  kpis.push(kpi('Peak memory', `${fmt(report.timing.peakRssMb, 0)} <span class="unit">MB</span>`, `device ${esc(report.device)}`));

  // ---- quality section
  let quality: string;
  if (m) {
    const idx = m.perFrame.map((p) => p.index);
    const rows = m.perFrame;
    const pts = (get: (p: (typeof rows)[number]) => number | undefined) => rows.map((p) => ({ x: p.index, y: get(p) }));
    const hasBefore = m.perFrame.some((p) => p.before);
    const psnrSeries: Series[] = [
      { name: 'after · RGB', color: COLORS.after, points: pts((p) => p.after.psnrRgb), key: 'after.psnrRgb', width: 2.2 },
      { name: 'after · Y', color: COLORS.afterY, points: pts((p) => p.after.psnrY), key: 'after.psnrY', dashed: true, width: 1.4 },
      ...(hasBefore
        ? [
            { name: 'before (bicubic) · RGB', color: COLORS.before, points: pts((p) => p.before?.psnrRgb), key: 'before.psnrRgb', width: 2.2 },
            { name: 'before · Y', color: COLORS.beforeY, points: pts((p) => p.before?.psnrY), key: 'before.psnrY', dashed: true, width: 1.4 },
          ]
        : []),
    ];
    const ssimSeries: Series[] = [
      { name: 'after', color: COLORS.after, points: pts((p) => p.after.ssimY), key: 'after.ssimY', width: 2.2 },
      ...(hasBefore ? [{ name: 'before (bicubic)', color: COLORS.before, points: pts((p) => p.before?.ssimY), key: 'before.ssimY', width: 2.2 }] : []),
    ];
    quality =
      `<section id="quality"><h2>Quality against the reference</h2>${m.ffmpeg ? ffmpegTable(m.ffmpeg) : ''}${summaryTable(m.after, m.before)}` +
      lineChart({ id: 'plot-psnr', title: 'PSNR per frame', yLabel: 'PSNR (dB)', series: psnrSeries, digits: 2 }) +
      lineChart({ id: 'plot-ssim', title: 'SSIM (luma) per frame', yLabel: 'SSIM', series: ssimSeries, digits: 4 }) +
      definitions(m.after) +
      (idx.length ? '' : '<p class="muted">no frames scored</p>') +
      `</section>`;
  } else {
    quality =
      `<section id="quality"><h2>Quality against the reference</h2>` +
      `<p class="notice metrics-skipped" id="metrics-skipped">Metrics were not computed: ${esc(report.metricsSkipped ?? 'no reason recorded')}.</p></section>`;
  }

  // ---- per-frame stage values (a "<name>Before"/"<name>After" pair shares one plot)
  let valuesSection = '';
  if (keys.length) {
    const plots = groupValueKeys(keys)
      .map((g, gi) =>
        lineChart({
          id: `plot-value-${slug(g.name)}`,
          title: g.name,
          yLabel: g.name,
          series: g.keys.map((k, i) => {
            const role = valueRole(k);
            return {
              name: k,
              color: role === 'after' ? COLORS.after : role === 'before' ? COLORS.before : COLORS.values[(gi + i) % COLORS.values.length],
              points: (report.perFrameValues ?? []).map((v) => ({ x: v.index, y: v.values[k] })),
              key: `values.${k}`,
            };
          }),
          digits: 4,
          height: 220,
        }),
      )
      .join('');
    valuesSection = `<section id="plot-values"><h2>Per-frame stage values</h2>${plots}</section>`;
  }

  // ---- thumbnails
  let thumbsSection = '';
  if (report.thumbnails.length) {
    const figs: string[] = [];
    for (const t of report.thumbnails) {
      const cell = async (label: string, name: string | undefined) => {
        if (!name) return `<div><div class="missing">no ${esc(label.toLowerCase())}</div><div class="cap">${esc(label)}</div></div>`;
        const uri = await dataUri(opts.dir, name);
        if (!uri) return `<div><div class="missing">missing: ${esc(name)}</div><div class="cap">${esc(label)}</div></div>`;
        return `<div><img src="${uri}" alt="${esc(`${label}, frame ${t.index}`)}"><div class="cap">${esc(label)}</div></div>`;
      };
      const mm = metricsBy.get(t.index);
      const cap = mm
        ? `Frame ${t.index}: after ${fmt(mm.after.psnrRgb)} dB / SSIM ${fmt(mm.after.ssimY, 4)}` +
          (mm.before ? `; before (bicubic) ${fmt(mm.before.psnrRgb)} dB / SSIM ${fmt(mm.before.ssimY, 4)}` : '')
        : `Frame ${t.index}`;
      figs.push(
        `<figure class="thumb" data-index="${t.index}"><div class="triple">${await cell('Input', t.input)}${await cell('Output', t.output)}${await cell('Reference', t.reference)}</div><figcaption>${esc(cap)}</figcaption></figure>`,
      );
    }
    thumbsSection = `<section id="thumbnails"><h2>Frames: input | output | reference</h2><div class="thumbs">${figs.join('')}</div></section>`;
  }

  // ---- face contact sheet
  let facesSection = '';
  if (report.faceSheet) {
    const uri = await dataUri(opts.dir, report.faceSheet.file);
    const fs = report.faceSheet;
    facesSection = uri
      ? `<section id="face-sheet"><h2>The face over time: ${fs.rows.map((r) => esc(r)).join(' (top) | ')} (bottom)</h2>` +
        `<img class="face-sheet" src="${uri}" alt="largest face at frames ${fs.frames.join(', ')}">` +
        `<p class="muted">Columns: frames ${fs.frames.map((f) => esc(f)).join(', ')}. Crops around the largest face, the input resized to the output size.</p></section>`
      : `<section id="face-sheet"><h2>The face over time</h2><div class="missing">missing: ${esc(fs.file)}</div></section>`;
  }

  // ---- stages
  const stagesSection =
    `<section id="stage-section"><h2>Stages</h2>` +
    barChart({
      id: 'plot-stages',
      title: 'Time per frame by stage',
      unit: 'ms/frame',
      bars: report.stages.map((s) => ({ label: s.name, sublabel: s.backend, value: s.msPerFrame, missing: s.ran ? undefined : `not run: ${s.reason ?? 'no reason given'}` })),
    }) +
    stagesTable(report.stages) +
    `</section>`;

  // ---- videos, settings, notes
  const videos =
    `<section id="videos-section"><h2>Videos</h2><table id="videos" class="videos"><thead><tr><th>Role</th><th>File</th><th class="num">Size</th><th class="num">fps</th><th class="num">Frames</th><th class="num">Duration</th><th>Other</th></tr></thead><tbody>` +
    videoRow('input', report.input) +
    videoRow('output', report.output) +
    videoRow('reference', report.reference) +
    `</tbody></table>` +
    (report.mask
      ? `<h3>Mask</h3><p id="mask">Source <code>${esc(report.mask.source)}</code>${report.mask.coverage !== undefined ? `, coverage ${fmt(report.mask.coverage * 100, 1)}% of pixels` : ''}${report.mask.file ? `, file <code>${esc(report.mask.file)}</code>` : ''}</p>`
      : '') +
    (report.identity?.length ? `<h3>Identity</h3><p id="identity">${report.identity.map((p) => `<code>${esc(p)}</code>`).join(' ')}</p>` : '') +
    `</section>`;

  const settingsRows = Object.entries(report.settings)
    .map(([k, v]) => `<tr><th scope="row">${esc(k)}</th><td>${settingValue(v)}</td></tr>`)
    .join('');
  const settings = `<section id="settings-section"><h2>Settings</h2><table id="settings" class="settings"><tbody>${settingsRows || '<tr><td class="muted">none</td></tr>'}<tr><th scope="row">device</th><td><code>${esc(report.device)}</code></td></tr></tbody></table></section>`;

  const notes = `<section id="notes-section"><h2>Notes</h2>${report.notes.length ? `<ul class="notes" id="notes">${report.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : '<p class="muted" id="notes">none</p>'}</section>`;

  // ---- per-frame table (collapsed)
  const frameIdx = frameIndices(report);
  let framesSection = '';
  if (frameIdx.length) {
    const hasBefore = !!m?.perFrame.some((p) => p.before);
    const cellsM = (f: FrameMetrics | undefined) => `<td class="num">${fmt(f?.psnrRgb)}</td><td class="num">${fmt(f?.psnrY)}</td><td class="num">${fmt(f?.ssimY, 4)}</td>`;
    const head =
      `<tr><th class="num">Frame</th>` +
      (m ? '<th class="num">After PSNR RGB</th><th class="num">After PSNR Y</th><th class="num">After SSIM Y</th>' : '') +
      (hasBefore ? '<th class="num">Before PSNR RGB</th><th class="num">Before PSNR Y</th><th class="num">Before SSIM Y</th>' : '') +
      keys.map((k) => `<th class="num">${esc(k)}</th>`).join('') +
      `</tr>`;
    const body = frameIdx
      .map((i) => {
        const p = metricsBy.get(i);
        const v = values.get(i) ?? {};
        return `<tr><td class="num">${i}</td>${m ? cellsM(p?.after) : ''}${hasBefore ? cellsM(p?.before) : ''}${keys.map((k) => `<td class="num">${fmt(v[k], 4)}</td>`).join('')}</tr>`;
      })
      .join('');
    framesSection = `<section id="frames-section"><details id="frames-details"><summary>Per-frame numbers (${frameIdx.length} frames; also in frames.csv)</summary><table id="frames" class="frames"><thead>${head}</thead><tbody>${body}</tbody></table></details></section>`;
  }

  const data = {
    frames: frameIdx.map((i) => {
      const p = metricsBy.get(i);
      return { i, after: p?.after, before: p?.before, values: values.get(i) };
    }),
  };

  const title = `restore report: ${base(report.input.path)}`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="${esc(`${report.tool.name} ${report.tool.version}`)}">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body>
<header>
<h1>Restore report</h1>
<div class="sub"><code>${esc(report.input.path)}</code> → <code>${esc(report.output.path)}</code></div>
<div class="sub">${esc(report.createdAt)} · ${esc(report.tool.name)} ${esc(report.tool.version)} · device ${esc(report.device)}</div>
</header>
<main>
<div class="kpis" id="kpis">${kpis.join('')}</div>
${quality}
${valuesSection}
${thumbsSection}
${facesSection}
${stagesSection}
${videos}
${settings}
${notes}
${framesSection}
<footer>Generated by ${esc(report.tool.name)} ${esc(report.tool.version)}. This page is self-contained: it loads nothing from the network.</footer>
</main>
<div id="tooltip" role="tooltip"></div>
<script type="application/json" id="report-data">${jsonForScript(data)}</script>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
