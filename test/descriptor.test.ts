/**
 * The ArcFace descriptor's pre-processing, proven with a project-built model of ArcFace's
 * contract (1x3x112x112 RGB in [-1,1] → 512-d) whose function is known: per-channel means
 * times a fixed 3x512 matrix. A wrong channel order, range or alignment template changes it.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { FaceAnalyzer } from '../src/faces/analyzer.js';
import { estimateSimilarity, templatePoints, warpAffine } from '../src/faces/align.js';
import { createArcfaceDescriptor } from '../src/faces/descriptor.js';
import { OnnxGraphBuilder, attr } from '../src/models/onnx-builder.js';
import { fixture, tempDir } from './helpers/media.js';
import { seededFloats } from './helpers/tiny-models.js';

const tmp = tempDir('restore-descriptor-');
afterAll(() => tmp.cleanup());

describe('ArcFace descriptor pre-processing', () => {
  it('feeds the arcface_112_v2 crop as RGB in [-1,1], NCHW, and L2-normalizes the output', async () => {
    const W = seededFloats(11, 3 * 512);
    const g = new OnnxGraphBuilder('arcface-tiny');
    g.input('input.1', [1, 3, 112, 112]);
    const mean = g.op('ReduceMean', ['input.1'], { axes: attr.ints([2, 3]), keepdims: attr.int(0) });
    g.op('MatMul', [mean, g.float(W, [3, 512])], {}, '683');
    g.output('683', [1, 512]);
    const file = path.join(tmp.dir, 'arcface-tiny.onnx');
    writeFileSync(file, g.toBytes());

    const { data, info } = await sharp(fixture('source', 'astronaut.png')).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const frame = { width: info.width, height: info.height, data: new Uint8Array(data) };
    const analyzer = await FaceAnalyzer.create({ device: 'cpu' });
    const [face] = await analyzer.analyze(frame);
    const d = await createArcfaceDescriptor({ device: 'cpu', file });
    const got = await d.describe(frame, face.five);

    // The same function, computed here from the crop with the original formula.
    const crop = warpAffine(frame, estimateSimilarity(face.five, templatePoints('arcface_112_v2', 112)), 112, 112);
    const m = [0, 0, 0];
    for (let i = 0; i < 112 * 112; i++) for (let c = 0; c < 3; c++) m[c] += crop.data[i * 3 + c] / 127.5 - 1;
    const means = m.map((v) => v / (112 * 112));
    const want = Array.from({ length: 512 }, (_, j) => means[0] * W[j] + means[1] * W[512 + j] + means[2] * W[1024 + j]);
    const norm = Math.hypot(...want);
    expect(got.length).toBe(512);
    for (let j = 0; j < 512; j++) expect(got[j]).toBeCloseTo(want[j] / norm, 4);
    // A swapped channel order would give a clearly different descriptor.
    const swapped = Array.from({ length: 512 }, (_, j) => means[2] * W[j] + means[1] * W[512 + j] + means[0] * W[1024 + j]);
    const sn = Math.hypot(...swapped);
    expect(Math.max(...swapped.map((v, j) => Math.abs(v / sn - got[j])))).toBeGreaterThan(1e-2);
  }, 60_000);
});
