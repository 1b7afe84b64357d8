/**
 * `restore degrade --swap-identity OTHER.jpg`: change the person in a clean clip to the face
 * of OTHER.jpg (the identity-swap damage of a benchmark case), with the best available swap
 * backend: the embedded mesh swap by default (deterministic, needs no model file); 'auto'
 * uses an installed swap model when there is one.
 *
 * It is the restore pipeline's own faces stage (detect, mesh, track, smooth) followed by the
 * swap stage, between a streamed decode and encode (audio kept).
 */
import { inputError } from '../errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import { decodeFrames } from '../media/decode.js';
import { VideoEncoder } from '../media/encode.js';
import { probeVideo } from '../media/probe.js';
import { FaceAnalyzer } from '../faces/analyzer.js';
import type { DeviceRequest } from '../models/session.js';
import type { FrameItem, RestoreOptions, RunContext } from '../stages/types.js';
import { createFacesStage } from '../stages/faces.js';
import { createSwapStage, type SwapBackendName } from '../stages/swap/index.js';
import type { IdentitySummary } from '../metrics/identity.js';

export interface SwapClipOptions {
  device?: DeviceRequest;
  log?: (m: string) => void;
  /** Default 'mesh'; 'auto' uses an installed swap model when there is one. */
  backend?: Exclude<SwapBackendName, 'none'>;
  crf?: number;
  maxFrames?: number;
}

export interface SwapClipResult {
  backend: string;
  frames: number;
  facesSwapped: number;
  framesWithoutFace: number;
  msPerFace: number;
  /** Similarity of the frames' largest face to the new identity, before and after. */
  identity?: IdentitySummary;
}

/** Change the person in `cleanPath` to the face in `identityPhoto`; writes `outPath` (audio kept). */
export async function swapIdentityInClip(cleanPath: string, identityPhoto: string, outPath: string, opts: SwapClipOptions = {}): Promise<SwapClipResult> {
  const device = opts.device ?? 'auto';
  const info = await probeVideo(cleanPath);
  const log: Logger = opts.log ? { info: opts.log, warn: (m) => opts.log!(`warning: ${m}`), debug: () => {} } : silentLogger;
  const options: RestoreOptions = {
    input: cleanPath,
    out: outPath,
    reportDir: '',
    identity: [identityPhoto],
    crf: opts.crf ?? 16,
    preset: 'medium',
    device,
    backends: { swap: opts.backend ?? 'mesh' },
    concurrency: 1,
    thumbnails: 0,
    json: false,
    quiet: true,
    progress: false,
    ...(opts.maxFrames ? { maxFrames: opts.maxFrames } : {}),
  };
  const ac = new AbortController();
  const runCtx: RunContext = { signal: ac.signal, device: device === 'cuda' ? 'cuda' : 'cpu', log, video: info, options, reportDir: '' };
  const analyzer = await FaceAnalyzer.create({ device });
  const faces = await createFacesStage(options, { device, log, analyzer });
  const swap = await createSwapStage({ ...options, analyzer }, runCtx);
  opts.log?.(`swap-identity: ${swap.backend} (${swap.report().reason}), ${cleanPath} → ${outPath}`);
  const enc = await VideoEncoder.open({ out: outPath, width: info.width, height: info.height, fps: info.fps, audioFrom: info, colour: info.colour, crf: options.crf, signal: ac.signal });
  async function* source(): AsyncGenerator<FrameItem> {
    for await (const f of decodeFrames(info, { maxFrames: opts.maxFrames, signal: ac.signal })) {
      const frame = { width: f.width, height: f.height, data: f.data };
      yield { index: f.index, time: f.time, frame, input: frame };
    }
  }
  let frames = 0;
  try {
    for await (const item of swap.run(faces.run(source(), runCtx), runCtx)) {
      await enc.write(item.frame);
      frames++;
    }
    await enc.finish();
  } catch (e) {
    ac.abort();
    await enc.abort();
    throw e;
  }
  const rep = swap.report();
  const d = (rep.details ?? {}) as { facesSwapped?: number; framesWithoutFace?: number; msPerFace?: number; identity?: IdentitySummary };
  if (!d.facesSwapped) throw inputError(`${cleanPath}: no face found in any frame`, 'the identity swap needs a visible face');
  return {
    backend: rep.backend,
    frames,
    facesSwapped: d.facesSwapped,
    framesWithoutFace: d.framesWithoutFace ?? 0,
    msPerFace: d.msPerFace ?? 0,
    identity: d.identity,
  };
}

