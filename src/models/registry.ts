/**
 * The model registry: where each manifest entry's file is, whether it is installed, turning
 * embedded npm models into ONNX on first use (cached in modelsDir() keyed by the source hash),
 * opening sessions with the contract checked at load time, and verifying files.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, readdir, unlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { modelError, usageError } from '../errors.js';
import { writeFileAtomic } from '../media/encode.js';
import { checkContract, probeContract, sessionTensors, type BoundTensor } from './contract.js';
import { getEntry, isEmbedded, loadManifest, type ModelEntry, type ModelTask } from './manifest.js';
import { modelsDir } from '../util/paths.js';
import { ensureMediapipeOnnx, mediapipeSource, sourceHash as mediapipeHash, type MediapipeModel } from './tflite/mediapipe.js';
import { loadSession, ort, type DeviceRequest, type LoadedSession } from './session.js';

const require = createRequire(import.meta.url);

/** A converter turns an embedded npm model into ONNX bytes. */
export type Converter = (entry: ModelEntry, sourceFile: string, log?: (m: string) => void) => Promise<Uint8Array>;

/**
 * How embedded models of one `source.converter` kind are found and made: `convert` makes the
 * ONNX bytes (cached by the registry as <stem>.<source hash>.onnx), or `path` + `ensure` use a
 * cache the converting module keeps itself (MediaPipe: modelsDir()/mediapipe/).
 */
export interface EmbeddedHandler {
  convert?: Converter;
  path?(entry: ModelEntry): string | undefined;
  ensure?(entry: ModelEntry, log?: (m: string) => void): Promise<string>;
}

const handlers = new Map<string, EmbeddedHandler>([
  ['tfjs-layers', { convert: async (e, src) => (await import('./tfjs-layers.js')).convertTfjsLayers(src, { label: e.name }) }],
  ['ncnn', { convert: async (e, src) => (await import('./ncnn/convert.js')).convertNcnnFile(src, { label: e.name }) }],
  [
    'tfjs-graph',
    {
      convert: async (e, src) => {
        const { convertTfjsGraphFile } = await import('./tfjs-graph/convert.js');
        const outputs = (e.source as { outputs?: string[] }).outputs;
        return convertTfjsGraphFile(src, { batch: 1, ...(outputs ? { outputs } : {}) }).bytes;
      },
    },
  ],
  [
    'tflite',
    {
      path: (e) => {
        try {
          const { bytes } = mediapipeSource(e.name as MediapipeModel);
          return path.join(modelsDir(), 'mediapipe', `${e.name}-${mediapipeHash(bytes)}.onnx`);
        } catch {
          return undefined;
        }
      },
      ensure: (e, log) => ensureMediapipeOnnx(e.name as MediapipeModel, log),
    },
  ],
]);

/** Register (or replace) the handler for a `source.converter` kind. */
export function registerEmbeddedHandler(kind: string, h: EmbeddedHandler): void {
  handlers.set(kind, h);
}

/** An installed npm package's folder (works for packages whose "exports" hide package.json). */
export function packageDir(name: string): string | undefined {
  for (const base of require.resolve.paths(name) ?? []) {
    const d = path.join(base, name);
    if (existsSync(path.join(d, 'package.json'))) return d;
  }
  return undefined;
}

/** Absolute path of a file inside an npm package, or undefined when the package is absent. */
export function npmSourceFile(entry: ModelEntry): string | undefined {
  if (!isEmbedded(entry)) return undefined;
  const root = packageDir(entry.source.package);
  if (!root) return undefined;
  const p = path.join(root, entry.source.path);
  if (p.endsWith('.param') && !existsSync(p.replace(/\.param$/, '.bin'))) return undefined; // ncnn: both halves
  return existsSync(p) ? p : undefined;
}

/** The bytes the source hash covers: the file, plus a TF.js model's weight shards or an ncnn .param's .bin. */
function sourceFiles(entry: ModelEntry, file: string): string[] {
  if (isEmbedded(entry) && file.endsWith('.param')) return [file, file.replace(/\.param$/, '.bin')];
  if (isEmbedded(entry) && file.endsWith('.json')) {
    const json = JSON.parse(readFileSync(file, 'utf8'));
    const shards: string[] = (json.weightsManifest ?? []).flatMap((g: { paths: string[] }) => g.paths);
    return [file, ...shards.map((s) => path.join(path.dirname(file), s))];
  }
  return [file];
}

