/**
 * Families 12 and 13 of `porthole conformance` (permessage-deflate, opt-in):
 * `ws` passes, directly and through `porthole serve`; Python's `websockets`
 * passes but for the 8-bit window (a real limit of it, found by 13.3/13.5); a server without compression is UNIMPLEMENTED; a server
 * that answers the offer with a value RFC 7692 forbids, or that accepts
 * compression and then ignores RSV1 (echoing the compressed bytes as a plain
 * message), FAILS exactly the cases run.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocketServer } from 'ws';
import { createGateway } from 'porthole';
import { runConformance } from '../../src/toolkit/conformance/run-conformance.js';
import type { CaseOutcome } from '../../src/toolkit/conformance/report.js';
import { startHandmadeEcho } from './conformance-servers.js';
import { startPython } from './helpers.js';

/** Small sizes of every sub-family, a fragmented one, and each of the seven offers of 13. */
const CASES = ['12.1.2', '12.2.11', '12.3.2', '12.4.3', '12.5.2', '13.1.2', '13.2.2', '13.3.2', '13.4.2', '13.5.2', '13.6.2', '13.7.2'];

const verdicts = (cases: CaseOutcome[]) => Object.fromEntries(cases.map((c) => [c.id, `${c.behavior}/${c.behaviorClose}`]));

async function wsEcho(t: import('node:test').TestContext, perMessageDeflate: boolean): Promise<number> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: perMessageDeflate ? { threshold: 0 } : false });
  wss.on('connection', (ws) => {
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  await new Promise((resolve) => wss.once('listening', resolve));
  t.after(() => new Promise<void>((resolve) => (wss.clients.forEach((c) => c.terminate()), wss.close(() => resolve()))));
  return (wss.address() as import('node:net').AddressInfo).port;
}

test('ws with permessage-deflate passes 12.x and 13.x, and through porthole serve every case gets the same verdicts', async (t) => {
  const port = await wsEcho(t, true);
  const direct = await runConformance({ url: `ws://127.0.0.1:${port}/`, cases: CASES });
  assert.equal(direct.summary.total, CASES.length);
  assert.equal(direct.summary.FAILED, 0, JSON.stringify(direct.cases.filter((c) => c.behavior === 'FAILED' || c.behaviorClose === 'FAILED').map((c) => [c.id, c.reason])));
  assert.equal(direct.summary.OK, CASES.length);
  // What was negotiated is in the wire notes, and RSV1 marks the compressed frames both ways.
  const c = direct.cases.find((x) => x.id === '13.2.2')!;
  assert.ok(c.wire.some((w) => w.kind === 'note' && /server_no_context_takeover/.test(w.text ?? '')), JSON.stringify(c.wire.slice(0, 6)));
  assert.ok(c.wire.some((w) => w.dir === 'received' && w.kind === 'frame' && w.rsv === 4));

  const gateway = createGateway({ apps: [{ name: 'echo', port }] });
  const { url } = await gateway.listen('127.0.0.1', 0);
  t.after(() => gateway.close());
  const through = await runConformance({ url: `${url.replace('http', 'ws')}/echo/`, cases: CASES });
  assert.deepEqual(verdicts(through.cases), verdicts(direct.cases));
});

test('Python websockets with compression passes, but for the 8-bit window its zlib cannot make; a server without compression is UNIMPLEMENTED', async (t) => {
  const py = startPython(t, 'conformance_echo.py', ['deflate']);
  await py.waitFor('the port line', () => /^\d+\n/.test(py.stdout));
  const report = await runConformance({ url: `ws://127.0.0.1:${py.stdout.trim()}/`, cases: CASES });
  // websockets 10.4 accepts server_max_window_bits=8, then zlib refuses a raw 8-bit window: a 500 to the
  // handshake, or close 1011 at the first message. The cases that ask for it (13.3, 13.5, and 13.7, whose
  // first offer it takes) fail; every other one passes.
  const failed = report.cases.filter((c) => c.behavior === 'FAILED' || c.behaviorClose === 'FAILED');
  assert.deepEqual(failed.map((c) => c.id), ['13.3.2', '13.5.2', '13.7.2'], JSON.stringify(failed.map((c) => [c.id, c.reason])));
  assert.match(failed[0].reason, /500/);
  assert.match(failed[1].reason, /1011/);
  assert.equal(report.summary.OK, CASES.length - 3);

  const plain = await wsEcho(t, false);
  const none = await runConformance({ url: `ws://127.0.0.1:${plain}/`, cases: ['12.1.1', '13.7.1'] });
  assert.deepEqual(verdicts(none.cases), { '12.1.1': 'UNIMPLEMENTED/UNIMPLEMENTED', '13.7.1': 'UNIMPLEMENTED/UNIMPLEMENTED' });
  assert.match(none.cases[0].reason, /did not accept permessage-deflate/);
});

test('a server that answers the offer against RFC 7692, or accepts compression and ignores RSV1, fails each case run', async (t) => {
  const badAnswer = await startHandmadeEcho({ extensionAnswer: 'permessage-deflate; server_max_window_bits=7' });
  t.after(() => badAnswer.close());
  const r1 = await runConformance({ url: badAnswer.url, cases: ['12.1.1', '13.4.1'] });
  assert.deepEqual(verdicts(r1.cases), { '12.1.1': 'FAILED/FAILED', '13.4.1': 'FAILED/FAILED' });
  assert.match(r1.cases[0].reason, /breaks RFC 7692: .*server_max_window_bits/);

  // It says yes to compression, then echoes each frame's bytes as a message of its own, RSV1 dropped.
  const pretends = await startHandmadeEcho({ extensionAnswer: 'permessage-deflate', ignoreRsv: true });
  t.after(() => pretends.close());
  const r2 = await runConformance({ url: pretends.url, cases: ['12.2.2', '13.1.2'] });
  for (const c of r2.cases) assert.equal(c.behavior, 'FAILED', `${c.id}: ${c.reason}`);
  // Nothing else in the families is affected: a correct hand-written server without compression is UNIMPLEMENTED.
  const honest = await startHandmadeEcho();
  t.after(() => honest.close());
  const r3 = await runConformance({ url: honest.url, cases: ['12.2.2'] });
  assert.equal(r3.cases[0].behavior, 'UNIMPLEMENTED');
});
