/** What a single run writes: report.json holds a RunReport; frames.csv and report.html derive from it. */
import type { FrameMetrics, MetricsSummary } from '../metrics/types.js';
import type { FfmpegScores } from '../metrics/ffmpeg.js';
import type { StageReport } from '../stages/types.js';

export interface VideoSummary {
  path: string;
  width: number;
  height: number;
  fps: string;
  frames: number;
  duration?: number;
  rotation?: number;
  vfr?: boolean;
  audioStreams?: number;
}

export interface Thumbnail {
  index: number;
  /** File names relative to the report directory (JPEG). */
  input?: string;
  output: string;
  reference?: string;
}

export interface RunReport {
  tool: { name: 'restore'; version: string };
  createdAt: string;
  input: VideoSummary;
  output: VideoSummary;
  reference?: VideoSummary;
  mask?: { source: string; coverage?: number; file?: string };
  identity?: string[];
  settings: Record<string, unknown>;
  device: string;
  stages: StageReport[];
  timing: {
    wallMs: number;
    /** Frames over the wall time from the start to the encoded output (before the metrics pass). */
    fps: number;
    /** Wall time from the start to the encoded output. */
    pipelineMs?: number;
    /**
     * Wall time of the metrics pass against --reference, when it ran (the output, reference and
     * bicubic "before" decoded in lock-step and scored, in workers when there are workers), and
     * its ratio to pipelineMs: what scoring adds to the run.
     */
    scoringMs?: number;
    scoringShare?: number;
    peakRssMb: number;
    workers?: number;
    cpuPercent?: number;
    cpuPercentWithFfmpeg?: number;
    /**
     * The main thread's CPU time per frame from the first frame to the encoded output
     * (scheduling, the decoder's and encoder's pipes, the stages' main-thread parts). One
     * thread: the frame rate cannot pass 1000 / this on any number of cores.
     */
    mainThreadMsPerFrame?: number;
  };
  /**
   * Scores against the reference. `after` = the restored output; `before` = the input
   * resized to the reference size with bicubic (what a plain upscale would give).
   */
  metrics?: {
    after: MetricsSummary;
    before?: MetricsSummary;
    perFrame: { index: number; after: FrameMetrics; before?: FrameMetrics }[];
    /** ffmpeg's own psnr/ssim filters on the stored planes of the output against the reference. */
    ffmpeg?: FfmpegScores;
  };
  /** Colour of the input as decoded and of the output as written (kept from the input). */
  colour?: { input: string; output: string; assumed: boolean; referenceDiffers?: string[] };
  /** Why metrics were not computed, when they were not. */
  metricsSkipped?: string;
  /** Per-frame numbers stages published (FrameItem.values), by frame index. */
  perFrameValues?: { index: number; values: Record<string, number> }[];
  notes: string[];
  thumbnails: Thumbnail[];
  /**
   * Contact sheet of the largest face over time: one JPEG (relative to the report
   * directory), a row per source (input, output), a column per frame in `frames`.
   */
  faceSheet?: { file: string; frames: number[]; rows: string[]; tile: number };
}