const sourceHashCache = new Map<string, string>();
/** sha256 over the embedded model's source bytes (model.json then shards). */
export function sourceHash(entry: ModelEntry): string | undefined {
  const file = npmSourceFile(entry);
  if (!file) return undefined;
  if (!sourceHashCache.has(file)) {
    const h = createHash('sha256');
    for (const f of sourceFiles(entry, file)) h.update(readFileSync(f));
    sourceHashCache.set(file, h.digest('hex'));
  }
  return sourceHashCache.get(file);
}

/** Where a model's ONNX file is (or will be) in modelsDir(). */
export function modelPath(entry: ModelEntry, opts: { fp16?: boolean } = {}): string {
  if (isEmbedded(entry)) {
    const own = handlers.get(entry.source.converter)?.path?.(entry);
    if (own) return own;
    const h = sourceHash(entry) ?? 'missing';
    const stem = entry.file.replace(/\.onnx$/, '');
    return path.join(modelsDir(), `${stem}.${h.slice(0, 12)}.onnx`);
  }
  if (opts.fp16 && entry.fp16) return path.join(modelsDir(), entry.fp16.file);
  return path.join(modelsDir(), entry.file);
}

export type ModelState = 'installed' | 'embedded' | 'missing' | 'unavailable';

export interface ModelStatus {
  entry: ModelEntry;
  path: string;
  /**
   * installed: file present; embedded: ships in npm and is converted on first use;
   * missing: user-supplied file not present; unavailable: embedded but its package/converter is absent.
   */
  state: ModelState;
  note?: string;
}

export function modelStatus(entry: ModelEntry): ModelStatus {
  const p = modelPath(entry);
  if (existsSync(p)) return { entry, path: p, state: 'installed' };
  if (isEmbedded(entry)) {
    if (!npmSourceFile(entry)) {
      const note = entry.source.optional
        ? `optional: npm i ${entry.source.package} (not a dependency; see README "Models" for its licence)`
        : `npm package ${entry.source.package} is not installed`;
      return { entry, path: p, state: 'unavailable', note };
    }
    if (!handlers.has(entry.source.converter)) {
      return { entry, path: p, state: 'unavailable', note: `no '${entry.source.converter}' converter is registered` };
    }
    return { entry, path: p, state: 'embedded', note: `converted from ${entry.source.package} on first use` };
  }
  return { entry, path: p, state: 'missing', note: howToAdd(entry) };
}

/**
 * Whether a model's ONNX file is in the models folder now (a user file added, or an embedded
 * model already converted); an unknown name is not installed. The one "is it installed?".
 */
export function isInstalled(model: string | ModelEntry): boolean {
  let entry: ModelEntry;
  try {
    entry = typeof model === 'string' ? getEntry(model) : model;
  } catch {
    return false;
  }
  return modelStatus(entry).state === 'installed';
}

export function howToAdd(entry: ModelEntry): string {
  const pull = entry.urls.length ? `restore models pull ${entry.name}` : undefined;
  const add = `restore models add <file.onnx> --as ${entry.name}`;
  return pull ? `${pull}, or ${add}` : `${add} (${entry.source.kind === 'user' ? entry.source.how : 'no published ONNX'})`;
}

/**
 * Models usable now: files present, plus embedded ones that can be converted. With
 * `embedded: false` only the user-supplied ones are looked at (an embedded model's path needs
 * the hash of its npm source, tens of MB for the RRDN weights: about 0.2 s at start-up).
 */
export async function installedModels(task?: ModelTask, opts: { embedded?: boolean } = {}): Promise<{ entry: ModelEntry; path: string; embedded: boolean }[]> {
  return loadManifest()
    .filter((e) => !task || e.task === task)
    .filter((e) => opts.embedded !== false || !isEmbedded(e))
    .map(modelStatus)
    .filter((s) => s.state === 'installed' || s.state === 'embedded')
    .map((s) => ({ entry: s.entry, path: s.path, embedded: isEmbedded(s.entry) }));
}

const converting = new Map<string, Promise<string>>();

