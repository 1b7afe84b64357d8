/**
 * The run's artefacts besides the video: before/after thumbnails (and the reference's, added
 * by scoring) and the face sheet. Written under thumbs/ as the frames go by; removed again
 * when the run fails.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { writeFileAtomic } from '../media/encode.js';
import type { RgbFrame } from '../media/frame.js';
import type { Box } from '../faces/types.js';
import type { RunReport, Thumbnail } from '../report/types.js';
import type { FrameItem } from '../stages/types.js';

function pickThumbIndices(total: number, n: number): Set<number> {
  const s = new Set<number>();
  if (n <= 0 || total <= 0) return s;
  for (let k = 0; k < n; k++) s.add(Math.min(total - 1, Math.round(((k + 0.5) / n) * (total - 1))));
  return s;
}

export async function writeThumb(f: RgbFrame, file: string, width: number): Promise<void> {
  // Upscale small inputs with nearest neighbour so a person sees the actual pixels.
  const height = Math.round((f.height / f.width) * width);
  await sharp(Buffer.from(f.data.buffer, f.data.byteOffset, f.data.byteLength), { raw: { width: f.width, height: f.height, channels: 3 } })
    .resize(width, height, { kernel: f.width < width ? 'nearest' : 'lanczos3' })
    .jpeg({ quality: 88 })
    .toBuffer()
    .then((buf) => writeFileAtomic(file, buf));
}

const SHEET_TILE = 128;

/** A square crop around `box` (given in output-frame pixels), `scale` mapping those to `f`'s pixels. */
async function faceTile(f: RgbFrame, box: Box, scale: number): Promise<Buffer> {
  const size = Math.max(2, Math.min(f.width, f.height, Math.round(Math.max(box.width, box.height) * 1.6 * scale)));
  const cx = (box.x + box.width / 2) * scale;
  const cy = (box.y + box.height / 2) * scale;
  const left = Math.min(f.width - size, Math.max(0, Math.round(cx - size / 2)));
  const top = Math.min(f.height - size, Math.max(0, Math.round(cy - size / 2)));
  return sharp(Buffer.from(f.data.buffer, f.data.byteOffset, f.data.byteLength), { raw: { width: f.width, height: f.height, channels: 3 } })
    .extract({ left, top, width: size, height: size })
    .resize(SHEET_TILE, SHEET_TILE, { kernel: 'lanczos3' })
    .raw()
    .toBuffer();
}

/** Input tiles over output tiles, one column per frame. */
async function writeFaceSheet(tiles: Map<number, { input: Buffer; output: Buffer }>, file: string): Promise<number[]> {
  const frames = [...tiles.keys()].sort((a, b) => a - b);
  const raw = { width: SHEET_TILE, height: SHEET_TILE, channels: 3 as const };
  const parts = frames.flatMap((idx, col) => [
    { input: tiles.get(idx)!.input, raw, left: col * SHEET_TILE, top: 0 },
    { input: tiles.get(idx)!.output, raw, left: col * SHEET_TILE, top: SHEET_TILE },
  ]);
  const jpg = await sharp({ create: { width: frames.length * SHEET_TILE, height: 2 * SHEET_TILE, channels: 3, background: { r: 0, g: 0, b: 0 } } })
    .composite(parts)
    .jpeg({ quality: 88 })
    .toBuffer();
  await writeFileAtomic(file, jpg);
  return frames;
}

/** Files (thumbnails, face sheet) a run writes into thumbs/, removed again when the run fails. */
class WrittenFiles {
  private readonly files: string[] = [];
  private dirMade = false;
  private dirChecked = false;
  constructor(private readonly dir: string) {}

  /** The path for `rel` under the report folder, creating thumbs/ on first use. */
  async file(reportDir: string, rel: string): Promise<string> {
    if (!this.dirChecked) {
      this.dirChecked = true;
      const existed = await fs.stat(this.dir).then(() => true, () => false);
      await fs.mkdir(this.dir, { recursive: true });
      this.dirMade = !existed;
    }
    const f = path.join(reportDir, rel);
    this.files.push(f);
    return f;
  }

  /** Remove what this run wrote, and thumbs/ when this run made it and it is empty now. */
  async discard(): Promise<void> {
    for (const f of this.files.splice(0)) await fs.rm(f, { force: true }).catch(() => undefined);
    if (this.dirMade) await fs.rmdir(this.dir).catch(() => undefined);
  }
}


/** Thumbnails and face-sheet tiles of one run, picked evenly over its frames. */
export class Artefacts {
  readonly thumbs = new Map<number, Thumbnail>();
  private readonly written: WrittenFiles;
  private readonly thumbIdx: Set<number>;
  private readonly sheetIdx: Set<number>;
  private readonly sheetTiles = new Map<number, { input: Buffer; output: Buffer }>();

  constructor(
    private readonly reportDir: string,
    total: number,
    count: number,
    readonly thumbWidth: number,
  ) {
    this.written = new WrittenFiles(path.join(reportDir, 'thumbs'));
    this.thumbIdx = pickThumbIndices(total, count);
    this.sheetIdx = pickThumbIndices(total, count ? 8 : 0);
  }

  /** Thumbnails of the input and output of this frame, and its face tiles, when it is one of the picked frames. */
  async onFrame(item: FrameItem): Promise<void> {
    if (this.thumbIdx.has(item.index)) {
      const t: Thumbnail = { index: item.index, input: `thumbs/${item.index}-input.jpg`, output: `thumbs/${item.index}-output.jpg` };
      await writeThumb(item.input, await this.written.file(this.reportDir, t.input!), this.thumbWidth);
      await writeThumb(item.frame, await this.written.file(this.reportDir, t.output), this.thumbWidth);
      this.thumbs.set(item.index, t);
    }
    if (this.sheetIdx.has(item.index) && item.faces?.length) {
      const face = item.faces.reduce((a, b) => (b.box.width * b.box.height > a.box.width * a.box.height ? b : a));
      this.sheetTiles.set(item.index, {
        input: await faceTile(item.input, face.box, item.input.width / item.frame.width),
        output: await faceTile(item.frame, face.box, 1),
      });
    }
  }

  /** The reference's thumbnail of a frame that has one. */
  async onReference(index: number, frame: RgbFrame): Promise<void> {
    const t = this.thumbs.get(index);
    if (!t) return;
    t.reference = `thumbs/${index}-reference.jpg`;
    await writeThumb(frame, await this.written.file(this.reportDir, t.reference), this.thumbWidth);
  }

  /** The face sheet (input over output), when two or more picked frames had a face. */
  async faceSheet(): Promise<RunReport['faceSheet']> {
    if (this.sheetTiles.size < 2) return undefined;
    const file = 'thumbs/faces.jpg';
    const frames = await writeFaceSheet(this.sheetTiles, await this.written.file(this.reportDir, file));
    return { file, frames, rows: ['input', 'output'], tile: SHEET_TILE };
  }

  thumbnails(): Thumbnail[] {
    return [...this.thumbs.values()].sort((a, b) => a.index - b.index);
  }

  discard(): Promise<void> {
    return this.written.discard();
  }
}
