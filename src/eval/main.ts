#!/usr/bin/env node
/**
 * `npm run eval [-- options]`: the real-clip quality benchmark (see run.ts).
 *   --clips DIR        clean clips (default ../shared/data/real-clips when it exists)
 *   --out DIR          where eval.json/md/html go (default reports/eval)
 *   --cases a,b        only these cases (x4-bicubic, x4-area, x4-lanczos, x2-bicubic, x4-crf23, x4-boxes, x4-swap)
 *   --only s1,s2       only clips whose name contains one of these
 *   --frames N         frames per case (default 2 s of each clip)
 *   --variant NAME:stage=backend[,stage=backend]   an extra restore row (repeatable), e.g. rdn:upscale=rdn
 *   --flicker          also measure each output's flicker (warping error; slower)
 */
import path from 'node:path';
import { Command } from 'commander';
import { createLogger } from '../util/log.js';
import { packageRoot } from '../util/paths.js';
import { DEFAULT_CASES } from './cases.js';
import { DEFAULT_VARIANTS, defaultClipsDir, runEval, type Variant } from './run.js';
import { list, parseVariant } from './main-args.js';

const program = new Command('eval')
  .option('--clips <dir>', 'folder of clean clips')
  .option('--out <dir>', 'output folder', path.join(packageRoot, 'reports', 'eval'))
  .option('--cases <list>', 'cases to run', list)
  .option('--only <list>', 'clips whose name contains one of these', list)
  .option('--frames <n>', 'frames per case', (v) => Number(v))
  .option('--flicker', "also measure each output's flicker (warping error, one optical flow per frame pair)")
  .option('--variant <spec>', 'extra restore configuration NAME:stage=backend,...', (v, acc: Variant[]) => [...acc, parseVariant(v)], [] as Variant[])
  .action(async (o) => {
    const clipsDir = o.clips ?? defaultClipsDir(packageRoot);
    if (!clipsDir) {
      process.stderr.write('eval: no clips: pass --clips DIR (../shared/data/real-clips is not there)\n');
      process.exit(2);
    }
    const cases = o.cases ? DEFAULT_CASES.filter((c) => o.cases.includes(c.name)) : undefined;
    const log = createLogger({});
    const r = await runEval({ clipsDir, outDir: o.out, cases, only: o.only, frames: o.frames, flicker: !!o.flicker, variants: [...DEFAULT_VARIANTS, ...o.variant], log });
    log.info(`eval: ${r.rows.length} rows in ${r.wallSeconds} s -> ${path.join(o.out, 'eval.md')}`);
  });

await program.parseAsync(process.argv);
