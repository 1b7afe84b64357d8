/**
 * FaceAnalyzer: MediaPipe's BlazeFace detectors and face mesh, converted from the TFLite files
 * in npm to ONNX (src/models/tflite) and run by ONNX Runtime on CPU or CUDA.
 *
 * Coordinates: frame pixels with pixel centres on integers (as src/faces/align.ts).
 */
import type { RgbFrame } from '../media/frame.js';
import { openModel } from '../models/registry.js';
import { ort, type DeviceRequest } from '../models/session.js';
import { addPrepCost } from '../workers/pool.js';
import { applyAffine, invertAffine, warpAffineTensor } from './align.js';
import { boxIou, decodeDetections, FULL_RANGE, letterbox, SHORT_RANGE, ssdAnchors, type BlazeFaceSpec, type RawDetection } from './blazeface.js';
import { fiveFromKeypoints, fiveFromMesh, MESH_INPUT, MESH_POINTS, roiFromDetection, roiMatrix, type Roi } from './mesh.js';
import type { Face } from './types.js';

export interface FaceAnalyzerOptions {
  device?: DeviceRequest;
  /** Faces whose box is smaller than this many pixels (width) are dropped. Default 16. */
  minFaceSize?: number;
  log?: (msg: string) => void;
  /** Use the full-range model when the short-range one finds nothing. Default true. */
  fullRangeFallback?: boolean;
  /** Minimum face-mesh confidence for a face to count as a face (0..1). Default 0.5. */
  minLandmarkScore?: number;
  threads?: number;
}

export interface AnalyzerTimings {
  detectCalls: number;
  /** Of those, detections that ran on a smaller picture of the frame (FrameItem.low). */
  smallCalls: number;
  detectMs: number;
  fullRangeCalls: number;
  /** Frames where tiled detection (small faces in large frames) ran. */
  tiledCalls: number;
  meshCalls: number;
  meshMs: number;
  /** Detections dropped because the face mesh did not see a face there. */
  rejected: number;
}

/** All counters at zero. */
export function zeroTimings(): AnalyzerTimings {
  return { detectCalls: 0, smallCalls: 0, detectMs: 0, fullRangeCalls: 0, tiledCalls: 0, meshCalls: 0, meshMs: 0, rejected: 0 };
}

/** a + sign * b, counter by counter (sign -1: what happened between two readings). */
export function combineTimings(a: AnalyzerTimings, b: AnalyzerTimings, sign: 1 | -1 = 1): AnalyzerTimings {
  const out = zeroTimings();
  for (const k of Object.keys(out) as (keyof AnalyzerTimings)[]) out[k] = a[k] + sign * b[k];
  return out;
}

interface Detector {
  spec: BlazeFaceSpec;
  session: ort.InferenceSession;
  provider: 'cpu' | 'cuda';
  anchors: Float32Array;
  input: string;
  outputs: [string, string];
}

/**
 * Whether detection may run on `small` instead of `frame`: a smaller picture of the same aspect
 * whose longer side is at least 3/4 of the detector's input (below that, the larger frame has
 * detail the detector's letterbox would still see).
 */
export function usableSmall(frame: RgbFrame, small: RgbFrame, inputSize: number): boolean {
  const long = Math.max(small.width, small.height);
  if (small.width >= frame.width && small.height >= frame.height) return false;
  if (long < 0.75 * inputSize) return false;
  return Math.abs(frame.width / small.width - frame.height / small.height) <= 0.02 * (frame.width / small.width);
}

/** A detection with its box and keypoints mapped by x * sx + dx, y * sy + dy (sizes scaled). */
function mapDetection(d: RawDetection, sx: number, sy: number, dx: number, dy: number): RawDetection {
  return {
    box: { x: d.box.x * sx + dx, y: d.box.y * sy + dy, width: d.box.width * sx, height: d.box.height * sy },
    keypoints: d.keypoints.map((p) => ({ x: p.x * sx + dx, y: p.y * sy + dy })),
    score: d.score,
  };
}

export class FaceAnalyzer {
  readonly timings: AnalyzerTimings = zeroTimings();
  private fullRange?: Promise<Detector>;

  private constructor(
    private readonly short: Detector,
    private readonly mesh: { session: ort.InferenceSession; input: string; outputs: [string, string] },
    readonly provider: 'cpu' | 'cuda',
    private readonly opts: Required<Pick<FaceAnalyzerOptions, 'minFaceSize' | 'fullRangeFallback' | 'minLandmarkScore'>> & FaceAnalyzerOptions,
  ) {}

