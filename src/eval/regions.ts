/**
 * Y-PSNR by region on the stored planes: inside the holes (painted-over areas, the mask scaled
 * to the frame) and outside them; inside the holes split into face and background holes, with
 * SSIM and the flicker there. Each file's luma plane is read as ffmpeg stores it (no colour
 * conversion of ours), so the figures agree with ffmpeg's psnr filter on the whole frame.
 */
import { spawn } from 'node:child_process';
import sharp from 'sharp';
import { resolveFfmpeg } from '../media/ffmpeg.js';
import { probeVideo } from '../media/probe.js';
import { RestoreError } from '../errors.js';
import type { Mask } from '../media/frame.js';
import { consistentMask, flowPair, flowPlane, warpingError } from '../metrics/flicker.js';
import { ssimMasked } from '../stages/inpaint/eval.js';

/** Luma planes of a video, 8-bit as stored (frames of a yuv420p/yuvj420p stream). */
export async function* lumaPlanes(file: string, maxFrames?: number): AsyncGenerator<{ width: number; height: number; y: Uint8Array }> {
  const info = await probeVideo(file);
  const { codedWidth: w, codedHeight: h } = info;
  // Written as yuv420p, which the eval's files already are: no conversion, the Y plane as stored.
  const args = ['-hide_banner', '-v', 'error', '-nostdin', '-i', file, ...(maxFrames ? ['-frames:v', String(maxFrames)] : []), '-an', '-f', 'rawvideo', '-pix_fmt', 'yuv420p', 'pipe:1'];
  const child = spawn(resolveFfmpeg().ffmpeg, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err = (err + d).slice(-500)));
  const frameBytes = w * h + 2 * Math.ceil(w / 2) * Math.ceil(h / 2);
  let buf: Buffer = Buffer.alloc(0);
  try {
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      while (buf.length >= frameBytes) {
        yield { width: w, height: h, y: new Uint8Array(buf.subarray(0, w * h)) };
        buf = buf.subarray(frameBytes);
      }
    }
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
  if (err.trim()) throw new RestoreError('input', `${file}: reading luma failed (${err.trim().split('\n').pop()})`);
}

/** A still mask image scaled to w x h with nearest neighbour: true = hole. */
export async function holeMap(maskImage: string, w: number, h: number): Promise<Uint8Array> {
  const { data } = await sharp(maskImage).greyscale().resize(w, h, { kernel: 'nearest', fit: 'fill' }).raw().toBuffer({ resolveWithObject: true });
  const m = new Uint8Array(w * h);
  for (let i = 0; i < m.length; i++) m[i] = data[i] >= 128 ? 1 : 0;
  return m;
}

export interface RegionScores {
  frames: number;
  /** Y-PSNR of the mean MSE over frames, inside the holes (undefined without holes). */
  holeY?: number;
  /** ... and outside them (the whole frame when there are no holes). */
  outsideY: number;
  holeShare: number;
}

const psnr = (mse: number) => (mse <= 0 ? 100 : Math.min(100, 10 * Math.log10((255 * 255) / mse)));

/** Y-PSNR inside and outside `holes` (a map at the reference's size), over the common frames. */
export async function regionScores(distorted: string, reference: string, holes?: Uint8Array, maxFrames?: number): Promise<RegionScores> {
  const a = lumaPlanes(distorted, maxFrames);
  const b = lumaPlanes(reference, maxFrames);
  let inSe = 0, inN = 0, outSe = 0, outN = 0, frames = 0, holePx = 0;
  try {
    for (;;) {
      const [x, y] = await Promise.all([a.next(), b.next()]);
      if (x.done || y.done) break;
      const fa = x.value, fb = y.value;
      const w = Math.min(fa.width, fb.width), h = Math.min(fa.height, fb.height);
      for (let r = 0; r < h; r++) {
        for (let c = 0; c < w; c++) {
          const d = fa.y[r * fa.width + c] - fb.y[r * fb.width + c];
          const hole = holes ? holes[r * fb.width + c] : 0;
          if (hole) {
            inSe += d * d;
            inN++;
          } else {
            outSe += d * d;
            outN++;
          }
        }
      }
      if (!frames && holes) for (let i = 0; i < holes.length; i++) holePx += holes[i];
      frames++;
    }
  } finally {
    await a.return(undefined);
    await b.return(undefined);
  }
  return {
    frames,
    ...(inN ? { holeY: +psnr(inSe / inN).toFixed(3) } : {}),
    outsideY: +psnr(outSe / Math.max(1, outN)).toFixed(3),
    holeShare: holes ? +(holePx / holes.length).toFixed(4) : 0,
  };
}

