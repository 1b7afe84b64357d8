/**
 * Finding the videos of a batch and what goes with each: reference, mask, identity photo(s).
 *
 * Three ways, in this order of precedence:
 *  1. An explicit manifest, `restore-batch.json` at the top of the folder (paths relative to it):
 *       { "videos": [ { "input": "a/clip.mp4", "reference": "a/clean.mp4", "mask": "a/m.png",
 *                       "identity": "people/ann.jpg", "name": "ann-1", "options": { "crf": 20 } } ] }
 *     When it exists, only what it lists is run.
 *  2. Case folders: a folder holding `input.<video>` is one job; `reference.<video>`,
 *     `mask.<video|image>` and `identity*.<image>` next to it are its companions (a `case.json`
 *     with a `files` map may name them instead). The job's name is the folder's path.
 *  3. Loose files: every other video `name.ext` is a job; `name.ref.*` / `name.reference.*`
 *     (video), `name.mask.*` (video or image) and `name.identity*.*` (image) next to it pair up.
 *
 * Hidden entries (starting with '.'), node_modules and the batch's own output folder are skipped.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { inputError, usageError } from '../errors.js';
import type { RestoreOptions } from '../stages/types.js';
import { shortHash } from './hash.js';

export const VIDEO_EXTS = ['.mp4', '.mov', '.mkv', '.webm', '.avi', '.m4v'];
export const IMAGE_EXTS = ['.png', '.jpg', '.jpeg', '.webp', '.bmp', '.tif', '.tiff'];
export const MANIFEST_NAME = 'restore-batch.json';

export interface BatchJob {
  /** Stable name: path relative to the batch folder ('/'-separated), without the video extension. */
  id: string;
  /** File-system safe folder name under --out, derived deterministically from `id`. */
  slug: string;
  input: string;
  reference?: string;
  mask?: string;
  identity?: string[];
  /** Per-job option overrides (manifest only). */
  options?: Partial<RestoreOptions>;
  /** How it was found. */
  source: 'manifest' | 'case' | 'file';
}

const isVideo = (f: string) => VIDEO_EXTS.includes(path.extname(f).toLowerCase());
const isImage = (f: string) => IMAGE_EXTS.includes(path.extname(f).toLowerCase());
const toPosix = (p: string) => p.split(path.sep).join('/');

