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

function checkTensor(kind: 'input' | 'output', spec: TensorSpec, t: FileTensor, problems: string[]): void {
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
}

function bind(kind: 'input' | 'output', specs: TensorSpec[], file: FileTensor[], problems: string[]): Record<string, BoundTensor> {
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
    checkTensor(kind, spec, t, problems);
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
    checkTensor(kind, spec, t, problems);
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
  const inputs = bind('input', contract.inputs, file.inputs, problems);
  const outputs = bind('output', contract.outputs, file.outputs, problems);
  return { ok: problems.length === 0, problems, inputs, outputs };
}
