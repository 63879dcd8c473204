/**
 * A conformance run whose cases run a few at a time: `parallel` workers each
 * take the next case of the selection and run it with `runConformance`, and
 * the outcomes are put back together in the registry's order, one report as a
 * single run gives. Every case opens a connection of its own (as Autobahn
 * does), so its verdict does not depend on what runs beside it; what takes a
 * run's time is waiting (Autobahn's pauses of 1-2 s in 5.19, 5.20 and 6.4.x,
 * and the timeout of each case a broken server fails), which overlaps here.
 */
import assert from 'node:assert/strict';
import { selectCases } from '../../src/toolkit/conformance/case-registry.js';
import { VERDICTS, overallVerdict, type CaseOutcome, type ConformanceReport } from '../../src/toolkit/conformance/report.js';
import { runConformance, type ConformanceOptions } from '../../src/toolkit/conformance/run-conformance.js';

export async function runConformanceAtOnce(opts: ConformanceOptions, parallel = 4): Promise<ConformanceReport> {
  const sel = selectCases(opts.cases ?? [], opts.exclude ?? [], opts.include ?? []);
  assert.deepEqual(sel.unknown, [], 'every pattern names a case');
  const ids = sel.cases.map((c) => c.id);
  const t0 = performance.now();
  const reports: ConformanceReport[] = [];
  const outcomes = new Map<string, CaseOutcome>();
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const id = ids[next++];
      const r = await runConformance({ ...opts, cases: [id], exclude: [], include: [] });
      // The run ran exactly this case.
      assert.deepEqual(
        r.cases.map((c) => c.id),
        [id],
      );
      reports.push(r);
      outcomes.set(id, r.cases[0]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, ids.length) }, worker));
  const cases = ids.map((id) => outcomes.get(id)!);
  const summary = Object.fromEntries(VERDICTS.map((v) => [v, 0])) as ConformanceReport['summary'];
  for (const c of cases) summary[overallVerdict(c)]++;
  summary.total = cases.length;
  return {
    ...reports[0],
    startedAt: reports.map((r) => r.startedAt).sort()[0],
    durationMs: Math.round(performance.now() - t0),
    options: { ...reports[0].options, cases: opts.cases ?? [], exclude: opts.exclude ?? [], include: opts.include ?? [] },
    summary,
    cases,
  };
}
