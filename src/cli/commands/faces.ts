/**
 * `restore faces <video|image> [--json] [--overlay OUT]`: per frame the faces found (track id,
 * box, score, 5 points, 468-point mesh, landmark score), the tracks, and detector/mesh times;
 * `--overlay` writes the input with them drawn (a video for a video, an image for an image).
 */
import path from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';
import sharp from 'sharp';
import { inputError, RestoreError, usageError } from '../../errors.js';
import { FaceAnalyzer } from '../../faces/analyzer.js';
import { drawFaces } from '../../faces/draw.js';
import { FaceTracker, type TrackSummary } from '../../faces/track.js';
import type { Face } from '../../faces/types.js';
import { decodeFrames } from '../../media/decode.js';
import { ensureWritableDir, VideoEncoder } from '../../media/encode.js';
import { cloneFrame, type RgbFrame } from '../../media/frame.js';
import { probeVideo } from '../../media/probe.js';
import { createLogger } from '../../util/log.js';
import { parseNumber, printJson, runAction, signalController } from '../util.js';

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg', '.webp', '.bmp', '.tif', '.tiff', '.gif', '.avif']);

export interface FacesCommandOptions {
  json?: boolean;
  overlay?: string;
  device?: 'auto' | 'cpu' | 'cuda';
  smoothing?: number;
  minFace?: number;
  maxFrames?: number;
  mesh?: boolean;
  quiet?: boolean;
  signal?: AbortSignal;
}

export interface FacesFrameResult {
  index: number;
  time: number;
  faces: Face[];
}

export interface FacesResult {
  input: string;
  kind: 'image' | 'video';
  width: number;
  height: number;
  frames: FacesFrameResult[];
  tracks: TrackSummary[];
  framesWithFaces: number;
  framesWithoutFaces: number;
  detectMsPerFrame: number;
  meshMsPerFace: number;
  provider: string;
  overlay?: string;
}

const r2 = (v: number) => Math.round(v * 100) / 100;

function faceJson(f: Face, mesh: boolean) {
  return {
    trackId: f.trackId,
    box: { x: r2(f.box.x), y: r2(f.box.y), width: r2(f.box.width), height: r2(f.box.height) },
    score: +f.score.toFixed(4),
    landmarkScore: f.landmarkScore !== undefined ? +f.landmarkScore.toFixed(4) : null,
    interpolated: !!f.interpolated,
    five: f.five.map((p) => [r2(p.x), r2(p.y)]),
    keypoints: f.keypoints.map((p) => [r2(p.x), r2(p.y)]),
    ...(mesh && f.mesh ? { mesh: Array.from(f.mesh, (v) => Math.round(v * 10) / 10) } : {}),
  };
}

async function readImageFrame(file: string): Promise<RgbFrame> {
  try {
    const { data, info } = await sharp(file).rotate().removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } catch (e) {
    throw inputError(`${file}: cannot read it as an image (${(e as Error).message.split('\n')[0]})`, 'give a PNG/JPEG image or a video');
  }
}

