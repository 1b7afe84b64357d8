/** Metric records. PSNR is given over RGB and over BT.601 luma; SSIM over luma (see definitions). */
export interface FrameMetrics {
  index: number;
  mseRgb: number;
  psnrRgb: number;
  mseY: number;
  psnrY: number;
  ssimY: number;
}

export interface MetricsSummary {
  frames: number;
  psnrRgbMean: number;
  psnrRgbMin: number;
  /** PSNR of the mean MSE over all frames (what ffmpeg's psnr filter prints as its average). */
  psnrRgbOfMeanMse: number;
  psnrYMean: number;
  psnrYMin: number;
  psnrYOfMeanMse: number;
  ssimYMean: number;
  ssimYMin: number;
  /** Human-readable definitions, written into every report. */
  definitions: { psnr: string; ssim: string };
}

export interface CompareResult {
  perFrame: FrameMetrics[];
  summary: MetricsSummary;
}
