/**
 * Streamed encode: raw RGB24 frames go into ffmpeg's stdin, H.264 (yuv420p) comes out into a
 * hidden temp file next to the destination, renamed over it only when ffmpeg finished cleanly.
 * The source's audio streams are muxed unchanged when the container allows it.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs, constants as fsc, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { ffmpeg, resolveFfmpeg } from './ffmpeg.js';
import type { RgbFrame } from './frame.js';
import type { Rational, VideoInfo } from './probe.js';
import { outputError, RestoreError } from '../errors.js';
import { colourTagArgs, DEFAULT_COLOUR, encodeScaleArgs, type Colour } from './colour.js';
import { planesForEncode, type CarriedFormat, type CarriedPlanes } from './planes.js';

export interface EncodeOptions {
  out: string;
  width: number;
  height: number;
  fps: Rational;
  crf?: number;
  preset?: string;
  /** Mux the audio streams of this source. */
  audioFrom?: VideoInfo;
  sar?: Rational;
  /** Matrix, range and tags to write: the source's, so untouched frames keep their planes. Default BT.709 limited. */
  colour?: Colour;
  /** Frames come with their stored planes in this format (see planes.ts) instead of as RGB. */
  planar?: CarriedFormat;
  signal?: AbortSignal;
  /** Cut the muxed audio to this many seconds (the video's length when only some frames are encoded). */
  audioSeconds?: number;
}

/** Presets libx264 knows (`--preset`). */
export const X264_PRESETS = ['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium', 'slow', 'slower', 'veryslow', 'placebo'] as const;

/** Containers the encoder writes H.264 into, by file extension (ffmpeg picks the muxer from it). */
export const VIDEO_CONTAINERS = ['.mp4', '.m4v', '.mov', '.mkv'] as const;

/** Audio codecs an MP4/MOV can carry as they are; others are transcoded to AAC. */
const MP4_AUDIO = new Set(['aac', 'mp3', 'ac3', 'eac3', 'alac']);

/** Temp sibling of `dest` that keeps its extension (ffmpeg picks the muxer from it). */
export function tempSibling(dest: string): string {
  const ext = path.extname(dest);
  const base = path.basename(dest, ext);
  return path.join(path.dirname(dest), `.${base}.partial-${process.pid}-${randomBytes(3).toString('hex')}${ext}`);
}

const FS_CAUSES: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTDIR: 'a path component is not a folder',
  EISDIR: 'is a folder',
};

/** "no space left on device (ENOSPC)" for an fs error code, else the code or message. */
export function describeFsError(e: any): string {
  const code: string | undefined = e?.code;
  if (code && FS_CAUSES[code]) return `${FS_CAUSES[code]} (${code})`;
  return code ?? e?.message ?? String(e);
}

/** The real cause in ffmpeg's stderr when a write failed (its last line only says "Conversion failed!"). */
export function ffmpegWriteCause(stderr: string): string | undefined {
  const checks: [RegExp, string][] = [
    [/No space left on device/i, 'ENOSPC'],
    [/Disk quota exceeded/i, 'EDQUOT'],
    [/Read-only file system/i, 'EROFS'],
    [/Permission denied/i, 'EACCES'],
  ];
  for (const [re, code] of checks) if (re.test(stderr)) return describeFsError({ code });
  return undefined;
}

/** Fail early, with one line, when `dest`'s folder cannot take a new file. */
export async function ensureWritableDir(dir: string): Promise<void> {
  try {
    await fs.mkdir(dir, { recursive: true });
    await fs.access(dir, fsc.W_OK);
  } catch (e: any) {
    throw outputError(`cannot write to ${dir}: ${describeFsError(e)}`, 'choose another output location');
  }
}

const PARTIAL_RE = /^\..+\.partial-(\d+)-[0-9a-f]{6}(\.[A-Za-z0-9]+)?$/;

function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e: any) {
    return e?.code === 'EPERM'; // exists, owned by someone else
  }
}

/**
 * Remove the hidden temp files (tempSibling names) a killed run left in `dir`: only those
 * whose process is gone, so a run still writing next door keeps its files. Returns the names removed.
 */
export function removeStalePartials(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = PARTIAL_RE.exec(name);
    if (!m || pidAlive(Number(m[1]))) continue;
    try {
      rmSync(path.join(dir, name), { force: true });
      removed.push(name);
    } catch {
      /* not ours to remove (permissions): leave it */
    }
  }
  return removed;
}

/** Write a file atomically: temp sibling, then rename. */
export async function writeFileAtomic(dest: string, data: string | Uint8Array): Promise<void> {
  const tmp = tempSibling(dest);
  try {
    await fs.writeFile(tmp, data);
    await fs.rename(tmp, dest);
  } catch (e: any) {
    await fs.rm(tmp, { force: true });
    throw outputError(`cannot write ${dest}: ${describeFsError(e)}`, undefined, e);
  }
}

export class VideoEncoder {
  readonly tmpPath: string;
  private readonly input = new PassThrough({ highWaterMark: 1 << 22 });
  private readonly finished: Promise<void>;
  private cmd: ReturnType<typeof ffmpeg>;
  private frames = 0;
  private closed = false;
  private failure?: Error;
  /** fluent-ffmpeg spawns ffmpeg asynchronously: a kill asked for before that is applied on 'start'. */
  private started = false;
  private killRequested = false;

