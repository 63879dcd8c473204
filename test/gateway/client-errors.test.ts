/**
 * Issue 8, item 11: what a client that does not speak HTTP properly gets. A
 * request head that never finishes gets 408 (it got 400), a head too large
 * gets 431, garbage gets 400 — each with its code in X-Porthole-Error and in
 * a `request` event — and a connection whose response has started gets no
 * second one glued after it.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createGateway, type Gateway } from '../../src/gateway/gateway.js';
import { collect, httpUpstream, rawRequest } from '../helpers/net.js';

describe('client errors', () => {
  let gw: Gateway;
  let port: number;
  let up: Awaited<ReturnType<typeof httpUpstream>>;
  before(async () => {
    up = await httpUpstream((req, res) => {
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    // Host: x is declared: the rebinding check is not what is tested here.
    gw = createGateway({ server_names: ['x'], apps: [{ name: 'a', port: up.port }] });
    port = (await gw.listen('127.0.0.1', 0, { headersTimeoutMs: 600 })).port;
  });
  after(async () => {
    await gw.drain(200);
    await up.close();
  });

  const cases: [string, string, number, string][] = [
    ['garbage', 'NOT HTTP AT ALL\r\n\r\n', 400, 'PH_ERR_MALFORMED_REQUEST'],
    ['a header line without a colon', 'GET /a/ HTTP/1.1\r\nHost: x\r\nBroken\r\n\r\n', 400, 'PH_ERR_MALFORMED_REQUEST'],
    ['a head over 16 KiB', `GET /a/ HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'PH_ERR_HEADERS_TOO_LARGE'],
  ];
  for (const [what, bytes, status, code] of cases) {
    test(`${what} gets ${status} ${code}, and a request event with the code`, async () => {
      const log = collect('request', gw.id);
      try {
        const reply = await rawRequest(port, bytes);
        assert.match(reply, new RegExp(`^HTTP/1\\.1 ${status} `), reply);
        assert.match(reply, new RegExp(`X-Porthole-Error: ${code}`, 'i'));
        assert.equal(reply.match(/^HTTP\/1\.1 /gm)?.length, 1, 'one response');
        assert.deepEqual(log.events.map((e) => `${e.app} ${e.status} ${e.code}`), [`null ${status} ${code}`]);
      } finally {
        log.stop();
      }
    });
  }

  test('a request head that never finishes gets 408 PH_ERR_REQUEST_TIMEOUT within the header timeout', async () => {
    const log = collect('request', gw.id);
    try {
      const started = Date.now();
      const reply = await new Promise<string>((ok) => {
        const s = net.connect(port, '127.0.0.1');
        let out = '';
        s.on('data', (d) => (out += d));
        s.on('close', () => ok(out));
        s.on('error', () => ok(out));
        s.write('GET /a/ HTTP/1.1\r\nHost: x\r\nX-Slow: ');
        setTimeout(() => s.destroy(), 8000);
      });
      assert.match(reply, /^HTTP\/1\.1 408 /, reply);
      assert.match(reply, /X-Porthole-Error: PH_ERR_REQUEST_TIMEOUT/i);
      assert.ok(Date.now() - started < 5000, `cut after ${Date.now() - started} ms`);
      assert.deepEqual(log.events.map((e) => `${e.app} ${e.status} ${e.code}`), ['null 408 PH_ERR_REQUEST_TIMEOUT']);
    } finally {
      log.stop();
    }
  });

  test('a connection that never sends a byte is closed quietly after the header timeout', async () => {
    const log = collect('request', gw.id);
    try {
      const started = Date.now();
      const reply = await new Promise<string>((ok) => {
        const s = net.connect(port, '127.0.0.1');
        let out = '';
        s.on('data', (d) => (out += d));
        s.on('close', () => ok(out));
        s.on('error', () => ok(out));
        setTimeout(() => s.destroy(), 8000);
      });
      assert.equal(reply, '');
      assert.ok(Date.now() - started < 5000, `closed after ${Date.now() - started} ms`);
      assert.deepEqual(log.events, []);
    } finally {
      log.stop();
    }
  });

  test('a refused request whose body then turns out malformed gets one response, not two', async () => {
    const reply = await rawRequest(port, 'POST /a/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\nzz\r\n\r\n');
    assert.match(reply, /^HTTP\/1\.1 400 /, reply);
    assert.equal(reply.match(/^HTTP\/1\.1 /gm)?.length, 1, reply);
  });
});
