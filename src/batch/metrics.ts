/** The per-video numbers a batch tracks, pulled out of a single run's RunReport. */
import type { RunReport } from '../report/types.js';

export interface VideoMetrics {
  frames: number;
  /** Processing speed of the run, frames per second. */
  fps: number;
  wallMs: number;
  /** Mean RGB PSNR of the output against the reference, dB. */
  psnr?: number;
  /** Mean luma SSIM of the output against the reference. */
  ssim?: number;
  /** Same for the input upscaled with bicubic (the baseline the run should beat). */
  psnrBefore?: number;
  ssimBefore?: number;
  /** Mean identity similarity (cosine) of the output's faces to the identity photo. */
  idSim?: number;
  /** Mean temporal flicker, when a stage or the metrics publish one. */
  flicker?: number;
  /** Why there are no PSNR/SSIM numbers (no reference, ...). */
  metricsSkipped?: string;
  /** Backend that ran per stage, e.g. { upscale: 'rdn-medium-x4' }. */
  backends?: Record<string, string>;
}

const finite = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

function meanOf(values: number[]): number | undefined {
  const v = values.filter(finite);
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : undefined;
}

/** Mean of a per-frame value over the frames that carry it, preferring the first key present. */
function meanPerFrame(report: RunReport, keys: (k: string) => number): number | undefined {
  const rows = report.perFrameValues ?? [];
  // Pick the best-ranked key present in any frame (lower rank is better, -1 = not wanted).
  let best: string | undefined;
  let bestRank = Infinity;
  for (const r of rows)
    for (const k of Object.keys(r.values ?? {})) {
      const rank = keys(k);
      if (rank >= 0 && rank < bestRank) {
        best = k;
        bestRank = rank;
      }
    }
  if (!best) return undefined;
  return meanOf(rows.map((r) => r.values?.[best!]).filter(finite));
}

const round = (x: number | undefined, d: number) => (x === undefined ? undefined : +x.toFixed(d));

export function metricsOf(report: RunReport): VideoMetrics {
  const after = report.metrics?.after as unknown as Record<string, any> | undefined;
  const before = report.metrics?.before as unknown as Record<string, any> | undefined;
  const idSim = meanPerFrame(report, (k) => (k === 'idSimAfter' ? 0 : /^idSim/i.test(k) && !/before/i.test(k) ? 1 : -1));
  let flicker: number | undefined;
  for (const k of ['flickerAfter', 'flicker', 'warpErrorAfter', 'warpError']) {
    if (finite(after?.[k])) {
      flicker = after[k];
      break;
    }
  }
  flicker ??= meanPerFrame(report, (k) =>
    k === 'flickerAfter' ? 0 : /^flicker/i.test(k) && !/before/i.test(k) ? 1 : /^warpError/i.test(k) && !/before/i.test(k) ? 2 : -1,
  );
  const backends: Record<string, string> = {};
  for (const s of report.stages ?? []) backends[s.name] = s.ran ? s.backend : 'none';
  return {
    frames: report.output?.frames ?? report.metrics?.after.frames ?? 0,
    fps: round(report.timing?.fps, 3) ?? 0,
    wallMs: Math.round(report.timing?.wallMs ?? 0),
    psnr: round(finite(after?.psnrRgbMean) ? after.psnrRgbMean : undefined, 4),
    ssim: round(finite(after?.ssimYMean) ? after.ssimYMean : undefined, 5),
    psnrBefore: round(finite(before?.psnrRgbMean) ? before.psnrRgbMean : undefined, 4),
    ssimBefore: round(finite(before?.ssimYMean) ? before.ssimYMean : undefined, 5),
    idSim: round(idSim, 4),
    flicker: round(flicker, 5),
    metricsSkipped: report.metrics ? undefined : report.metricsSkipped,
    backends,
  };
}
