/** Per-face cost of a swap backend on a fixture photo (for `npm run bench`). */
import { modelError } from '../errors.js';
import { FaceAnalyzer } from '../faces/analyzer.js';
import { createDescriptor } from '../faces/descriptor.js';
import { loadIdentity, readImage } from '../faces/identity.js';
import { largestFace } from '../metrics/identity.js';
import type { DeviceRequest } from '../models/session.js';
import { openSwapper, type SwapBackendName } from '../stages/swap/index.js';
import type { SwapModelFiles } from '../stages/swap/models.js';

/**
 * Time one swap backend per face on the astronaut fixture with a given identity photo, for
 * `npm run bench`: returns the mean wall and CPU (all threads of the process) ms per face over
 * `iterations` runs after one warm-up. Model backends need their files installed (or `files`).
 */
export async function benchSwapBackend(
  backend: Exclude<SwapBackendName, 'none' | 'auto'>,
  opts: { device?: DeviceRequest; identityPhoto: string; targetPhoto: string; iterations?: number; files?: SwapModelFiles },
): Promise<{ backend: string; msPerFace: number; cpuMsPerFace: number; iterations: number; faceWidth: number }> {
  const device = opts.device ?? 'auto';
  const analyzer = await FaceAnalyzer.create({ device });
  const descriptor = await createDescriptor({ device });
  const identity = await loadIdentity([opts.identityPhoto], { analyzer, descriptor });
  const swapper = await openSwapper(backend, identity, { device, files: opts.files });
  const target = await readImage(opts.targetPhoto);
  const face = largestFace(await analyzer.analyze(target));
  if (!face) throw modelError(`bench: no face in ${opts.targetPhoto}`);
  await swapper.swapFace(target, face);
  const n = opts.iterations ?? 5;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await swapper.swapFace(target, face);
  const cpu = process.cpuUsage(c0);
  return {
    backend: swapper.backend,
    msPerFace: +((performance.now() - t0) / n).toFixed(2),
    cpuMsPerFace: +((cpu.user + cpu.system) / 1000 / n).toFixed(2),
    iterations: n,
    faceWidth: Math.round(face.box.width),
  };
}
