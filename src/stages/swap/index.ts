/**
 * The identity-swap stage: turn every face in the frame back into the person of the
 * `--identity` photos.
 *
 * Backends (opts.backends.swap): 'inswapper' | 'simswap' | 'ghost' (model files the user
 * installs, see MODEL-CONTRACTS.md), 'mesh' (embedded, classical: src/stages/swap/mesh.ts),
 * 'auto' (the first installed model backend whose embedder/converter are installed too,
 * else 'mesh'), 'none'. Without --identity the stage is skipped and says so.
 *
 * Per frame it publishes `idSimBefore` / `idSimAfter` (cosine of the identity's descriptor and
 * the largest face's descriptor before and after the swap) in item.values, and a summary in
 * the stage report.
 */
import { modelError, usageError } from '../../errors.js';
import type { RgbFrame } from '../../media/frame.js';
import { FaceAnalyzer } from '../../faces/analyzer.js';
import { createDescriptor, type FaceDescriptor } from '../../faces/descriptor.js';
import { loadIdentity, readImage, type Identity } from '../../faces/identity.js';
import type { Face } from '../../faces/types.js';
import { ID_SIM_AFTER, ID_SIM_BEFORE, largestFace, summarizeIdentity, cosine, type IdentitySample } from '../../metrics/identity.js';
import { getEntry } from '../../models/manifest.js';
import { isInstalled } from '../../models/registry.js';
import type { DeviceRequest } from '../../models/session.js';
import { skippedStage, StageStats, mapOrdered } from '../kit.js';
import type { FrameItem, RestoreOptions, RunContext, Stage } from '../types.js';
import { meshSwap, prepareMeshSource, type MeshSource, type MeshSwapState } from './mesh.js';
import { checkChoice, skip, willRun, type StageModule, type StagePlan } from '../module.js';
import { openSwapModel, swapModelNames, type SwapModel, type SwapModelFiles } from './models.js';
import { meshSmoother, smoothLargest } from './smooth.js';

/** The run's shared face services; made here when absent (tests, one-off use). */
export interface SwapServices {
  analyzer?: FaceAnalyzer;
  descriptor?: FaceDescriptor;
}

export type SwapBackendName = 'auto' | 'inswapper' | 'simswap' | 'ghost' | 'mesh' | 'none';
export const SWAP_BACKENDS: SwapBackendName[] = ['auto', 'inswapper', 'simswap', 'ghost', 'mesh', 'none'];

/** Swap options beyond RestoreOptions (the CLI's --identity-face N). */
export interface SwapOptions {
  /** Which face of the identity photo(s) is the identity when a photo shows several (0 = largest). */
  identityFace?: number;
  /** Model files to use instead of the manifest locations (tests, `--model` overrides). */
  files?: SwapModelFiles;
  /** Measure identity similarity per frame (default true; two descriptor runs per frame). */
  measure?: boolean;
}

/** One ready swapper: swaps one face of a frame. */
export interface Swapper {
  backend: string;
  /** Why this backend ran. */
  reason: string;
  swapFace(frame: RgbFrame, face: Face): Promise<RgbFrame>;
}

/** Model entries a model backend could use now (the file, its embedder and converter installed). */
export function usableModelEntries(backend: 'inswapper' | 'simswap' | 'ghost'): string[] {
  return swapModelNames(backend).filter((name) => {
    if (!isInstalled(name)) return false;
    const c = getEntry(name).contract.identity;
    if (!isInstalled(c?.embedder ?? 'arcface_w600k_r50')) return false;
    return !c?.converter || isInstalled(c.converter);
  });
}

/** How far a face turns away from frontal: |nose offset from the eye midpoint| / eye distance. */
export function yawScore(five: { x: number; y: number }[]): number {
  const [re, le, nose] = five;
  const mx = (re.x + le.x) / 2, my = (re.y + le.y) / 2;
  const ex = le.x - re.x, ey = le.y - re.y;
  const d = Math.hypot(ex, ey) || 1;
  // component of (nose - eye midpoint) along the eye line
  return Math.abs(((nose.x - mx) * ex + (nose.y - my) * ey) / d) / d;
}

