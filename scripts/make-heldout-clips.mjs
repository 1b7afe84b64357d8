#!/usr/bin/env node
// Builds a small held-out set for `npm run eval -- --clips DIR`: clips that are not the eval's
// default clips. Two slow camera pans over real photos of ../shared/data/real-clips (the
// black-and-white man and the painted girl, never used there as clips) and the fixture clip
// astronaut-turn.mp4. Run after `npm run build`:
//   node scripts/make-heldout-clips.mjs /tmp/heldout && npm run eval -- --clips /tmp/heldout --cases x4-bicubic,x4-boxes
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { resolveFfmpeg } from '../dist/media/ffmpeg.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const out = path.resolve(process.argv[2] ?? 'heldout-clips');
const photos = path.resolve(root, '..', 'shared', 'data', 'real-clips');
const ffmpeg = resolveFfmpeg().ffmpeg;
mkdirSync(out, { recursive: true });

// name, photo, pre-scale, crop side, pan start and speed (px/s, in the pre-scaled photo), output side
const pans = [
  ['pan-man-bw-480', 'photo-man-bw.jpg', '1200:1200', 960, [60, 80], [50, 30], 480],
  ['pan-painting-girl-500', 'painting-girl.jpg', '1092:1280', 1000, [40, 100], [20, 60], 500],
];
for (const [name, photo, pre, side, [x0, y0], [vx, vy], size] of pans) {
  const src = path.join(photos, photo);
  if (!existsSync(src)) {
    process.stderr.write(`make-heldout-clips: ${src} is not there; skipped ${name}\n`);
    continue;
  }
  const vf = `scale=${pre},crop=${side}:${side}:x='${x0}+t*${vx}':y='${y0}+t*${vy}',scale=${size}:${size}:flags=area,format=yuv420p`;
  execFileSync(ffmpeg, ['-v', 'error', '-y', '-loop', '1', '-i', src, '-vf', vf, '-frames:v', '48', '-r', '25', '-c:v', 'libx264', '-crf', '12', path.join(out, `${name}.mp4`)]);
}
copyFileSync(path.join(root, 'fixtures', 'videos', 'astronaut-turn.mp4'), path.join(out, 'astronaut-turn.mp4'));
process.stdout.write(`held-out clips in ${out}\n`);
