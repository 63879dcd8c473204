/**
 * Regression (found by test/reliability/fuzz.test.ts): a client that sends its
 * handshake and half-closes before the upstream's 101 arrives. Its FIN was
 * emitted before the tunnel listened for it, so the tunnel never passed it on:
 * both sockets stayed open until idle_timeout (an hour by default), the
 * client's in CLOSE_WAIT. Now a FIN that comes before the 101 gives the
 * handshake up (as nginx does with a client that closes while it waits for
 * the upstream); one that comes after the 101 is passed on by the tunnel.
 * Either way both connections close at once.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { startGateway, waitFor, wsUpstream } from '../helpers/net.js';

test('a client that half-closes before the upstream answers its handshake gets its tunnel closed, not held until idle_timeout', async (t) => {
  const up = await wsUpstream();
  t.after(() => up.close());
  const gw = await startGateway({ apps: [{ name: 'ws', port: up.port }] });
  t.after(() => gw.close());

  const client = net.connect(gw.port, '127.0.0.1');
  client.on('error', () => undefined);
  let answer = '';
  client.on('data', (d: Buffer) => (answer += d.toString('latin1')));
  const closed = new Promise<void>((ok) => client.once('close', () => ok()));
  client.write(`GET /ws/x HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  client.end();

  // Given up before the 101 (nothing, or the connection closed), or after it (a 101, then the
  // FIN goes on to the upstream, which closes its side, and the gateway ends the client's).
  await waitFor(() => gw.gw.tunnels.size === 0, 5000, 'no tunnel left');
  assert.ok(answer === '' || answer.startsWith('HTTP/1.1 101'), answer);
  await Promise.race([closed, new Promise((_, fail) => setTimeout(() => fail(new Error('client connection still open')), 5000).unref())]);
  await waitFor(() => up.wss.clients.size === 0, 5000, 'the upstream connection closed too');
});
