/**
 * `porthole conformance` against Porthole itself: `porthole echo` (the built
 * CLI, a child process) passes, and `porthole serve` splicing a `ws` echo app
 * gives, case by case, the same verdicts as the app tested directly.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { startServe } from '../helpers/cli.js';
import { overallVerdict, type ConformanceReport } from '../../src/toolkit/conformance/report.js';
import { runConformance } from '../../src/toolkit/conformance/run-conformance.js';
import { runConformanceAtOnce } from './conformance-at-once.js';
import { runCli, startCli } from './helpers.js';
import { startWsEcho } from './conformance-servers.js';

function verdicts(report: ConformanceReport): string[] {
  return report.cases.map((c) => `${c.id} ${c.behavior} ${c.behaviorClose}`);
}

// The three at the same time: each has its own servers, and most of a run is waiting.
describe('porthole conformance against Porthole', { concurrency: 3 }, () => {
  test('porthole echo (the CLI) passes families 1-7 and 10, run by the porthole conformance CLI: exit 0, nothing FAILED', async (t) => {
    const echo = startCli(t, ['echo', '--port', '0']);
    await echo.waitFor('the listening line', () => echo.stdout.includes('\n'));
    const url = /^listening on (ws:\/\/\S+)$/m.exec(echo.stdout)?.[1];
    assert.ok(url, echo.describe());
    const run = await runCli(['conformance', url, '--json'], { timeoutMs: 60_000 });
    assert.equal(run.code, 0, run.output);
    const report = JSON.parse(run.stdout) as ConformanceReport;
    assert.equal(report.summary.total, 247);
    assert.equal(report.summary.FAILED, 0, report.cases.filter((c) => overallVerdict(c) === 'FAILED').map((c) => `${c.id}: ${c.reason}`).join('\n'));
    t.diagnostic(`porthole echo: ${JSON.stringify(report.summary)} in ${report.durationMs} ms`);
  });

  test('porthole echo takes a 4 MiB message in 65,536 fragments (9.3.1, 9.4.1), and porthole echo --compress passes families 12 and 13', async (t) => {
    const echo = startCli(t, ['echo', '--port', '0', '--compress']);
    await echo.waitFor('the listening line', () => echo.stdout.includes('\n'));
    const url = /^listening on (ws:\/\/\S+)$/m.exec(echo.stdout)?.[1];
    assert.ok(url, echo.describe());
    const report = await runConformance({ url: url!, cases: ['9.3.1', '9.4.1', '12.1.2', '12.2.11', '12.5.3', '13.2.2', '13.3.2', '13.5.2', '13.7.2'] });
    assert.equal(report.summary.FAILED, 0, report.cases.filter((c) => overallVerdict(c) === 'FAILED').map((c) => `${c.id}: ${c.reason}`).join('\n'));
    assert.equal(report.summary.OK, 9);
  });

  test('through porthole serve, a ws echo app gets the same verdict pair in every case as when tested directly', async (t) => {
    const app = await startWsEcho();
    t.after(() => app.close());
    const dir = mkdtempSync(join(tmpdir(), 'porthole-conformance-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'porthole.yaml'), `apps:\n  - name: echo\n    port: ${new URL(app.url).port}\n`);
    const gw = await startServe(['--config', join(dir, 'porthole.yaml'), '--data', dir, '--log-format', 'json']);
    t.after(() => gw.stop());

    // A few cases at a time (conformance-at-once.ts): through the gateway, that many tunnels at once.
    const direct = await runConformanceAtOnce({ url: app.url });
    const through = await runConformanceAtOnce({ url: `ws://127.0.0.1:${gw.port}/echo/` });
    assert.equal(direct.summary.total, 247);
    assert.equal(direct.summary.FAILED, 0);
    assert.deepEqual(verdicts(through), verdicts(direct));
    t.diagnostic(`direct ${direct.durationMs} ms, through porthole serve ${through.durationMs} ms`);
  });
});
