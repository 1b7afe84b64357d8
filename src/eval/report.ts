/** The eval's markdown table and self-contained HTML page (table + bar plots of the gains). */
import { escapeHtml as esc } from '../report/escape.js';
import { barChart } from '../report/svg.js';
import type { EvalResult, EvalRow } from './types.js';

const f = (v: number | undefined, d = 2) => (v === undefined || !Number.isFinite(v) ? '' : v.toFixed(d));
const COLS: [string, (r: EvalRow) => string][] = [
  ['clip', (r) => r.clip],
  ['case', (r) => r.case],
  ['method', (r) => r.method],
  ['frames', (r) => String(r.frames)],
  ['PSNR avg', (r) => f(r.psnrAvg)],
  ['PSNR Y', (r) => f(r.psnrY)],
  ['PSNR U', (r) => f(r.psnrU)],
  ['PSNR V', (r) => f(r.psnrV)],
  ['SSIM all', (r) => f(r.ssimAll, 4)],
  ['Y in holes', (r) => f(r.holeY)],
  ['Y outside holes', (r) => f(r.outsideY)],
  ['flicker', (r) => f(r.flicker, 3)],
  ['ms/frame', (r) => f(r.msPerFrame, 0)],
];

const HOLE_COLS: [string, (r: EvalRow) => string][] = [
  ['clip', (r) => r.clip],
  ['case', (r) => r.case],
  ['method', (r) => r.method],
  ['Y in holes', (r) => f(r.holeY)],
  ['Y face holes', (r) => f(r.holeFaceY)],
  ['SSIM face holes', (r) => f(r.holeFaceSsim, 4)],
  ['Y background holes', (r) => f(r.holeBackgroundY)],
  ['SSIM background holes', (r) => f(r.holeBackgroundSsim, 4)],
  ['flicker in holes', (r) => f(r.holeFlicker, 3)],
  ['PSNR Y', (r) => f(r.psnrY)],
  ['auto mask recall %', (r) => f(r.autoMaskRecall === undefined ? undefined : 100 * r.autoMaskRecall)],
  ['auto mask FP %', (r) => f(r.autoMaskFalsePositive === undefined ? undefined : 100 * r.autoMaskFalsePositive, 3)],
];

/** The hole table: every row of a case with holes; and `--mask auto` end to end against the true mask. */
function holeSection(r: EvalResult): string[] {
  const rows = r.rows.filter((x) => x.holeY !== undefined);
  if (!rows.length) return [];
  const autoVsTrue = rows
    .filter((x) => x.method === 'restore:mask-auto')
    .map((a) => {
      const t = rows.find((x) => x.clip === a.clip && x.case === a.case && x.method === 'restore:default');
      return t ? `| ${a.clip} | ${a.case} | ${(a.psnrY - t.psnrY).toFixed(3)} | ${(a.psnrAvg - t.psnrAvg).toFixed(3)} | ${f(100 * (a.autoMaskRecall ?? 0))} | ${f(100 * (a.autoMaskFalsePositive ?? 0), 3)} |` : '';
    })
    .filter(Boolean);
  const priorVsBuiltin = rows
    .filter((x) => x.method.startsWith('restore:fill-builtin+prior') && x.holeFaceFramesY)
    .map((p) => {
      const b = rows.find((x) => x.clip === p.clip && x.case === p.case && x.method === 'restore:fill-builtin');
      const d = priorFrameGains(p.holeFaceFramesY!, b?.holeFaceFramesY);
      return d ? `| ${p.clip} | ${p.case} | ${p.method} | ${d.frames} | ${d.mean.toFixed(3)} | ${d.worst.toFixed(3)} | ${d.worseBy1} |` : '';
    })
    .filter(Boolean);
  return [
    '## Holes',
    '',
    "Inside the painted holes (the true mask scaled to the output), split into face holes (inside the reference's detected face mesh) and background holes; Y-PSNR of the mean MSE over frames, luma SSIM over the windows centred on the region's pixels, flicker = warping error between consecutive frames over the hole pixels. `fill-*` rows: the inpaint backend with the face prior off (`--faces none`), `+prior`: the face prior from the track's frames, `+identity`: with a photo (the clip's last frame, `--swap none`); `mask-auto`: the defaults with `--mask auto`.",
    '',
    `| ${HOLE_COLS.map((c) => c[0]).join(' | ')} |`,
    `|${HOLE_COLS.map((_, i) => (i < 3 ? '---' : '---:')).join('|')}|`,
    ...rows.map((row) => `| ${HOLE_COLS.map((c) => c[1](row)).join(' | ')} |`),
    ...(autoVsTrue.length
      ? ['', '`--mask auto` end to end against the true mask (restore:mask-auto minus restore:default, ffmpeg PSNR):', '', '| clip | case | dB Y | dB average | auto mask recall % | auto mask FP % |', '|---|---|---:|---:|---:|---:|', ...autoVsTrue]
      : []),
    ...(priorVsBuiltin.length
      ? ['', 'The face prior against the builtin fill without it, frame by frame (face-hole Y-PSNR of the prior row minus fill-builtin\'s, over the frames with a face hole):', '', '| clip | case | method | frames | mean dB | worst frame dB | frames worse by > 1 dB |', '|---|---|---|---:|---:|---:|---:|', ...priorVsBuiltin]
      : []),
    '',
  ];
}