  static async create(options: FaceAnalyzerOptions = {}): Promise<FaceAnalyzer> {
    // These models are small (2-3 ms per call): one intra-op thread is faster than two
    // competing ones, and leaves the other cores to the stages around.
    const opts = { ...options, threads: options.threads ?? 1 };
    const device = opts.device ?? 'auto';
    const [short, mesh] = await Promise.all([
      FaceAnalyzer.loadDetector(SHORT_RANGE, device, opts),
      (async () => {
        const m = await openModel('face_landmark', { device, log: opts.log, threads: opts.threads });
        return { session: m.session, input: m.inputs.image.name, outputs: [m.outputs.landmarks.name, m.outputs.score.name] as [string, string] };
      })(),
    ]);
    return new FaceAnalyzer(short, mesh, short.provider, {
      ...opts,
      minFaceSize: opts.minFaceSize ?? 16,
      fullRangeFallback: opts.fullRangeFallback ?? true,
      minLandmarkScore: opts.minLandmarkScore ?? 0.5,
    });
  }

  private static async loadDetector(spec: BlazeFaceSpec, device: DeviceRequest, opts: FaceAnalyzerOptions): Promise<Detector> {
    // through the registry: converted once from the npm TFLite, cached, contract checked; the
    // contract's roles name the outputs (regressors [1,N,16], scores [1,N,1]; names differ between the files)
    const m = await openModel(spec.name === 'short' ? 'face_detection_short_range' : 'face_detection_full_range', { device, log: opts.log, threads: opts.threads });
    return { spec, session: m.session, provider: m.provider, anchors: ssdAnchors(spec), input: m.inputs.image.name, outputs: [m.outputs.regressors.name, m.outputs.scores.name] };
  }

  private async runDetector(d: Detector, frame: RgbFrame) {
    const c0 = performance.now();
    const lb = letterbox(frame, d.spec.inputSize);
    addPrepCost(performance.now() - c0);
    const S = d.spec.inputSize;
    const res = await d.session.run({ [d.input]: new ort.Tensor('float32', lb.tensor, [1, S, S, 3]) });
    const reg = res[d.outputs[0]].data as Float32Array;
    const cls = res[d.outputs[1]].data as Float32Array;
    return decodeDetections(d.spec, d.anchors, reg, cls, lb);
  }

  /**
   * The short-range detector on `frame`, or on `small` (the same picture at a lower
   * resolution, e.g. the upscale stage's input) when that is enough for the detector: its
   * detections are scaled onto `frame` (edge coordinates: x * frame.width / small.width).
   * The detector sees a 128x128 letterbox either way; shrinking the large frame to it is most
   * of the detection's pre-processing (480 -> 128: ~5 ms a frame, longer than the ~2 ms run).
   */
  private async detectShort(frame: RgbFrame, small?: RgbFrame): Promise<RawDetection[]> {
    if (!small || !usableSmall(frame, small, this.short.spec.inputSize)) return this.runDetector(this.short, frame);
    this.timings.smallCalls++;
    const sx = frame.width / small.width, sy = frame.height / small.height;
    return (await this.runDetector(this.short, small)).map((d) => mapDetection(d, sx, sy, 0, 0));
  }

  /** BlazeFace detection (short range; the fallbacks when that finds nothing). Faces have trackId -1. */
  async detect(frame: RgbFrame, small?: RgbFrame): Promise<Face[]> {
    const near = await this.detectPass(frame, 'short', small);
    return near.length || !this.opts.fullRangeFallback ? near : this.detectPass(frame, 'fallback');
  }

  /**
   * One detection pass. 'short': the short-range model on the whole frame (on `small` when
   * given and large enough, see detectShort). 'fallback': the full-range model, plus the
   * short-range one on tiles for small faces in large frames, always on `frame`; both give
   * false positives on faceless frames, which analyze() drops when the mesh disagrees.
   */
  async detectPass(frame: RgbFrame, pass: 'short' | 'fallback', small?: RgbFrame): Promise<Face[]> {
    const t0 = performance.now();
    try {
      let dets: RawDetection[];
      if (pass === 'short') {
        this.timings.detectCalls++;
        dets = (await this.detectShort(frame, small)).filter((d) => d.box.width >= this.opts.minFaceSize);
      } else {
        this.fullRange ??= FaceAnalyzer.loadDetector(FULL_RANGE, this.opts.device ?? 'auto', this.opts);
        this.timings.fullRangeCalls++;
        const cands = (await this.runDetector(await this.fullRange, frame)).filter((d) => d.box.width >= this.opts.minFaceSize);
        if (Math.max(frame.width, frame.height) >= 640) cands.push(...(await this.detectTiled(frame)).filter((d) => d.box.width >= this.opts.minFaceSize));
        cands.sort((x, y) => y.score - x.score);
        dets = [];
        for (const d of cands) if (!dets.some((k) => boxIou(k.box, d.box) > 0.3)) dets.push(d);
      }
      return dets.map((raw) => {
        // edge coordinates -> pixel centres on integers
        const d = mapDetection(raw, 1, 1, -0.5, -0.5);
        return { trackId: -1, box: d.box, score: d.score, keypoints: d.keypoints, five: fiveFromKeypoints(d.keypoints) };
      });
    } finally {
      this.timings.detectMs += performance.now() - t0;
    }
  }

