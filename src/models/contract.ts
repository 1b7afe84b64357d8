/**
 * Checking a model file against its manifest contract: tensor names (or, for contracts that
 * leave names open, binding by rank and order), ranks, static dims, dtypes, required vs
 * optional inputs, and no unknown required inputs. The result binds each contract role to
 * the file's real tensor, so callers feed tensors by role and never guess names.
 */
import type * as ortTypes from 'onnxruntime-node';
import type { Contract, DimSpec, TensorDtype, TensorSpec } from './manifest.js';

/** A file tensor as ONNX Runtime reports it. */
export interface FileTensor {
  name: string;
  dtype: string;
  /** number = static, string = symbolic, [] when the file gives no shape. */
  dims: (number | string)[];
}

/** A contract role bound to the file's tensor. */
export interface BoundTensor {
  role: string;
  name: string;
  dtype: string;
  dims: (number | string)[];
  spec: TensorSpec;
}

export interface ContractCheck {
  ok: boolean;
  problems: string[];
  /**
   * Dimensions the contract fixes and the file leaves open (symbolic): the file is accepted only
   * when a probe run at the contract's size gives the contract's outputs (probeContract).
   */
  open: string[];
  /** Role → bound input (only inputs present in the file). */
  inputs: Record<string, BoundTensor>;
  outputs: Record<string, BoundTensor>;
}

const ORT_DTYPE: Record<TensorDtype, string> = {
  float32: 'float32',
  float64: 'float64',
  float16: 'float16',
  int64: 'int64',
  int32: 'int32',
  uint8: 'uint8',
  bool: 'bool',
};

/** Read a session's inputs/outputs as FileTensors. */
export function sessionTensors(session: ortTypes.InferenceSession): { inputs: FileTensor[]; outputs: FileTensor[] } {
  const conv = (names: readonly string[], meta: readonly ortTypes.InferenceSession.ValueMetadata[] | undefined) =>
    names.map((name, i) => {
      const m = meta?.[i];
      if (m && m.isTensor) return { name, dtype: String(m.type), dims: [...m.shape] };
      return { name, dtype: m ? 'non-tensor' : 'unknown', dims: [] };
    });
  return { inputs: conv(session.inputNames, session.inputMetadata), outputs: conv(session.outputNames, session.outputMetadata) };
}

const fmtDims = (d: readonly (number | string | null)[]) => `[${d.map((x) => (x === null ? '?' : x)).join(',')}]`;

function nameMatches(spec: TensorSpec, name: string): boolean {
  if (spec.name === undefined) return false;
  return (Array.isArray(spec.name) ? spec.name : [spec.name]).includes(name);
}

function specLabel(spec: TensorSpec): string {
  return spec.name ? `'${Array.isArray(spec.name) ? spec.name.join("'|'") : spec.name}'` : `${spec.role}`;
}

function checkTensor(kind: 'input' | 'output', spec: TensorSpec, t: FileTensor, problems: string[], open: string[]): void {
  const label = `${kind} '${t.name}' (${spec.role})`;
  if (t.dtype !== 'unknown' && t.dtype !== ORT_DTYPE[spec.dtype]) {
    problems.push(`${label} has dtype ${t.dtype}, the contract needs ${spec.dtype}`);
  }
  if (!spec.dims || t.dims.length === 0) return;
  if (t.dims.length !== spec.dims.length) {
    problems.push(`${label} has rank ${t.dims.length} ${fmtDims(t.dims)}, the contract needs rank ${spec.dims.length} ${fmtDims(spec.dims)}`);
    return;
  }
  const bad = spec.dims
    .map((want: DimSpec, i) => ({ i, want, have: t.dims[i] }))
    .filter(({ want, have }) => typeof want === 'number' && typeof have === 'number' && have !== want && have > 0);
  if (bad.length) {
    const which = bad.map(({ i, have, want }) => `dim ${i}: ${have} ≠ ${want}`).join(', ');
    problems.push(`${label} has shape ${fmtDims(t.dims)}, the contract needs ${fmtDims(spec.dims)} (${which})`);
  }
  const loose = spec.dims.map((want, i) => (typeof want === 'number' && !(typeof t.dims[i] === 'number' && (t.dims[i] as number) > 0) ? i : -1)).filter((i) => i >= 0);
  if (loose.length) open.push(`${label} has shape ${fmtDims(t.dims)} where the contract fixes ${fmtDims(spec.dims)}`);
}

