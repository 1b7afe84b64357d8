/**
 * Membrane (harmonic / Laplace) interpolation of unknown samples from known ones, solved
 * with a coarse-to-fine multigrid: the unknown samples of each level start from the
 * coarser level's solution and are relaxed with Gauss-Seidel sweeps of the 4-neighbour
 * average. Used to fill image holes (the simple inpainting fill) and to complete flow
 * fields where the data gave no confident estimate.
 */

export interface LaplaceOptions {
  /** Gauss-Seidel sweeps per level (default 12; the coarse start makes few enough). */
  sweeps?: number;
  /** Sweeps on the coarsest level (default 60). */
  coarseSweeps?: number;
}

/**
 * Fill in place the samples where `unknown[i] !== 0`, for every channel (each a
 * width*height plane). Known samples are never changed.
 */
export function laplaceFill(channels: Float32Array[], width: number, height: number, unknown: Uint8Array, opts: LaplaceOptions = {}): void {
  const n = width * height;
  let holes = 0;
  for (let i = 0; i < n; i++) if (unknown[i]) holes++;
  if (holes === 0) return;
  if (holes === n) {
    for (const c of channels) c.fill(0);
    return;
  }
  const sweeps = opts.sweeps ?? 12;
  const coarseSweeps = opts.coarseSweeps ?? 60;
  const idx = new Int32Array(holes);
  for (let i = 0, k = 0; i < n; i++) if (unknown[i]) idx[k++] = i;

  if (width <= 8 || height <= 8) {
    // Coarsest level: start from the mean of the known samples.
    for (const c of channels) {
      let s = 0;
      for (let i = 0; i < n; i++) if (!unknown[i]) s += c[i];
      const mean = s / (n - holes);
      for (let k = 0; k < holes; k++) c[idx[k]] = mean;
    }
    relax(channels, width, height, idx, coarseSweeps);
    return;
  }

  // Restrict: average of the known fine samples of each 2x2 block.
  const w2 = (width + 1) >> 1;
  const h2 = (height + 1) >> 1;
  const n2 = w2 * h2;
  const cu = new Uint8Array(n2);
  const cnt = new Float32Array(n2);
  const coarse = channels.map(() => new Float32Array(n2));
  for (let y = 0; y < height; y++) {
    const cy = (y >> 1) * w2;
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (unknown[i]) continue;
      const j = cy + (x >> 1);
      cnt[j]++;
      for (let c = 0; c < channels.length; c++) coarse[c][j] += channels[c][i];
    }
  }
  for (let j = 0; j < n2; j++) {
    if (cnt[j] > 0) {
      for (let c = 0; c < channels.length; c++) coarse[c][j] /= cnt[j];
    } else cu[j] = 1;
  }
  laplaceFill(coarse, w2, h2, cu, opts);

  // Prolong: bilinear from the coarse solution, then relax.
  for (let k = 0; k < holes; k++) {
    const i = idx[k];
    const y = (i / width) | 0;
    const x = i - y * width;
    const fx = Math.min(Math.max((x - 0.5) / 2, 0), w2 - 1);
    const fy = Math.min(Math.max((y - 0.5) / 2, 0), h2 - 1);
    const x0 = Math.floor(fx), y0 = Math.floor(fy);
    const x1 = Math.min(x0 + 1, w2 - 1), y1 = Math.min(y0 + 1, h2 - 1);
    const ax = fx - x0, ay = fy - y0;
    for (let c = 0; c < channels.length; c++) {
      const p = coarse[c];
      channels[c][i] =
        (p[y0 * w2 + x0] * (1 - ax) + p[y0 * w2 + x1] * ax) * (1 - ay) + (p[y1 * w2 + x0] * (1 - ax) + p[y1 * w2 + x1] * ax) * ay;
    }
  }
  relax(channels, width, height, idx, sweeps);
}

function relax(channels: Float32Array[], width: number, height: number, idx: Int32Array, sweeps: number): void {
  const holes = idx.length;
  const n = width * height;
  // Neighbour offsets per unknown sample, computed once (mirrored at the borders).
  const nb = new Int32Array(holes * 4);
  for (let k = 0; k < holes; k++) {
    const i = idx[k];
    const y = (i / width) | 0;
    const x = i - y * width;
    const l = x > 0 ? i - 1 : width > 1 ? i + 1 : i;
    const r = x < width - 1 ? i + 1 : l;
    const u = y > 0 ? i - width : height > 1 && i + width < n ? i + width : i;
    const d = y < height - 1 ? i + width : u;
    nb[4 * k] = l;
    nb[4 * k + 1] = r;
    nb[4 * k + 2] = u;
    nb[4 * k + 3] = d;
  }
  for (const c of channels) {
    for (let s = 0; s < sweeps; s++) {
      for (let k = 0, q = 0; k < holes; k++, q += 4) c[idx[k]] = 0.25 * (c[nb[q]] + c[nb[q + 1]] + c[nb[q + 2]] + c[nb[q + 3]]);
    }
  }
}
