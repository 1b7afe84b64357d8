/**
 * The run manifest (`batch-manifest.json` in --out): what each video's state is, and the hashes
 * that decide whether a rerun may skip it. Every update rewrites the file atomically (temp file +
 * rename), so a kill at any moment leaves either the previous or the next version, never a torn one.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../media/encode.js';
import type { BatchJob } from './discover.js';
import type { VideoMetrics } from './metrics.js';

export const MANIFEST_FILE = 'batch-manifest.json';
export const MANIFEST_VERSION = 1;

export type VideoState = 'pending' | 'running' | 'done' | 'failed';

/** A discovered job as the manifest records it (without its option overrides), plus its state. */
export interface ManifestVideo extends Pick<BatchJob, 'id' | 'slug' | 'input' | 'reference' | 'mask' | 'identity'> {
  state: VideoState;
  /** sha256 of the input file's bytes. */
  inputHash?: string;
  /** sha256 over the companion files' hashes (reference, mask, identity). */
  pairHash?: string;
  /** sha256 of the effective settings for this video. */
  settingsHash?: string;
  /** Paths relative to the --out folder. */
  out: string;
  reportDir: string;
  startedAt?: string;
  finishedAt?: string;
  /** How many times this video was (re)started across batch runs. */
  attempts: number;
  error?: string;
  errorKind?: string;
  metrics?: VideoMetrics;
  /** Queue mode: the job of the last enqueue, and when it was added. */
  jobId?: string;
  queuedAt?: string;
}

export interface BatchManifest {
  version: number;
  tool: string;
  createdAt: string;
  updatedAt: string;
  videos: Record<string, ManifestVideo>;
}

export function emptyManifest(): BatchManifest {
  const now = new Date().toISOString();
  return { version: MANIFEST_VERSION, tool: 'restore', createdAt: now, updatedAt: now, videos: {} };
}

/** Read the manifest; a missing one is empty, an unreadable one is kept aside and replaced. */
export async function loadBatchManifest(outDir: string, warn?: (m: string) => void): Promise<BatchManifest> {
  const file = path.join(outDir, MANIFEST_FILE);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e: any) {
    if (e?.code === 'ENOENT') return emptyManifest();
    throw e;
  }
  try {
    const m = JSON.parse(text) as BatchManifest;
    if (m && m.version === MANIFEST_VERSION && m.videos && typeof m.videos === 'object') return m;
    throw new Error(`unknown manifest version ${m?.version}`);
  } catch (e: any) {
    const aside = `${file}.unreadable-${Date.now()}`;
    await fs.rename(file, aside).catch(() => undefined);
    warn?.(`${file} could not be read (${e?.message ?? e}); kept as ${path.basename(aside)}, starting a fresh manifest`);
    return emptyManifest();
  }
}

/** Serializes manifest writes from concurrent workers; each write is atomic. */
export class ManifestStore {
  private chain: Promise<void> = Promise.resolve();
  constructor(
    readonly outDir: string,
    readonly data: BatchManifest,
  ) {}

  get file(): string {
    return path.join(this.outDir, MANIFEST_FILE);
  }

  /** Apply `fn` to the entry (creating nothing) and persist. */
  update(id: string, fn: (v: ManifestVideo) => void): Promise<void> {
    const v = this.data.videos[id];
    if (v) fn(v);
    return this.save();
  }

  save(): Promise<void> {
    const next = this.chain.then(async () => {
      this.data.updatedAt = new Date().toISOString();
      await writeFileAtomic(this.file, JSON.stringify(this.data, null, 2) + '\n');
    });
    this.chain = next.catch(() => undefined);
    return next;
  }
}
