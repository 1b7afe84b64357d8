/**
 * Face timings for `npm run bench`: detection per frame and face mesh per face on a fixture
 * clip, split into the model call and the JS pre/post-processing, plus the tracker.
 */
import path from 'node:path';
import { decodeFrames } from '../media/decode.js';
import type { RgbFrame } from '../media/frame.js';
import { probeVideo } from '../media/probe.js';
import { fixturesDir } from '../util/paths.js';
import type { DeviceRequest } from '../models/session.js';
import { alignFace, pasteBack } from '../faces/align.js';
import { FaceAnalyzer } from '../faces/analyzer.js';
import { FaceTracker } from '../faces/track.js';
import type { Face } from '../faces/types.js';

export interface FacesBench {
  clip: string;
  frames: number;
  provider: string;
  /** analyzer.detect: letterbox + model + decode, ms per frame. */
  detectMsPerFrame: number;
  /** analyzer.meshAt: rotated crop + model + un-projection, ms per face. */
  meshMsPerFace: number;
  /** CPU time of this process (all threads) per call: the work, whatever else runs on the machine. */
  detectCpuMsPerFrame: number;
  meshCpuMsPerFace: number;
  /** Medians of the per-call times (robust to other processes on a shared machine). */
  detectMsMedian: number;
  meshMsMedian: number;
  /** analyze (detect + mesh of every face), ms per frame. */
  analyzeMsPerFrame: number;
  /** tracker (matching, gap filling, smoothing of 468 points), ms per frame. */
  trackMsPerFrame: number;
  /** alignFace to ffhq_512 at 512 + pasteBack, ms per face. */
  alignPasteMsPerFace: number;
}

export async function benchFaces(opts: { device?: DeviceRequest; clip?: string; frames?: number; threads?: number } = {}): Promise<FacesBench> {
  const clip = opts.clip ?? path.join(fixturesDir, 'videos', 'astronaut-pan.mp4');
  const info = await probeVideo(clip);
  const frames: RgbFrame[] = [];
  for await (const f of decodeFrames(info, { maxFrames: opts.frames ?? 48 })) frames.push(f);
  const analyzer = await FaceAnalyzer.create({ device: opts.device ?? 'auto', threads: opts.threads });
  await analyzer.analyze(frames[0]); // warm-up (session init, first-run allocations)
  const detect0 = { ...analyzer.timings };
  const med = (xs: number[]) => xs.slice().sort((a, b) => a - b)[xs.length >> 1] ?? 0;
  const detTimes: number[] = [];
  const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
  let c0 = cpu();
  let t = performance.now();
  const dets: Face[][] = [];
  for (const f of frames) {
    const t1 = performance.now();
    dets.push(await analyzer.detect(f));
    detTimes.push(performance.now() - t1);
  }
  const detectMs = (performance.now() - t) / frames.length;
  const detectCpu = (cpu() - c0) / frames.length;
  const meshTimes: number[] = [];
  c0 = cpu();
  for (const [i, f] of frames.entries()) {
    for (const face of dets[i]) {
      const t1 = performance.now();
      await analyzer.landmarks(f, face);
      meshTimes.push(performance.now() - t1);
    }
  }
  const meshCpu = (cpu() - c0) / Math.max(1, meshTimes.length);
  const all: Face[][] = [];
  t = performance.now();
  for (const f of frames) all.push(await analyzer.analyze(f));
  const analyzeMs = (performance.now() - t) / frames.length;
  const meshCalls = analyzer.timings.meshCalls - detect0.meshCalls;
  const meshMs = (analyzer.timings.meshMs - detect0.meshMs) / Math.max(1, meshCalls);
  const tracker = new FaceTracker({ smoothing: 1.5 });
  t = performance.now();
  all.forEach((faces, i) => tracker.push(i, faces));
  tracker.flush();
  const trackMs = (performance.now() - t) / frames.length;
  let n = 0;
  t = performance.now();
  for (const [i, faces] of all.entries()) {
    if (i % 8) continue;
    for (const face of faces) {
      const { crop, matrix } = alignFace(frames[i], face.five, 'ffhq_512', 512);
      pasteBack(frames[i], crop, matrix);
      n++;
    }
  }
  const alignMs = (performance.now() - t) / Math.max(1, n);
  const r2 = (v: number) => Math.round(v * 100) / 100;
  return {
    clip: path.basename(clip),
    frames: frames.length,
    provider: analyzer.provider,
    detectMsPerFrame: r2(detectMs),
    detectCpuMsPerFrame: r2(detectCpu),
    meshCpuMsPerFace: r2(meshCpu),
    detectMsMedian: r2(med(detTimes)),
    meshMsMedian: r2(med(meshTimes)),
    meshMsPerFace: r2(meshMs),
    analyzeMsPerFrame: r2(analyzeMs),
    trackMsPerFrame: r2(trackMs),
    alignPasteMsPerFace: r2(alignMs),
  };
}
