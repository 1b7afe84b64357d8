/**
 * Small inline-SVG charts for the HTML report: a line chart over frame index and a horizontal
 * bar chart. Output is plain markup (no scripts, no external references); every text is escaped.
 */
import { escapeHtml } from './escape.js';

export { escapeHtml };

/** Round-number ticks covering [lo, hi] (steps of 1, 2 or 5 times a power of ten). */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (hi === lo) {
    const d = Math.abs(lo) > 0 ? Math.abs(lo) * 0.05 : 1;
    lo -= d;
    hi += d;
  }
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
  const start = Math.floor(lo / step) * step;
  const end = Math.ceil(hi / step) * step;
  const out: number[] = [];
  for (let v = start; v <= end + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

function fmtTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1000) return v.toFixed(0);
  if (a >= 10) return String(+v.toFixed(1));
  if (a >= 1) return String(+v.toFixed(2));
  return String(+v.toFixed(4));
}

export interface Series {
  name: string;
  color: string;
  /** y per x; NaN / undefined / null leave a gap. */
  points: { x: number; y: number | null | undefined }[];
  dashed?: boolean;
  width?: number;
  /** Key into the report's per-frame data for the hover read-out (e.g. "after.psnrRgb"). */
  key?: string;
}

export interface LineChartOptions {
  id: string;
  title: string;
  yLabel: string;
  xLabel?: string;
  series: Series[];
  width?: number;
  height?: number;
  /** Decimals in the hover read-out. */
  digits?: number;
}

const r2 = (v: number) => +v.toFixed(2);