  /**
   * Small faces in large frames (>= 640 px): the short-range detector on overlapping tiles
   * (2x2, plus 3x3 from 1000 px; 30 % overlap), detections mapped back and merged (highest score
   * wins at IoU > 0.3).
   */
  private async detectTiled(frame: RgbFrame) {
    this.timings.tiledCalls++;
    const all: Awaited<ReturnType<FaceAnalyzer['runDetector']>> = [];
    const grids = Math.max(frame.width, frame.height) >= 1000 ? [2, 3] : [2];
    for (const n of grids) {
      const side = Math.min(Math.max(frame.width, frame.height), Math.ceil((Math.max(frame.width, frame.height) / n) * 1.3));
      const tw = Math.min(frame.width, side), th = Math.min(frame.height, side);
      const xs = frame.width <= tw ? [0] : Array.from({ length: n }, (_, i) => Math.round(((frame.width - tw) * i) / (n - 1)));
      const ys = frame.height <= th ? [0] : Array.from({ length: n }, (_, i) => Math.round(((frame.height - th) * i) / (n - 1)));
      for (const y0 of ys) {
        for (const x0 of xs) {
          const tile: RgbFrame = { width: tw, height: th, data: new Uint8Array(tw * th * 3) };
          for (let y = 0; y < th; y++) tile.data.set(frame.data.subarray(((y0 + y) * frame.width + x0) * 3, ((y0 + y) * frame.width + x0 + tw) * 3), y * tw * 3);
          for (const d of await this.runDetector(this.short, tile)) {
            all.push(mapDetection(d, 1, 1, x0, y0));
          }
        }
      }
    }
    all.sort((a, b) => b.score - a.score);
    const kept: typeof all = [];
    for (const d of all) if (!kept.some((k) => boxIou(k.box, d.box) > 0.3)) kept.push(d);
    return kept;
  }

  /** Run the face mesh on an ROI; returns the mesh (frame pixels) and its confidence. */
  async meshAt(frame: RgbFrame, roi: Roi): Promise<{ mesh: Float32Array; score: number }> {
    const t0 = performance.now();
    try {
      this.timings.meshCalls++;
      const m = roiMatrix(roi, MESH_INPUT);
      // the crop's bytes / 255, without the crop
      const c0 = performance.now();
      const x = warpAffineTensor(frame, m, MESH_INPUT, MESH_INPUT);
      addPrepCost(performance.now() - c0);
      const res = await this.mesh.session.run({ [this.mesh.input]: new ort.Tensor('float32', x, [1, MESH_INPUT, MESH_INPUT, 3]) });
      const raw = res[this.mesh.outputs[0]].data as Float32Array;
      const logit = (res[this.mesh.outputs[1]].data as Float32Array)[0];
      const inv = invertAffine(m);
      const zScale = roi.size / MESH_INPUT;
      const mesh = new Float32Array(MESH_POINTS * 3);
      for (let i = 0; i < MESH_POINTS; i++) {
        // model output: continuous crop coordinates (0 = left edge); our crop has pixel centres on integers
        const p = applyAffine(inv, { x: raw[i * 3] - 0.5, y: raw[i * 3 + 1] - 0.5 });
        mesh[i * 3] = p.x;
        mesh[i * 3 + 1] = p.y;
        mesh[i * 3 + 2] = raw[i * 3 + 2] * zScale;
      }
      return { mesh, score: 1 / (1 + Math.exp(-Math.max(-100, Math.min(100, logit)))) };
    } finally {
      this.timings.meshMs += performance.now() - t0;
    }
  }

  /** Face mesh for one detected face: 468 points, 5 alignment points from the mesh, landmark score. */
  async landmarks(frame: RgbFrame, face: Face): Promise<Face> {
    const roi = roiFromDetection(
      { x: face.box.x + 0.5, y: face.box.y + 0.5, width: face.box.width, height: face.box.height },
      face.keypoints[0],
      face.keypoints[1],
    );
    // roiFromDetection uses edge coordinates for the box; the keypoints only give the angle.
    roi.cx -= 0.5;
    roi.cy -= 0.5;
    const { mesh, score } = await this.meshAt(frame, roi);
    return { ...face, mesh, landmarkScore: score, five: fiveFromMesh(mesh) };
  }

  /**
   * Detect, then mesh every face (the meshes always on `frame`; `small`: see detectShort). A
   * detection whose mesh confidence (the face-mesh model's face-presence score) is below
   * minLandmarkScore is not a face: it is dropped and counted in `timings.rejected`.
   */
  async analyze(frame: RgbFrame, small?: RgbFrame): Promise<Face[]> {
    let out = await this.confirm(frame, await this.detectPass(frame, 'short', small));
    if (!out.length && this.opts.fullRangeFallback) out = await this.confirm(frame, await this.detectPass(frame, 'fallback'));
    return out;
  }

  private async confirm(frame: RgbFrame, faces: Face[]): Promise<Face[]> {
    const out: Face[] = [];
    for (const f of faces) {
      const withMesh = await this.landmarks(frame, f);
      if (withMesh.landmarkScore! >= this.opts.minLandmarkScore) out.push(withMesh);
      else this.timings.rejected++;
    }
    return out;
  }
}
