#!/usr/bin/env node
// Builds a small held-out set for `npm run eval -- --clips DIR`: clips that are not the eval's
// default clips. Two slow camera pans over real photos of ../shared/data/real-clips (the
// black-and-white man and the painted girl, never used there as clips; src/eval/heldout.ts)
// and the fixture clip astronaut-turn.mp4. Run after `npm run build`:
//   node scripts/make-heldout-clips.mjs /tmp/heldout && npm run eval -- --clips /tmp/heldout --cases x4-bicubic,x4-boxes
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { HELDOUT_PANS, makePanClip } from '../dist/eval/heldout.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const out = path.resolve(process.argv[2] ?? 'heldout-clips');
const photos = path.resolve(root, '..', 'shared', 'data', 'real-clips');
mkdirSync(out, { recursive: true });
for (const pan of HELDOUT_PANS) {
  if (!existsSync(path.join(photos, pan.photo))) {
    process.stderr.write(`make-heldout-clips: ${path.join(photos, pan.photo)} is not there; skipped ${pan.name}\n`);
    continue;
  }
  await makePanClip(photos, out, pan);
}
copyFileSync(path.join(root, 'fixtures', 'videos', 'astronaut-turn.mp4'), path.join(out, 'astronaut-turn.mp4'));
process.stdout.write(`held-out clips in ${out}\n`);
