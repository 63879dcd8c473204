/**
 * Servers broken on purpose (test/toolkit/conformance-servers.ts, a raw net
 * server that does the handshake and the framing by hand) fail exactly the
 * cases that cover their defect, and nothing else; the same server without
 * the defect fails nothing. Every run is the whole of families 1-7 and 10,
 * its cases a few at a time (conformance-at-once.ts).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { overallVerdict } from '../../src/toolkit/conformance/report.js';
import { runConformanceAtOnce } from './conformance-at-once.js';
import { startHandmadeEcho, type Defects } from './conformance-servers.js';

/** "6.12.1-8" → 6.12.1 … 6.12.8. */
function ids(spec: string): string[] {
  return spec.split(/\s+/).filter(Boolean).flatMap((item) => {
    const m = /^(.*\.)(\d+)-(\d+)$/.exec(item);
    if (!m) return [item];
    return Array.from({ length: Number(m[3]) - Number(m[2]) + 1 }, (_, i) => `${m[1]}${Number(m[2]) + i}`);
  });
}

async function failedCases(defects: Defects, timeoutMs?: number): Promise<string[]> {
  const server = await startHandmadeEcho(defects);
  try {
    const report = await runConformanceAtOnce({ url: server.url, timeoutMs });
    assert.equal(report.summary.total, 247);
    return report.cases.filter((c) => overallVerdict(c) === 'FAILED').map((c) => c.id);
  } finally {
    await server.close();
  }
}

// The four runs at the same time: each has its own server, and most of a run is waiting.
describe('servers broken on purpose', { concurrency: 4 }, () => {
  test('the hand-written echo server without defects fails nothing (the control for the tests below)', async () => {
    assert.deepEqual(await failedCases({}), []);
  });

  test('a server that echoes invalid UTF-8 text fails the invalid-UTF-8 cases of family 6, and only those', async () => {
    // Kuhn's test file as Autobahn numbers it: 6.6.x are the prefixes of κόσμε cut inside a code point.
    const expected = ids(`6.3.1-2 6.4.1-4 6.6.1 6.6.3 6.6.4 6.6.6 6.6.8 6.6.10 6.8.1-2 6.10.1-3 6.11.5 6.12.1-8 6.13.1-5
      6.14.1-10 6.15.1 6.16.1-3 6.17.1-5 6.18.1-5 6.19.1-5 6.20.1-7 6.21.1-8`);
    assert.deepEqual(await failedCases({ acceptInvalidUtf8: true }), expected);
  });

  test('a server that ignores reserved bits fails 3.1-3.7, and only those', async () => {
    assert.deepEqual(await failedCases({ ignoreRsv: true }), ids('3.1-7'));
  });

  test('a server that answers a ping with the wrong payload fails every case that expects a pong, and only those', async () => {
    assert.deepEqual(await failedCases({ wrongPongPayload: true }), ids('2.1-4 2.6 2.9-11 5.6-8 5.19-20'));
  });
});
