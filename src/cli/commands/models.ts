/**
 * `restore models list | verify | add | pull`. Each returns `{ data, text }`: `data` for
 * --json, `text` for people. Failures throw RestoreErrors (one line, exit code by kind).
 */
import { createWriteStream, existsSync, statSync } from 'node:fs';
import { copyFile, mkdir, rename, rm, truncate } from 'node:fs/promises';
import path from 'node:path';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { inputError, modelError, outputError, usageError } from '../../errors.js';
import { getEntry, isEmbedded, loadManifest, type ModelEntry, type ModelTask } from '../../models/manifest.js';
import { howToAdd, modelPath, modelStatus, sha256File, verifyModel, type ModelStatus, type VerifyResult } from '../../models/registry.js';
import { modelsDir } from '../../util/paths.js';
import { cudaProviderInstalled } from '../../models/session.js';
import { chooseUpscaleBackend } from '../../stages/upscale/index.js';
import { chooseFaceRestoreModel } from '../../stages/restore-face.js';

export interface CommandResult<T> {
  data: T;
  text: string;
}

const mb = (n: number | null | undefined) => (n == null ? '' : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(0)} kB`);

function pad(rows: string[][]): string {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]))).join('  ').trimEnd()).join('\n');
}

export interface ListRow {
  name: string;
  task: ModelTask;
  state: ModelStatus['state'];
  path: string;
  size: number | null;
  source: string;
  note?: string;
}

export interface ListData {
  modelsDir: string;
  cuda: boolean;
  models: ListRow[];
  /** What each model stage would run now with backend 'auto'. */
  stages: Record<string, string>;
}

/** `restore models list`: known models, installed or not, and which backend each stage will use. */
export async function modelsList(_opts: { json?: boolean } = {}): Promise<CommandResult<ListData>> {
  const rows: ListRow[] = loadManifest().map((e) => {
    const s = modelStatus(e);
    return {
      name: e.name,
      task: e.task,
      state: s.state,
      path: s.path,
      size: s.state === 'installed' ? statSync(s.path).size : e.size,
      source: isEmbedded(e) ? `npm ${e.source.package}` : 'user',
      ...(s.note ? { note: s.note } : {}),
    };
  });
  const stages: Record<string, string> = {};
  const up = await chooseUpscaleBackend('auto', 4);
  stages.upscale = up.entry ? `${up.backend} (${up.entry.name})` : 'lanczos (fallback)';
  const rf = await chooseFaceRestoreModel('auto');
  stages['restore-face'] = rf.entry ? rf.entry.name : 'skipped (no model installed)';
  const first = (task: ModelTask, none: string) => rows.find((r) => r.task === task && (r.state === 'installed' || r.state === 'embedded'))?.name ?? none;
  stages.inpaint = first('inpaint', 'builtin (no model installed)');
  stages.swap = first('face-swap', 'mesh (embedded classical swap: no swap model installed)');
  stages['face-detect'] = first('face-detect', 'none');
  stages.identity = first('face-embed', 'none');
  const data: ListData = { modelsDir: modelsDir(), cuda: cudaProviderInstalled(), models: rows, stages };
  const label: Record<ModelStatus['state'], string> = { installed: 'installed', embedded: 'embedded (npm)', missing: 'missing', unavailable: 'unavailable' };
  const table = pad([
    ['NAME', 'TASK', 'STATE', 'SIZE', 'HOW'],
    ...rows.map((r) => [r.name, r.task, label[r.state], mb(r.size), r.state === 'missing' || r.state === 'unavailable' ? r.note ?? '' : r.state === 'embedded' ? r.note ?? '' : path.basename(r.path)]),
  ]);
  const text = [
    `models folder: ${data.modelsDir}${process.env.RESTORE_MODELS_DIR ? ' (RESTORE_MODELS_DIR)' : ''}`,
    table,
    '',
    'stages with --backend auto:',
    ...Object.entries(stages).map(([k, v]) => `  ${k.padEnd(13)}${v}`),
    `CUDA execution provider: ${data.cuda ? 'installed' : 'not installed (CPU only; see README "GPU")'}`,
  ].join('\n');
  return { data, text };
}

function verifyText(r: VerifyResult): string {
  const warn = (r.warnings ?? []).map((w) => `\n         warning: ${w}`).join('');
  if (r.ok) {
    const ins = Object.values(r.inputs ?? {}).map((t) => `${t.name}[${t.dims.join(',')}] ${t.dtype}`).join(', ');
    return `ok       ${r.name}  ${r.path}  ${mb(r.size)}  sha256 ${r.sha256?.slice(0, 16)}…  inputs ${ins}${warn}`;
  }
  return `FAILED   ${r.name}  ${r.path}\n${r.problems.map((p) => `         - ${p}`).join('\n')}${warn}`;
}

/**
 * `restore models verify [name|file]`: size/sha256 against the manifest and the contract against
 * the file. Without a name: every installed model. `ok` is false when any check failed (exit 3).
 */
export async function modelsVerify(name?: string, opts: { as?: string } = {}): Promise<CommandResult<VerifyResult[]> & { ok: boolean }> {
  let results: VerifyResult[];
  if (name) results = [await verifyModel(name, opts)];
  else {
    const installed = loadManifest().filter((e) => modelStatus(e).state === 'installed');
    results = [];
    for (const e of installed) results.push(await verifyModel(e.name));
  }
  const ok = results.every((r) => r.ok);
  const text = results.length ? results.map(verifyText).join('\n') : 'no model files installed (restore models list shows how to add them)';
  return { data: results, text, ok };
}

/**
 * `restore models add <file> --as NAME`: check the file against NAME's contract, then copy it
 * into the models folder under the manifest's file name (temp name + rename).
 */
export async function modelsAdd(file: string, opts: { as: string; log?: (m: string) => void }): Promise<CommandResult<VerifyResult & { installedAs: string }>> {
  if (!opts?.as) throw usageError('models add needs --as NAME', "'restore models list' shows the names");
  const entry = getEntry(opts.as);
  if (isEmbedded(entry)) throw usageError(`${entry.name} ships in npm (${entry.source.package}) and is converted on first use; nothing to add`);
  const src = path.resolve(file);
  if (!existsSync(src) || !statSync(src).isFile()) throw inputError(`${file}: no such file`, 'give the path of an .onnx file');
  const r = await verifyModel(src, { as: entry.name });
  const contractProblems = r.problems.filter((p) => !/^size |^sha256 /.test(p));
  if (contractProblems.length) {
    throw modelError(`${file} is not a usable ${entry.name}: ${contractProblems[0]}`, contractProblems.length > 1 ? contractProblems.slice(1).join('; ') : `expected: ${describeContract(entry)}`);
  }
  const dest = modelPath(entry);
  await mkdir(path.dirname(dest), { recursive: true }).catch((e) => {
    throw outputError(`cannot create ${path.dirname(dest)} (${e.code ?? e.message})`, 'set RESTORE_MODELS_DIR to a writable folder');
  });
  const tmp = `${dest}.tmp-${process.pid}`;
  try {
    await copyFile(src, tmp);
    await rename(tmp, dest);
  } catch (e: any) {
    await rm(tmp, { force: true });
    throw outputError(`cannot write ${dest} (${e.code ?? e.message})`, 'set RESTORE_MODELS_DIR to a writable folder');
  }
  const warn = r.problems.filter((p) => /^size |^sha256 /.test(p));
  const text = [`added ${src} as ${entry.name} → ${dest}`, ...warn.map((w) => `warning: ${w} (a different export of the same model?)`)].join('\n');
  return { data: { ...r, path: dest, installedAs: entry.name }, text };
}

export interface RemoveData {
  name: string;
  removed: string[];
  embedded: boolean;
}

/**
 * `restore models remove NAME`: delete the installed files of a manifest entry (the model, its
 * fp16 variant, an unfinished download; for an embedded model its converted cache, made again
 * at next use). Nothing installed is a model error naming where it looked.
 */
export async function modelsRemove(name: string): Promise<CommandResult<RemoveData>> {
  const entry = getEntry(name);
  const candidates = [modelPath(entry), ...(entry.fp16 ? [modelPath(entry, { fp16: true })] : [])];
  const files = [...new Set(candidates.flatMap((f) => [f, `${f}.part`]))].filter((f) => existsSync(f));
  if (!files.length) throw modelError(`${entry.name} is not installed: nothing to remove (looked for ${candidates.join(', ')})`);
  for (const f of files) {
    await rm(f, { force: true }).catch((e) => {
      throw outputError(`cannot remove ${f} (${e.code ?? e.message})`);
    });
  }
  const embedded = isEmbedded(entry);
  const text = [
    ...files.map((f) => `removed ${f}`),
    embedded ? `${entry.name} ships in npm (${entry.source.package}): it is converted again at next use` : `add it again with: ${howToAdd(entry)}`,
  ].join('\n');
  return { data: { name: entry.name, removed: files, embedded }, text };
}

function describeContract(e: ModelEntry): string {
  return e.contract.inputs
    .map((t) => `${t.name ? (Array.isArray(t.name) ? t.name.join('|') : t.name) : t.role} [${(t.dims ?? []).map((d) => d ?? '?').join(',')}] ${t.dtype}${t.optional ? ' (optional)' : ''}`)
    .join(', ');
}

export interface PullOptions {
  url?: string;
  /** Expected sha256 (default: the manifest's). */
  sha256?: string;
  signal?: AbortSignal;
  /** Progress callback (bytes done, total or undefined); default: a line on stderr when it is a TTY. */
  onProgress?: (done: number, total: number | undefined) => void;
  quiet?: boolean;
}

export interface PullData {
  name: string;
  url: string;
  path: string;
  bytes: number;
  sha256: string;
  resumedFrom: number;
  sha256Checked: boolean;
}

/** GET with redirects followed (node:http/https: every received byte reaches the file, even when the connection drops). */
function httpGet(url: string, headers: Record<string, string>, signal?: AbortSignal, hops = 0): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const get = u.protocol === 'https:' ? https.get : http.get;
    const req = get(u, { headers: { 'user-agent': 'restore-models', ...headers }, signal }, (res) => {
      const loc = res.headers.location;
      if (res.statusCode && res.statusCode >= 300 && res.statusCode < 400 && loc) {
        res.resume();
        if (hops >= 8) return reject(new Error('too many redirects'));
        return resolve(httpGet(new URL(loc, u).toString(), headers, signal, hops + 1));
      }
      resolve(res);
    });
    req.on('error', reject);
  });
}

/**
 * Append a response body to `file`. Unlike stream.pipeline, a dropped connection does not
 * discard what was already received: every byte that arrived is flushed before returning, so
 * the next pull resumes from it.
 */
function saveBody(res: IncomingMessage, file: string, append: boolean, onBytes: (n: number) => void, signal?: AbortSignal): Promise<{ bytes: number; readError?: Error; writeError?: Error }> {
  return new Promise((resolve) => {
    const ws = createWriteStream(file, { flags: append ? 'a' : 'w' });
    let bytes = 0;
    let readError: Error | undefined;
    let writeError: Error | undefined;
    let ended = false;
    const finish = (err?: Error) => {
      if (ended) return;
      ended = true;
      readError ??= err;
      ws.end();
    };
    const onAbort = () => {
      finish(new Error('interrupted'));
      res.destroy();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    res.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      onBytes(bytes);
      if (!ws.write(chunk)) {
        res.pause();
        ws.once('drain', () => res.resume());
      }
    });
    res.on('end', () => finish());
    res.on('error', (e) => finish(e));
    res.on('close', () => finish(res.complete ? undefined : new Error('the connection closed early')));
    ws.on('error', (e) => {
      writeError = e;
      res.destroy();
      signal?.removeEventListener('abort', onAbort);
      resolve({ bytes, readError, writeError });
    });
    ws.on('finish', () => {
      signal?.removeEventListener('abort', onAbort);
      resolve({ bytes, readError, writeError });
    });
  });
}

function ttyProgress(name: string): (done: number, total: number | undefined) => void {
  let last = 0;
  return (done, total) => {
    const now = Date.now();
    if (now - last < 200 && done !== total) return;
    last = now;
    const pct = total ? ` ${((100 * done) / total).toFixed(1)}%` : '';
    process.stderr.write(`\r${name}: ${mb(done)}${total ? ` / ${mb(total)}` : ''}${pct}   `);
    if (total && done >= total) process.stderr.write('\n');
  };
}

/**
 * `restore models pull NAME [--url URL]`: HTTP(S) download into <file>.part, resumed with a Range
 * request when a partial file is there, then size and sha256 checked (when known) and the
 * contract checked, then renamed into place. A bad download is removed and named.
 */
export async function modelsPull(name: string, opts: PullOptions = {}): Promise<CommandResult<PullData>> {
  const entry = getEntry(name);
  if (isEmbedded(entry)) throw usageError(`${entry.name} ships in npm (${entry.source.package}); nothing to download`);
  const url = opts.url ?? entry.urls[0];
  if (!url) throw usageError(`${entry.name} has no published download URL`, howToAdd(entry));
  if (!/^https?:\/\//.test(url)) throw usageError(`--url must be http(s) (got ${url})`);
  const dest = modelPath(entry);
  const part = `${dest}.part`;
  await mkdir(path.dirname(dest), { recursive: true }).catch((e) => {
    throw outputError(`cannot create ${path.dirname(dest)} (${e.code ?? e.message})`, 'set RESTORE_MODELS_DIR to a writable folder');
  });
  const progress = opts.onProgress ?? (!opts.quiet && process.stderr.isTTY ? ttyProgress(entry.name) : undefined);
  let have = existsSync(part) ? statSync(part).size : 0;
  const resumedFrom = have;
  let res: IncomingMessage;
  try {
    res = await httpGet(url, have ? { Range: `bytes=${have}-` } : {}, opts.signal);
  } catch (e) {
    throw modelError(`cannot download ${entry.name} from ${url} (${(e as Error).message})`, 'check the network, or download it yourself and use restore models add');
  }
  const status = res.statusCode ?? 0;
  let total: number | undefined;
  if (status === 416 && have) {
    // the partial file is already complete (or longer than the resource)
    total = have;
    res.resume();
  } else if (status === 206 && have) {
    const m = /bytes (\d+)-(\d+)\/(\d+|\*)/.exec(String(res.headers['content-range'] ?? ''));
    if (!m || Number(m[1]) !== have) {
      res.resume();
      throw modelError(`download of ${entry.name} from ${url}: the server resumed at the wrong offset (${res.headers['content-range']})`, `delete ${part} and pull again`);
    }
    total = m[3] === '*' ? undefined : Number(m[3]);
  } else if (status >= 200 && status < 300) {
    if (have) await truncate(part, 0); // server ignored Range: start over
    have = 0;
    const len = res.headers['content-length'];
    total = len ? Number(len) : undefined;
  } else {
    res.resume();
    throw modelError(`cannot download ${entry.name}: ${url} answered HTTP ${status} ${res.statusMessage ?? ''}`.trimEnd(), 'check the URL (--url), or download it yourself and use restore models add');
  }
  if (status !== 416) {
    const r = await saveBody(res, part, have > 0, (d) => progress?.(d + have, total), opts.signal);
    if (r.writeError) throw outputError(`cannot write ${part} (${r.writeError.message})`, 'set RESTORE_MODELS_DIR to a writable folder with space');
    if (r.readError) {
      throw modelError(
        `download of ${entry.name} from ${url} stopped at ${have + r.bytes} of ${total ?? '?'} bytes (${r.readError.message})`,
        `run 'restore models pull ${entry.name}' again to resume from ${part}`,
      );
    }
  }
  const size = existsSync(part) ? statSync(part).size : 0;
  if (total !== undefined && size < total) {
    throw modelError(`download of ${entry.name} is incomplete: ${size} of ${total} bytes`, `run 'restore models pull ${entry.name}' again to resume`);
  }
  if (entry.size && size !== entry.size) {
    await rm(part, { force: true });
    throw modelError(`downloaded ${entry.name} is ${size} bytes, the manifest says ${entry.size}; removed`, 'check the URL');
  }
  const want = opts.sha256 ?? entry.sha256 ?? undefined;
  const got = await sha256File(part);
  if (want && got !== want.toLowerCase()) {
    await rm(part, { force: true });
    throw modelError(`downloaded ${entry.name} has sha256 ${got}, expected ${want}; removed`, 'the file is corrupt or not this model; pull again or check --url');
  }
  // the contract, on the complete file, before it takes the real name
  const check = await verifyModel(part, { as: entry.name });
  const contract = check.problems.filter((p) => !/^size |^sha256 /.test(p));
  if (contract.length) {
    await rm(part, { force: true });
    throw modelError(`downloaded ${entry.name} from ${url} does not match its contract: ${contract[0]}; removed`, 'check --url');
  }
  await rename(part, dest);
  const data: PullData = { name: entry.name, url, path: dest, bytes: size, sha256: got, resumedFrom, sha256Checked: !!want };
  const text = [
    `pulled ${entry.name} → ${dest} (${mb(size)}${resumedFrom ? `, resumed at ${mb(resumedFrom)}` : ''})`,
    want ? `sha256 ${got} matches` : `sha256 ${got} (the manifest pins no hash for ${entry.name}; record it if you trust this source)`,
  ].join('\n');
  return { data, text };
}
