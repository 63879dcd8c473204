/**
 * `tunnel.close` counts after the gateway closed a tunnel: once its close
 * frame went to the client, the upstream's later messages are read (for its
 * close reply) but never forwarded, so they are not messages the client got.
 * Here the upstream's next message arrives in the same read as the end of the
 * frame the close waited for. Both engines must report the same counts for
 * the same traffic. Runs on the engine in force (scripts/test.mjs runs it both ways).
 */
import assert from 'node:assert/strict';
import type net from 'node:net';
import { test } from 'node:test';
import { collect, sleep, startGateway, waitFor } from '../helpers/net.js';
import { frame, rawWsClient, rawWsUpstream } from '../helpers/raw-ws.js';

const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;

test('messages the upstream sends after the gateway closed mid-frame are not counted as sent to the client', async (t) => {
  let upSocket: net.Socket | undefined;
  const up = await rawWsUpstream((s) => (upSocket = s));
  t.after(() => up.close());
  const gw = await startGateway({ apps: [{ name: 'cnt', port: up.port }] });
  t.after(() => gw.close());
  const log = collect('tunnel.close', gw.gw.id);
  t.after(() => log.stop());

  const { socket: client, rest } = await rawWsClient(gw.port, '/cnt/');
  let got = rest;
  client.on('data', (d: Buffer) => (got = Buffer.concat([got, d])));
  client.on('error', () => undefined);
  await waitFor(() => upSocket, 5000, 'the upstream connection');
  const u = upSocket!;
  u.on('data', () => undefined);

  const big = frame(OP_BINARY, Buffer.alloc(60_000, 1), false);
  u.write(big.subarray(0, 9));
  await sleep(50);
  [...gw.gw.tunnels][0].close(1001, 'closing mid-frame');
  await sleep(50);
  // The end of the frame in progress, then a message that must not be forwarded, in one write.
  u.write(Buffer.concat([big.subarray(9), frame(OP_TEXT, Buffer.from('too late'), false)]));
  await sleep(200);
  client.end(frame(OP_CLOSE, Buffer.from([0x03, 0xe9]), true));
  u.end(frame(OP_CLOSE, Buffer.from([0x03, 0xe9]), false));

  const e = await waitFor(() => log.events[0], 10_000, 'tunnel.close');
  assert.equal(e.closedBy, 'gateway');
  // What the client got: the big frame, then the gateway's close frame, nothing after it.
  assert.deepEqual(got.subarray(0, big.length), big);
  assert.equal(got[big.length], 0x80 | OP_CLOSE);
  assert.equal(got.length, big.length + 2 + 2 + 'closing mid-frame'.length);
  assert.equal(e.messagesOut, 1, 'one message reached the client');
});
