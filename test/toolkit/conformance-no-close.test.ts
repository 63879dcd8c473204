/**
 * A server that does not close on a protocol error (it drops the bad frame
 * and goes on) fails exactly the cases where RFC 6455 requires failing the
 * connection with 1002, and nothing else. Each of those cases waits out its
 * timeout, so this file has one test with a short one, and runs the cases
 * eight at a time (conformance-at-once.ts): most of them only wait.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { overallVerdict } from '../../src/toolkit/conformance/report.js';
import { runConformanceAtOnce } from './conformance-at-once.js';
import { startHandmadeEcho } from './conformance-servers.js';

test('a server that ignores protocol errors fails the 1002 cases (2.5, 3.x, 4.x, bad fragmentation, bad close frames), and only those', async () => {
  const server = await startHandmadeEcho({ noCloseOnProtocolError: true });
  try {
    const report = await runConformanceAtOnce({ url: server.url, timeoutMs: 800 }, 8);
    assert.equal(report.summary.total, 247);
    const failed = report.cases.filter((c) => overallVerdict(c) === 'FAILED');
    assert.deepEqual(failed.map((c) => c.id), [
      '2.5',
      ...['3.1', '3.2', '3.3', '3.4', '3.5', '3.6', '3.7'],
      ...['4.1.1', '4.1.2', '4.1.3', '4.1.4', '4.1.5', '4.2.1', '4.2.2', '4.2.3', '4.2.4', '4.2.5'],
      ...['5.1', '5.2', '5.9', '5.10', '5.11', '5.12', '5.13', '5.14', '5.15', '5.16', '5.17', '5.18'],
      ...['7.3.2', '7.3.6', '7.9.1', '7.9.2', '7.9.3', '7.9.4', '7.9.5', '7.9.6', '7.9.7', '7.9.8', '7.9.9'],
    ]);
    // The reason names the defect: the server never failed (or never answered) the connection.
    const c31 = failed.find((c) => c.id === '3.1')!;
    assert.match(c31.reason, /did not fail the connection within \d+ ms/);
    assert.equal(c31.droppedBy, 'client');
    const c792 = failed.find((c) => c.id === '7.9.2')!;
    assert.match(c792.reason, /neither answered the close frame nor closed the connection/);
  } finally {
    await server.close();
  }
});
