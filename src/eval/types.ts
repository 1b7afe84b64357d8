/** The eval's types: the variants it runs, its rows and its result (run.ts fills them, report.ts renders them). */
import type { RestoreOptions } from '../stages/types.js';
import type { Logger } from '../util/log.js';
import type { CaseSpec } from './cases.js';

/** One restore configuration: a name and the backends it sets (the rest are defaults). */
export interface Variant {
  name: string;
  backends: Record<string, string>;
  /** Extra options (e.g. backproject). */
  options?: Partial<RestoreOptions>;
}

export interface EvalRow {
  clip: string;
  case: string;
  /** `restore:<variant>` or `ffmpeg-bicubic`, `ffmpeg-lanczos`, `perfect-fill+lanczos`. */
  method: string;
  frames: number;
  psnrY: number;
  psnrU: number;
  psnrV: number;
  psnrAvg: number;
  ssimAll: number;
  ssimY: number;
  holeY?: number;
  outsideY: number;
  /** With `flicker`: the output's warping error (src/metrics/flicker.ts), mean over frames. */
  flicker?: number;
  /** restore only: wall ms per frame (pipeline, not scoring). */
  msPerFrame?: number;
  /** restore only: the backend each stage ran ('-' when it did not run). */
  stages?: Record<string, string>;
  /** Cases with holes: Y-PSNR and SSIM inside the face holes (the reference's face mesh) and the background holes. */
  holeFaceY?: number;
  holeFaceSsim?: number;
  holeBackgroundY?: number;
  holeBackgroundSsim?: number;
  /** Cases with holes: flicker inside the holes (warping error over the hole pixels). */
  holeFlicker?: number;
  /** Cases with face holes: Y-PSNR inside the face holes of each frame (null: none in that frame). */
  holeFaceFramesY?: (number | null)[];
  /** `--mask auto` rows: the mask used against the true mask (means over frames). */
  autoMaskRecall?: number;
  autoMaskFalsePositive?: number;
}

export interface EvalOptions {
  clipsDir: string;
  outDir: string;
  cases?: CaseSpec[];
  variants?: Variant[];
  /** Frames per case (default 2 s of each clip). */
  frames?: number;
  /** Only clips whose name contains one of these. */
  only?: string[];
  /** Photo a swap case changes the person into (default: the first photo in clipsDir, else skip). */
  swapPhoto?: string;
  crf?: number;
  /** Also measure each output's flicker (one optical flow per frame pair: slower). */
  flicker?: boolean;
  /** Cases with holes also run the fills of holes.ts (default true); a list keeps only those names. */
  holeVariants?: boolean | string[];
  log?: Logger;
}

export interface EvalResult {
  createdAt: string;
  clipsDir: string;
  crf: number;
  cases: { clip: string; case: string; frames: number; size: string; lowSize: string; boxes?: unknown; holeShare?: number; faceHoleShare?: number }[];
  rows: EvalRow[];
  /** Per case: each restore variant minus ffmpeg lanczos (psnrAvg, psnrY, outsideY). */
  gains: { clip: string; case: string; method: string; dAvg: number; dY: number; dOutsideY: number }[];
  wallSeconds: number;
  skipped: string[];
}

