/**
 * The face restoration stage (`restore-face`): GPEN-BFR-256/-512, GFPGAN 1.4 or CodeFormer run
 * on each tracked face. Per face: align the five points to the model's template at its crop
 * size (src/faces/align.ts), convert by the contract (RGB, [-1,1]), feed the optional `weight`
 * input when the file has one, run, convert back, and paste back with the soft box mask at
 * `blend` strength (default 0.8 = 80% restored: out = frame*(1-m*b) + restored*m*b, which
 * blends with the original without resampling the original twice).
 * With no restoration model installed the stage is skipped and says how to add one.
 */
import { usageError } from '../errors.js';
import { alignFace, isTemplateName, pasteBack, type TemplateName } from '../faces/align.js';
import type { Face } from '../faces/types.js';
import type { RgbFrame } from '../media/frame.js';
import type { Logger } from '../util/log.js';
import { perFrameStage, skippedStage } from './kit.js';
import type { RestoreOptions, Stage } from './types.js';
import { checkChoice, familiesOf, modelNamesOf, skip, willRun, type StageModule, type StagePlan } from './module.js';
import { entriesFor, getEntry, type ModelEntry } from '../models/manifest.js';
import { howToAdd, installedModels, isInstalled, modelStatus, openModel, type OpenedModel } from '../models/registry.js';
import type { DeviceRequest } from '../models/session.js';
import { ort } from '../models/session.js';
import { imageToTensor, tensorToImage } from '../models/tensor.js';

export interface RestoreFaceContext {
  device: DeviceRequest;
  log?: Logger;
  threads?: number;
  /** Restored share 0..1 (default: the model's contract blend, 0.8). */
  blend?: number;
  /** CodeFormer fidelity / GPEN weight fed to a `weight` input (default: the contract's value). */
  weight?: number;
}

/** Models of the face-restore task in preference order (manifest order). */
export function faceRestoreModels(): ModelEntry[] {
  return entriesFor('face-restore');
}

/** A loaded face restorer: restore one aligned crop, or all faces of a frame. */
export interface FaceRestorer {
  entry: ModelEntry;
  provider: string;
  size: number;
  template: TemplateName;
  blend: number;
  /** All faces of a frame run as one batch (the file's batch dimension is free). */
  batchable: boolean;
  /** Restore an aligned crop (size x size RGB). */
  restoreCrop(crop: RgbFrame): Promise<RgbFrame>;
  /** Align, restore and paste back each face; returns the new frame. */
  restoreFrame(frame: RgbFrame, faces: Face[]): Promise<RgbFrame>;
}

export async function createFaceRestorer(entry: ModelEntry, ctx: RestoreFaceContext): Promise<FaceRestorer> {
  const m: OpenedModel = await openModel(entry, { device: ctx.device, log: (s) => ctx.log?.info(s), threads: ctx.threads });
  const c = entry.contract;
  const img = m.inputs.image;
  const out = m.outputs.image;
  const size = c.crop ?? (typeof img.spec.dims?.[2] === 'number' ? (img.spec.dims[2] as number) : 512);
  const template = c.template ?? 'ffhq_512';
  if (!isTemplateName(template)) throw usageError(`model ${entry.name}: unknown alignment template '${template}' in the manifest`);
  const blend = Math.min(1, Math.max(0, ctx.blend ?? c.blend ?? 0.8));
  const weight = m.inputs.weight;
  const weightValue = ctx.weight ?? weight?.spec.value ?? 1;
  const nhwc = img.spec.layout === 'NHWC';
  const plane = 3 * size * size;
  /** Whether the file's batch dimension is free, so several faces run in one call. */
  const batchable = typeof img.dims[0] === 'string';
  const restoreCrops = async (crops: RgbFrame[]): Promise<RgbFrame[]> => {
    const n = crops.length;
    const data = new Float32Array(n * plane);
    crops.forEach((c, i) => data.set(imageToTensor(c, img.spec), i * plane));
    const feeds: Record<string, ort.Tensor> = {
      [img.name]: new ort.Tensor('float32', data, nhwc ? [n, size, size, 3] : [n, 3, size, size]),
    };
    if (weight) {
      feeds[weight.name] =
        weight.dtype === 'float64'
          ? new ort.Tensor('float64', Float64Array.from([weightValue]), [1])
          : new ort.Tensor('float32', Float32Array.from([weightValue]), [1]);
    }
    const res = await m.session.run(feeds, [out.name]);
    const t = res[out.name];
    const od = t.data as Float32Array;
    const restored = crops.map((_, i) => tensorToImage(od.subarray(i * plane, (i + 1) * plane), size, size, out.spec));
    t.dispose?.();
    return restored;
  };
  const restoreCrop = async (crop: RgbFrame): Promise<RgbFrame> => (await restoreCrops([crop]))[0];
  return {
    entry,
    provider: m.provider,
    size,
    template,
    blend,
    restoreCrop,
    batchable,
    async restoreFrame(frame, faces) {
      const aligned = faces.filter((f) => f.five?.length === 5).map((f) => alignFace(frame, f.five, template, size));
      if (!aligned.length) return frame;
      let restored: RgbFrame[];
      if (batchable) restored = await restoreCrops(aligned.map((a) => a.crop));
      else {
        restored = [];
        for (const a of aligned) restored.push(await restoreCrop(a.crop));
      }
      let cur = frame;
      aligned.forEach((a, i) => {
        cur = pasteBack(cur, restored[i], a.matrix, { strength: blend });
      });
      return cur;
    },
  };
}

