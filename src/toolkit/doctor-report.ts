/**
 * How a `porthole doctor` report reads on a terminal: one line per step with
 * ✓ / ✗ / !, the wire exchange and an explanation under anything wrong, and
 * the diagnosis last.
 */
import type { DoctorReport } from './doctor.js';
import type { DoctorStep } from './doctor-step.js';

const MARK = { pass: '✓', fail: '✗', warn: '!' } as const;
const TITLE_WIDTH = 22;
const WRAP = 100;

/** One step: its line, then (when not a pass) the evidence, why, and the fix. `verbose` shows the evidence of passing steps too. */
export function formatStep(step: DoctorStep, verbose = false): string {
  const lines = [`${MARK[step.status]} ${step.title.padEnd(TITLE_WIDTH)}${step.detail}`];
  const indent = '    ';
  if (step.wire && (step.status !== 'pass' || verbose)) for (const l of step.wire) lines.push(`${indent}  ${l}`);
  if (step.explanation && step.status !== 'pass') lines.push(...wrap(step.explanation, `${indent}why: `, `${indent}     `));
  if (step.fix && step.status !== 'pass') {
    const [first, ...rest] = step.fix.split('\n');
    lines.push(...wrap(first, `${indent}fix: `, `${indent}     `));
    // Indented lines are a config snippet: kept as they are; prose is wrapped.
    for (const l of rest) lines.push(...(/^\s/.test(l) ? [`${indent}     ${l}`] : wrap(l, `${indent}     `, `${indent}     `)));
  }
  return lines.join('\n');
}

export function formatSummary(report: DoctorReport): string {
  if (report.exitCode === 2) return `cannot test: ${report.steps[0]?.detail ?? report.url}`;
  return wrap(report.ok ? `all good: ${report.summary}` : `diagnosis: ${report.summary}`, '', '  ').join('\n');
}

/** The whole report, as `porthole doctor` prints it. */
export function formatReport(report: DoctorReport, verbose = false): string {
  return [`porthole doctor ${report.url}`, '', ...report.steps.map((s) => formatStep(s, verbose)), '', formatSummary(report)].join('\n');
}

/** Word-wraps `text` to WRAP columns, `first` before the first line and `rest` before the others. */
function wrap(text: string, first: string, rest: string): string[] {
  const out: string[] = [];
  let line = first;
  let empty = true;
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (!empty && line.length + 1 + word.length > WRAP) {
      out.push(line);
      line = rest + word;
    } else {
      line += (empty ? '' : ' ') + word;
    }
    empty = false;
  }
  out.push(line);
  return out;
}