/** Per-frame face-hole gains of a prior row over the builtin row: mean, worst, and the frames more than 1 dB worse. */
export function priorFrameGains(prior: (number | null)[], builtin: (number | null)[] | undefined): { frames: number; mean: number; worst: number; worseBy1: number } | undefined {
  if (!builtin) return undefined;
  const d: number[] = [];
  for (let i = 0; i < Math.min(prior.length, builtin.length); i++) {
    const a = prior[i], b = builtin[i];
    if (a !== null && b !== null && Number.isFinite(a) && Number.isFinite(b)) d.push(a - b);
  }
  if (!d.length) return undefined;
  return { frames: d.length, mean: d.reduce((x, y) => x + y, 0) / d.length, worst: Math.min(...d), worseBy1: d.filter((x) => x < -1).length };
}

/** Mean gain over the cases of each restore method, per case name. */
function summary(r: EvalResult): { method: string; case: string; mean: number; min: number; n: number }[] {
  const groups = new Map<string, number[]>();
  for (const g of r.gains) {
    const k = `${g.method}\u0000${g.case}`;
    groups.set(k, [...(groups.get(k) ?? []), g.dAvg]);
  }
  return [...groups].map(([k, v]) => {
    const [method, c] = k.split('\u0000');
    return { method, case: c, mean: +(v.reduce((a, b) => a + b, 0) / v.length).toFixed(3), min: +Math.min(...v).toFixed(3), n: v.length };
  });
}

export function renderEvalMarkdown(r: EvalResult): string {
  const lines = [
    `# restore eval (${r.createdAt})`,
    '',
    `Clips: \`${r.clipsDir}\`; outputs encoded at crf ${r.crf}; scored with ffmpeg's psnr/ssim filters against the clean clip (stored planes; PSNR of the mean MSE). ${r.wallSeconds} s.`,
    '',
    '## Gain over ffmpeg lanczos (PSNR average, dB)',
    '',
    '| method | case | mean | worst | clips |',
    '|---|---|---:|---:|---:|',
    ...summary(r).map((s) => `| ${s.method} | ${s.case} | ${s.mean >= 0 ? '+' : ''}${s.mean} | ${s.min >= 0 ? '+' : ''}${s.min} | ${s.n} |`),
    '',
    '## All rows',
    '',
    `| ${COLS.map((c) => c[0]).join(' | ')} |`,
    `|${COLS.map((_, i) => (i < 3 ? '---' : '---:')).join('|')}|`,
    ...r.rows.map((row) => `| ${COLS.map((c) => c[1](row)).join(' | ')} |`),
    '',
    ...holeSection(r),
    ...(r.skipped.length ? ['', '## Skipped', '', ...r.skipped.map((s) => `- ${s}`)] : []),
    '',
  ];
  return lines.join('\n');
}

export function renderEvalHtml(r: EvalResult): string {
  const sum = summary(r);
  const methods = [...new Set(sum.map((s) => s.method))];
  const plots = methods
    .map((m) =>
      barChart({
        id: `gain-${m.replace(/[^a-z0-9]+/gi, '-')}`,
        title: `${m}: mean gain over ffmpeg lanczos (PSNR average), by case`,
        unit: 'dB',
        bars: sum.filter((s) => s.method === m).map((s) => ({ label: s.case, sublabel: `worst ${s.min}`, value: s.mean })),
      }),
    )
    .join('');
  const table =
    `<table id="eval-rows"><thead><tr>${COLS.map((c) => `<th>${esc(c[0])}</th>`).join('')}</tr></thead><tbody>` +
    r.rows.map((row) => `<tr class="${row.method.startsWith('restore:') ? 'ours' : ''}">${COLS.map((c) => `<td>${esc(c[1](row))}</td>`).join('')}</tr>`).join('') +
    `</tbody></table>`;
  const holeRows = r.rows.filter((x) => x.holeY !== undefined);
  const holeTable = holeRows.length
    ? `<h2>Holes</h2><p>Inside the painted holes: face holes (the reference's face mesh) and background holes; flicker inside the holes; <code>--mask auto</code> against the true mask.</p><table id="eval-holes"><thead><tr>${HOLE_COLS.map((c) => `<th>${esc(c[0])}</th>`).join('')}</tr></thead><tbody>` +
      holeRows.map((row) => `<tr class="${row.method.startsWith('restore:') ? 'ours' : ''}">${HOLE_COLS.map((c) => `<td>${esc(c[1](row))}</td>`).join('')}</tr>`).join('') +
      `</tbody></table>`
    : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>restore eval</title><style>
body{font:14px system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ddd;padding:3px 6px;text-align:right}
td:nth-child(-n+3),th:nth-child(-n+3){text-align:left}tr.ours{background:#eef6ff}.plot{max-width:780px;display:block;margin:12px 0}
.bar{fill:#3b7dd8}.bar-missing{fill:#eee}.muted{fill:#888;color:#888}.plot-title{font-weight:600}text{font-size:12px}</style></head><body>
<h1>restore eval</h1><p>${esc(r.createdAt)} · clips <code>${esc(r.clipsDir)}</code> · crf ${r.crf} · ${r.wallSeconds} s · scored with ffmpeg's <code>psnr</code>/<code>ssim</code> filters on the stored planes.</p>
<h2>Gain over ffmpeg lanczos</h2>${plots}<h2>All rows</h2>${table}${holeTable}
${r.skipped.length ? `<h2>Skipped</h2><ul>${r.skipped.map((s) => `<li>${esc(s)}</li>`).join('')}</ul>` : ''}
</body></html>
`;
}