/** The work of `restore faces`, callable from code and tests. */
export async function analyzeFaces(input: string, o: FacesCommandOptions = {}): Promise<FacesResult> {
  const log = createLogger({ quiet: o.quiet || o.json });
  const isImage = IMAGE_EXT.has(path.extname(input).toLowerCase());
  if (o.overlay) {
    const oext = path.extname(o.overlay).toLowerCase();
    if (isImage && !IMAGE_EXT.has(oext)) throw usageError(`--overlay ${o.overlay}: the input is an image, so the overlay must be an image file (.png, .jpg)`);
    if (!isImage && IMAGE_EXT.has(oext)) throw usageError(`--overlay ${o.overlay}: the input is a video, so the overlay must be a video file (.mp4, .mov, .mkv)`);
    await ensureWritableDir(path.dirname(path.resolve(o.overlay)));
  }
  const analyzer = await FaceAnalyzer.create({ device: o.device ?? 'auto', minFaceSize: o.minFace, log: (m) => log.debug(m) });
  const tracker = new FaceTracker({ smoothing: o.smoothing ?? 1.5 });
  const frames: FacesFrameResult[] = [];
  let width = 0, height = 0;
  let overlayPath: string | undefined;

  if (isImage) {
    const frame = await readImageFrame(input);
    width = frame.width;
    height = frame.height;
    const faces = tracker.update(0, await analyzer.analyze(frame));
    frames.push({ index: 0, time: 0, faces });
    if (o.overlay) {
      const drawn = drawFaces(cloneFrame(frame), faces);
      await sharp(Buffer.from(drawn.data), { raw: { width, height, channels: 3 } }).toFile(o.overlay);
      overlayPath = o.overlay;
    }
  } else {
    const info = await probeVideo(input);
    width = info.width;
    height = info.height;
    const held = new Map<number, RgbFrame & { time: number }>();
    const enc = o.overlay ? await VideoEncoder.open({ out: o.overlay, width, height, fps: info.fps, crf: 18, preset: 'veryfast' }) : undefined;
    const emit = async (index: number, faces: Face[]) => {
      const f = held.get(index)!;
      held.delete(index);
      frames.push({ index, time: f.time, faces });
      if (enc) await enc.write(drawFaces(f, faces));
    };
    try {
      for await (const f of decodeFrames(info, { maxFrames: o.maxFrames, signal: o.signal })) {
        if (o.signal?.aborted) throw new RestoreError('interrupted', 'interrupted: no overlay written');
        held.set(f.index, f);
        const found = await analyzer.analyze(f);
        for (const r of tracker.push(f.index, found)) await emit(r.index, r.faces);
      }
      for (const r of tracker.flush()) await emit(r.index, r.faces);
      if (enc) {
        await enc.finish();
        overlayPath = o.overlay;
      }
    } catch (e) {
      await enc?.abort();
      throw e;
    }
  }
  const tm = analyzer.timings;
  const withFaces = frames.filter((f) => f.faces.length).length;
  return {
    input,
    kind: isImage ? 'image' : 'video',
    width,
    height,
    frames,
    tracks: tracker.summary(),
    framesWithFaces: withFaces,
    framesWithoutFaces: frames.length - withFaces,
    detectMsPerFrame: tm.detectCalls ? r2(tm.detectMs / tm.detectCalls) : 0,
    meshMsPerFace: tm.meshCalls ? r2(tm.meshMs / tm.meshCalls) : 0,
    provider: analyzer.provider,
    ...(overlayPath ? { overlay: overlayPath } : {}),
  };
}

export function facesResultJson(r: FacesResult, mesh = true) {
  return { ok: true, ...r, frames: r.frames.map((f) => ({ index: f.index, time: +f.time.toFixed(4), faces: f.faces.map((x) => faceJson(x, mesh)) })) };
}

/** Register `restore faces` on the program (called from src/cli/commands/index.ts). */
export function registerFacesCommand(program: Command): Command {
  return program
    .command('faces <input>')
    .description('find the faces of a video or image: per frame track id, box, 5 points and 468-point mesh')
    .option('--json', 'print the result as JSON on stdout (mesh included unless --no-mesh)')
    .option('--overlay <out>', 'write the input with boxes, 5 points and mesh drawn (video for a video, image for an image)')
    .option('--no-mesh', 'leave the 468-point mesh out of the JSON')
    .option('--smoothing <frames>', 'landmark smoothing over time, Gaussian sigma in frames (0 = off)', parseNumber('--smoothing', 0, 10), 1.5)
    .option('--min-face <px>', 'ignore faces narrower than this', parseNumber('--min-face', 1, 4096, true), 16)
    .option('--max-frames <n>', 'only the first N frames', parseNumber('--max-frames', 1, 1e9, true))
    .addOption(new Option('--device <device>', 'where models run').choices(['auto', 'cpu', 'cuda']).default('auto'))
    .option('-q, --quiet', 'no log lines')
    .action((input: string, o: Record<string, any>) =>
      runAction(!!o.json, async () => {
        const signal = signalController().signal;
        const r = await analyzeFaces(input, { json: o.json, overlay: o.overlay, device: o.device, smoothing: o.smoothing, minFace: o.minFace, maxFrames: o.maxFrames, quiet: o.quiet, signal });
        if (o.json) {
          printJson(facesResultJson(r, o.mesh !== false));
          return;
        }
        const out = process.stdout;
        out.write(`${r.input}: ${r.kind} ${r.width}x${r.height}, ${r.frames.length} frame(s), faces in ${r.framesWithFaces}, none in ${r.framesWithoutFaces}, ${r.tracks.length} track(s)\n`);
        for (const f of r.frames) {
          const desc = f.faces.length
            ? f.faces.map((x) => `#${x.trackId}${x.interpolated ? '(filled)' : ''} box ${Math.round(x.box.x)},${Math.round(x.box.y)} ${Math.round(x.box.width)}x${Math.round(x.box.height)} score ${x.score.toFixed(2)} mesh ${x.landmarkScore?.toFixed(2) ?? '-'}`).join('; ')
            : 'no face';
          out.write(`  frame ${f.index}: ${desc}\n`);
        }
        out.write(`detection ${r.detectMsPerFrame} ms/frame, mesh ${r.meshMsPerFace} ms/face on ${r.provider.toUpperCase()}\n`);
        if (r.overlay) out.write(`overlay: ${r.overlay}\n`);
      }),
    );
}
