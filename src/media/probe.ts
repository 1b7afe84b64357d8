/**
 * ffprobe wrapper: everything the pipeline needs to know about a video before decoding,
 * with input problems turned into one clear RestoreError.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { resolveFfmpeg } from './ffmpeg.js';
import { inputError } from '../errors.js';
import { resolveColour, type Colour } from './colour.js';

export interface Rational {
  num: number;
  den: number;
}

export interface AudioStreamInfo {
  index: number;
  codec: string;
  channels: number;
  sampleRate: number;
}

export interface VideoInfo {
  path: string;
  format: string;
  duration: number;
  codec: string;
  pixFmt: string;
  /** Size of the decoded, upright frames (rotation applied, as ffmpeg's decoder outputs). */
  width: number;
  height: number;
  /** Size as stored in the stream, before rotation. */
  codedWidth: number;
  codedHeight: number;
  /** Clockwise rotation from display-matrix metadata, degrees (0, 90, 180, 270). */
  rotation: number;
  sar: Rational;
  /** Frame rate used for decoding and re-encoding. */
  fps: Rational;
  /** True when packet durations vary: decoding converts to constant rate at `fps`. */
  vfr: boolean;
  /** Number of frames the decoder will produce (count of video packets, or estimate). */
  frameCount: number;
  frameCountExact: boolean;
  colorSpace?: string;
  colorRange?: string;
  /** Matrix, range, primaries, transfer and bit depth: kept from decode to encode. */
  colour: Colour;
  audio: AudioStreamInfo[];
}

export const rationalValue = (r: Rational) => r.num / r.den;

export function parseRational(s: string | undefined): Rational | undefined {
  if (!s) return undefined;
  const [a, b] = s.split('/').map(Number);
  if (!Number.isFinite(a) || !a) return undefined;
  const den = b === undefined ? 1 : b;
  if (!Number.isFinite(den) || den === 0) return undefined;
  return { num: a, den };
}

interface ProbeStream {
  index: number;
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  pix_fmt?: string;
  sample_aspect_ratio?: string;
  r_frame_rate?: string;
  avg_frame_rate?: string;
  nb_frames?: string | number;
  duration?: string | number;
  channels?: number;
  sample_rate?: string | number;
  color_space?: string;
  color_range?: string;
  color_primaries?: string;
  color_transfer?: string;
  bits_per_raw_sample?: string | number;
  tags?: Record<string, string>;
  side_data_list?: { side_data_type?: string; rotation?: number }[];
  disposition?: { attached_pic?: number };
}

/** ffprobe with JSON output (fluent-ffmpeg's ffprobe() parses text and drops side data and packets). */
function ffprobeJson(file: string, args: string[]): Promise<any> {
  const { ffprobe } = resolveFfmpeg();
  return new Promise((resolve, reject) => {
    execFile(ffprobe, ['-v', 'error', '-of', 'json', ...args, '--', file], { maxBuffer: 1 << 28 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(String(stderr || err.message)));
      try {
        resolve(JSON.parse(stdout));
      } catch (e) {
        reject(e);
      }
    });
  });
}

function lastMeaningfulLine(text: string): string {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !/^ffprobe version|^\s*(built with|configuration|lib\w+\s)/.test(l));
  const l = lines[lines.length - 1] ?? '';
  return l.replace(/^.*?:\s*(?=[A-Z]|moov|Invalid|End of)/, '').slice(0, 200);
}

function rotationOf(s: ProbeStream): number {
  let deg = 0;
  const sd = s.side_data_list?.find((d) => typeof d.rotation === 'number');
  if (sd && typeof sd.rotation === 'number') deg = -sd.rotation; // display matrix: counter-clockwise
  else if (s.tags?.rotate) deg = Number(s.tags.rotate);
  deg = ((Math.round(deg / 90) * 90) % 360 + 360) % 360;
  return deg;
}

