/**
 * Per-frame full-reference metrics: MSE/PSNR over RGB and over BT.601 luma, and SSIM
 * (Wang et al. 2004, Gaussian window) over BT.601 luma, plus the summary over a clip.
 *
 * About ssim.js (3.5): its defaults are not this definition. The default algorithm 'weber'
 * uses a box window; the default downsample 'original' shrinks both images by
 * round(min(w,h)/256) with a box filter first (so 384x384 frames would be scored at 192x192);
 * its rgb2gray rounds to integers with Matlab weights (0.29894/0.58704/0.11402, or an integer
 * 77/150/29 approximation by default), not float BT.601. Its 'fast' and 'original' algorithms
 * with downsample: false are the Gaussian definition, averaged over the 'valid' region (no
 * padding), but it only accepts RGBA input and took ~75-150 ms on a 384x384 frame here.
 * So ssimGray below computes the same thing (separable 11x11 Gaussian, Float64 sums, valid
 * region) on float BT.601 luma in ~20 ms; the tests check it against ssim.js ('original',
 * no downsampling) on the same integer grey image to 1e-9, and against a plain double-loop
 * implementation.
 */
import { lumaBt601, type RgbFrame } from '../media/frame.js';
import { RestoreError } from '../errors.js';
import type { FrameMetrics, MetricsSummary } from './types.js';

/** PSNR of identical images would be +Infinity, which JSON cannot hold: it is capped here. */
export const PSNR_CAP_DB = 100;

export const SSIM_WINDOW = 11;
export const SSIM_SIGMA = 1.5;
export const SSIM_K1 = 0.01;
export const SSIM_K2 = 0.03;
const L = 255;

export const METRIC_DEFINITIONS: MetricsSummary['definitions'] = {
  psnr:
    `PSNR = 10*log10(255^2 / MSE) dB, capped at ${PSNR_CAP_DB} dB (identical frames). ` +
    'RGB: MSE is the mean squared error over all pixels of the R, G and B channels (the mean of the three channel MSEs) of 8-bit RGB frames. ' +
    'Y: MSE over BT.601 luma Y = 0.299 R + 0.587 G + 0.114 B, computed in floating point from the same RGB frames (full range, not rounded). ' +
    '"PSNR of mean MSE" = PSNR of the MSE averaged over all frames (the average ffmpeg\'s psnr filter prints); "mean" = mean of per-frame PSNR.',
  ssim:
    'SSIM of Wang et al. 2004 on BT.601 luma (float, 0..255): 11x11 Gaussian window with sigma 1.5 (normalized), ' +
    'K1 = 0.01, K2 = 0.03, L = 255, no downsampling; the SSIM map is averaged over the valid region ' +
    '(window centres at least 5 px from the border, no padding). Frames smaller than 11 px use one window of global statistics.',
};

export function psnrFromMse(mse: number): number {
  if (!(mse > 0)) return PSNR_CAP_DB;
  return Math.min(PSNR_CAP_DB, 10 * Math.log10((L * L) / mse));
}

function gaussianKernel(size = SSIM_WINDOW, sigma = SSIM_SIGMA): Float64Array {
  const k = new Float64Array(size);
  const c = (size - 1) / 2;
  let s = 0;
  for (let i = 0; i < size; i++) {
    k[i] = Math.exp(-((i - c) ** 2) / (2 * sigma * sigma));
    s += k[i];
  }
  for (let i = 0; i < size; i++) k[i] /= s;
  return k;
}

const KERNEL = gaussianKernel();

/** SSIM from first and second moments of one window. */
function ssimOf(mx: number, my: number, sxx: number, syy: number, sxy: number): number {
  const c1 = (SSIM_K1 * L) ** 2;
  const c2 = (SSIM_K2 * L) ** 2;
  const vx = sxx - mx * mx;
  const vy = syy - my * my;
  const cxy = sxy - mx * my;
  return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
}

/**
 * Mean SSIM of two grey images (same size, values 0..255), Gaussian 11x11 window, averaged over
 * the valid region. Separable filtering: horizontal pass into five row buffers, vertical pass
 * straight into the running sum.
 */
