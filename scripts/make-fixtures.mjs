#!/usr/bin/env node
// Builds the fixture clips from fixtures/source/astronaut.png (NASA, public domain) and the
// degraded benchmark cases from them. Run after `npm run build`: node scripts/make-fixtures.mjs
// The clips are committed; rerunning reproduces them (same frames; the encoder may differ by version).
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { VideoEncoder } from '../dist/media/encode.js';
import { resolveFfmpeg } from '../dist/media/ffmpeg.js';
import { degradeClip } from '../dist/pipeline/degrade.js';
import { swapIdentityInClip } from '../dist/pipeline/degrade-swap.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const src = path.join(root, 'fixtures/source/astronaut.png');
const out = path.join(root, 'fixtures/videos');
mkdirSync(out, { recursive: true });

const { data, info } = await sharp(src).removeAlpha().raw().toBuffer({ resolveWithObject: true });
const SW = info.width, SH = info.height;

// Bilinear sample of the source under a similarity transform: output (u, v) ->
// source (cx, cy) + s * R(theta) * (u - W/2, v - H/2).
function renderFrame(W, H, cx, cy, s, theta) {
  const outBuf = new Uint8Array(W * H * 3);
  const c = Math.cos(theta), sn = Math.sin(theta);
  for (let v = 0; v < H; v++) {
    for (let u = 0; u < W; u++) {
      const du = u + 0.5 - W / 2, dv = v + 0.5 - H / 2;
      let x = cx + s * (c * du - sn * dv) - 0.5;
      let y = cy + s * (sn * du + c * dv) - 0.5;
      x = Math.min(SW - 1.001, Math.max(0, x));
      y = Math.min(SH - 1.001, Math.max(0, y));
      const x0 = Math.floor(x), y0 = Math.floor(y), fx = x - x0, fy = y - y0;
      for (let ch = 0; ch < 3; ch++) {
        const p = (yy, xx) => data[(yy * SW + xx) * 3 + ch];
        const val = (1 - fy) * ((1 - fx) * p(y0, x0) + fx * p(y0, x0 + 1)) + fy * ((1 - fx) * p(y0 + 1, x0) + fx * p(y0 + 1, x0 + 1));
        outBuf[(v * W + u) * 3 + ch] = Math.round(val);
      }
    }
  }
  return { width: W, height: H, data: outBuf };
}

const ease = (t) => 0.5 - 0.5 * Math.cos(Math.PI * t);
const W = 384, H = 384, N = 48, fps = { num: 24, den: 1 };

async function makeClip(name, motion, audio) {
  const dest = path.join(out, name);
  let audioFrom;
  if (audio) {
    const tone = path.join(out, '.tone.m4a');
    execFileSync(resolveFfmpeg().ffmpeg, ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'sine=frequency=330:sample_rate=44100:duration=2', '-c:a', 'aac', '-b:a', '64k', tone]);
    audioFrom = { path: tone, audio: [{ index: 0, codec: 'aac', channels: 1, sampleRate: 44100 }] };
  }
  const enc = await VideoEncoder.open({ out: dest, width: W, height: H, fps, crf: 16, preset: 'slow', audioFrom });
  for (let i = 0; i < N; i++) {
    const t = i / (N - 1);
    const m = motion(t);
    await enc.write(renderFrame(W, H, m.cx, m.cy, m.window / W, m.theta));
  }
  await enc.finish();
  if (audio) rmSync(path.join(out, '.tone.m4a'), { force: true });
  console.log(`wrote ${dest}`);
}

// Pan and zoom across the face: the camera moves, the face moves in the frame.
await makeClip('astronaut-pan.mp4', (t) => ({ cx: 200 + 50 * ease(t), cy: 150 + 25 * ease(t), window: 300 - 50 * ease(t), theta: 0 }), true);
// Rotate about the face and zoom in and out: in-plane head roll.
await makeClip('astronaut-turn.mp4', (t) => ({ cx: 226, cy: 130, window: 290 - 30 * Math.sin(Math.PI * t), theta: (-8 + 16 * ease(t)) * Math.PI / 180 }), false);

for (const [name, clip, seed] of [['pan-x4', 'astronaut-pan.mp4', 1], ['turn-x4', 'astronaut-turn.mp4', 2]]) {
  await degradeClip({ clean: path.join(out, clip), outDir: path.join(out, 'cases', name), scale: 4, maskSeed: seed, log: { info: console.log, warn: console.warn, debug() {} } });
}

// All three damages: the person changed into another face (Grace Hopper, public domain, see
// fixtures/identities/README.md) with the embedded mesh swap, then downscaled and painted over.
await degradeClip({
  clean: path.join(out, 'astronaut-pan.mp4'),
  outDir: path.join(out, 'cases', 'pan-swap-x4'),
  scale: 4,
  maskSeed: 3,
  swapIdentity: path.join(root, 'fixtures/identities/grace-hopper.jpg'),
  swapFn: async (clean, id, dest) => { await swapIdentityInClip(clean, id, dest, { log: console.log }); },
  log: { info: console.log, warn: console.warn, debug() {} },
});
