/**
 * Contract tests of the MAT and LaMa backends with project-built tiny models that have the
 * real models' tensor names, shapes and ranges and a known function inside:
 *   MAT:  out = img * m + (1 - m) * 0.5      (img in [-1,1], m = 1 keep)  -> hole = 191
 *   LaMa: out = 255 * (img * (1 - m) + m * 0.25)  (img in [0,1], m = 1 hole) -> hole = 64
 * A wrong polarity, range or compositing gives other numbers.
 */
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OnnxGraphBuilder } from '../src/models/onnx-builder.js';
import { createFrame, createMask } from '../src/media/frame.js';
import { contextBoxes, holeBoxes, openModelInpainter } from '../src/stages/inpaint/models.js';

const S = 512;
function tinyMat(): Uint8Array {
  const g = new OnnxGraphBuilder('tiny_mat');
  g.input('image', [1, 3, S, S]);
  g.input('mask', [1, 1, S, S]);
  g.input('z', [1, 512]);
  const one = g.float([1], [1]);
  const half = g.float([0.5], [1]);
  const keep = g.op('Mul', ['image', 'mask']);
  const inv = g.op('Sub', [one, 'mask']);
  const fillv = g.op('Mul', [inv, half]);
  // z is consumed (as a 0 * mean(z) term) so the input is really part of the graph.
  const zm = g.op('ReduceMean', ['z'], { keepdims: { int: 0 } } as any);
  const zero = g.op('Mul', [zm, g.float([0], [1])]);
  const s = g.op('Add', [keep, fillv]);
  g.op('Add', [s, zero], {}, 'output');
  g.output('output', [1, 3, S, S]);
  return g.toBytes();
}
function tinyLama(): Uint8Array {
  const g = new OnnxGraphBuilder('tiny_lama');
  g.input('image', [1, 3, S, S]);
  g.input('mask', [1, 1, S, S]);
  const one = g.float([1], [1]);
  const inv = g.op('Sub', [one, 'mask']);
  const keep = g.op('Mul', ['image', inv]);
  const fillv = g.op('Mul', ['mask', g.float([0.25], [1])]);
  const s = g.op('Add', [keep, fillv]);
  g.op('Mul', [s, g.float([255], [1])], {}, 'output');
  g.output('output', [1, 3, S, S]);
  return g.toBytes();
}

describe('model inpainting backends (contract)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inpaint-models-'));
    await fs.writeFile(path.join(dir, 'mat.onnx'), tinyMat());
    await fs.writeFile(path.join(dir, 'lama.onnx'), tinyLama());
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  // A 160x120 gradient frame with two holes far apart and one near the border.
  const W = 160, H = 120;
  const frame = createFrame(W, H);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) frame.data.set([x, y * 2, 100], 3 * (y * W + x));
  const mask = createMask(W, H);
  const rect = (x0: number, y0: number, w: number, h: number) => { for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) mask.data[y * W + x] = 255; };
  rect(20, 20, 12, 10);
  rect(120, 70, 10, 20);
  rect(0, 100, 8, 8);

  const deep = (x: number, y: number) => {
    for (let dy = -2; dy <= 2; dy++) for (let dx = -2; dx <= 2; dx++) {
      const xx = x + dx, yy = y + dy;
      if (xx >= 0 && yy >= 0 && xx < W && yy < H && !mask.data[yy * W + xx]) return false;
    }
    return true;
  };
  const check = (out: typeof frame, holeValue: number) => {
    let maxHoleErr = 0, maxFarErr = 0, ring = 0;
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        const i = y * W + x;
        let near = Infinity;
        for (let dy = -3; dy <= 3; dy++) for (let dx = -3; dx <= 3; dx++) {
          const xx = x + dx, yy = y + dy;
          if (xx >= 0 && yy >= 0 && xx < W && yy < H && mask.data[yy * W + xx]) near = Math.min(near, Math.max(Math.abs(dx), Math.abs(dy)));
        }
        for (let c = 0; c < 3; c++) {
          const v = out.data[3 * i + c], o = frame.data[3 * i + c];
          // Hole pixels 2+ px inside the hole: exactly the model's fill (the edge mixes in the resampled border).
          if (mask.data[i] && deep(x, y)) maxHoleErr = Math.max(maxHoleErr, Math.abs(v - holeValue));
          else if (near > 2) maxFarErr = Math.max(maxFarErr, Math.abs(v - o));
          else if (near <= 2 && v !== o) ring++;
        }
      }
    return { maxHoleErr, maxFarErr, ring };
  };

  it('groups holes into context windows that contain every hole and stay in the frame', () => {
    const boxes = contextBoxes(holeBoxes(mask), W, H);
    expect(holeBoxes(mask).length).toBe(3);
    for (const b of boxes) {
      expect(b.x).toBeGreaterThanOrEqual(0);
      expect(b.y).toBeGreaterThanOrEqual(0);
      expect(b.x + b.w).toBeLessThanOrEqual(W);
      expect(b.y + b.h).toBeLessThanOrEqual(H);
    }
    for (const h of holeBoxes(mask)) expect(boxes.some((b) => h.x >= b.x && h.y >= b.y && h.x + h.w <= b.x + b.w && h.y + h.h <= b.y + b.h)).toBe(true);
  });

  it('MAT: [-1,1] image, mask 1 = keep, latent fed; only hole pixels (and a feathered edge) change', async () => {
    const m = await openModelInpainter('mat_places512', { device: 'cpu', file: path.join(dir, 'mat.onnx') });
    expect(m.family).toBe('mat');
    const out = await m.fill(frame, mask);
    const r = check(out, 191);
    console.log(`MAT tiny: runs ${m.runs}, max hole error ${r.maxHoleErr}, max change away from holes ${r.maxFarErr}, feathered ring values ${r.ring}`);
    expect(r.maxHoleErr).toBeLessThanOrEqual(2);
    expect(r.maxFarErr).toBe(0);
    expect(r.ring).toBeGreaterThan(0);
    expect(m.runs).toBeGreaterThanOrEqual(1);
  });

  it('LaMa: [0,1] image, mask 1 = hole, output [0,255]', async () => {
    const m = await openModelInpainter('lama', { device: 'cpu', file: path.join(dir, 'lama.onnx') });
    const out = await m.fill(frame, mask);
    const r = check(out, 64);
    console.log(`LaMa tiny: runs ${m.runs}, max hole error ${r.maxHoleErr}, max change away from holes ${r.maxFarErr}`);
    expect(r.maxHoleErr).toBeLessThanOrEqual(2);
    expect(r.maxFarErr).toBe(0);
  });

  it('a file that does not match the contract is one clear model error', async () => {
    await expect(openModelInpainter('lama', { device: 'cpu', file: path.join(dir, 'mat.onnx') })).rejects.toThrow(/lama.*does not match its contract/);
  });
});
