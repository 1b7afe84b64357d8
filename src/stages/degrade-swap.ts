/**
 * `restore degrade --swap-identity OTHER.jpg`: change the person in a clean clip to the face
 * of OTHER.jpg (the identity-swap damage of a benchmark case), with the best available swap
 * backend (the embedded mesh swap unless asked otherwise or a model is installed and chosen).
 *
 * Faces are found per frame (FaceAnalyzer), the largest face is followed and its mesh is
 * smoothed over time with motion compensation: the previous smoothed mesh is carried onto
 * the current frame by the least-squares similarity between the two raw meshes, then blended
 * with the current raw mesh, so rigid motion has no lag and landmark jitter is damped.
 */
import { inputError } from '../errors.js';
import { decodeFrames } from '../media/decode.js';
import { VideoEncoder } from '../media/encode.js';
import { probeVideo } from '../media/probe.js';
import { FaceAnalyzer } from '../faces/analyzer.js';
import { applyAffine, estimateSimilarity } from '../faces/align.js';
import { createDescriptor } from '../faces/descriptor.js';
import { loadIdentity } from '../faces/identity.js';
import type { Face, Point } from '../faces/types.js';
import { cosine, largestFace } from '../metrics/identity.js';
import type { DeviceRequest } from '../models/session.js';
import { openSwapper, type SwapBackendName } from './swap/index.js';

export interface SwapClipOptions {
  device?: DeviceRequest;
  log?: (m: string) => void;
  /** Default 'mesh' (deterministic, needs no model); 'auto' uses an installed model when there is one. */
  backend?: Exclude<SwapBackendName, 'none'>;
  crf?: number;
  /** Weight of the current frame's landmarks in the temporal smoothing (1 = none). Default 0.5. */
  smoothing?: number;
  maxFrames?: number;
}

export interface SwapClipResult {
  backend: string;
  frames: number;
  facesSwapped: number;
  framesWithoutFace: number;
  msPerFace: number;
  /** Mean cosine similarity of the frames' largest face to the new identity, before and after. */
  idSim: { descriptor: string; before: number; after: number };
}

const meshPoints = (m: Float32Array): Point[] => Array.from({ length: m.length / 3 }, (_, i) => ({ x: m[i * 3], y: m[i * 3 + 1] }));

/**
 * Temporal mesh smoother: `next(raw)` returns the smoothed mesh for this frame. `alpha` is the
 * weight of the raw mesh.
 */
export function meshSmoother(alpha = 0.5) {
  let prevRaw: Float32Array | undefined;
  let prevSmooth: Float32Array | undefined;
  return {
    reset() {
      prevRaw = prevSmooth = undefined;
    },
    next(raw: Float32Array): Float32Array {
      if (!prevRaw || !prevSmooth || alpha >= 1) {
        prevRaw = raw;
        prevSmooth = raw;
        return raw;
      }
      const T = estimateSimilarity(meshPoints(prevRaw), meshPoints(raw));
      const s = Math.sqrt(Math.abs(T[0] * T[4] - T[1] * T[3]));
      const out = new Float32Array(raw.length);
      for (let i = 0; i < raw.length; i += 3) {
        const p = applyAffine(T, { x: prevSmooth[i], y: prevSmooth[i + 1] });
        out[i] = alpha * raw[i] + (1 - alpha) * p.x;
        out[i + 1] = alpha * raw[i + 1] + (1 - alpha) * p.y;
        out[i + 2] = alpha * raw[i + 2] + (1 - alpha) * prevSmooth[i + 2] * s;
      }
      prevRaw = raw;
      prevSmooth = out;
      return out;
    },
  };
}

/** Change the person in `cleanPath` to the face in `identityPhoto`; writes `outPath` (audio kept). */
export async function swapIdentityInClip(cleanPath: string, identityPhoto: string, outPath: string, opts: SwapClipOptions = {}): Promise<SwapClipResult> {
  const device = opts.device ?? 'auto';
  const info = await probeVideo(cleanPath);
  const analyzer = await FaceAnalyzer.create({ device });
  const descriptor = await createDescriptor({ device });
  const identity = await loadIdentity([identityPhoto], { analyzer, descriptor });
  const swapper = await openSwapper(opts.backend ?? 'mesh', identity, { device, log: opts.log });
  opts.log?.(`swap-identity: ${swapper.backend} (${swapper.reason}), ${cleanPath} → ${outPath}`);
  const enc = await VideoEncoder.open({ out: outPath, width: info.width, height: info.height, fps: info.fps, audioFrom: info, crf: opts.crf ?? 16 });
  const smoother = meshSmoother(opts.smoothing ?? 0.5);
  let frames = 0, faces = 0, noFace = 0, ms = 0, sb = 0, sa = 0, ns = 0;
  try {
    for await (const fr of decodeFrames(info, { maxFrames: opts.maxFrames })) {
      const frame = { width: fr.width, height: fr.height, data: fr.data };
      const main = largestFace(await analyzer.analyze(frame));
      let out = frame;
      if (main?.mesh) {
        const face: Face = { ...main, trackId: 0, mesh: smoother.next(main.mesh) };
        const t0 = performance.now();
        out = await swapper.swapFace(frame, face);
        ms += performance.now() - t0;
        faces++;
        sb += cosine(identity.descriptor, await descriptor.describe(frame, main.five));
        sa += cosine(identity.descriptor, await descriptor.describe(out, main.five));
        ns++;
      } else {
        noFace++;
        smoother.reset();
      }
      await enc.write(out);
      frames++;
    }
    await enc.finish();
  } catch (e) {
    await enc.abort();
    throw e;
  }
  if (!faces) throw inputError(`${cleanPath}: no face found in any frame`, 'the identity swap needs a visible face');
  return {
    backend: swapper.backend,
    frames,
    facesSwapped: faces,
    framesWithoutFace: noFace,
    msPerFace: +(ms / faces).toFixed(2),
    idSim: { descriptor: descriptor.label, before: +(sb / ns).toFixed(4), after: +(sa / ns).toFixed(4) },
  };
}
