/**
 * Backpressure: a client that stops reading while the upstream has 200 MiB
 * to send. The gateway must stop reading the upstream (bounded buffers, so the
 * upstream is held back by TCP), and once the client reads again every byte
 * arrives, in order. Run on both engines (scripts/test.mjs).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type WebSocket from 'ws';
import { closed, openWs, sleep, startGateway, waitFor, wsUpstream } from '../helpers/net.js';

const MIB = 1024 * 1024;
const COUNT = 200;

test('a client that stops reading holds the upstream back; 200 MiB arrive intact once it reads again', async (t) => {
  let handedToKernel = 0;
  let upstream: WebSocket | undefined;
  const up = await wsUpstream({}, (ws) => (upstream = ws));
  t.after(() => up.close());
  const gw = await startGateway({ apps: [{ name: 'slow', port: up.port }] });
  t.after(() => gw.close());

  const ws = await openWs(`${gw.wsUrl}/slow/`, undefined, { perMessageDeflate: false });
  ws.pause();
  const received: Buffer[] = [];
  ws.on('message', (d) => received.push(d as Buffer));
  await waitFor(() => upstream, 5000, 'the upstream connection');

  // The upstream writes as fast as TCP lets it, never keeping more than 2 MiB in its own buffer.
  let sent = 0;
  const sending = (async () => {
    while (sent < COUNT) {
      if (upstream!.bufferedAmount > 2 * MIB) {
        await sleep(5);
        continue;
      }
      upstream!.send(Buffer.alloc(MIB, sent & 0xff));
      sent++;
      handedToKernel = sent * MIB - upstream!.bufferedAmount;
    }
  })();

  const rssBefore = process.memoryUsage().rss;
  // Let the pipeline fill up: once it stalls, what the upstream got rid of is what the kernels and the gateway hold.
  let last = -1;
  const stalledBy = Date.now() + 10_000;
  while (Date.now() < stalledBy && sent < COUNT) {
    await sleep(300);
    if (sent === last) break;
    last = sent;
  }
  assert.ok(sent < COUNT, `the upstream was held back (it sent ${sent} MiB)`);
  assert.ok(handedToKernel < 64 * MIB, `at most the socket buffers and the gateway's own are in flight (${(handedToKernel / MIB).toFixed(1)} MiB)`);
  const grew = process.memoryUsage().rss - rssBefore;
  assert.ok(grew < 100 * MIB, `memory stays bounded while the client is paused (grew ${(grew / MIB).toFixed(1)} MiB)`);

  ws.resume();
  await sending;
  await waitFor(() => received.length === COUNT, 60_000, 'every message');
  received.forEach((m, i) => {
    assert.equal(m.length, MIB, `message ${i} length`);
    for (let j = 0; j < m.length; j += 4093) if (m[j] !== (i & 0xff)) assert.fail(`message ${i} byte ${j} is ${m[j]}, not ${i & 0xff}`);
  });
  ws.close();
  await closed(ws);
});
