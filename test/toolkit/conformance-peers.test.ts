/**
 * `porthole conformance` against servers known to pass: `ws` (in this
 * process) and Python's `websockets` (Debian's, a real child process). The
 * whole of families 1-7 and 10 runs: 247 cases, as in Autobahn|Testsuite,
 * and nothing FAILS (a few cases at a time: conformance-at-once.ts). Family 9
 * runs in a small selection.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { overallVerdict, type ConformanceReport } from '../../src/toolkit/conformance/report.js';
import { runConformance } from '../../src/toolkit/conformance/run-conformance.js';
import { runConformanceAtOnce } from './conformance-at-once.js';
import { startPython } from './helpers.js';
import { startWsEcho } from './conformance-servers.js';

/** Autobahn's case counts per family (and per group of 6 and 7). */
const FAMILY_COUNTS: Record<string, number> = { '1': 16, '2': 11, '3': 7, '4': 10, '5': 20, '6': 145, '7': 37, '10': 1 };

function failedOf(report: ConformanceReport): string[] {
  return report.cases.filter((c) => overallVerdict(c) === 'FAILED').map((c) => `${c.id}: ${c.reason}`);
}

function assertFullRun(report: ConformanceReport): void {
  assert.equal(report.summary.total, 247);
  const counts: Record<string, number> = {};
  for (const c of report.cases) counts[c.family] = (counts[c.family] ?? 0) + 1;
  assert.deepEqual(counts, FAMILY_COUNTS);
  assert.deepEqual(failedOf(report), []);
  // The cases Autobahn leaves open are reported as such, never judged.
  for (const id of ['7.1.6', '7.13.1', '7.13.2']) assert.equal(report.cases.find((c) => c.id === id)?.behavior, 'INFORMATIONAL', id);
  assert.equal(report.summary.OK + report.summary['NON-STRICT'] + report.summary.INFORMATIONAL, 247);
}

// The three runs at the same time: each has its own server, and most of a run is waiting.
describe('servers known to pass', { concurrency: 3 }, () => {
  test('ws (WebSocketServer echo): all 247 cases of families 1-7 and 10, nothing FAILED', async (t) => {
    const server = await startWsEcho();
    t.after(() => server.close());
    const report = await runConformanceAtOnce({ url: server.url });
    assertFullRun(report);
    // ws checks UTF-8 once a message is complete, not byte by byte: the fail-fast cases are NON-STRICT.
    for (const id of ['6.4.1', '6.4.2', '6.4.3', '6.4.4']) assert.equal(report.cases.find((c) => c.id === id)?.behavior, 'NON-STRICT', id);
    t.diagnostic(`ws: ${JSON.stringify(report.summary)} in ${report.durationMs} ms`);
  });

  test("Python websockets (Debian's) echo server: all 247 cases, nothing FAILED", async (t) => {
    const py = startPython(t, 'conformance_echo.py', []);
    await py.waitFor('the port line', () => /^\d+\n/.test(py.stdout));
    const report = await runConformanceAtOnce({ url: `ws://127.0.0.1:${py.stdout.trim()}/` });
    assertFullRun(report);
    t.diagnostic(`websockets: ${JSON.stringify(report.summary)} in ${report.durationMs} ms`);
  });

  test('family 9 in a selection (16 MiB and 1 MiB in 64-byte chops, 1000 round trips) is echoed by ws: OK, with the wire summarized', async (t) => {
    const server = await startWsEcho();
    t.after(() => server.close());
    const report = await runConformance({ url: server.url, cases: ['9.1.6', '9.5.1', '9.7.1'] });
    assert.deepEqual(report.cases.map((c) => [c.id, c.behavior, c.behaviorClose]), [
      ['9.1.6', 'OK', 'OK'],
      ['9.5.1', 'OK', 'OK'],
      ['9.7.1', 'OK', 'OK'],
    ]);
    const roundTrips = report.cases[2];
    assert.equal(roundTrips.wireTruncated, true);
    assert.ok(roundTrips.wire.length < 100, `the wire of 2000 frames is summarized (${roundTrips.wire.length} records)`);
    assert.ok(roundTrips.wire.some((w) => w.kind === 'note' && /records left out/.test(w.text ?? '')));
  });
});
