/**
 * The run as text for a terminal or a log: counts per family and verdict,
 * then every FAILED case with its reason, then the NON-STRICT ones by id.
 */
import { FAMILY_TITLES } from './case-types.js';
import { VERDICTS, overallVerdict, type CaseOutcome, type ConformanceReport, type Verdict } from './report.js';

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}
function lpad(s: string, n: number): string {
  return s.length >= n ? s : ' '.repeat(n - s.length) + s;
}

export function formatSummary(report: ConformanceReport): string {
  const lines: string[] = [];
  lines.push(`porthole conformance ${report.url}: ${report.summary.total} case${report.summary.total === 1 ? '' : 's'} in ${(report.durationMs / 1000).toFixed(1)} s`);
  lines.push('');
  const families = [...new Set(report.cases.map((c) => c.family))];
  // Wide enough for "13 WebSocket Compression (different parameters)".
  const width = Math.max(24, ...families.map((f) => `${f} ${FAMILY_TITLES[f] ?? ''}`.length + 2));
  lines.push(`${pad('family', width)}${VERDICTS.map((v) => lpad(v, v.length + 2)).join('')}`);
  const row = (label: string, cases: CaseOutcome[]) => {
    const counts = Object.fromEntries(VERDICTS.map((v) => [v, 0])) as Record<Verdict, number>;
    for (const c of cases) counts[overallVerdict(c)]++;
    return `${pad(label, width)}${VERDICTS.map((v) => lpad(String(counts[v]), v.length + 2)).join('')}`;
  };
  for (const f of families) lines.push(row(`${f} ${FAMILY_TITLES[f] ?? ''}`, report.cases.filter((c) => c.family === f)));
  lines.push(row('total', report.cases));
  const failed = report.cases.filter((c) => overallVerdict(c) === 'FAILED');
  if (failed.length > 0) {
    lines.push('', `FAILED (${failed.length}):`);
    for (const c of failed) lines.push(`  ${pad(c.id, 8)} ${c.description}`, `  ${pad('', 8)} ${c.reason}`);
  }
  const nonStrict = report.cases.filter((c) => overallVerdict(c) === 'NON-STRICT' || c.behaviorClose === 'NON-STRICT');
  if (nonStrict.length > 0) lines.push('', `NON-STRICT (allowed, not the strict reading): ${nonStrict.map((c) => c.id).join(', ')}`);
  const unimplemented = report.cases.filter((c) => overallVerdict(c) === 'UNIMPLEMENTED');
  if (unimplemented.length > 0) lines.push('', `UNIMPLEMENTED (the server does not offer what the case tests): ${unimplemented.length > 20 ? `${unimplemented.length} cases` : unimplemented.map((c) => c.id).join(', ')}`);
  lines.push('', failed.length === 0 ? 'result: nothing FAILED' : `result: ${failed.length} FAILED`);
  return lines.join('\n');
}

/** One progress line (rewritten in place on a terminal). */
export function formatProgress(outcome: CaseOutcome, index: number, total: number, failedSoFar: number): string {
  return `[${index + 1}/${total}] ${pad(outcome.id, 8)} ${pad(overallVerdict(outcome), 13)}${failedSoFar > 0 ? ` ${failedSoFar} failed so far` : ''}`;
}