/** Mesh swapper for an identity: warps the most frontal identity photo's face (ties: the larger face). */
export function meshSwapper(identity: Identity, reason: string): Swapper {
  const withMesh = identity.photos.filter((p) => p.face.mesh);
  const photo = withMesh.sort((a, b) => yawScore(a.face.five) - yawScore(b.face.five) || b.face.box.width - a.face.box.width)[0];
  if (!photo) {
    throw modelError(
      `identity photo ${identity.photos[0].path}: the face mesh is not confident enough for the mesh swap`,
      'use a sharper, more frontal photo of the face',
    );
  }
  const source: MeshSource = prepareMeshSource(photo.frame, photo.face);
  const states = new Map<number, MeshSwapState>();
  return {
    backend: 'mesh',
    reason,
    async swapFace(frame, face) {
      if (!face.mesh) return frame;
      const key = face.trackId ?? -1;
      if (!states.has(key)) states.set(key, {});
      return meshSwap(frame, face.mesh, source, { state: states.get(key) }).frame;
    },
  };
}

/** Model swapper: the identity's ArcFace embeddings averaged, mapped into the model's space. */
export async function modelSwapper(model: SwapModel, identity: Identity, reason: string): Promise<Swapper> {
  const embs: Float32Array[] = [];
  for (const p of identity.photos) embs.push(await model.embed(p.frame, p.face.five));
  const acc = new Float32Array(embs[0].length);
  for (const e of embs) for (let i = 0; i < acc.length; i++) acc[i] += e[i] / embs.length;
  const latent = await model.sourceLatent(acc);
  return { backend: model.name, reason, swapFace: (frame, face) => model.swapFace(frame, face, latent) };
}

/** Choose and open the swapper for a backend name. */
export async function openSwapper(
  backend: SwapBackendName,
  identity: Identity,
  opts: { device?: DeviceRequest; log?: (m: string) => void; files?: SwapModelFiles } = {},
): Promise<Swapper> {
  if (backend === 'mesh') return meshSwapper(identity, 'mesh backend requested');
  if (backend === 'none') throw usageError('openSwapper: backend none swaps nothing');
  const tryModels = async (b: 'inswapper' | 'simswap' | 'ghost', names: string[]) => {
    let last: unknown;
    for (const name of names) {
      try {
        const m = await openSwapModel(name, { device: opts.device, log: opts.log, files: opts.files });
        return await modelSwapper(m, identity, backend === 'auto' ? `${name} is installed (auto picks inswapper, simswap, ghost, then mesh)` : `${b} backend requested`);
      } catch (e) {
        last = e;
      }
    }
    throw last;
  };
  if (backend === 'auto') {
    for (const b of ['inswapper', 'simswap', 'ghost'] as const) {
      const names = usableModelEntries(b);
      if (!names.length) continue;
      try {
        return await tryModels(b, names);
      } catch (e) {
        opts.log?.(`swap: ${b} is installed but could not be used (${(e as Error).message.split('\n')[0]}); trying the next backend`);
      }
    }
    return meshSwapper(
      identity,
      'no swap model installed (inswapper_128, simswap_256/512, ghost_*_256 with arcface_w600k_r50 and their converters): embedded mesh swap',
    );
  }
  const names = opts.files?.model ? swapModelNames(backend).slice(0, 1) : swapModelNames(backend).filter(isInstalled);
  if (!names.length) {
    throw modelError(
      `swap backend '${backend}' needs one of ${swapModelNames(backend).join(', ')}, and none is installed`,
      `restore models add <file.onnx> --as ${swapModelNames(backend)[0]}, or use --swap mesh`,
    );
  }
  return tryModels(backend, names);
}

/** Largest face first, then the rest (so values describe the main face). */
function facesToSwap(faces: Face[]): Face[] {
  return [...faces].sort((a, b) => b.box.width * b.box.height - a.box.width * a.box.height);
}

/**
 * The swap stage. `ctx` needs `device` and `log` (RunContext or the stage-build context).
 */
