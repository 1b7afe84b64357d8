/**
 * `restore degrade --swap-identity OTHER.jpg`: change the person in a clean clip to the face
 * of OTHER.jpg (the identity-swap damage of a benchmark case), with the best available swap
 * backend: the embedded mesh swap by default (deterministic, needs no model file); 'auto'
 * uses an installed swap model when there is one.
 *
 * It is the restore pipeline run with a two-stage plan (faces, then swap): the same planning,
 * stage opening and stream/encode as a restore run (audio kept).
 */
import { inputError } from '../errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import { probeVideo } from '../media/probe.js';
import type { DeviceRequest } from '../models/session.js';
import type { RestoreOptions, RunContext } from '../stages/types.js';
import type { SwapBackendName } from '../stages/swap/index.js';
import { createServices, openStages, planStages, videoForPlan } from './plan.js';
import { streamAndEncode } from './stream.js';
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
  // The restore pipeline itself, with a two-stage plan: faces (detect, mesh, track, smooth) → swap.
  const planned = await planStages(options, videoForPlan(info), ['faces', 'swap']);
  const stages = await openStages(planned, options, { device, log, signal: ac.signal, video: info, reportDir: '', services: createServices(device, log) });
  const swap = stages.find((st) => st.name === 'swap')!;
  opts.log?.(`swap-identity: ${swap.backend} (${swap.report().reason}), ${cleanPath} → ${outPath}`);
  const runCtx: RunContext = { signal: ac.signal, device, log, video: info, options, reportDir: '' };
  const streamed = await streamAndEncode({ video: info, stages, ctx: runCtx, out: outPath, crf: options.crf, maxFrames: opts.maxFrames });
  await streamed.encoder.commit();
  const frames = streamed.frames;
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

