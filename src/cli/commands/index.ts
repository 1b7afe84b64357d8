/** Registers the commands whose work lives in other modules (metrics, faces, models, batch). */
import type { Command } from 'commander';
import type { RestoreOptions } from '../../pipeline/types.js';
import { parseNumber, printJson, runAction, signalController } from '../util.js';
import { registerBatchCommand } from './batch.js';
import { metricsCommand } from './metrics.js';

export interface CliKit {
  addRunOptions(cmd: Command): Command;
  optionsFrom(input: string, o: Record<string, any>): RestoreOptions;
}

export function registerExtraCommands(program: Command, kit: CliKit): void {
  program
    .command('metrics <a> <b>')
    .description('per-frame and mean PSNR (RGB and BT.601 luma) and SSIM (luma) between two videos, decoded in lock-step')
    .option('--max-frames <n>', 'only the first N frames', parseNumber('--max-frames', 1, 1e9, true))
    .option('--json', 'the per-frame values and the summary as JSON')
    .addHelpText('after', '\nExample:\n  restore metrics restored.mp4 fixtures/videos/cases/pan-x4/reference.mp4 --json')
    .action((a: string, b: string, o: Record<string, any>) =>
      runAction(!!o.json, async () => {
        const signal = signalController().signal;
        const { result, text } = await metricsCommand(a, b, { json: !!o.json, maxFrames: o.maxFrames, signal });
        if (o.json) printJson(result);
        else process.stdout.write(text);
      }),
    );
  registerBatchCommand(program, kit);
}
