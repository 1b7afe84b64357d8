/**
 * The one surface every stage module has (src/stages/index.ts lists them in run order):
 *
 *   name     the stage's name in the report
 *   key      its key in RestoreOptions.backends, and `flag` the CLI option that sets it
 *   choices  the names it accepts: built-in backends, manifest families, model names
 *            (validation and --help both read this, so they cannot drift)
 *   plan     pure: from the options and the video's size, what will run or why not; bad
 *            option values throw usage errors. Nothing is opened or written.
 *   open     opens the models the plan needs and returns the streaming Stage.
 *
 * The run plans every stage first and opens them only when every plan succeeded, so a bad
 * option of the last stage fails before the first stage's model is loaded.
 */
import { usageError } from '../errors.js';
import type { FaceAnalyzer } from '../faces/analyzer.js';
import type { FaceDescriptor } from '../faces/descriptor.js';
import type { Colour } from '../media/colour.js';
import { entriesFor, type ModelTask } from '../models/manifest.js';
import type { DeviceRequest } from '../models/session.js';
import type { Logger } from '../util/log.js';
import type { RestoreOptions, Stage } from './types.js';

export interface Size {
  width: number;
  height: number;
}

/** What a plan may know about the video: its size, the output size, its colour. Probed, never decoded. */
export interface PlanVideo extends Size {
  /** The output size the run will produce (from --scale/--size or the reference); undefined = the input's. */
  target?: Size;
  colour?: Colour;
  pixFmt?: string;
}

export interface StageChoices {
  /** Built-in backend names, in the order --help shows them. */
  builtin: readonly string[];
  /** Manifest families the stage opens (a new model of one of these is a manifest entry). */
  families: string[];
  /** Manifest model names the stage accepts by name. */
  models: string[];
}

/** Services a run shares between stages: made on first use, at most one of each per run. */
export interface StageServices {
  analyzer(): Promise<FaceAnalyzer>;
  descriptor(): Promise<FaceDescriptor>;
}

/** What `open` gets from the run. */
export interface StageEnv {
  device: DeviceRequest;
  log: Logger;
  signal: AbortSignal;
  video: import('../media/probe.js').VideoInfo;
  reportDir: string;
  services: StageServices;
}

export type StagePlan<P = unknown> = RunPlan<P> | SkipPlan;
export interface RunPlan<P = unknown> {
  stage: string;
  run: true;
  /** The backend the plan chose (or 'auto' when the choice needs the model files, made at open). */
  backend: string;
  /** Why this backend. */
  reason: string;
  params: P;
}
export interface SkipPlan {
  stage: string;
  run: false;
  reason: string;
}

export interface StageModule<P = unknown> {
  readonly name: string;
  readonly key: string;
  readonly flag: string;
  choices(): StageChoices;
  plan(opts: RestoreOptions, video: PlanVideo): StagePlan<P> | Promise<StagePlan<P>>;
  open(plan: RunPlan<P>, opts: RestoreOptions, env: StageEnv): Promise<Stage>;
}

export const skip = (stage: string, reason: string): SkipPlan => ({ stage, run: false, reason });
export const willRun = <P>(stage: string, backend: string, reason: string, params: P): RunPlan<P> => ({ stage, run: true, backend, reason, params });

/** The names --help shows, in order: built-ins, then manifest families, 'none' last. */
export function shownNames(c: StageChoices): string[] {
  const names = [...c.builtin.filter((b) => b !== 'none'), ...c.families.filter((f) => !c.builtin.includes(f))];
  return c.builtin.includes('none') ? [...names, 'none'] : names;
}

/** Every name a stage accepts (built-ins, families, model names), without repeats. */
export function acceptedNames(c: StageChoices): string[] {
  return [...new Set([...c.builtin, ...c.families, ...c.models])];
}

/**
 * A named backend a stage does not accept is a usage error (exit 2), whether or not the stage
 * will run; the message lists what --help shows, and the model names it also takes.
 */
export function checkChoice(m: Pick<StageModule, 'flag' | 'choices'>, value: string | undefined): void {
  if (value === undefined) return;
  const c = m.choices();
  const ok = acceptedNames(c);
  if (ok.includes(value)) return;
  const shown = shownNames(c);
  const extra = ok.filter((x) => !shown.includes(x));
  throw usageError(`${m.flag} must be one of ${shown.join(', ')} (got "${value}")`, extra.length ? `or a model name: ${extra.join(', ')}` : undefined);
}

/** Manifest families of a task, in manifest order. */
export function familiesOf(task: ModelTask): string[] {
  return [...new Set(entriesFor(task).map((e) => e.family))];
}
export const modelNamesOf = (task: ModelTask): string[] => entriesFor(task).map((e) => e.name);