/** Line chart over frame index. The plot area geometry is exposed as data-* attributes for the hover script. */
export function lineChart(o: LineChartOptions): string {
  const W = o.width ?? 760;
  const H = o.height ?? 260;
  const m = { l: 56, r: 16, t: 34, b: 38 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const ok = (y: unknown): y is number => typeof y === 'number' && Number.isFinite(y);
  const xs = o.series.flatMap((s) => s.points.map((p) => p.x));
  const ys = o.series.flatMap((s) => s.points.map((p) => p.y).filter(ok));
  if (!xs.length || !ys.length) {
    return `<svg id="${escapeHtml(o.id)}" class="plot empty" viewBox="0 0 ${W} 60" role="img" aria-label="${escapeHtml(o.title)}"><text x="${W / 2}" y="34" text-anchor="middle" class="muted">${escapeHtml(o.title)}: no data</text></svg>`;
  }
  let x0 = Math.min(...xs);
  let x1 = Math.max(...xs);
  if (x1 === x0) {
    x0 -= 1;
    x1 += 1;
  }
  const yTicks = niceTicks(Math.min(...ys), Math.max(...ys));
  const y0 = yTicks[0];
  const y1 = yTicks[yTicks.length - 1];
  const xTicks = niceTicks(x0, x1, 8).filter((t) => t >= x0 && t <= x1 && Number.isInteger(t));
  const sx = (x: number) => m.l + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => m.t + ph - ((y - y0) / (y1 - y0 || 1)) * ph;

  const parts: string[] = [];
  parts.push(
    `<svg id="${escapeHtml(o.id)}" class="plot" viewBox="0 0 ${W} ${H}" role="img" aria-label="${escapeHtml(o.title)}"` +
      ` data-left="${m.l}" data-right="${m.l + pw}" data-top="${m.t}" data-bottom="${m.t + ph}" data-width="${W}" data-xmin="${x0}" data-xmax="${x1}"` +
      ` data-keys="${escapeHtml(JSON.stringify(o.series.map((s) => s.key ?? '')))}" data-names="${escapeHtml(JSON.stringify(o.series.map((s) => s.name)))}"` +
      ` data-colors="${escapeHtml(o.series.map((s) => s.color).join(','))}" data-digits="${o.digits ?? 3}">`,
  );
  parts.push(`<title>${escapeHtml(o.title)}</title>`);
  parts.push(`<text class="plot-title" x="${m.l}" y="18">${escapeHtml(o.title)}</text>`);
  // Grid and axes.
  parts.push('<g class="grid">');
  for (const t of yTicks) {
    const y = r2(sy(t));
    parts.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${y}" y2="${y}"/>`);
  }
  parts.push('</g><g class="axis">');
  for (const t of yTicks) parts.push(`<text x="${m.l - 8}" y="${r2(sy(t) + 4)}" text-anchor="end">${fmtTick(t)}</text>`);
  for (const t of xTicks) {
    const x = r2(sx(t));
    parts.push(`<line x1="${x}" x2="${x}" y1="${m.t + ph}" y2="${m.t + ph + 5}"/><text x="${x}" y="${m.t + ph + 18}" text-anchor="middle">${fmtTick(t)}</text>`);
  }
  parts.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${m.t + ph}" y2="${m.t + ph}"/>`);
  parts.push(
    `<text x="${m.l + pw / 2}" y="${H - 4}" text-anchor="middle" class="axis-label">${escapeHtml(o.xLabel ?? 'frame')}</text>` +
      `<text transform="translate(14 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle" class="axis-label">${escapeHtml(o.yLabel)}</text>`,
  );
  parts.push('</g>');
  // Series.
  parts.push('<g class="series">');
  for (const s of o.series) {
    let d = '';
    let pen = false;
    const lone: { x: number; y: number }[] = [];
    const pts = [...s.points].sort((a, b) => a.x - b.x);
    for (let i = 0; i < pts.length; i++) {
      const p = pts[i];
      if (!ok(p.y)) {
        pen = false;
        continue;
      }
      const X = r2(sx(p.x));
      const Y = r2(sy(p.y));
      d += `${pen ? 'L' : 'M'}${X} ${Y}`;
      const prevOk = i > 0 && ok(pts[i - 1].y);
      const nextOk = i + 1 < pts.length && ok(pts[i + 1].y);
      if (!prevOk && !nextOk) lone.push({ x: X, y: Y });
      pen = true;
    }
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    if (d) parts.push(`<path class="line" d="${d}" fill="none" stroke="${escapeHtml(s.color)}" stroke-width="${s.width ?? 2}"${dash} stroke-linejoin="round"><title>${escapeHtml(s.name)}</title></path>`);
    for (const p of lone) parts.push(`<circle cx="${p.x}" cy="${p.y}" r="3" fill="${escapeHtml(s.color)}"/>`);
  }
  parts.push('</g>');
  // Legend.
  let lx = m.l + pw;
  const legend: string[] = [];
  for (const s of [...o.series].reverse()) {
    const label = escapeHtml(s.name);
    const tw = Math.max(30, s.name.length * 6.4);
    lx -= tw + 30;
    legend.push(
      `<line x1="${r2(lx)}" x2="${r2(lx + 20)}" y1="14" y2="14" stroke="${escapeHtml(s.color)}" stroke-width="${s.width ?? 2}"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>` +
        `<text x="${r2(lx + 25)}" y="18">${label}</text>`,
    );
  }
  parts.push(`<g class="legend">${legend.join('')}</g>`);
  parts.push(`<line class="hover-line" x1="0" x2="0" y1="${m.t}" y2="${m.t + ph}" visibility="hidden"/>`);
  parts.push('</svg>');
  return parts.join('');
}

export interface Bar {
  label: string;
  sublabel?: string;
  value: number;
  /** Drawn greyed with this text instead of a bar (e.g. a stage that did not run). */
  missing?: string;
}

/** Horizontal bar chart, one row per bar. */
export function barChart(o: { id: string; title: string; unit: string; bars: Bar[]; width?: number }): string {
  const W = o.width ?? 760;
  const row = 28;
  const m = { l: 230, r: 90, t: 34, b: 12 };
  const H = m.t + m.b + Math.max(1, o.bars.length) * row;
  const pw = W - m.l - m.r;
  const max = Math.max(0, ...o.bars.filter((b) => !b.missing && Number.isFinite(b.value)).map((b) => b.value));
  const parts: string[] = [];
  parts.push(`<svg id="${escapeHtml(o.id)}" class="plot bars" viewBox="0 0 ${W} ${H}" role="img" aria-label="${escapeHtml(o.title)}">`);
  parts.push(`<title>${escapeHtml(o.title)}</title><text class="plot-title" x="12" y="18">${escapeHtml(o.title)}</text>`);
  if (!o.bars.length) parts.push(`<text x="${W / 2}" y="${m.t + 18}" text-anchor="middle" class="muted">no stages</text>`);
  o.bars.forEach((b, i) => {
    const y = m.t + i * row;
    const label = b.sublabel ? `${b.label} · ${b.sublabel}` : b.label;
    const short = label.length > 34 ? `${label.slice(0, 33)}…` : label;
    parts.push(`<text x="${m.l - 10}" y="${y + 18}" text-anchor="end" class="bar-label${b.missing ? ' muted' : ''}">${escapeHtml(short)}<title>${escapeHtml(label)}</title></text>`);
    if (b.missing) {
      parts.push(`<rect x="${m.l}" y="${y + 5}" width="${pw}" height="${row - 10}" class="bar-missing" rx="3"/>`);
      const fit = Math.max(8, Math.floor((pw - 16) / 6.3));
      const text = b.missing.length > fit ? `${b.missing.slice(0, fit - 1)}…` : b.missing;
      parts.push(`<text x="${m.l + 8}" y="${y + 18}" class="muted">${escapeHtml(text)}<title>${escapeHtml(b.missing)}</title></text>`);
    } else {
      const w = max > 0 ? Math.max(1, (b.value / max) * pw) : 1;
      parts.push(`<rect class="bar" x="${m.l}" y="${y + 5}" width="${r2(w)}" height="${row - 10}" rx="3"><title>${escapeHtml(`${label}: ${b.value} ${o.unit}`)}</title></rect>`);
      parts.push(`<text x="${r2(m.l + w + 6)}" y="${y + 18}" class="bar-value">${escapeHtml(fmtTick(b.value))} ${escapeHtml(o.unit)}</text>`);
    }
  });
  parts.push('</svg>');
  return parts.join('');
}
