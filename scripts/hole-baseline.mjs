// The hole fill of an older checkout against today's, on the eval's box cases, scored by
// today's eval scorer (Y-PSNR inside the holes, split into face and background holes, and the
// flicker inside the holes). Issue #13 asks for "at least 3 dB above the builtin of the day it
// was filed": this measures that, instead of taking it from the issue's one figure.
//
//   git worktree add /tmp/old 8fded79 && ln -s "$PWD/node_modules" /tmp/old/node_modules
//   (cd /tmp/old && npx tsc -p tsconfig.json)
//   npm run eval -- --cases x4-boxes --out /tmp/eval-boxes        # today's rows and the cases
//   node scripts/hole-baseline.mjs --old /tmp/old --work /tmp/eval-boxes/work [--md out.md]
//
// The old checkout runs `restore run INPUT --mask MASK --inpaint builtin --upscale lanczos
// --size WxH --crf 18` (its own defaults otherwise: faces found, temporal on); today's rows are
// the eval's own outputs in the same case folders (fill-builtin, the face prior, the default).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { holeMap, holeSplitScores, regionScores } from '../dist/eval/regions.js';
import { referenceFaceRegions } from '../dist/eval/holes.js';
import { FaceAnalyzer } from '../dist/faces/analyzer.js';
import { probeVideo } from '../dist/media/probe.js';

const { values: args } = parseArgs({ options: { old: { type: 'string' }, work: { type: 'string' }, case: { type: 'string', default: 'x4-boxes' }, md: { type: 'string' } } });
const { old, work } = args;
if (!old || !work) {
  process.stderr.write('usage: node scripts/hole-baseline.mjs --old BUILT_CHECKOUT --work EVAL_WORK_DIR [--case x4-boxes] [--md FILE]\n');
  process.exit(2);
}
const caseName = args.case;
const oldCli = path.join(old, 'dist', 'cli', 'main.js');
if (!existsSync(oldCli)) {
  process.stderr.write(`hole-baseline: ${oldCli} is not there: build the old checkout first (npx tsc -p tsconfig.json)\n`);
  process.exit(2);
}
const oldRev = execFileSync('git', ['-C', old, 'rev-parse', '--short', 'HEAD']).toString().trim();
const analyzer = await FaceAnalyzer.create({});
const METHODS = [
  ['builtin at ' + oldRev, 'old'],
  ['fill-builtin', 'restore-fill-builtin.mp4'],
  ['fill-builtin+prior', 'restore-fill-builtin+prior.mp4'],
  ['fill-builtin+prior+identity', 'restore-fill-builtin+prior+identity.mp4'],
  ['default', 'restore-default.mp4'],
];
const rows = [];
for (const clip of readdirSync(work).sort()) {
  const dir = path.join(work, clip, caseName);
  if (!existsSync(path.join(dir, 'mask.png'))) continue;
  const reference = path.join(dir, 'reference.mp4');
  const info = await probeVideo(reference);
  const oldOut = path.join(dir, `old-${oldRev}.mp4`);
  if (!existsSync(oldOut)) {
    process.stderr.write(`hole-baseline: ${clip}: running the builtin of ${oldRev} ...\n`);
    execFileSync(process.execPath, [oldCli, 'run', path.join(dir, 'input.mp4'), '--mask', path.join(dir, 'mask.png'), '--inpaint', 'builtin', '--upscale', 'lanczos', '--size', `${info.width}x${info.height}`, '--crf', '18', '--thumbnails', '0', '--report-dir', path.join(dir, `old-${oldRev}-report`), '--out', oldOut], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  const holes = await holeMap(path.join(dir, 'mask.png'), info.width, info.height);
  const faces = await referenceFaceRegions(reference, analyzer);
  for (const [name, file] of METHODS) {
    const f = file === 'old' ? oldOut : path.join(dir, file);
    if (!existsSync(f)) continue;
    const r = await regionScores(f, reference, holes);
    const s = await holeSplitScores(f, reference, holes, faces, { flicker: true });
    rows.push({ clip, method: name, holeY: r.holeY, faceY: s.face?.y, backgroundY: s.background?.y, outsideY: r.outsideY, holeFlicker: s.holeFlicker });
  }
}
const f2 = (v) => (v === undefined || v === null ? '' : v.toFixed(2));
const f3 = (v) => (v === undefined || v === null ? '' : v.toFixed(3));
const lines = [
  `# Hole fill: the builtin at ${oldRev} against today's (${caseName})`,
  '',
  `Case folders: \`${work}\`. Scored by today's eval scorer (src/eval/regions.ts): Y-PSNR of the mean MSE inside the holes, face holes (the reference's face mesh) and background holes; flicker = warping error inside the holes. Δ = against the builtin at ${oldRev}.`,
  '',
  '| clip | method | Y in holes | Δ | face holes | Δ | background holes | Y outside | hole flicker |',
  '|---|---|---:|---:|---:|---:|---:|---:|---:|',
];
for (const r of rows) {
  const b = rows.find((x) => x.clip === r.clip && x.method.startsWith('builtin at'));
  const d = (a, c) => (a === undefined || c === undefined ? '' : `${a - c >= 0 ? '+' : ''}${(a - c).toFixed(2)}`);
  lines.push(`| ${r.clip} | ${r.method} | ${f2(r.holeY)} | ${r === b ? '' : d(r.holeY, b?.holeY)} | ${f2(r.faceY)} | ${r === b ? '' : d(r.faceY, b?.faceY)} | ${f2(r.backgroundY)} | ${f2(r.outsideY)} | ${f3(r.holeFlicker)} |`);
}
const md = lines.join('\n') + '\n';
const out = args.md;
if (out) writeFileSync(out, md);
process.stdout.write(md);
