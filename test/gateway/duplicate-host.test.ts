/**
 * Issue 8, item 8: a request with two Host headers was routed on the first and
 * sent upstream with the last. RFC 9112 §3.2: a server MUST answer 400 to a
 * request with more than one Host field — for requests and for upgrades.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { collect, rawRequest, startGateway, wsUpstream } from '../helpers/net.js';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

test('a request with two Host headers gets 400 PH_ERR_MALFORMED_REQUEST and reaches no upstream', async () => {
  const up = await wsUpstream();
  const g = await startGateway({ apps: [{ name: 'a', port: up.port }] });
  const log = collect('request', g.gw.id);
  let seen = 0;
  up.server.on('request', () => seen++);
  try {
    for (const second of ['internal', '127.0.0.1', `127.0.0.1:${g.port}`]) {
      const reply = await rawRequest(g.port, `GET /a/x HTTP/1.1\r\nHost: 127.0.0.1:${g.port}\r\nHost: ${second}\r\nAccept: application/json\r\n\r\n`);
      assert.match(reply, /^HTTP\/1\.1 400 /, reply);
      assert.match(reply, /X-Porthole-Error: PH_ERR_MALFORMED_REQUEST/i);
      assert.match(reply, /more than one Host/);
      assert.match(reply, /Connection: close/i);
    }
    assert.equal(seen, 0);
    assert.deepEqual(log.events.map((e) => `${e.status} ${e.code}`), Array(3).fill('400 PH_ERR_MALFORMED_REQUEST'));
  } finally {
    log.stop();
    await g.close();
    await up.close();
  }
});

test('an upgrade with two Host headers gets 400 PH_ERR_MALFORMED_REQUEST and opens no tunnel', async () => {
  const up = await wsUpstream();
  const g = await startGateway({ apps: [{ name: 'a', port: up.port }] });
  const log = collect('upgrade', g.gw.id);
  try {
    const reply = await rawRequest(
      g.port,
      `GET /a/ws HTTP/1.1\r\nHost: 127.0.0.1:${g.port}\r\nHost: internal\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    assert.match(reply, /^HTTP\/1\.1 400 /, reply);
    assert.match(reply, /X-Porthole-Error: PH_ERR_MALFORMED_REQUEST/i);
    assert.equal(up.handshakes.length, 0);
    assert.deepEqual(log.events.map((e) => `${e.accepted} ${e.status} ${e.code}`), ['false 400 PH_ERR_MALFORMED_REQUEST']);
  } finally {
    log.stop();
    await g.close();
    await up.close();
  }
});
