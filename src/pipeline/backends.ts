/**
 * The names each stage option accepts, in one table: run validation (before any work) and
 * the CLI's --help both read it, so the help cannot drift from what a run accepts. Each
 * stage keeps its own list next to its code; this table only gathers them.
 */
import { entriesFor } from '../models/manifest.js';
import { INPAINT_BACKENDS } from '../stages/inpaint/index.js';
import { SWAP_BACKENDS } from '../stages/swap/index.js';
import { TEMPORAL_BACKENDS } from '../stages/temporal/index.js';
import { UPSCALE_BACKENDS } from '../stages/upscale/index.js';
import { upscaleFamilies } from '../stages/upscale/families.js';

/** Which faces the faces stage works on. */
export const FACES_MODES = ['all', 'largest', 'identity', 'none'] as const;

export interface StageOption {
  /** Key in RestoreOptions.backends. */
  key: string;
  /** The CLI flag. */
  flag: string;
  /** Names shown in --help, in order. */
  shown(): string[];
  /** Every accepted value (shown names plus model names where a stage takes one). */
  accepted(): string[];
}

const unique = (xs: string[]) => [...new Set(xs)];
const faceRestoreFamilies = () => unique(entriesFor('face-restore').map((e) => e.family));

export const STAGE_OPTIONS: readonly StageOption[] = [
  { key: 'faces', flag: '--faces', shown: () => [...FACES_MODES], accepted: () => [...FACES_MODES] },
  {
    key: 'inpaint',
    flag: '--inpaint',
    shown: () => [...INPAINT_BACKENDS],
    accepted: () => unique([...INPAINT_BACKENDS, ...entriesFor('inpaint').map((e) => e.name)]),
  },
  {
    key: 'upscale',
    flag: '--upscale',
    shown: () => [...UPSCALE_BACKENDS],
    // the stage also opens any upscale family or model of the manifest (src/stages/upscale/families.ts)
    accepted: () => unique([...UPSCALE_BACKENDS, ...upscaleFamilies(), ...entriesFor('upscale').map((e) => e.name)]),
  },
  {
    key: 'restore-face',
    flag: '--restore-face',
    shown: () => ['auto', ...faceRestoreFamilies(), 'none'],
    accepted: () => unique(['auto', 'none', ...faceRestoreFamilies(), ...entriesFor('face-restore').map((e) => e.name)]),
  },
  { key: 'swap', flag: '--swap', shown: () => [...SWAP_BACKENDS], accepted: () => [...SWAP_BACKENDS] },
  { key: 'temporal', flag: '--temporal', shown: () => [...TEMPORAL_BACKENDS], accepted: () => [...TEMPORAL_BACKENDS] },
];

export function stageOption(key: string): StageOption {
  const o = STAGE_OPTIONS.find((s) => s.key === key);
  if (!o) throw new Error(`no stage option '${key}'`);
  return o;
}

/** "auto | flow | none": the choice list of a stage's --help line. */
export function stageChoices(key: string): string {
  return stageOption(key).shown().join(' | ');
}