export function ssimGray(x: ArrayLike<number>, y: ArrayLike<number>, width: number, height: number): number {
  const n = SSIM_WINDOW;
  if (width < n || height < n) {
    // Too small for one window: global statistics (uniform weights).
    const N = width * height;
    let mx = 0, my = 0, sxx = 0, syy = 0, sxy = 0;
    for (let i = 0; i < N; i++) {
      mx += x[i]; my += y[i]; sxx += x[i] * x[i]; syy += y[i] * y[i]; sxy += x[i] * y[i];
    }
    return ssimOf(mx / N, my / N, sxx / N, syy / N, sxy / N);
  }
  const k = KERNEL;
  const ow = width - n + 1;
  const oh = height - n + 1;
  // Horizontal pass: for every source row, the filtered moments at the ow valid columns.
  const hx = new Float64Array(ow * height);
  const hy = new Float64Array(ow * height);
  const hxx = new Float64Array(ow * height);
  const hyy = new Float64Array(ow * height);
  const hxy = new Float64Array(ow * height);
  const rx = new Float64Array(width);
  const ry = new Float64Array(width);
  for (let r = 0; r < height; r++) {
    const base = r * width;
    for (let c = 0; c < width; c++) {
      rx[c] = x[base + c];
      ry[c] = y[base + c];
    }
    const ob = r * ow;
    for (let c = 0; c < ow; c++) {
      let sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
      for (let t = 0; t < n; t++) {
        const w = k[t];
        const a = rx[c + t];
        const b = ry[c + t];
        const wa = w * a;
        const wb = w * b;
        sx += wa; sy += wb; sxx += wa * a; syy += wb * b; sxy += wa * b;
      }
      hx[ob + c] = sx; hy[ob + c] = sy; hxx[ob + c] = sxx; hyy[ob + c] = syy; hxy[ob + c] = sxy;
    }
  }
  // Vertical pass and the mean of the SSIM map.
  let total = 0;
  for (let r = 0; r < oh; r++) {
    for (let c = 0; c < ow; c++) {
      let mx = 0, my = 0, sxx = 0, syy = 0, sxy = 0;
      for (let t = 0, o = r * ow + c; t < n; t++, o += ow) {
        const w = k[t];
        mx += w * hx[o]; my += w * hy[o]; sxx += w * hxx[o]; syy += w * hyy[o]; sxy += w * hxy[o];
      }
      total += ssimOf(mx, my, sxx, syy, sxy);
    }
  }
  return total / (ow * oh);
}

function checkSizes(a: RgbFrame, b: RgbFrame): void {
  if (a.width !== b.width || a.height !== b.height) {
    throw new RestoreError('input', `cannot compare frames of different sizes: ${a.width}x${a.height} vs ${b.width}x${b.height}`);
  }
  if (a.data.length !== a.width * a.height * 3 || b.data.length !== b.width * b.height * 3) {
    throw new RestoreError('internal', 'frame data length does not match width*height*3');
  }
}

/** MSE/PSNR (RGB and BT.601 luma) and luma SSIM of two RGB frames of the same size. */
export function frameMetrics(a: RgbFrame, b: RgbFrame, index = 0): FrameMetrics {
  checkSizes(a, b);
  const da = a.data;
  const db = b.data;
  const npx = a.width * a.height;
  let se = 0;
  let seY = 0;
  for (let i = 0, j = 0; i < npx; i++, j += 3) {
    const dr = da[j] - db[j];
    const dg = da[j + 1] - db[j + 1];
    const dbb = da[j + 2] - db[j + 2];
    se += dr * dr + dg * dg + dbb * dbb;
    const dy = 0.299 * dr + 0.587 * dg + 0.114 * dbb;
    seY += dy * dy;
  }
  const mseRgb = se / (3 * npx);
  const mseY = seY / npx;
  const ya = lumaBt601(a);
  const yb = lumaBt601(b);
  const ssimY = ssimGray(ya, yb, a.width, a.height);
  return { index, mseRgb, psnrRgb: psnrFromMse(mseRgb), mseY, psnrY: psnrFromMse(mseY), ssimY };
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((s, v) => s + v, 0) / xs.length : NaN);
const min = (xs: number[]) => (xs.length ? xs.reduce((m, v) => (v < m ? v : m), Infinity) : NaN);

/**
 * Mean and minimum over frames, and PSNR of the mean MSE. With no frames every number is NaN
 * (JSON writes null), and `frames` is 0.
 */
export function summarize(perFrame: FrameMetrics[]): MetricsSummary {
  const psnrRgb = perFrame.map((f) => f.psnrRgb);
  const psnrY = perFrame.map((f) => f.psnrY);
  const ssim = perFrame.map((f) => f.ssimY);
  return {
    frames: perFrame.length,
    psnrRgbMean: mean(psnrRgb),
    psnrRgbMin: min(psnrRgb),
    psnrRgbOfMeanMse: perFrame.length ? psnrFromMse(mean(perFrame.map((f) => f.mseRgb))) : NaN,
    psnrYMean: mean(psnrY),
    psnrYMin: min(psnrY),
    psnrYOfMeanMse: perFrame.length ? psnrFromMse(mean(perFrame.map((f) => f.mseY))) : NaN,
    ssimYMean: mean(ssim),
    ssimYMin: min(ssim),
    definitions: { ...METRIC_DEFINITIONS },
  };
}

/** The top-left `width` x `height` part of a frame (a copy; the frame itself when sizes match). */
export function cropFrame(f: RgbFrame, width: number, height: number): RgbFrame {
  if (f.width === width && f.height === height) return f;
  if (width > f.width || height > f.height) throw new RestoreError('internal', 'crop larger than frame');
  const data = new Uint8Array(width * height * 3);
  const row = width * 3;
  for (let r = 0; r < height; r++) data.set(f.data.subarray(r * f.width * 3, r * f.width * 3 + row), r * row);
  return { width, height, data };
}
