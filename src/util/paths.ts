/** Where things live: the package root, the model folder (RESTORE_MODELS_DIR overrides), fixtures. */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (this file is src/util/paths.ts or dist/util/paths.js). */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export function modelsDir(): string {
  return process.env.RESTORE_MODELS_DIR ? path.resolve(process.env.RESTORE_MODELS_DIR) : path.join(packageRoot, 'models', 'onnx');
}

export const fixturesDir = path.join(packageRoot, 'fixtures');

const require = createRequire(import.meta.url);


/** Root folder of the installed @vladmandic/human package (its exports map hides package.json). */
export function humanPackageRoot(): string {
  let dir = path.dirname(require.resolve('@vladmandic/human'));
  for (let i = 0; i < 4; i++) {
    if (existsSync(path.join(dir, 'package.json')) && path.basename(dir) === 'human') return dir;
    dir = path.dirname(dir);
  }
  throw new Error('package root of @vladmandic/human not found');
}

