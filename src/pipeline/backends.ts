/**
 * The names each stage option accepts, for --help: read from the stage modules' choices
 * (src/stages/module.ts), the same lists the plan checks, so the help cannot drift.
 */
import { stageModule } from '../stages/index.js';
import { shownNames } from '../stages/module.js';

/** Names --help shows for a stage: built-in backends, then manifest families. */
export function shownChoices(key: string): string[] {
  return shownNames(stageModule(key).choices());
}

/** "auto | flow | none": the choice list of a stage's --help line. */
export function stageChoices(key: string): string {
  return shownChoices(key).join(' | ');
}