export async function createSwapStage(
  opts: RestoreOptions & SwapOptions,
  ctx: Pick<RunContext, 'device' | 'log'> & Partial<RunContext> & SwapServices,
): Promise<Stage> {
  const plan = swapStage.plan(opts, { width: 0, height: 0 }) as StagePlan;
  if (!plan.run) return skippedStage('swap', plan.reason);
  const want = (opts.backends?.swap ?? 'auto') as SwapBackendName; // auto keeps its fallbacks at open
  const identityPhotos = opts.identity!;
  const device: DeviceRequest = ctx.device ?? opts.device ?? 'auto'; // the run's env first, as every stage
  const log = (m: string) => ctx.log.info(m);
  const analyzer = ctx.analyzer ?? (await FaceAnalyzer.create({ device, log: (m) => ctx.log.debug(m) }));
  const descriptor: FaceDescriptor = ctx.descriptor ?? (await createDescriptor({ device, log: (m) => ctx.log.debug(m) }));
  const identity = await loadIdentity(identityPhotos, { analyzer, descriptor, identityFace: opts.identityFace });
  const swapper = await openSwapper(want, identity, { device, log, files: opts.files });
  ctx.log.info(`swap: ${swapper.backend} (${swapper.reason}); identity from ${identity.photos.length} photo(s), similarity by ${descriptor.label}`);
  const measure = opts.measure ?? true;
  const stats = new StageStats();
  const samples: IdentitySample[] = [];
  let faces = 0, swapMs = 0, framesWithoutFace = 0, facesWithoutMesh = 0;
  // without a faces stage before this one, faces are found here and the main face's mesh is smoothed
  const smoother = meshSmoother(0.5);
  let selfDetected = 0;
  const process = async (item: FrameItem): Promise<FrameItem> => {
    if (!item.faces) {
      item.faces = smoothLargest(await analyzer.analyze(item.frame), smoother);
      selfDetected++;
    }
    const found = item.faces;
    if (!found.length) {
      framesWithoutFace++;
      return item;
    }
    const main = largestFace(found)!;
    const before = measure ? cosine(identity.descriptor, await descriptor.describe(item.frame, main.five)) : NaN;
    let frame = item.frame;
    for (const f of facesToSwap(found)) {
      if (swapper.backend === 'mesh' && !f.mesh) {
        facesWithoutMesh++; // the mesh swap needs the 468 landmarks; the face is left as it is
        continue;
      }
      const t0 = performance.now();
      frame = await swapper.swapFace(frame, f);
      swapMs += performance.now() - t0;
      faces++;
    }
    item.frame = frame;
    if (measure) {
      const after = cosine(identity.descriptor, await descriptor.describe(frame, main.five));
      samples.push({ index: item.index, before, after });
      item.values = { ...(item.values ?? {}), [ID_SIM_BEFORE]: +before.toFixed(4), [ID_SIM_AFTER]: +after.toFixed(4) };
    }
    return item;
  };
  return {
    name: 'swap',
    backend: swapper.backend,
    run(input) {
      return mapOrdered(
        input,
        async (item) => {
          const out = await stats.time(() => process(item));
          stats.frames++;
          return out;
        },
        1,
      );
    },
    report: () =>
      stats.report({
        name: 'swap',
        backend: swapper.backend,
        ran: true,
        reason: swapper.reason,
        details: {
          identityPhotos: identity.photos.map((p) => p.path),
          facesSwapped: faces,
          framesWithoutFace,
          facesWithoutMesh,
          framesDetectedHere: selfDetected,
          msPerFace: faces ? +(swapMs / faces).toFixed(2) : 0,
          ...(measure ? { identity: summarizeIdentity(samples, identity.descriptorLabel) } : {}),
        },
      }),
  };
}

/**
 * The swap stage's module (src/stages/module.ts). Model backends take the manifest's
 * face-swap entries of their family (swapModelNames); a missing file is a model error at plan
 * time, before any model of any stage is opened.
 */
export const swapStage: StageModule = {
  name: 'swap',
  key: 'swap',
  flag: '--swap',
  choices: () => ({ builtin: SWAP_BACKENDS, families: [], models: [] }),
  plan(opts: RestoreOptions & SwapOptions) {
    const want = (opts.backends?.swap ?? 'auto') as SwapBackendName;
    checkChoice(swapStage, want);
    if (want === 'none') return skip('swap', 'swap backend none requested');
    if (!opts.identity?.length) return skip('swap', 'no --identity photo given: the face is left as it is');
    if ((want === 'inswapper' || want === 'simswap' || want === 'ghost') && !opts.files?.model && !swapModelNames(want).some(isInstalled)) {
      throw modelError(
        `swap backend '${want}' needs one of ${swapModelNames(want).join(', ')}, and none is installed`,
        `restore models add <file.onnx> --as ${swapModelNames(want)[0]}, or use --swap mesh`,
      );
    }
    if (want !== 'auto') return willRun('swap', want, 'requested', {});
    // auto: the first model backend with an installed file (inswapper, simswap, ghost), else the mesh swap
    const first = (['inswapper', 'simswap', 'ghost'] as const).find((x) => usableModelEntries(x).length);
    return willRun('swap', first ?? 'mesh', first ? `auto: ${first} is installed (mesh if it cannot be opened)` : 'auto: no swap model installed, the embedded mesh swap', {});
  },
  open: async (_plan, opts, env) =>
    createSwapStage(opts, { device: env.device, log: env.log, analyzer: await env.services.analyzer(), descriptor: await env.services.descriptor() }),
};