function bind(kind: 'input' | 'output', specs: TensorSpec[], file: FileTensor[], problems: string[], open: string[]): Record<string, BoundTensor> {
  const out: Record<string, BoundTensor> = {};
  const used = new Set<string>();
  const pending: TensorSpec[] = [];
  // 1. named tensors
  for (const spec of specs) {
    if (spec.name === undefined) {
      pending.push(spec);
      continue;
    }
    const t = file.find((f) => !used.has(f.name) && nameMatches(spec, f.name));
    if (!t) {
      if (!spec.optional) {
        const have = file.map((f) => `'${f.name}'`).join(', ') || 'none';
        problems.push(`no ${kind} named ${specLabel(spec)} (${spec.role}); the file's ${kind}s are ${have}`);
      }
      continue;
    }
    used.add(t.name);
    checkTensor(kind, spec, t, problems, open);
    out[spec.role] = { role: spec.role, name: t.name, dtype: t.dtype, dims: t.dims, spec };
  }
  // 2. unnamed: first unused file tensor of the same rank (or any, when the contract gives no rank)
  for (const spec of pending) {
    const rank = spec.dims?.length;
    const t =
      file.find((f) => !used.has(f.name) && (rank === undefined || f.dims.length === 0 || f.dims.length === rank)) ??
      (spec.optional ? undefined : file.find((f) => !used.has(f.name)));
    if (!t) {
      if (!spec.optional) problems.push(`the file has no ${kind} for ${spec.role}${spec.dims ? ` ${fmtDims(spec.dims)}` : ''}`);
      continue;
    }
    used.add(t.name);
    checkTensor(kind, spec, t, problems, open);
    out[spec.role] = { role: spec.role, name: t.name, dtype: t.dtype, dims: t.dims, spec };
  }
  if (kind === 'input') {
    for (const f of file) if (!used.has(f.name)) problems.push(`the file has an input '${f.name}' ${fmtDims(f.dims)} the contract does not know how to feed`);
  }
  return out;
}

/** Check file tensors against a contract. Output extras are allowed; input extras are not. */
export function checkContract(contract: Contract, file: { inputs: FileTensor[]; outputs: FileTensor[] }): ContractCheck {
  const problems: string[] = [];
  const open: string[] = [];
  const inputs = bind('input', contract.inputs, file.inputs, problems, open);
  const outputs = bind('output', contract.outputs, file.outputs, problems, open);
  return { ok: problems.length === 0, problems, open, inputs, outputs };
}

type TypedArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;

/** The spatial size a probe feeds where the contract leaves H and W open. */
function probeSide(contract: Contract): number {
  const t = contract.tiling;
  const side = contract.crop ?? (t?.staticExportSize ? t.tile : 32);
  const m = Math.max(1, t?.multiple ?? 1, contract.multiple ?? 1);
  return Math.ceil(side / m) * m;
}

/** The shape the probe feeds for one input: the contract's numbers, else the file's, else a small size. */
function probeDims(contract: Contract, b: BoundTensor): number[] {
  const want = b.spec.dims ?? b.dims.map(() => null);
  const rank = want.length;
  const side = probeSide(contract);
  const spatial = rank === 4 ? (b.spec.layout === 'NHWC' ? [1, 2] : [2, 3]) : [];
  return want.map((d, i) => {
    if (typeof d === 'number') return d;
    const f = b.dims[i];
    if (typeof f === 'number' && f > 0) return f;
    if (spatial.includes(i)) return side;
    if (rank === 4 && i === (b.spec.layout === 'NHWC' ? 3 : 1)) return 3;
    return 1;
  });
}

/** Smooth values inside the tensor's declared range (a mask: a square hole; a vector: unit length). */
function probeData(spec: TensorSpec, dims: number[]): TypedArray {
  const n = dims.reduce((a, b) => a * b, 1);
  const frac = (i: number) => 0.25 + 0.5 * (((i * 7919) % 997) / 997);
  const [lo, hi] = Array.isArray(spec.range) ? spec.range : spec.range === 'imagenet' ? [-1, 1] : [0, 1];
  const value = (i: number): number => {
    if (spec.value !== undefined) return spec.value;
    if (spec.polarity) {
      const hole = spec.polarity === 'hole=1' ? 1 : 0;
      return i % 5 === 0 ? hole : 1 - hole;
    }
    return lo + (hi - lo) * frac(i);
  };
  switch (spec.dtype) {
    case 'float64':
      return Float64Array.from({ length: n }, (_, i) => value(i));
    case 'int64':
      return BigInt64Array.from({ length: n }, (_, i) => BigInt(Math.round(value(i))));
    case 'int32':
      return Int32Array.from({ length: n }, (_, i) => Math.round(value(i)));
    case 'uint8':
    case 'bool':
      return Uint8Array.from({ length: n }, (_, i) => Math.round(value(i)));
    default: {
      const a = Float32Array.from({ length: n }, (_, i) => value(i));
      if (spec.normalize && !spec.range && dims.length === 2) {
        const norm = Math.hypot(...a) || 1;
        for (let i = 0; i < n; i++) a[i] /= norm;
      }
      return a;
    }
  }
}

