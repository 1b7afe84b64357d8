/**
 * PSNR and SSIM exactly as users of this field measure them: ffmpeg's own `psnr` and `ssim`
 * filters, on the stored planes as they are (no colour conversion of ours in between), per frame
 * (from the filters' stats files) and for the whole clip (the filters' own summary lines).
 *
 * Frames are paired by their order (timestamps are renumbered), the common top-left area is
 * compared when the sizes differ by a padding pixel, and the shorter stream sets the count.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { resolveFfmpeg } from '../media/ffmpeg.js';
import { RestoreError } from '../errors.js';

export interface FfmpegFrameScores {
  index: number;
  psnrY: number;
  psnrU: number;
  psnrV: number;
  /** ffmpeg's psnr_avg: PSNR of the pixel-count-weighted mean MSE of the planes. */
  psnrAvg: number;
  ssimY: number;
  ssimU: number;
  ssimV: number;
  /** ffmpeg's SSIM "All": pixel-count-weighted mean of the planes' SSIM. */
  ssimAll: number;
}

export interface FfmpegScores {
  frames: number;
  /** The filters' summary: PSNR of the mean MSE over frames (per plane and average). */
  psnr: { y: number; u: number; v: number; average: number; min: number; max: number };
  /** The filters' summary: mean SSIM over frames. */
  ssim: { y: number; u: number; v: number; all: number };
  /** Mean over frames of the per-frame PSNR (what a per-frame plot averages to). */
  psnrFrameMean: { y: number; u: number; v: number; average: number };
  perFrame: FfmpegFrameScores[];
  definition: string;
}

export const FFMPEG_METRIC_DEFINITION =
  "ffmpeg's psnr and ssim filters on the stored planes (frames paired in order); summary PSNR = PSNR of the mean MSE, as the filter prints it; per-frame values from the filters' stats files";

const num = (s: string | undefined) => {
  if (s === undefined) return NaN;
  if (/^inf/i.test(s)) return Infinity;
  return Number(s);
};

function fields(line: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of line.matchAll(/(\w+):(\S+)/g)) out[m[1]] = m[2];
  return out;
}

/** Parse the psnr and ssim stats files into per-frame scores. */
export function parseStats(psnrText: string, ssimText: string): FfmpegFrameScores[] {
  const p = psnrText.split(/\r?\n/).filter((l) => l.startsWith('n:')).map(fields);
  const s = ssimText.split(/\r?\n/).filter((l) => l.startsWith('n:')).map(fields);
  const n = Math.min(p.length, s.length);
  const out: FfmpegFrameScores[] = [];
  for (let i = 0; i < n; i++) {
    out.push({
      index: i,
      psnrY: num(p[i].psnr_y),
      psnrU: num(p[i].psnr_u),
      psnrV: num(p[i].psnr_v),
      psnrAvg: num(p[i].psnr_avg),
      ssimY: num(s[i].Y),
      ssimU: num(s[i].U),
      ssimV: num(s[i].V),
      ssimAll: num(s[i].All),
    });
  }
  return out;
}

/** Parse the filters' summary lines from ffmpeg's log. */
export function parseSummary(log: string): Pick<FfmpegScores, 'psnr' | 'ssim'> | undefined {
  const pl = /PSNR y:(\S+) u:(\S+) v:(\S+) average:(\S+) min:(\S+) max:(\S+)/.exec(log);
  const sl = /SSIM Y:(\S+) \S+ U:(\S+) \S+ V:(\S+) \S+ All:(\S+)/.exec(log);
  if (!pl || !sl) return undefined;
  return {
    psnr: { y: num(pl[1]), u: num(pl[2]), v: num(pl[3]), average: num(pl[4]), min: num(pl[5]), max: num(pl[6]) },
    ssim: { y: num(sl[1]), u: num(sl[2]), v: num(sl[3]), all: num(sl[4]) },
  };
}

export interface FfmpegScoreOptions {
  /** Score only the first N frames. */
  maxFrames?: number;
  /** Compare only this top-left area (both inputs cropped to it). */
  crop?: { width: number; height: number };
  signal?: AbortSignal;
}

