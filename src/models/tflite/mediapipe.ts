/**
 * MediaPipe's face models as they ship in npm, converted to ONNX on first use and cached in
 * modelsDir()/mediapipe/, keyed by the source's SHA-256 and the converter version.
 */
import { createHash } from 'node:crypto';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { isRestoreError, modelError } from '../../errors.js';
import { modelsDir } from '../../util/paths.js';
import { writeFileAtomic } from '../../media/encode.js';
import { convertTflite, CONVERTER_VERSION, UnsupportedOpError } from './convert.js';

export type MediapipeModel = 'face_detection_short_range' | 'face_detection_full_range' | 'face_landmark';

const require = createRequire(import.meta.url);

function packageDir(pkg: string): string {
  try {
    return path.dirname(require.resolve(`${pkg}/package.json`));
  } catch {
    throw modelError(`npm package ${pkg} is not installed`, 'run npm install');
  }
}

/** The TFLite bytes of a MediaPipe model from its npm package. */
export function mediapipeSource(name: MediapipeModel): { bytes: Uint8Array; origin: string } {
  if (name === 'face_landmark') {
    const dir = packageDir('@mediapipe/face_mesh');
    const loader = path.join(dir, 'face_mesh_solution_packed_assets_loader.js');
    const dataFile = path.join(dir, 'face_mesh_solution_packed_assets.data');
    let js: string;
    try {
      js = readFileSync(loader, 'utf8');
    } catch {
      throw modelError(`${loader} is missing`, 'reinstall @mediapipe/face_mesh');
    }
    const m = /"filename":\s*"[^"]*\/face_landmark\.tflite",\s*"start":\s*(\d+),\s*"end":\s*(\d+)/.exec(js);
    if (!m) throw modelError(`${loader}: no byte range for face_landmark.tflite`, 'this version of @mediapipe/face_mesh packs its assets differently');
    const all = readFileSync(dataFile);
    const start = Number(m[1]), end = Number(m[2]);
    if (end > all.length) throw modelError(`${dataFile} is shorter than its loader says (${all.length} < ${end})`, 'reinstall @mediapipe/face_mesh');
    return { bytes: new Uint8Array(all.buffer, all.byteOffset + start, end - start), origin: `${dataFile}[${start}:${end}]` };
  }
  const dir = packageDir('@mediapipe/face_detection');
  const file = path.join(dir, `${name}.tflite`);
  if (!existsSync(file)) throw modelError(`${file} is missing`, 'reinstall @mediapipe/face_detection');
  const b = readFileSync(file);
  return { bytes: new Uint8Array(b.buffer, b.byteOffset, b.length), origin: file };
}

export function sourceHash(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).update(`tflite2onnx-v${CONVERTER_VERSION}`).digest('hex').slice(0, 16);
}

const inflight = new Map<string, Promise<string>>();

/**
 * Path of the converted ONNX model, converting (once per process, atomically on disk) when
 * the cache has no file for this source hash.
 */
export function ensureMediapipeOnnx(name: MediapipeModel, log?: (m: string) => void): Promise<string> {
  const { bytes, origin } = mediapipeSource(name);
  const hash = sourceHash(bytes);
  const dir = path.join(modelsDir(), 'mediapipe');
  const dest = path.join(dir, `${name}-${hash}.onnx`);
  if (existsSync(dest)) return Promise.resolve(dest);
  const running = inflight.get(dest);
  if (running) return running;
  const p = (async () => {
    const t0 = performance.now();
    let onnx: Uint8Array;
    try {
      onnx = convertTflite(bytes, { label: `${name}.tflite`, docString: `converted by restore from ${path.basename(origin)} sha256/${hash}` }).onnx;
    } catch (e) {
      if (e instanceof UnsupportedOpError) throw modelError(e.message);
      throw modelError(`${origin}: TFLite to ONNX conversion failed (${(e as Error).message})`);
    }
    // (through a temp name of its own: the workers of one process convert the same model at once)
    try {
      await fs.mkdir(dir, { recursive: true });
      await writeFileAtomic(dest, onnx);
    } catch (e: any) {
      const cause = isRestoreError(e) ? (e.cause as any) : e;
      throw modelError(`cannot write the converted model to ${dir} (${cause?.code ?? cause?.message ?? e.message})`, 'set RESTORE_MODELS_DIR to a writable folder');
    }
    log?.(`converted ${name}.tflite to ONNX in ${(performance.now() - t0).toFixed(0)} ms → ${dest}`);
    return dest;
  })();
  inflight.set(dest, p);
  p.finally(() => inflight.delete(dest)).catch(() => undefined);
  return p;
}
