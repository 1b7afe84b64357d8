/**
 * Colour description of a stream (matrix, range, primaries, transfer) and the ffmpeg arguments
 * that keep it: frames are decoded to RGB with the source's matrix and range, and encoded back
 * with the same ones, so the stored Y/U/V planes of an untouched frame come back as they were.
 *
 * Untagged streams get the assumption ffmpeg's own scaler makes (BT.601 matrix; limited range,
 * or full range for the `yuvj*` formats); `assumed` says so, for the report.
 */

/** swscale's names for the matrices it knows (`in_color_matrix` / `out_color_matrix`). */
export type SwsMatrix = 'bt601' | 'bt709' | 'smpte240m' | 'fcc' | 'bt2020';

export interface Colour {
  /** Matrix used for YUV <-> RGB. */
  matrix: SwsMatrix;
  /** The stream's own tag for the matrix (`-colorspace`), e.g. `bt709`, `smpte170m`, `bt470bg`. */
  matrixTag: string;
  range: 'tv' | 'pc';
  primaries?: string;
  transfer?: string;
  /** Bits per sample of the stored planes (8, 10, 12...). */
  bitDepth: number;
  /** True when the matrix or range was not tagged and ffmpeg's assumption was taken. */
  assumed: boolean;
}

/** Luma weights (Kr, Kb) of each matrix; Kg = 1 - Kr - Kb. */
export const LUMA_WEIGHTS: Record<SwsMatrix, [number, number]> = {
  bt601: [0.299, 0.114],
  bt709: [0.2126, 0.0722],
  smpte240m: [0.212, 0.087],
  fcc: [0.3, 0.11],
  bt2020: [0.2627, 0.0593],
};

/** What an encoder writes when it has no source to follow (masks, synthetic clips). */
export const DEFAULT_COLOUR: Colour = {
  matrix: 'bt709',
  matrixTag: 'bt709',
  range: 'tv',
  primaries: 'bt709',
  transfer: 'bt709',
  bitDepth: 8,
  assumed: false,
};

const MATRIX_OF_TAG: Record<string, SwsMatrix> = {
  bt709: 'bt709',
  smpte170m: 'bt601',
  bt470bg: 'bt601',
  bt601: 'bt601',
  smpte240m: 'smpte240m',
  fcc: 'fcc',
  bt2020nc: 'bt2020',
  bt2020c: 'bt2020',
};

const known = (s: string | undefined) => (s && s !== 'unknown' && s !== 'unspecified' && s !== 'reserved' ? s : undefined);

/** Bits per sample from a pixel format name (`yuv420p10le` → 10). */
export function bitDepthOf(pixFmt: string | undefined, bitsPerRawSample?: number): number {
  if (bitsPerRawSample && bitsPerRawSample > 0) return bitsPerRawSample;
  const m = /p(\d+)(le|be)?$/.exec(pixFmt ?? '');
  return m ? Number(m[1]) : 8;
}

/** Resolve a stream's colour from its ffprobe tags. */
export function resolveColour(tags: {
  pixFmt?: string;
  colorSpace?: string;
  colorRange?: string;
  colorPrimaries?: string;
  colorTransfer?: string;
  bitsPerRawSample?: number;
}): Colour {
  const space = known(tags.colorSpace);
  const matrix = space ? MATRIX_OF_TAG[space] : undefined;
  const rangeTag = known(tags.colorRange);
  const fullByFormat = /^yuvj/.test(tags.pixFmt ?? '');
  const isRgb = /^(rgb|bgr|gbr|argb|abgr|rgba|bgra|gray|ya|pal)/.test(tags.pixFmt ?? '');
  const range: Colour['range'] = rangeTag === 'pc' || (!rangeTag && (fullByFormat || isRgb)) ? 'pc' : 'tv';
  return {
    matrix: matrix ?? 'bt601',
    matrixTag: matrix ? space! : 'smpte170m',
    range,
    primaries: known(tags.colorPrimaries),
    transfer: known(tags.colorTransfer),
    bitDepth: bitDepthOf(tags.pixFmt, tags.bitsPerRawSample),
    assumed: !matrix || (!rangeTag && !fullByFormat && !isRgb),
  };
}

/** One line for the report: what was taken, and whether it was assumed. */
export function describeColour(c: Colour): string {
  const parts = [`matrix ${c.matrixTag}`, `${c.range === 'pc' ? 'full' : 'limited'} range`];
  if (c.primaries) parts.push(`primaries ${c.primaries}`);
  if (c.transfer) parts.push(`transfer ${c.transfer}`);
  parts.push(`${c.bitDepth}-bit`);
  return parts.join(', ');
}

const swsRange = (r: Colour['range']) => (r === 'pc' ? 'full' : 'limited');

/** `scale` options that read YUV with this colour. */
export function decodeScaleArgs(c: Colour): string {
  return `in_color_matrix=${c.matrix}:in_range=${swsRange(c.range)}`;
}

/** `scale` options that write YUV with this colour. */
export function encodeScaleArgs(c: Colour): string {
  return `out_color_matrix=${c.matrix}:out_range=${swsRange(c.range)}`;
}

/** Output options that tag the stream with this colour. */
export function colourTagArgs(c: Colour): string[] {
  return [
    '-colorspace', c.matrixTag,
    '-color_range', c.range,
    ...(c.primaries ? ['-color_primaries', c.primaries] : []),
    ...(c.transfer ? ['-color_trc', c.transfer] : []),
  ];
}

/** Differences between two streams' colour, for the report (empty when they agree). */
export function colourDifferences(a: Colour, b: Colour): string[] {
  const out: string[] = [];
  if (a.matrix !== b.matrix) out.push(`matrix ${a.matrixTag} vs ${b.matrixTag}`);
  if (a.range !== b.range) out.push(`range ${a.range} vs ${b.range}`);
  if ((a.primaries ?? '?') !== (b.primaries ?? '?')) out.push(`primaries ${a.primaries ?? 'untagged'} vs ${b.primaries ?? 'untagged'}`);
  if ((a.transfer ?? '?') !== (b.transfer ?? '?')) out.push(`transfer ${a.transfer ?? 'untagged'} vs ${b.transfer ?? 'untagged'}`);
  return out;
}
