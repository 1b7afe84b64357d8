/**
 * Held-out clips for `npm run eval -- --clips DIR`: slow camera pans over real photos (a
 * crop window sliding over the photo, area-downscaled, x264 crf 12). They are not the eval's
 * default clips, so a gain measured on them is not one tuned to those.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { resolveFfmpeg } from '../media/ffmpeg.js';

const run = promisify(execFile);

export interface PanSpec {
  /** Output name, without extension. */
  name: string;
  /** Photo file name in the real-clips folder. */
  photo: string;
  /** The photo is first scaled to this size (W:H). */
  pre: string;
  /** Side of the square crop window, in the scaled photo. */
  side: number;
  /** The window's top-left corner at t = 0 and its speed (pixels per second), in the scaled photo. */
  start: [number, number];
  speed: [number, number];
  /** Side of the output clip. */
  size: number;
  frames?: number;
}

/** The held-out pans: the black-and-white man (a pale wall) and the painted girl (a dark ground). */
export const HELDOUT_PANS: PanSpec[] = [
  { name: 'pan-man-bw-480', photo: 'photo-man-bw.jpg', pre: '1200:1200', side: 960, start: [60, 80], speed: [50, 30], size: 480 },
  { name: 'pan-painting-girl-500', photo: 'painting-girl.jpg', pre: '1092:1280', side: 1000, start: [40, 100], speed: [20, 60], size: 500 },
];

/** Write one pan as `dir/<name>.mp4` (25 fps) and return its path. */
export async function makePanClip(photosDir: string, dir: string, p: PanSpec): Promise<string> {
  const out = path.join(dir, `${p.name}.mp4`);
  const [x0, y0] = p.start, [vx, vy] = p.speed;
  const vf = `scale=${p.pre},crop=${p.side}:${p.side}:x='${x0}+t*${vx}':y='${y0}+t*${vy}',scale=${p.size}:${p.size}:flags=area,format=yuv420p`;
  await run(resolveFfmpeg().ffmpeg, ['-v', 'error', '-y', '-nostdin', '-loop', '1', '-i', path.join(photosDir, p.photo), '-vf', vf, '-frames:v', String(p.frames ?? 48), '-r', '25', '-c:v', 'libx264', '-crf', '12', out]);
  return out;
}