/** Folder name for a job id: safe characters only; a short hash keeps distinct ids distinct. */
export function slugOf(id: string): string {
  const safe = id
    .replace(/[\\/]+/g, '__')
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/^[._]+/, '')
    .slice(0, 80);
  // Clean ids keep a readable folder name ('cases/pan-x4' -> 'cases__pan-x4'); anything that had
  // to be changed otherwise (or already held '__') gets a hash of the id to stay distinct.
  if (safe && !id.includes('__') && safe === id.replace(/\//g, '__')) return safe;
  return `${safe || 'video'}-${shortHash(id, 6)}`;
}

interface Dirent {
  name: string;
  full: string;
  isDir: boolean;
}

async function listDir(dir: string): Promise<Dirent[]> {
  const ents = await fs.readdir(dir, { withFileTypes: true });
  const out: Dirent[] = [];
  for (const e of ents) {
    if (e.name.startsWith('.')) continue;
    const full = path.join(dir, e.name);
    let isDir = e.isDirectory();
    let isFile = e.isFile();
    if (e.isSymbolicLink()) {
      const st = await fs.stat(full).catch(() => undefined);
      isDir = !!st?.isDirectory();
      isFile = !!st?.isFile();
    }
    if (isDir || isFile) out.push({ name: e.name, full, isDir });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Split `a.b.c.mp4` into stem 'a.b.c' and ext '.mp4'. */
function stemOf(name: string): string {
  return name.slice(0, name.length - path.extname(name).length);
}

async function readCaseJson(dir: string): Promise<Record<string, string> | undefined> {
  try {
    const j = JSON.parse(await fs.readFile(path.join(dir, 'case.json'), 'utf8'));
    const files = j?.files;
    if (files && typeof files === 'object') return files as Record<string, string>;
  } catch {
    /* no case.json, or not ours */
  }
  return undefined;
}

async function caseJob(root: string, dir: string, files: Dirent[]): Promise<BatchJob | undefined> {
  const named = await readCaseJson(dir);
  const byStem = (stem: string, ok: (f: string) => boolean) => files.find((f) => !f.isDir && stemOf(f.name) === stem && ok(f.name))?.full;
  const pick = (key: string, stem: string, ok: (f: string) => boolean) => {
    const n = named?.[key];
    if (typeof n === 'string') return path.resolve(dir, n);
    return byStem(stem, ok);
  };
  const input = pick('input', 'input', isVideo);
  if (!input) return undefined;
  const identityNamed = named?.identity;
  const identity =
    typeof identityNamed === 'string'
      ? [path.resolve(dir, identityNamed)]
      : files.filter((f) => !f.isDir && isImage(f.name) && /^identity([._-].*)?$/i.test(stemOf(f.name))).map((f) => f.full);
  const rel = toPosix(path.relative(root, dir)) || path.basename(dir);
  return {
    id: rel,
    slug: slugOf(rel),
    input,
    reference: pick('reference', 'reference', isVideo),
    mask: pick('mask', 'mask', (f) => isVideo(f) || isImage(f)),
    identity: identity.length ? identity : undefined,
    source: 'case',
  };
}

const COMPANION = /\.(ref|reference|mask|identity)([._-][^.]*)?$/i;

function looseJobs(root: string, files: Dirent[]): BatchJob[] {
  const jobs: BatchJob[] = [];
  const plain = files.filter((f) => !f.isDir);
  for (const f of plain) {
    if (!isVideo(f.name)) continue;
    const stem = stemOf(f.name);
    if (COMPANION.test(stem)) continue; // someone's reference or mask
    const companion = (kinds: string[], ok: (n: string) => boolean) =>
      plain.find((g) => g !== f && ok(g.name) && kinds.some((k) => stemOf(g.name).toLowerCase() === `${stem}.${k}`.toLowerCase()))?.full;
    const identity = plain
      .filter((g) => isImage(g.name) && new RegExp(`^${escapeRe(stem)}\\.identity([._-].*)?$`, 'i').test(stemOf(g.name)))
      .map((g) => g.full);
    const id = toPosix(path.relative(root, path.join(path.dirname(f.full), stem)));
    jobs.push({
      id,
      slug: slugOf(id),
      input: f.full,
      reference: companion(['ref', 'reference'], isVideo),
      mask: companion(['mask'], (n) => isVideo(n) || isImage(n)),
      identity: identity.length ? identity : undefined,
      source: 'file',
    });
  }
  return jobs;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

async function walk(root: string, dir: string, skip: Set<string>, jobs: BatchJob[]): Promise<void> {
  if (skip.has(path.resolve(dir))) return;
  const ents = await listDir(dir);
  const asCase = await caseJob(root, dir, ents);
  if (asCase) {
    jobs.push(asCase);
  } else {
    jobs.push(...looseJobs(root, ents));
  }
  for (const e of ents) if (e.isDir && e.name !== 'node_modules') await walk(root, e.full, skip, jobs);
}

interface ManifestEntry {
  input: string;
  name?: string;
  reference?: string;
  mask?: string;
  identity?: string | string[];
  options?: Partial<RestoreOptions>;
}

async function fromManifest(root: string, file: string): Promise<BatchJob[]> {
  let j: any;
  try {
    j = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (e: any) {
    throw usageError(`${file}: not valid JSON (${e?.message ?? e})`, 'fix the batch manifest or remove it to find videos by name');
  }
  const list: unknown = Array.isArray(j) ? j : j?.videos;
  if (!Array.isArray(list)) throw usageError(`${file}: expected {"videos": [...]}`, 'see `restore batch --help`');
  const base = path.dirname(file);
  const seen = new Set<string>();
  return list.map((raw, i) => {
    const e = (typeof raw === 'string' ? { input: raw } : raw) as ManifestEntry;
    if (!e || typeof e.input !== 'string') throw usageError(`${file}: videos[${i}] has no "input"`);
    const abs = (p?: string) => (typeof p === 'string' ? path.resolve(base, p) : undefined);
    const input = abs(e.input)!;
    let id = typeof e.name === 'string' && e.name ? e.name : toPosix(path.relative(root, path.join(path.dirname(input), stemOf(path.basename(input)))));
    if (seen.has(id)) id = `${id}#${i + 1}`;
    seen.add(id);
    const ident = e.identity === undefined ? undefined : (Array.isArray(e.identity) ? e.identity : [e.identity]).map((p) => abs(p)!);
    return {
      id,
      slug: slugOf(id),
      input,
      reference: abs(e.reference),
      mask: e.mask === 'auto' ? 'auto' : abs(e.mask),
      identity: ident,
      options: e.options,
      source: 'manifest' as const,
    };
  });
}

/**
 * The jobs of a batch folder, sorted by id. `exclude` lists folders never to descend into
 * (the output folder, when it lies inside the input folder).
 */
export async function discoverJobs(dir: string, opts: { exclude?: string[] } = {}): Promise<BatchJob[]> {
  const root = path.resolve(dir);
  const st = await fs.stat(root).catch(() => undefined);
  if (!st) throw inputError(`${dir}: no such folder`);
  if (!st.isDirectory()) throw usageError(`${dir}: not a folder`, 'give `restore batch` a folder of videos; use `restore` for one file');
  const manifest = path.join(root, MANIFEST_NAME);
  const jobs = (await fs.stat(manifest).catch(() => undefined))?.isFile()
    ? await fromManifest(root, manifest)
    : await (async () => {
        const acc: BatchJob[] = [];
        await walk(root, root, new Set((opts.exclude ?? []).map((p) => path.resolve(p))), acc);
        return acc;
      })();
  jobs.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : a.input < b.input ? -1 : a.input > b.input ? 1 : 0));
  // A case folder `a/` and a loose `a.mp4` next to it would share the id 'a': number the later ones.
  const seen = new Map<string, number>();
  for (const j of jobs) {
    const n = (seen.get(j.id) ?? 0) + 1;
    seen.set(j.id, n);
    if (n > 1) {
      j.id = `${j.id} (${n})`;
      j.slug = slugOf(j.id);
    }
  }
  return jobs;
}