/** Probe a video file. Throws RestoreError('input') with one clear line on any problem. */
export async function probeVideo(file: string): Promise<VideoInfo> {
  resolveFfmpeg();
  try {
    const st = await fs.stat(file);
    if (!st.isFile()) throw inputError(`${file}: not a file`);
    if (st.size === 0) throw inputError(`${file}: file is empty`);
  } catch (e: any) {
    if (e?.name === 'RestoreError') throw e;
    if (e?.code === 'ENOENT') throw inputError(`${file}: no such file`);
    if (e?.code === 'EACCES') throw inputError(`${file}: permission denied`);
    throw inputError(`${file}: cannot read (${e?.message ?? e})`);
  }
  let data: any;
  try {
    data = await ffprobeJson(file, ['-show_streams', '-show_format']);
  } catch (e: any) {
    const why = lastMeaningfulLine(String(e?.message ?? e));
    throw inputError(`${file}: not a readable video (${why || 'ffprobe failed'})`, 'check that the file is a complete video');
  }
  const streams: ProbeStream[] = data.streams ?? [];
  const v = streams.find((s) => s.codec_type === 'video' && !s.disposition?.attached_pic);
  if (!v) throw inputError(`${file}: has no video stream`);
  if (!v.width || !v.height) throw inputError(`${file}: video stream has no frame size`);

  // Packet scan: exact frame count and constant/variable rate, without decoding.
  let pts: number[] = [];
  try {
    const pk = await ffprobeJson(file, ['-select_streams', `${v.index}`, '-show_entries', 'packet=pts_time,dts_time,flags']);
    pts = (pk.packets ?? [])
      .map((p: any) => Number(p.pts_time ?? p.dts_time))
      .filter((x: number) => Number.isFinite(x));
  } catch {
    pts = [];
  }
  pts.sort((a, b) => a - b);
  const indexed = Number(v.nb_frames ?? 0);
  if (indexed > 0 && pts.length > 0 && pts.length < indexed - Math.max(2, Math.round(indexed * 0.02))) {
    throw inputError(`${file}: truncated or corrupt: the index lists ${indexed} frames but only ${pts.length} are present`);
  }

  const rFps = parseRational(v.r_frame_rate);
  const aFps = parseRational(v.avg_frame_rate);
  let vfr = false;
  if (pts.length > 2) {
    const d: number[] = [];
    for (let i = 1; i < pts.length; i++) d.push(pts[i] - pts[i - 1]);
    const sorted = [...d].sort((a, b) => a - b);
    const med = sorted[Math.floor(sorted.length / 2)];
    // Timestamps are quantized to the stream time base: allow 1 ms of jitter.
    vfr = med > 0 && d.some((x) => Math.abs(x - med) > Math.max(0.0011, med * 0.02));
  }
  let fps = (vfr ? aFps : rFps) ?? aFps ?? rFps;
  if (!fps || rationalValue(fps) > 1000 || rationalValue(fps) <= 0) fps = { num: 25, den: 1 };

  const firstFinite = (...xs: unknown[]) => xs.map(Number).find((x) => Number.isFinite(x) && x > 0);
  const duration = firstFinite(v.duration, data.format?.duration) ?? (pts.length ? pts[pts.length - 1] - pts[0] : 0);
  let frameCount = 0;
  let exact = false;
  if (!vfr && pts.length > 0) {
    frameCount = pts.length;
    exact = true;
  } else if (v.nb_frames && Number(v.nb_frames) > 0 && !vfr) {
    frameCount = Number(v.nb_frames);
    exact = true;
  } else {
    frameCount = Math.max(1, Math.round(duration * rationalValue(fps)));
  }
  if (frameCount === 0) throw inputError(`${file}: video stream holds no frames`);

  const rotation = rotationOf(v);
  const swap = rotation === 90 || rotation === 270;
  const sar = parseRational(v.sample_aspect_ratio?.replace(':', '/')) ?? { num: 1, den: 1 };

  const audio: AudioStreamInfo[] = streams
    .filter((s) => s.codec_type === 'audio')
    .map((s) => ({
      index: s.index,
      codec: s.codec_name ?? 'unknown',
      channels: s.channels ?? 0,
      sampleRate: Number(s.sample_rate ?? 0),
    }));

  return {
    path: file,
    format: String(data.format?.format_name ?? 'unknown'),
    duration,
    codec: v.codec_name ?? 'unknown',
    pixFmt: v.pix_fmt ?? 'unknown',
    width: swap ? v.height : v.width,
    height: swap ? v.width : v.height,
    codedWidth: v.width,
    codedHeight: v.height,
    rotation,
    sar: sar.num > 0 && sar.den > 0 ? sar : { num: 1, den: 1 },
    fps,
    vfr,
    frameCount,
    frameCountExact: exact,
    colorSpace: v.color_space,
    colorRange: v.color_range,
    colour: resolveColour({
      pixFmt: v.pix_fmt,
      colorSpace: v.color_space,
      colorRange: v.color_range,
      colorPrimaries: v.color_primaries,
      colorTransfer: v.color_transfer,
      bitsPerRawSample: Number(v.bits_per_raw_sample) || undefined,
    }),
    audio,
  };
}