/** The model's ONNX file, converting an embedded model on first use. */
export function ensureModelFile(entry: ModelEntry, log?: (m: string) => void): Promise<string> {
  const p = modelPath(entry);
  if (existsSync(p)) return Promise.resolve(p);
  if (!isEmbedded(entry)) {
    return Promise.reject(modelError(`model ${entry.name} is not installed (${p} not found)`, howToAdd(entry)));
  }
  if (!converting.has(p)) {
    const job = (async () => {
      const src = npmSourceFile(entry);
      if (!src) {
        throw modelError(
          `embedded model ${entry.name}: npm package ${entry.source.package} is not installed`,
          entry.source.optional ? `it is optional: npm i ${entry.source.package} (see README "Models" for its licence)` : 'run npm install',
        );
      }
      const h = handlers.get(entry.source.converter);
      if (h?.ensure) return h.ensure(entry, log);
      if (!h?.convert) throw modelError(`embedded model ${entry.name}: no '${entry.source.converter}' converter is available`);
      const t0 = performance.now();
      const bytes = await h.convert(entry, src, log);
      await mkdir(path.dirname(p), { recursive: true });
      await writeFileAtomic(p, bytes);
      log?.(`${entry.name}: converted ${entry.source.package}/${entry.source.path} to ONNX in ${Math.round(performance.now() - t0)} ms (${p})`);
      // stale conversions of older package versions
      const stem = entry.file.replace(/\.onnx$/, '');
      for (const f of await readdir(path.dirname(p))) {
        if (f.startsWith(`${stem}.`) && f.endsWith('.onnx') && path.join(path.dirname(p), f) !== p && /^[0-9a-f]{12}$/.test(f.slice(stem.length + 1, -5))) {
          await unlink(path.join(path.dirname(p), f)).catch(() => undefined);
        }
      }
      return p;
    })();
    converting.set(p, job);
    job.catch(() => converting.delete(p));
  }
  return converting.get(p)!;
}

export interface OpenModelOptions {
  device?: DeviceRequest;
  log?: (m: string) => void;
  threads?: number;
  /** Use the published fp16 variant when the manifest lists one and it is installed. */
  fp16?: boolean;
  /** Open this file instead of the manifest location (models add, tests). */
  file?: string;
}

export interface OpenedModel {
  entry: ModelEntry;
  session: LoadedSession['session'];
  provider: LoadedSession['provider'];
  path: string;
  /** Contract role → the file's tensor (e.g. inputs.image.name === 'input'). */
  inputs: Record<string, BoundTensor>;
  outputs: Record<string, BoundTensor>;
}

/**
 * Open a model's session with its contract checked against the file. Throws a model error
 * naming the file and the first mismatch (all of them in the hint) when it does not fit.
 */
export async function openModel(name: string | ModelEntry, opts: OpenModelOptions = {}): Promise<OpenedModel> {
  const entry = typeof name === 'string' ? getEntry(name) : name;
  let file = opts.file;
  if (!file && opts.fp16 && entry.fp16 && existsSync(modelPath(entry, { fp16: true }))) file = modelPath(entry, { fp16: true });
  file ??= await ensureModelFile(entry, opts.log);
  if (!existsSync(file)) throw modelError(`model ${entry.name}: ${file} not found`, howToAdd(entry));
  if (entry.size && !opts.file && file === modelPath(entry)) {
    const size = statSync(file).size;
    if (size !== entry.size) {
      throw modelError(`model ${entry.name}: ${file} is ${size} bytes, the manifest says ${entry.size} (truncated or a different file)`, `re-download: restore models pull ${entry.name}`);
    }
  }
  const loaded = await loadSession(file, { device: opts.device ?? 'auto', log: opts.log, threads: opts.threads });
  const check = checkContract(entry.contract, sessionTensors(loaded.session));
  // Dimensions the contract fixes but the file leaves open: accepted only when it runs like the contract says.
  if (check.ok && check.open.length) check.problems.push(...(await probeOnce(entry, file, check, loaded.session)));
  check.ok = check.problems.length === 0;
  if (!check.ok) {
    throw modelError(
      `model ${entry.name} (${file}) does not match its contract: ${check.problems[0]}`,
      check.problems.length > 1 ? `${check.problems.length - 1} more: ${check.problems.slice(1).join('; ')}` : `check that this file is ${entry.name}; 'restore models verify ${entry.name}' lists the expected tensors`,
    );
  }
  return { entry, session: loaded.session, provider: loaded.provider, path: file, inputs: check.inputs, outputs: check.outputs };
}

const probed = new Map<string, Promise<string[]>>();

