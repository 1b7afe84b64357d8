/**
 * The stage interface. A stage transforms the ordered frame stream; per-frame stages use
 * `perFrameStage`, stages that need neighbouring frames buffer what they need themselves.
 */
import type { Mask, RgbFrame } from '../media/frame.js';
import type { CarriedPlanes } from '../media/planes.js';
import type { VideoInfo } from '../media/probe.js';
import type { Face } from '../faces/types.js';
import type { Logger } from '../util/log.js';

export interface FrameItem {
  index: number;
  /** Presentation time, seconds. */
  time: number;
  /** The working image; stages replace it. */
  frame: RgbFrame;
  /** The decoded input frame, never modified (before/after thumbnails, metrics). */
  input: RgbFrame;
  /**
   * The frame as the upscale stage received it (input size, inpainted), set by that stage:
   * the faces stage detects on it (the detector's input is smaller still).
   */
  low?: RgbFrame;
  /** Hole mask at the input size (255 = hole), when a mask source was given. */
  mask?: Mask;
  /** Faces found in `frame` (set by the faces stage, in `frame`'s pixel coordinates). */
  faces?: Face[];
  /**
   * The frame as the face stages received it (set by the faces stage when it found faces): what
   * `frame - base` the face stages changed is the edit the temporal stage smooths.
   */
  base?: RgbFrame;
  /**
   * The stored planes ffmpeg's scaler produced for this frame and the RGB they were converted to
   * (set by the upscale stage): the encoder writes them where `frame` still equals that RGB.
   */
  planes?: CarriedPlanes;
  /** Per-frame numbers stages want in the report (identity similarity, ...). */
  values?: Record<string, number>;
}

export interface StageReport {
  name: string;
  /** The backend that actually ran (e.g. 'lanczos', 'rdn-medium-x4'), or 'none'. */
  backend: string;
  ran: boolean;
  /** Why it did not run, or why this backend was chosen. */
  reason?: string;
  frames: number;
  ms: number;
  /** CPU time of the stage's own work per frame (main thread + its tasks in workers). */
  msPerFrame: number;
  /** The facts the run itself reads (report assembly, checks), typed; the rest is in `details`. */
  facts?: StageFacts;
  details?: Record<string, unknown>;
  /** Where the time went (set by runStages): main/worker CPU, raw model time, critical-path wall. */
  timing?: StageTiming;
}

export interface StageFacts {
  /** Where its model ran. */
  provider?: 'cpu' | 'cuda' | string;
  /** inpaint: mean share of the frame in the holes, and the mask video written (relative to the report folder). */
  maskCoverage?: number;
  maskFile?: string;
  /** faces: frames with at least one face. */
  framesWithFaces?: number;
}

export interface StageTiming {
  mainMs: number;
  /** CPU time of its tasks in workers, and the wall time they ran there. */
  workerMs: number;
  workerWallMs: number;
  /** Share of the main thread's callback wall time it was on a core (main-thread times are scaled by it). */
  mainShare: number;
  workerTasks: number;
  modelRunMs?: number;
  modelRuns?: number;
  /** Stage CPU time / raw session.run time (1 = all of it is model time). */
  ratioToModelRun?: number;
  /** Of the stage's time, its models' input preparation (resizes, crops), where it reports it. */
  inputPrepMs?: number;
  /** (Stage CPU time - inputPrepMs) / raw session.run time: the stage's own overhead besides preparing inputs. */
  ratioWithoutInputPrep?: number;
  /**
   * Its in-order step in a worker (an actor's calls, e.g. the temporal blend), where it has one:
   * the actor thread's own CPU time, and per frame that and the step's wall time in the worker
   * (waits for the peers' help included). Frames pass that step one at a time, so it caps the
   * frame rate whatever the core count: at most ~1000 / orderedWallMsPerFrame fps.
   */
  orderedMs?: number;
  orderedMsPerFrame?: number;
  orderedWallMsPerFrame?: number;
  /** Wall time the stage held the pipeline (its consumer waited on it, not on its upstream). */
  criticalMs: number;
  criticalMsPerFrame: number;
}

export interface RunContext {
  signal: AbortSignal;
  /** The device asked for; each model stage reports the provider that actually ran. */
  device: 'auto' | 'cpu' | 'cuda';
  log: Logger;
  video: VideoInfo;
  options: RestoreOptions;
  reportDir: string;
}

export interface Stage {
  readonly name: string;
  readonly backend: string;
  /** Transform the stream; frames must come out in order, each exactly once. */
  run(input: AsyncIterable<FrameItem>, ctx: RunContext): AsyncIterable<FrameItem>;
  report(): StageReport;
  close?(): Promise<void>;
}

export interface RestoreOptions {
  input: string;
  out: string;
  reportDir: string;
  identity?: string[];
  /** Which face of the identity photo when it shows several (0 = largest). */
  identityFace?: number;
  reference?: string;
  /** Mask image or video path (white = hole), or 'auto'. */
  mask?: string;
  maskDilate?: number;
  /** Upscale factor, or a target size. */
  scale?: number;
  size?: { width: number; height: number };
  /** What `--upscale auto` means: fast | default | best (see QUALITY_PRESETS). */
  quality?: string;
  /** Kernel the input was downscaled with, for the upscale stage's back-projection (default bicubic). */
  srKernel?: string;
  /** Back-projection iterations after upscaling (default: 2, or 0 for lanczos/bicubic asked by name). */
  backproject?: number;
  /** Neighbouring input frames each side that the back-projection also matches (default 0 = none). */
  srFrames?: number;
  crf: number;
  preset: string;
  device: 'auto' | 'cpu' | 'cuda';
  /** Backend per stage: a name, 'auto' (best available) or 'none'. */
  backends: Partial<Record<string, string>>;
  concurrency: number;
  /** Worker threads for models and pixel work (0 = all on the main thread); default: the core count. */
  workers?: number;
  maxFrames?: number;
  /** Number of before/after thumbnails in the report. */
  thumbnails: number;
  json: boolean;
  quiet: boolean;
  progress: boolean;
  /** Debug lines, and ONNX Runtime's native log (silenced otherwise). */
  verbose?: boolean;
}
