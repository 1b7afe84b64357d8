/** frames.csv: one row per frame with the after/before metrics and every per-frame stage value. */
import type { FrameMetrics } from '../metrics/types.js';
import type { RunReport } from './types.js';

export const METRIC_COLUMNS = [
  'after_psnr_rgb',
  'after_psnr_y',
  'after_ssim_y',
  'before_psnr_rgb',
  'before_psnr_y',
  'before_ssim_y',
] as const;

/** RFC 4180 field: quoted when it holds a comma, quote, CR or LF. */
export function csvField(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'number') return Number.isFinite(v) ? String(+v.toFixed(6)) : '';
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The value keys present in report.perFrameValues, sorted. */
export function valueKeys(report: RunReport): string[] {
  const keys = new Set<string>();
  for (const r of report.perFrameValues ?? []) for (const k of Object.keys(r.values)) keys.add(k);
  return [...keys].sort();
}

/** Frame indices that have metrics or values, ascending. */
export function frameIndices(report: RunReport): number[] {
  const s = new Set<number>();
  for (const p of report.metrics?.perFrame ?? []) s.add(p.index);
  for (const v of report.perFrameValues ?? []) s.add(v.index);
  return [...s].sort((a, b) => a - b);
}

export function framesCsv(report: RunReport): string {
  const keys = valueKeys(report);
  const metrics = new Map(report.metrics?.perFrame.map((p) => [p.index, p]) ?? []);
  const values = new Map(report.perFrameValues?.map((v) => [v.index, v.values]) ?? []);
  const lines = [['index', ...METRIC_COLUMNS, ...keys].map(csvField).join(',')];
  const m = (f: FrameMetrics | undefined) => (f ? [f.psnrRgb, f.psnrY, f.ssimY] : [undefined, undefined, undefined]);
  for (const i of frameIndices(report)) {
    const p = metrics.get(i);
    const v = values.get(i) ?? {};
    lines.push([i, ...m(p?.after), ...m(p?.before), ...keys.map((k) => v[k])].map(csvField).join(','));
  }
  return lines.join('\n') + '\n';
}
