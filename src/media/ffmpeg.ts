/**
 * Locating ffmpeg/ffprobe: FFMPEG_PATH / FFPROBE_PATH when set, else a binary on PATH,
 * else the static builds that ship inside @ffmpeg-installer / @ffprobe-installer.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import ffmpeg from 'fluent-ffmpeg';

export interface FfmpegTools {
  ffmpeg: string;
  ffprobe: string;
  /** Where ffmpeg came from. */
  source: 'env' | 'system' | 'npm';
  /** Major version, or 0 for git snapshot builds whose version string carries none. */
  major: number;
  version: string;
}

let cached: FfmpegTools | undefined;

function onPath(bin: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, bin);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* keep looking */
    }
  }
  return undefined;
}

function fromNpm(pkg: string): string | undefined {
  try {
    const req = createRequire(import.meta.url);
    const mod = req(pkg) as { path?: string };
    return mod.path;
  } catch {
    return undefined;
  }
}

export function parseFfmpegVersion(text: string): { version: string; major: number } {
  const m = /version\s+(\S+)/.exec(text);
  const version = m?.[1] ?? 'unknown';
  const mm = /^n?(\d+)\./.exec(version);
  return { version, major: mm ? Number(mm[1]) : 0 };
}

export function resolveFfmpeg(): FfmpegTools {
  if (cached) return cached;
  let source: FfmpegTools['source'];
  let ff: string | undefined;
  let fp: string | undefined;
  if (process.env.FFMPEG_PATH) {
    ff = process.env.FFMPEG_PATH;
    source = 'env';
  } else if ((ff = onPath('ffmpeg'))) {
    source = 'system';
  } else {
    ff = fromNpm('@ffmpeg-installer/ffmpeg');
    source = 'npm';
  }
  fp = process.env.FFPROBE_PATH ?? onPath('ffprobe') ?? fromNpm('@ffprobe-installer/ffprobe');
  if (!ff || !fp) {
    throw new Error(
      'ffmpeg/ffprobe not found: set FFMPEG_PATH and FFPROBE_PATH, install ffmpeg, or run npm ci',
    );
  }
  const r = spawnSync(ff, ['-hide_banner', '-version'], { encoding: 'utf8' });
  if (r.error) throw new Error(`cannot run ffmpeg at ${ff}: ${r.error.message}`);
  const { version, major } = parseFfmpegVersion(r.stdout ?? '');
  ffmpeg.setFfmpegPath(ff);
  ffmpeg.setFfprobePath(fp);
  cached = { ffmpeg: ff, ffprobe: fp, source, major, version };
  return cached;
}

/** Frame-rate mode options: `-fps_mode` on ffmpeg >= 5, `-vsync` on older or snapshot builds. */
export function fpsModeArgs(mode: 'passthrough' | 'cfr'): string[] {
  const { major } = resolveFfmpeg();
  if (major >= 5) return ['-fps_mode', mode];
  return ['-vsync', mode === 'cfr' ? '1' : '0'];
}

export { ffmpeg };
