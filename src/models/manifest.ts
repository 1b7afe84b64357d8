/**
 * The model manifest (models/onnx/models.json): one entry per model with its file, hash,
 * published URLs, where it comes from (user-supplied or converted from an npm package) and
 * its contract (tensor names/roles, shapes, dtypes, layout, colour order, value range, crop
 * size, alignment template, tiling). Contracts are data; src/models/contract.ts checks them
 * against a file's real inputs and outputs.
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { modelError, usageError } from '../errors.js';
import { modelsDir, packageRoot } from '../util/paths.js';

export type ModelTask =
  | 'face-restore'
  | 'upscale'
  | 'inpaint'
  | 'face-swap'
  | 'identity-convert'
  | 'face-embed'
  | 'face-detect'
  | 'face-landmarks';

export type TensorDtype = 'float32' | 'float64' | 'float16' | 'int64' | 'int32' | 'uint8' | 'bool';

/** number = must equal the file's number (when the file states one); string or null = any. */
export type DimSpec = number | string | null;

export interface TensorSpec {
  /** What the tensor is for: 'image', 'target', 'source', 'mask', 'latent', 'weight', 'embedding', ... */
  role: string;
  /** Exact tensor name (or accepted names). Absent: bound by rank/position among unnamed tensors. */
  name?: string | string[];
  /** Expected shape; null = rank not fixed by the contract. */
  dims: DimSpec[] | null;
  dtype: TensorDtype;
  /** May be missing from the file (fed only when present), e.g. GPEN's `weight`. */
  optional?: boolean;
  layout?: 'NCHW' | 'NHWC';
  color?: 'RGB' | 'BGR';
  /** Value range of an image tensor, or 'imagenet' ((x/255 - mean)/std). */
  range?: [number, number] | 'imagenet';
  mean?: number[];
  std?: number[];
  /** Mask polarity: which value marks a hole. */
  polarity?: 'hole=1' | 'keep=1';
  /** Embedding normalization the model expects. */
  normalize?: string;
  /** Default value fed to a scalar extra input (e.g. CodeFormer fidelity weight). */
  value?: number;
  note?: string;
}

export interface TilingSpec {
  /** Tile edge in input pixels. */
  tile: number;
  /** Overlap margin in input pixels dropped from each interior tile edge. */
  overlap: number;
  /** Input H and W must be a multiple of this (pad, then crop the output back). */
  multiple: number;
  pad: 'reflect' | 'replicate' | 'zero';
  /** Exports that only run at their export size: every tile is fed at exactly `tile`. */
  staticExportSize?: boolean;
}

export interface Contract {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /** Square crop size of face models. */
  crop?: number;
  /** Alignment template name (src/faces/align.ts TEMPLATES). */
  template?: string;
  /** Upscale factor of super-resolution models. */
  scale?: number;
  tiling?: TilingSpec;
  /** Default blend of restored with original (face restoration). */
  blend?: number;
  /** Input sizes must be a multiple of this (inpainting). */
  multiple?: number;
  /** Identity-swap source: which embedder and converter feed it. */
  identity?: { embedder?: string; converter?: string; emap?: string; note?: string };
}

export type ModelSource =
  | { kind: 'user'; how: string }
  | {
      kind: 'npm';
      package: string;
      /** File inside the package (model.json, .tflite, packed asset). */
      path: string;
      member?: string;
      /** Which converter turns it into ONNX: 'tfjs-layers' (src/models/tfjs-layers.ts), 'tflite' (src/models/tflite), 'ncnn' (src/models/ncnn; path = the .param, its .bin beside it). */
      converter: string;
      /** Not a dependency of this project: usable only when the user installs the package (licence differs). */
      optional?: boolean;
      sha256?: string;
      sha256Of?: string;
    };

export interface ModelEntry {
  name: string;
  task: ModelTask;
  family: string;
  /** File name in modelsDir(). Embedded models are cached as <stem>.<source hash>.onnx. */
  file: string;
  size: number | null;
  sha256: string | null;
  urls: string[];
  license?: string;
  source: ModelSource;
  /** A published fp16 variant, used with --fp16 where present. */
  fp16?: { file: string; urls?: string[] };
  contract: Contract;
}

interface ManifestFile {
  version: number;
  models: ModelEntry[];
}

export function manifestPath(): string {
  return path.join(packageRoot, 'models', 'onnx', 'models.json');
}

let cached: { key: string; entries: ModelEntry[] } | undefined;

/**
 * Entries you add yourself: `models.local.json` in the models folder (RESTORE_MODELS_DIR),
 * same format as the package's manifest. A model of a family a stage knows (a second GPEN
 * size, another SwinIR export) needs only an entry here and its file; an entry with the name
 * of a package entry replaces it.
 */
export function localManifestPath(): string {
  return path.join(modelsDir(), 'models.local.json');
}

/** All manifest entries: the package's, then the local ones (re-read when the local file changes). */
export function loadManifest(): ModelEntry[] {
  const local = localManifestPath();
  let stamp = 'none';
  try {
    const st = statSync(local);
    stamp = `${st.mtimeMs}:${st.size}`;
  } catch {
    /* no local manifest */
  }
  const key = `${local}|${stamp}`;
  if (cached?.key === key) return cached.entries;
  const doc = JSON.parse(readFileSync(manifestPath(), 'utf8')) as ManifestFile;
  let entries = doc.models;
  if (stamp !== 'none') {
    let extra: ManifestFile;
    try {
      extra = JSON.parse(readFileSync(local, 'utf8')) as ManifestFile;
    } catch (e) {
      throw modelError(`${local}: not a readable manifest (${(e as Error).message.split('\n')[0]})`, 'fix or remove the file');
    }
    if (!Array.isArray(extra.models)) throw modelError(`${local}: no "models" list`, 'same format as models/onnx/models.json');
    for (const m of extra.models) {
      if (!m || typeof m.name !== 'string' || typeof m.task !== 'string' || typeof m.family !== 'string' || !m.contract || !m.source) {
        throw modelError(`${local}: entry ${JSON.stringify(m?.name ?? '?')} needs name, task, family, file, source and contract`, 'copy an entry of models/onnx/models.json and change it');
      }
    }
    const names = new Set(extra.models.map((m) => m.name));
    entries = [...entries.filter((m) => !names.has(m.name)), ...extra.models];
  }
  cached = { key, entries };
  return entries;
}

export function isEmbedded(e: ModelEntry): e is ModelEntry & { source: Extract<ModelSource, { kind: 'npm' }> } {
  return e.source.kind === 'npm';
}

/** The manifest entry called `name`; a usage error listing the known names otherwise. */
export function getEntry(name: string): ModelEntry {
  const all = loadManifest();
  const e = all.find((m) => m.name === name) ?? all.find((m) => m.name.toLowerCase() === name.toLowerCase());
  if (e) return e;
  const near = all.filter((m) => m.name.includes(name) || name.includes(m.family)).map((m) => m.name);
  throw usageError(
    `unknown model '${name}'`,
    near.length ? `did you mean ${near.slice(0, 5).join(', ')}? ('restore models list' shows all)` : `'restore models list' shows the known models`,
  );
}

/** Entries of one task, in manifest order (which is also preference order). */
export function entriesFor(task: ModelTask): ModelEntry[] {
  return loadManifest().filter((m) => m.task === task);
}
