/**
 * JUnit XML for CI systems: one testcase per video. A video that failed to process is an
 * <error> (with its one-line message and kind); a video whose PSNR/SSIM fell past the threshold
 * is a <failure type="regression">; a run-level drop of the means is one more failing testcase.
 */
import { writeFileAtomic } from '../media/encode.js';
import { escapeXml, escapeXmlText } from './escape.js';
import type { BatchIndex } from './index-report.js';

export function renderJUnit(ix: BatchIndex): string {
  const cases: string[] = [];
  let failures = 0;
  let errors = 0;
  let skipped = 0;
  for (const r of ix.rows) {
    const time = r.resumed ? 0 : (r.metrics?.wallMs ?? 0) / 1000;
    const m = r.metrics;
    const numbers = m
      ? [
          `frames=${m.frames}`,
          `fps=${m.fps}`,
          m.psnr !== undefined ? `psnr=${m.psnr}` : '',
          m.ssim !== undefined ? `ssim=${m.ssim}` : '',
          m.idSim !== undefined ? `idSim=${m.idSim}` : '',
          m.flicker !== undefined ? `flicker=${m.flicker}` : '',
          r.compare.delta.psnr !== undefined ? `dPsnr=${r.compare.delta.psnr}` : '',
          r.compare.delta.ssim !== undefined ? `dSsim=${r.compare.delta.ssim}` : '',
          r.resumed ? 'resumed (unchanged, not redone)' : '',
        ]
          .filter(Boolean)
          .join(' ')
      : '';
    let inner = '';
    if (r.status === 'failed') {
      errors++;
      inner += `<error message="${escapeXml(r.error ?? 'failed')}" type="${escapeXml(r.errorKind ?? 'error')}">${escapeXmlText(`${r.input}: ${r.error ?? 'failed'}`)}</error>`;
    } else if (r.status === 'pending') {
      skipped++;
      inner += `<skipped message="not run (batch interrupted)"/>`;
    } else if (r.regression) {
      failures++;
      const msg = r.compare.regressions.join('; ');
      inner += `<failure message="${escapeXml(msg)}" type="regression">${escapeXmlText(`${msg}\ncompared with run ${r.compare.previousRunId ?? '?'} (${r.compare.previousAt ?? '?'})`)}</failure>`;
    }
    if (numbers) inner += `<system-out>${escapeXmlText(numbers)}</system-out>`;
    cases.push(`    <testcase classname="restore.batch" name="${escapeXml(r.id)}" file="${escapeXml(r.input)}" time="${time.toFixed(3)}">${inner}</testcase>`);
  }
  if (ix.run.previousRunId) {
    const bad = ix.run.regressions.length > 0;
    if (bad) failures++;
    const msg = ix.run.regressions.join('; ');
    cases.push(
      `    <testcase classname="restore.batch" name="mean over ${ix.run.common} videos vs previous run" time="0">${
        bad ? `<failure message="${escapeXml(msg)}" type="regression">${escapeXmlText(msg)}</failure>` : ''
      }</testcase>`,
    );
  }
  const tests = cases.length;
  const time = (ix.wallMs / 1000).toFixed(3);
  const attrs = `tests="${tests}" failures="${failures}" errors="${errors}" skipped="${skipped}" time="${time}"`;
  return `<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="restore batch" ${attrs}>
  <testsuite name="${escapeXml(`restore batch ${ix.dir}`)}" ${attrs} timestamp="${escapeXml(ix.generatedAt.replace(/Z$/, ''))}">
    <properties>
      <property name="runId" value="${escapeXml(ix.runId)}"/>
      <property name="settingsHash" value="${escapeXml(ix.settingsHash)}"/>
      <property name="psnrThresholdDb" value="${ix.thresholds.psnrDb}"/>
      <property name="ssimThreshold" value="${ix.thresholds.ssim}"/>
    </properties>
${cases.join('\n')}
  </testsuite>
</testsuites>
`;
}

export async function writeJUnit(file: string, ix: BatchIndex): Promise<void> {
  await writeFileAtomic(file, renderJUnit(ix));
}
