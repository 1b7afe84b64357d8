/** Registers the commands whose work lives in other modules (metrics, faces, models, batch). */
import type { Command } from 'commander';
import type { RestoreOptions } from '../../stages/types.js';
import { parseNumber, printJson, runAction, signalController, type CliKit } from '../util.js';
import { registerBatchCommand } from './batch.js';
import { registerWorkerCommand } from './worker.js';
import { registerFacesCommand } from './faces.js';
import { metricsCommand } from './metrics.js';
import { modelsAdd, modelsList, modelsPull, modelsRemove, modelsVerify } from './models.js';
import { EXIT } from '../../errors.js';


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
  registerFacesCommand(program);
  registerModelsCommand(program);
  registerBatchCommand(program, kit);
  registerWorkerCommand(program);
}

function registerModelsCommand(program: Command): void {
  const models = program
    .command('models')
    .description('the model files: which are known, installed or embedded, and which backend each stage will use')
    .addHelpText(
      'after',
      `
Examples:
  restore models list
  restore models add ~/Downloads/GPEN-BFR-512.onnx --as gpen_bfr_512
  restore models verify gpen_bfr_512
  restore models remove gpen_bfr_512
  restore models pull gpen_bfr_256          # needs network; --url to use a mirror`,
    );
  const out = (json: boolean, r: { data: unknown; text: string }) => {
    if (json) printJson(r.data);
    else process.stdout.write(r.text.endsWith('\n') ? r.text : r.text + '\n');
  };
  models
    .command('list')
    .description('every model the manifest knows: installed, embedded (ships in npm) or missing, and how to add it')
    .option('--json', 'as JSON')
    .action((o: Record<string, any>) => runAction(!!o.json, async () => out(!!o.json, await modelsList({ json: !!o.json }))));
  models
    .command('verify [name-or-file]')
    .description('check installed files (or one) against their contract: names, shapes, dtypes, sha256 when known')
    .option('--as <name>', 'check a file against this manifest entry')
    .option('--json', 'as JSON')
    .action((name: string | undefined, o: Record<string, any>) =>
      runAction(!!o.json, async () => {
        const r = await modelsVerify(name, { as: o.as });
        out(!!o.json, r);
        return r.ok ? EXIT.OK : EXIT.MODEL;
      }),
    );
  models
    .command('add <file>')
    .description('import an ONNX file you brought, checked against the contract of the named entry')
    .requiredOption('--as <name>', 'manifest entry, e.g. gpen_bfr_512 (see `restore models list`)')
    .option('--json', 'as JSON')
    .action((file: string, o: Record<string, any>) =>
      runAction(!!o.json, async () => out(!!o.json, await modelsAdd(file, { as: o.as, log: o.json ? undefined : (m) => process.stderr.write(m + '\n') }))),
    );
  models
    .command('remove <name>')
    .description('delete an installed model file (and its fp16 variant or unfinished download); embedded models are converted again at next use')
    .option('--json', 'as JSON')
    .action((name: string, o: Record<string, any>) => runAction(!!o.json, async () => out(!!o.json, await modelsRemove(name))));
  models
    .command('pull <name>')
    .description('download a model (resumable, sha256-checked, contract-checked) into models/onnx')
    .option('--url <url>', 'download from this address instead of the manifest\'s')
    .option('--sha256 <hex>', 'expected sha256 of the file')
    .option('--json', 'as JSON')
    .action((name: string, o: Record<string, any>) =>
      runAction(!!o.json, async () => {
        const signal = signalController().signal;
        out(!!o.json, await modelsPull(name, { url: o.url, sha256: o.sha256, signal, quiet: !!o.json }));
      }),
    );
}
