/** Per-frame cost of the temporal smoother on synthetic frames (for `npm run bench`). */
import type { Face } from '../faces/types.js';
import { TemporalSmoother } from '../stages/temporal/smoother.js';

export interface TemporalBench {
  width: number;
  height: number;
  /** Wall-clock ms per frame (after the first). */
  msPerFrame: number;
  /** CPU ms per frame of this process (user + system): the cost on an idle core. */
  cpuMsPerFrame: number;
  flowMaxSide: number;
}

/** Time the smoother per frame on a synthetic moving frame with one face region (for `npm run bench`). */
export function benchTemporal(sizes: { width: number; height: number }[] = [{ width: 384, height: 384 }, { width: 1280, height: 720 }], frames = 4): TemporalBench[] {
  const out: TemporalBench[] = [];
  for (const { width: w, height: h } of sizes) {
    const s = new TemporalSmoother();
    const face: Face = {
      trackId: 0,
      box: { x: w * 0.35, y: h * 0.25, width: w * 0.3, height: w * 0.3 },
      score: 1,
      keypoints: [],
      five: [
        { x: w * 0.44, y: h * 0.4 },
        { x: w * 0.56, y: h * 0.4 },
        { x: w * 0.5, y: h * 0.46 },
        { x: w * 0.45, y: h * 0.52 },
        { x: w * 0.55, y: h * 0.52 },
      ],
    };
    let ms = 0, cpu = 0;
    for (let t = 0; t <= frames; t++) {
      const data = new Uint8Array(w * h * 3);
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          const v = 128 + 60 * Math.sin((x + 1.3 * t) / 9) * Math.cos((y - 0.7 * t) / 13) + (t % 2 ? 6 : -6);
          const i = (y * w + x) * 3;
          data[i] = data[i + 1] = data[i + 2] = Math.max(0, Math.min(255, Math.round(v)));
        }
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      s.process({ width: w, height: h, data }, [face]);
      if (t > 0) {
        ms += performance.now() - t0;
        const c = process.cpuUsage(c0);
        cpu += (c.user + c.system) / 1000;
      }
    }
    out.push({ width: w, height: h, msPerFrame: +(ms / frames).toFixed(1), cpuMsPerFrame: +(cpu / frames).toFixed(1), flowMaxSide: s.o.flowMaxSide });
  }
  return out;
}
