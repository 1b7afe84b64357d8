/** Test helpers: temp folders and small clips made with the real ffmpeg. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveFfmpeg } from '../../src/media/ffmpeg.js';

export function tempDir(prefix = 'restore-test-'): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Run the real ffmpeg quietly. */
export function ffmpegRun(args: string[]): string {
  return execFileSync(resolveFfmpeg().ffmpeg, ['-hide_banner', '-loglevel', 'error', '-y', ...args], { encoding: 'utf8' });
}

/** A short synthetic clip (lavfi testsrc2), optionally with a tone. */
export function makeClip(file: string, o: { width?: number; height?: number; fps?: number; seconds?: number; audio?: boolean; extra?: string[] } = {}): string {
  const { width = 160, height = 120, fps = 25, seconds = 1 } = o;
  ffmpegRun([
    '-f', 'lavfi', '-i', `testsrc2=size=${width}x${height}:rate=${fps}`,
    ...(o.audio ? ['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100'] : []),
    '-t', String(seconds), '-c:v', 'libx264', '-pix_fmt', 'yuv444p', '-crf', '10',
    ...(o.audio ? ['-c:a', 'aac'] : []),
    ...(o.extra ?? []),
    file,
  ]);
  return file;
}

export const fixture = (...p: string[]) => path.join(process.cwd(), 'fixtures', ...p);