/** probeContract once per file version (size and mtime) and entry. */
function probeOnce(entry: ModelEntry, file: string, check: Parameters<typeof probeContract>[1], session: LoadedSession['session']): Promise<string[]> {
  let tag = '';
  try {
    const st = statSync(file);
    tag = `${st.size}:${st.mtimeMs}`;
  } catch {
    /* gone: probe anyway */
  }
  const key = `${entry.name}|${file}|${tag}`;
  if (!probed.has(key)) probed.set(key, probeContract(entry.contract, check, session, ort));
  return probed.get(key)!;
}

/** sha256 of a file, streamed. */
export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export interface VerifyResult {
  name: string;
  path: string;
  ok: boolean;
  problems: string[];
  /** Worth saying but not a failure: an embedded model's npm source differs from the hash the manifest pins. */
  warnings?: string[];
  sha256?: string;
  size?: number;
  inputs?: Record<string, { name: string; dims: (number | string)[]; dtype: string }>;
  outputs?: Record<string, { name: string; dims: (number | string)[]; dtype: string }>;
}

/**
 * Check a model file: presence, size and sha256 (when the manifest knows them), that ONNX
 * Runtime loads it, and its tensors against the contract. `nameOrPath` is a manifest name, or
 * a file path (then `as` names the entry; default: the entry whose file name matches).
 */
export async function verifyModel(nameOrPath: string, opts: { as?: string; log?: (m: string) => void } = {}): Promise<VerifyResult> {
  let entry: ModelEntry;
  let file: string;
  const isPath = nameOrPath.includes('/') || nameOrPath.includes(path.sep) || (nameOrPath.endsWith('.onnx') && existsSync(nameOrPath));
  if (isPath) {
    file = path.resolve(nameOrPath);
    const base = path.basename(file);
    const found = opts.as ? getEntry(opts.as) : loadManifest().find((e) => e.file === base || (e.fp16 && e.fp16.file === base));
    if (!found) throw usageError(`cannot tell which model ${file} is`, `name it: restore models verify ${nameOrPath} --as NAME`);
    entry = found;
  } else {
    entry = getEntry(nameOrPath);
    file = modelPath(entry);
    if (!existsSync(file) && isEmbedded(entry)) {
      try {
        file = await ensureModelFile(entry, opts.log);
      } catch (e) {
        return { name: entry.name, path: file, ok: false, problems: [(e as Error).message] };
      }
    }
  }
  const problems: string[] = [];
  const res: VerifyResult = { name: entry.name, path: file, ok: false, problems };
  if (!existsSync(file)) {
    problems.push(`${file} not found (${howToAdd(entry)})`);
    return res;
  }
  res.size = statSync(file).size;
  const fp16 = entry.fp16 && path.basename(file) === entry.fp16.file;
  if (!fp16 && entry.size && res.size !== entry.size) problems.push(`size ${res.size} bytes, the manifest says ${entry.size} (truncated or a different file)`);
  res.sha256 = await sha256File(file);
  if (!fp16 && entry.sha256 && res.sha256 !== entry.sha256) problems.push(`sha256 ${res.sha256.slice(0, 16)}… does not match the manifest's ${entry.sha256.slice(0, 16)}…`);
  try {
    const loaded = await loadSession(file, { device: 'cpu' });
    const check = checkContract(entry.contract, sessionTensors(loaded.session));
    problems.push(...check.problems);
    // A file that only names its tensors right is not yet the model: one inference must behave like it.
    if (!check.problems.length) problems.push(...(await probeOnce(entry, file, check, loaded.session)));
    const pick = (r: Record<string, BoundTensor>) =>
      Object.fromEntries(Object.entries(r).map(([k, v]) => [k, { name: v.name, dims: v.dims, dtype: v.dtype }]));
    res.inputs = pick(check.inputs);
    res.outputs = pick(check.outputs);
  } catch (e) {
    problems.push((e as Error).message);
  }
  if (isEmbedded(entry) && entry.source.sha256) {
    const have = sourceHash(entry);
    if (have && have !== entry.source.sha256) {
      res.warnings = [`the npm source of ${entry.name} (${entry.source.package}/${entry.source.path}) has sha256 ${have.slice(0, 16)}…, the manifest pins ${entry.source.sha256.slice(0, 16)}… (another package version?)`];
    }
  }
  res.ok = problems.length === 0;
  return res;
}