export interface HoleSplit {
  /** Y-PSNR of the mean MSE over frames and luma SSIM (mean over frames of the windows centred on the region's pixels). */
  face?: { y: number; ssim: number; share: number };
  background?: { y: number; ssim: number; share: number };
  /**
   * Flicker inside the holes: the warping error of src/metrics/flicker.ts between consecutive
   * frames (stored luma planes, same flow and validity test), over the hole pixels only; mean
   * over frame pairs.
   */
  holeFlicker?: number;
  /** Y-PSNR inside the face holes of each frame (null where the frame has no face hole pixel). */
  faceFramesY?: (number | null)[];
}

/**
 * Y-PSNR and SSIM inside the holes, split into face holes (`faces[n]`, a map per reference frame:
 * 1 = face) and background holes, and optionally the flicker inside the holes.
 */
export async function holeSplitScores(distorted: string, reference: string, holes: Uint8Array, faces: Uint8Array[], opts: { flicker?: boolean; maxFrames?: number } = {}): Promise<HoleSplit> {
  const a = lumaPlanes(distorted, opts.maxFrames);
  const b = lumaPlanes(reference, opts.maxFrames);
  const acc = { face: { se: 0, n: 0, ssim: 0, frames: 0 }, background: { se: 0, n: 0, ssim: 0, frames: 0 } };
  let flick = 0, flickFrames = 0, frames = 0, facePx = 0, holePx = 0;
  let prev: Float32Array | undefined;
  const faceFramesY: (number | null)[] = [];
  try {
    for (;;) {
      const [x, y] = await Promise.all([a.next(), b.next()]);
      if (x.done || y.done) break;
      const fa = x.value, fb = y.value;
      const w = fb.width, h = fb.height;
      if (fa.width !== w || fa.height !== h) throw new RestoreError('input', `${distorted}: ${fa.width}x${fa.height}, the reference is ${w}x${h}`);
      const face = faces[frames] ?? new Uint8Array(w * h);
      const ya = Float32Array.from(fa.y), yb = Float32Array.from(fb.y);
      for (const region of ['face', 'background'] as const) {
        const m: Mask = { width: w, height: h, data: new Uint8Array(w * h) };
        let se = 0, k = 0;
        for (let i = 0; i < w * h; i++) {
          if (!holes[i] || (region === 'face') !== !!face[i]) continue;
          m.data[i] = 255;
          se += (ya[i] - yb[i]) ** 2;
          k++;
        }
        if (region === 'face') faceFramesY.push(k ? +psnr(se / k).toFixed(3) : null);
        if (!k) continue;
        const r = acc[region];
        r.se += se;
        r.n += k;
        r.ssim += ssimMasked(ya, yb, w, h, m);
        r.frames++;
        if (region === 'face') facePx += k;
      }
      for (let i = 0; i < w * h; i++) holePx += holes[i];
      if (opts.flicker) {
        if (prev) {
          const pair = flowPair(flowPlane(prev, w, h), flowPlane(ya, w, h));
          const valid = consistentMask(pair);
          for (let i = 0; i < valid.length; i++) if (!holes[i]) valid[i] = 0;
          const e = warpingError(prev, ya, pair.back, valid);
          if (Number.isFinite(e.flicker)) { flick += e.flicker; flickFrames++; }
        }
        prev = ya;
      }
      frames++;
    }
  } finally {
    await a.return(undefined);
    await b.return(undefined);
  }
  const out: HoleSplit = {};
  for (const region of ['face', 'background'] as const) {
    const r = acc[region];
    if (!r.n) continue;
    const share = region === 'face' ? facePx / Math.max(1, holePx) : 1 - facePx / Math.max(1, holePx);
    out[region] = { y: +psnr(r.se / r.n).toFixed(3), ssim: +(r.ssim / r.frames).toFixed(5), share: +share.toFixed(4) };
  }
  if (opts.flicker && flickFrames) out.holeFlicker = +(flick / flickFrames).toFixed(4);
  if (out.face) out.faceFramesY = faceFramesY;
  return out;
}