  private constructor(readonly opts: EncodeOptions) {
    resolveFfmpeg();
    this.tmpPath = tempSibling(opts.out);
    const { width, height, fps } = opts;
    const ext = path.extname(opts.out).toLowerCase();
    const colour = opts.colour ?? DEFAULT_COLOUR;
    const vf = [
      // planes are written as they are; RGB is converted with the source's matrix and range
      ...(opts.planar ? [] : [`scale=${encodeScaleArgs(colour)}:flags=accurate_rnd+full_chroma_int`]),
      // yuv420p needs even sizes: pad odd ones by one replicated-edge-free row/column.
      ...(width % 2 || height % 2 ? ['pad=ceil(iw/2)*2:ceil(ih/2)*2'] : []),
      ...(opts.sar && (opts.sar.num !== 1 || opts.sar.den !== 1) ? [`setsar=${opts.sar.num}/${opts.sar.den}`] : []),
      // planes keep their own format (full-range yuvj included, so no range conversion)
      `format=${opts.planar ?? 'yuv420p'}`,
    ];
    const audio = opts.audioFrom?.audio ?? [];
    const canCopy = ext === '.mkv' || audio.every((a) => MP4_AUDIO.has(a.codec));
    let cmd = ffmpeg()
      .input(this.input)
      .inputOptions(['-f', 'rawvideo', '-pix_fmt', opts.planar ?? 'rgb24', '-s', `${width}x${height}`, '-framerate', `${fps.num}/${fps.den}`]);
    if (opts.audioFrom && audio.length) {
      cmd = cmd.input(opts.audioFrom.path);
      if (opts.audioSeconds !== undefined) cmd = cmd.inputOptions(['-t', opts.audioSeconds.toFixed(6)]);
    }
    cmd = cmd.outputOptions([
      '-map', '0:v:0',
      ...(opts.audioFrom && audio.length ? ['-map', '1:a?', ...(canCopy ? ['-c:a', 'copy'] : ['-c:a', 'aac', '-b:a', '192k'])] : ['-an']),
      '-vf', vf.join(','),
      '-c:v', 'libx264',
      '-preset', opts.preset ?? 'medium',
      '-crf', String(opts.crf ?? 18),
      ...colourTagArgs(colour),
      ...(ext === '.mp4' || ext === '.mov' ? ['-movflags', '+faststart'] : []),
      '-r', `${fps.num}/${fps.den}`,
    ]);
    this.cmd = cmd;
    this.finished = new Promise<void>((resolve, reject) => {
      cmd
        .on('start', () => {
          this.started = true;
          if (this.killRequested) this.cmd.kill('SIGKILL');
        })
        .on('error', (err: Error, _o: string | null, stderr: string | null) => {
          const tail = (stderr ?? '').trim().split(/\r?\n/).slice(-1)[0] ?? '';
          const cause = ffmpegWriteCause(stderr ?? '');
          this.failure = cause
            ? outputError(`cannot write ${opts.out}: ${cause}`, 'free space or choose another --out')
            : outputError(`encoding ${opts.out} failed (${tail || err.message})`);
          reject(this.failure);
        })
        .on('end', () => resolve());
    });
    this.finished.catch(() => undefined);
    cmd.save(this.tmpPath);
    opts.signal?.addEventListener('abort', () => void this.abort(), { once: true });
  }

  static async open(opts: EncodeOptions): Promise<VideoEncoder> {
    await ensureWritableDir(path.dirname(path.resolve(opts.out)));
    return new VideoEncoder(opts);
  }

  get frameCount(): number {
    return this.frames;
  }

  async write(f: RgbFrame, planes?: CarriedPlanes): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.closed) throw new RestoreError('internal', 'write after close');
    if (f.width !== this.opts.width || f.height !== this.opts.height) {
      throw new RestoreError('internal', `frame ${f.width}x${f.height} does not match encoder ${this.opts.width}x${this.opts.height}`);
    }
    if (this.opts.planar && !planes) throw new RestoreError('internal', 'planar encoder got a frame without its planes');
    const data = this.opts.planar ? planesForEncode(planes!, f, this.opts.colour ?? DEFAULT_COLOUR) : f.data;
    this.frames++;
    if (!this.input.write(data)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = () => { cleanup(); resolve(); };
        const onFail = () => { cleanup(); reject(this.failure ?? new Error('encoder closed')); };
        const cleanup = () => { this.input.off('drain', onDrain); this.finished.then(undefined, () => undefined); };
        this.input.once('drain', onDrain);
        this.finished.catch(onFail);
      });
    }
  }

  /** Close the stream, wait for ffmpeg, then move the temp file over the destination. */
  async finish(): Promise<{ path: string; frames: number }> {
    await this.complete();
    return this.commit();
  }

  /** Close the stream and wait for ffmpeg; the video stays under tmpPath until commit(). */
  async complete(): Promise<void> {
    this.closed = true;
    this.input.end();
    try {
      await this.finished;
    } catch (e) {
      await fs.rm(this.tmpPath, { force: true });
      throw e;
    }
  }

  /** Move the completed temp file over the destination (the last step of a run). */
  async commit(): Promise<{ path: string; frames: number }> {
    try {
      await fs.rename(this.tmpPath, this.opts.out);
    } catch (e) {
      await fs.rm(this.tmpPath, { force: true });
      throw e instanceof RestoreError ? e : outputError(`cannot write ${this.opts.out}: ${describeFsError(e)}`);
    }
    return { path: this.opts.out, frames: this.frames };
  }

  /** Stop ffmpeg and remove the temp file; the destination is left as it was. */
  async abort(): Promise<void> {
    this.closed = true;
    this.killRequested = true;
    if (this.started) {
      try {
        this.cmd.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
    this.input.destroy();
    await this.finished.catch(() => undefined);
    await fs.rm(this.tmpPath, { force: true });
  }
}