/** The output shape a contract expects, given the sizes the probe fed (symbols: same name, or name + scale). */
function expectedDims(contract: Contract, spec: TensorSpec, symbols: Map<string, number>): (number | undefined)[] | undefined {
  if (!spec.dims) return undefined;
  return spec.dims.map((d) => {
    if (typeof d === 'number') return d;
    if (typeof d !== 'string') return undefined;
    if (symbols.has(d)) return symbols.get(d);
    const m = /^(.*?)(\d+)$/.exec(d);
    if (m && symbols.has(m[1]) && contract.scale && Number(m[2]) === contract.scale) return symbols.get(m[1])! * contract.scale;
    return undefined;
  });
}

/**
 * One inference at the contract's input size with values in the contract's ranges; the outputs
 * must come out under their bound names, with the contract's shape and inside its value range
 * (with a margin: a real model overshoots a little, a wrong one by a range's width).
 * Returns the problems (none: the file behaves like the contract says).
 */
export async function probeContract(
  contract: Contract,
  check: Pick<ContractCheck, 'inputs' | 'outputs'>,
  session: ortTypes.InferenceSession,
  ort: typeof ortTypes,
): Promise<string[]> {
  const problems: string[] = [];
  const feeds: Record<string, ortTypes.Tensor> = {};
  const symbols = new Map<string, number>();
  const fed: string[] = [];
  for (const b of Object.values(check.inputs)) {
    if (b.spec.dtype === 'float16') return [];
    const dims = probeDims(contract, b);
    (b.spec.dims ?? []).forEach((d, i) => {
      if (typeof d === 'string') symbols.set(d, dims[i]);
    });
    feeds[b.name] = new ort.Tensor(b.spec.dtype as any, probeData(b.spec, dims) as any, dims);
    fed.push(`'${b.name}' ${fmtDims(dims)}`);
  }
  const at = `a probe run at the contract's input ${fed.join(', ')}`;
  const names = Object.values(check.outputs).map((o) => o.name);
  let res: Record<string, ortTypes.Tensor>;
  try {
    res = (await session.run(feeds, names)) as Record<string, ortTypes.Tensor>;
  } catch (e) {
    return [`${at} failed (${String((e as Error)?.message ?? e).split('\n')[0].slice(0, 200)})`];
  }
  for (const b of Object.values(check.outputs)) {
    const t = res[b.name];
    const label = `output '${b.name}' (${b.role})`;
    if (!t) {
      problems.push(`${at} gave no ${label}`);
      continue;
    }
    const want = expectedDims(contract, b.spec, symbols);
    const have = [...t.dims];
    if (want && (want.length !== have.length || want.some((w, i) => w !== undefined && w !== have[i]))) {
      problems.push(`${at} gave ${label} of shape ${fmtDims(have)}, the contract needs ${fmtDims(want.map((w, i) => w ?? (b.spec.dims![i] as string | null)))}`);
    }
    const data = t.data as ArrayLike<number | bigint>;
    if (typeof data[0] === 'number' && data.length) {
      let min = Infinity;
      let max = -Infinity;
      let bad = 0;
      for (let i = 0; i < data.length; i++) {
        const v = data[i] as number;
        if (!Number.isFinite(v)) bad++;
        else {
          if (v < min) min = v;
          if (v > max) max = v;
        }
      }
      if (bad) problems.push(`${at} gave ${label} with ${bad} non-finite values`);
      else if (Array.isArray(b.spec.range)) {
        const [lo, hi] = b.spec.range;
        const margin = 0.5 * (hi - lo);
        if (min < lo - margin || max > hi + margin) {
          problems.push(`${at} gave ${label} values in [${+min.toPrecision(4)}, ${+max.toPrecision(4)}], the contract's range is [${lo}, ${hi}]`);
        }
      }
    }
    t.dispose?.();
  }
  return problems;
}
