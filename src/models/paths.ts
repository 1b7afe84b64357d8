/** Where things live: the package root, the model folder (RESTORE_MODELS_DIR overrides), fixtures. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (this file is src/models/paths.ts or dist/models/paths.js). */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export function modelsDir(): string {
  return process.env.RESTORE_MODELS_DIR ? path.resolve(process.env.RESTORE_MODELS_DIR) : path.join(packageRoot, 'models', 'onnx');
}

export const fixturesDir = path.join(packageRoot, 'fixtures');
