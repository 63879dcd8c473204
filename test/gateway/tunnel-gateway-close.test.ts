/**
 * What the gateway itself does to an open tunnel: drain while a large frame
 * is in flight (the close waits for its end), idle close both ways, pings,
 * and the dashboard's live counters. Run on both engines (scripts/test.mjs).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { closed, collect, nextMessage, openWs, sleep, startGateway, waitFor, wsUpstream } from '../helpers/net.js';

// 32 MiB, not less: with the client paused, loopback's socket buffers (several MiB
// each way) plus the JavaScript tunnel's own could otherwise take the whole frame
// before the drain starts, and the test would no longer be about a frame in flight.
test('drain during a 32 MiB message: the message arrives whole, then a 1001 close each way', async (t) => {
  const big = Buffer.alloc(32 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4) big.writeUInt32BE(i, i);
  let upClose: Promise<{ code: number; reason: string }> | undefined;
  const up = await wsUpstream({}, (ws) => {
    upClose = new Promise((ok) => ws.once('close', (code, reason) => ok({ code, reason: reason.toString() })));
    ws.on('message', () => ws.send(big));
  });
  t.after(() => up.close());
  const gw = await startGateway({ apps: [{ name: 'big', port: up.port }] });
  t.after(() => gw.close());
  const log = collect('tunnel.close', gw.gw.id);
  t.after(() => log.stop());

  const ws = await openWs(`${gw.wsUrl}/big/`, undefined, { perMessageDeflate: false });
  t.after(() => ws.terminate());
  const got = nextMessage(ws);
  const clientClose = closed(ws);
  ws.pause();
  ws.send('go');
  const [tunnel] = await waitFor(() => gw.gw.tunnels.size === 1 && [...gw.gw.tunnels], 5000, 'the tunnel');
  await waitFor(() => tunnel.bytesOut > 0, 5000, 'the frame to start');
  await sleep(50);
  assert.ok(tunnel.bytesOut < big.length, 'drain starts while the frame is in flight');
  const drained = gw.gw.drain(5000);
  ws.resume();
  const m = await got;
  assert.equal(m.data.length, big.length);
  assert.ok(m.data.equals(big), 'the message is intact');
  const c = await clientClose;
  assert.equal(c.code, 1001);
  assert.equal(c.reason, 'gateway shutting down');
  assert.equal((await upClose!).code, 1001);
  await drained;
  const e = await waitFor(() => log.events[0], 5000, 'tunnel.close');
  assert.equal(e.closedBy, 'gateway');
  assert.equal(e.closeCode, 1001);
  assert.ok(e.framesOut >= 1 && e.bytesOut >= big.length, 'the 32 MiB frame counted');
});

test('idle close: 1001 "idle for N s" to the client and to the upstream, tunnel.close by gateway', async (t) => {
  let upClose: Promise<{ code: number; reason: string }> | undefined;
  const up = await wsUpstream({}, (ws) => {
    upClose = new Promise((ok) => ws.once('close', (code, reason) => ok({ code, reason: reason.toString() })));
  });
  t.after(() => up.close());
  const gw = await startGateway({ apps: [{ name: 'quiet', port: up.port, idle_timeout: '1s' }] });
  t.after(() => gw.close());
  const log = collect('tunnel.close', gw.gw.id);
  t.after(() => log.stop());

  const t0 = Date.now();
  const ws = await openWs(`${gw.wsUrl}/quiet/`);
  const c = await closed(ws);
  assert.ok(Date.now() - t0 >= 900, 'not before the idle time');
  assert.deepEqual(c, { code: 1001, reason: 'idle for 1 s' });
  assert.deepEqual(await upClose!, { code: 1001, reason: 'idle for 1 s' });
  const e = await waitFor(() => log.events[0], 5000, 'tunnel.close');
  assert.equal(e.closedBy, 'gateway');
  assert.equal(e.closeCode, 1001);
  assert.equal(e.reason, 'idle for 1 s');
});

test('ping_interval: the client gets unmasked pings from the gateway, the upstream none', async (t) => {
  let upPings = 0;
  const up = await wsUpstream({}, (ws) => ws.on('ping', () => upPings++));
  t.after(() => up.close());
  const gw = await startGateway({ apps: [{ name: 'pinged', port: up.port, ping_interval: '200ms' }] });
  t.after(() => gw.close());

  const ws = await openWs(`${gw.wsUrl}/pinged/`);
  let pings = 0;
  ws.on('ping', () => pings++);
  await waitFor(() => pings >= 3, 5000, 'three pings');
  // ws answers each ping with a pong that goes through to the upstream: the stream stays well framed.
  ws.send('still framed');
  ws.close(1000);
  await closed(ws);
  assert.equal(upPings, 0);
});

test('the dashboard snapshot counts the bytes and messages each way while the tunnel is open', async (t) => {
  const up = await wsUpstream();
  t.after(() => up.close());
  const gw = await startGateway({ apps: [{ name: 'count', port: up.port }] });
  t.after(() => gw.close());

  const ws = await openWs(`${gw.wsUrl}/count/`, undefined, { perMessageDeflate: false });
  for (const size of [10, 300, 70_000]) {
    ws.send(Buffer.alloc(size, 1));
    await nextMessage(ws);
  }
  const [tunnel] = [...gw.gw.tunnels];
  // Client frames carry a 4-byte mask key: 6/8/14-byte headers up, 2/4/10 down.
  const payload = 10 + 300 + 70_000;
  const s = await waitFor(() => {
    const snap = tunnel.snapshot();
    return snap.bytesIn === payload + 6 + 8 + 14 && snap.bytesOut === payload + 2 + 4 + 10 && snap;
  }, 5000, 'the counters');
  assert.equal(s.messagesIn, 3);
  assert.equal(s.messagesOut, 3);
  assert.equal(s.kind, 'tunnel');
  assert.ok(s.lastActivity >= s.started && s.lastActivity <= Date.now());
  ws.close();
  await closed(ws);
});