/** Which model the stage uses for `requested` ('auto', a model name, or a family: gpen/gfpgan/codeformer). */
export async function chooseFaceRestoreModel(requested: string): Promise<{ entry?: ModelEntry; reason: string }> {
  const all = faceRestoreModels();
  if (requested === 'auto') {
    const inst = await installedModels('face-restore');
    if (!inst.length) {
      return {
        reason: `no face restoration model installed: add one with ${all.map((e) => e.name).join(' / ')} (e.g. ${howToAdd(all[0])})`,
      };
    }
    return { entry: inst[0].entry, reason: `auto: ${inst[0].entry.name} is installed` };
  }
  const byName = all.find((e) => e.name === requested);
  const cands = byName ? [byName] : all.filter((e) => e.family === requested);
  if (!cands.length) {
    try {
      getEntry(requested);
    } catch {
      /* fall through to the list */
    }
    throw usageError(`unknown face restoration backend '${requested}'`, `use auto, none, ${familiesOf('face-restore').join(', ')} or one of ${all.map((e) => e.name).join(', ')}`);
  }
  const entry = cands.find((e) => isInstalled(e));
  if (!entry) throw usageError(`face restoration model ${cands[0].name} is not installed`, howToAdd(cands[0]));
  return { entry, reason: `${requested} requested` };
}

/**
 * The `restore-face` stage. Frames without faces (item.faces empty or absent) pass through.
 * Model/contract problems surface here, at creation, as one clear model error.
 */
export async function createRestoreFaceStage(opts: RestoreOptions, ctx: RestoreFaceContext, planned?: StagePlan<{ entry: ModelEntry }>): Promise<Stage> {
  const plan = planned ?? (await restoreFaceStage.plan(opts, { width: 0, height: 0 }));
  if (!plan.run) return skippedStage('restore-face', plan.reason);
  const choice = { entry: plan.params.entry, reason: plan.reason };
  const r = await createFaceRestorer(choice.entry, ctx);
  ctx.log?.info(`restore-face: ${r.entry.name} (${r.template} at ${r.size}, blend ${r.blend}) on ${r.provider.toUpperCase()}`);
  let faces = 0;
  return perFrameStage(
    {
      name: 'restore-face',
      backend: r.entry.name,
      reason: choice.reason,
      facts: () => ({ provider: r.provider }),
      details: () => ({ model: r.entry.name, template: r.template, crop: r.size, blend: r.blend, provider: r.provider, batched: r.batchable, faces }),
    },
    async (item) => {
      const list = item.faces?.filter((f) => f.five?.length === 5) ?? [];
      if (!list.length) return item;
      faces += list.length;
      item.frame = await r.restoreFrame(item.frame, list);
      return item;
    },
  );
}

/**
 * The restore-face stage's module (src/stages/module.ts): a family (gpen, gfpgan, codeformer,
 * or any family of the manifest's face-restore entries) or a model name; 'auto' takes the first
 * installed face-restore entry. A new model of a known family is a manifest entry.
 */
export const restoreFaceStage: StageModule<{ entry: ModelEntry }> = {
  name: 'restore-face',
  key: 'restore-face',
  flag: '--restore-face',
  choices: () => ({ builtin: ['auto', 'none'], families: familiesOf('face-restore'), models: modelNamesOf('face-restore') }),
  async plan(opts) {
    const requested = opts.backends?.['restore-face'] ?? 'auto';
    checkChoice(restoreFaceStage, requested);
    if (requested === 'none') return skip('restore-face', 'restore-face backend none requested');
    const choice = await chooseFaceRestoreModel(requested);
    if (!choice.entry) return skip('restore-face', choice.reason);
    return willRun('restore-face', choice.entry.name, choice.reason, { entry: choice.entry });
  },
  open: (plan, opts, env) => createRestoreFaceStage(opts, { device: env.device, log: env.log }, plan),
};
