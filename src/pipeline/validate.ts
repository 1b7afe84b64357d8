/**
 * Every run option checked before any work: stage names (whether or not the stage will run),
 * encoder settings, the output name, and output paths that would overwrite one of the inputs.
 * Each failure is one usage error (exit 2); nothing is decoded, loaded or written before.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { modelError, usageError } from '../errors.js';
import { VIDEO_CONTAINERS, X264_PRESETS } from '../media/encode.js';
import { cudaProviderInstalled } from '../models/session.js';
import { QUALITY_PRESETS } from '../stages/upscale/index.js';
import { RESAMPLE_KERNELS } from '../stages/upscale/backproject.js';
import { STAGES } from '../stages/index.js';
import { checkChoice } from '../stages/module.js';
import type { RestoreOptions } from '../stages/types.js';

const DEVICES = ['auto', 'cpu', 'cuda'];

/** Option values alone (no file system): stage names, preset, crf, device, --scale with --size. */
export function validateOptionValues(opts: RestoreOptions): void {
  for (const s of STAGES) checkChoice(s, opts.backends?.[s.key]);
  if (!(X264_PRESETS as readonly string[]).includes(opts.preset)) {
    throw usageError(`--preset must be one of ${X264_PRESETS.join(', ')} (got "${opts.preset}")`);
  }
  if (!(Number.isInteger(opts.crf) && opts.crf >= 0 && opts.crf <= 51)) throw usageError(`--crf must be an integer in [0, 51] (got ${opts.crf})`);
  if (opts.quality !== undefined && !(QUALITY_PRESETS as readonly string[]).includes(opts.quality)) {
    throw usageError(`--quality must be one of ${QUALITY_PRESETS.join(', ')} (got "${opts.quality}")`);
  }
  if (opts.srKernel !== undefined && !(RESAMPLE_KERNELS as readonly string[]).includes(opts.srKernel)) {
    throw usageError(`--sr-kernel must be one of ${RESAMPLE_KERNELS.join(', ')} (got "${opts.srKernel}")`);
  }
  if (!DEVICES.includes(opts.device)) throw usageError(`--device must be one of ${DEVICES.join(', ')} (got "${opts.device}")`);
  if (opts.scale !== undefined && opts.size !== undefined) {
    throw usageError('--scale and --size both set the output size', 'give one of them');
  }
  if (opts.scale !== undefined && !(opts.scale > 0 && opts.scale <= 16)) throw usageError(`--scale must be in (0, 16] (got ${opts.scale})`);
  if (opts.device === 'cuda' && !cudaProviderInstalled()) {
    throw modelError('--device cuda: the CUDA execution provider of onnxruntime-node is not installed', 'see README "GPU", or use --device auto');
  }
}

async function statOrUndefined(p: string) {
  try {
    return await fs.stat(p);
  } catch {
    return undefined;
  }
}

/**
 * The output name: a known container extension and not a folder; and no output (video or
 * report folder files) that resolves to an input file, through links (symbolic or hard) too.
 */
export async function validateOutputTarget(opts: RestoreOptions): Promise<void> {
  const out = opts.out;
  const st = await statOrUndefined(out);
  if (st?.isDirectory() || /[\\/]$/.test(out)) throw usageError(`--out ${out} is a folder`, 'give a file name, e.g. out/clip.restored.mp4');
  const ext = path.extname(out).toLowerCase();
  if (!(VIDEO_CONTAINERS as readonly string[]).includes(ext)) {
    throw usageError(`--out ${out}: ${ext ? `'${ext}' is not a video container the encoder writes` : 'the name has no extension'}`, `end it with ${VIDEO_CONTAINERS.join(', ')}`);
  }
  if (!st) return;
  const inputs: [string, string][] = [
    [opts.input, 'the input video'],
    ...(opts.reference ? [[opts.reference, '--reference'] as [string, string]] : []),
    ...(opts.mask && opts.mask !== 'auto' ? [[opts.mask, '--mask'] as [string, string]] : []),
    ...(opts.identity ?? []).map((f) => [f, '--identity'] as [string, string]),
  ];
  for (const [file, what] of inputs) {
    const s = await statOrUndefined(file);
    if (s && s.dev === st.dev && s.ino === st.ino) {
      throw usageError(`--out ${out} is ${what} (${file})${path.resolve(out) === path.resolve(file) ? '' : ' through a link'}: it would be overwritten`, 'choose another --out');
    }
  }
}