const finiteMean = (xs: number[]) => {
  const f = xs.map((x) => (Number.isFinite(x) ? x : 100));
  return f.length ? f.reduce((a, b) => a + b, 0) / f.length : NaN;
};

/** Score `distorted` against `reference` with ffmpeg's psnr and ssim filters. */
export async function ffmpegScores(distorted: string, reference: string, opts: FfmpegScoreOptions = {}): Promise<FfmpegScores> {
  const { ffmpeg } = resolveFfmpeg();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `restore-metrics-${randomBytes(3).toString('hex')}-`));
  const pf = path.join(dir, 'psnr.log');
  const sf = path.join(dir, 'ssim.log');
  const prep = [
    'setpts=N/(25*TB)',
    ...(opts.maxFrames ? [`trim=end_frame=${opts.maxFrames}`] : []),
    ...(opts.crop ? [`crop=${opts.crop.width}:${opts.crop.height}:0:0`] : []),
  ].join(',');
  const graph =
    `[0:v]${prep},split[a1][a2];[1:v]${prep},split[b1][b2];` +
    `[a1][b1]psnr=stats_file=${pf}:shortest=1;[a2][b2]ssim=stats_file=${sf}:shortest=1`;
  try {
    const log = await new Promise<string>((resolve, reject) => {
      const child = execFile(
        ffmpeg,
        ['-hide_banner', '-nostdin', '-i', distorted, '-i', reference, '-filter_complex', graph, '-f', 'null', '-'],
        { maxBuffer: 1 << 26 },
        (err, _stdout, stderr) => {
          if (err) {
            const last = String(stderr).trim().split(/\r?\n/).pop() ?? err.message;
            reject(new RestoreError('input', `scoring ${distorted} against ${reference} with ffmpeg failed (${last.slice(0, 200)})`));
          } else resolve(String(stderr));
        },
      );
      opts.signal?.addEventListener('abort', () => child.kill('SIGKILL'), { once: true });
    });
    const perFrame = parseStats(await fs.readFile(pf, 'utf8'), await fs.readFile(sf, 'utf8'));
    const summary = parseSummary(log);
    if (!summary || !perFrame.length) throw new RestoreError('internal', `ffmpeg printed no psnr/ssim summary for ${distorted}`);
    return {
      frames: perFrame.length,
      ...summary,
      psnrFrameMean: {
        y: finiteMean(perFrame.map((f) => f.psnrY)),
        u: finiteMean(perFrame.map((f) => f.psnrU)),
        v: finiteMean(perFrame.map((f) => f.psnrV)),
        average: finiteMean(perFrame.map((f) => f.psnrAvg)),
      },
      perFrame,
      definition: FFMPEG_METRIC_DEFINITION,
    };
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** Rounded copy for reports (4 decimals; inf stays a string-free large cap of 100 dB). */
export function roundScores(s: FfmpegScores): FfmpegScores {
  const r = (v: number) => (Number.isFinite(v) ? +v.toFixed(4) : 100);
  return {
    frames: s.frames,
    psnr: { y: r(s.psnr.y), u: r(s.psnr.u), v: r(s.psnr.v), average: r(s.psnr.average), min: r(s.psnr.min), max: r(s.psnr.max) },
    ssim: { y: r(s.ssim.y), u: r(s.ssim.u), v: r(s.ssim.v), all: r(s.ssim.all) },
    psnrFrameMean: { y: r(s.psnrFrameMean.y), u: r(s.psnrFrameMean.u), v: r(s.psnrFrameMean.v), average: r(s.psnrFrameMean.average) },
    perFrame: s.perFrame.map((f) => ({
      index: f.index,
      psnrY: r(f.psnrY),
      psnrU: r(f.psnrU),
      psnrV: r(f.psnrV),
      psnrAvg: r(f.psnrAvg),
      ssimY: r(f.ssimY),
      ssimU: r(f.ssimU),
      ssimV: r(f.ssimV),
      ssimAll: r(f.ssimAll),
    })),
    definition: s.definition,
  };
}
