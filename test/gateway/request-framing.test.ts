/**
 * Issue 8, item 1, as a specification: the gateway decides a body's framing
 * and writes it out itself; a Connection header cannot take away
 * Content-Length, Transfer-Encoding, Host or Origin; what two parsers could
 * read differently is refused with 400 PH_ERR_MALFORMED_REQUEST. (The attack
 * corpus is test/reliability/smuggling.test.ts.)
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { rawValues } from '../helpers/http.js';
import { httpUpstream, rawRequest, startGateway, type TestGateway } from '../helpers/net.js';

interface Seen {
  method: string;
  raw: string[];
  body: string;
}

describe('request framing', () => {
  const seen: Seen[] = [];
  let up: Awaited<ReturnType<typeof httpUpstream>>;
  let g: TestGateway;
  before(async () => {
    up = await httpUpstream((req: http.IncomingMessage, res) => {
      let body = '';
      req.setEncoding('latin1');
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        seen.push({ method: req.method ?? '', raw: req.rawHeaders, body });
        res.end('ok');
      });
    });
    // The made-up Hosts of these requests are declared: the rebinding check is not what is tested here.
    g = await startGateway({ server_names: ['h', 'h.example'], apps: [{ name: 'a', port: up.port }] });
  });
  after(async () => {
    await g.close();
    await up.close();
  });

  const send = async (text: string) => {
    seen.length = 0;
    const reply = await rawRequest(g.port, text, 1000);
    return reply;
  };

  for (const method of ['GET', 'HEAD', 'DELETE', 'OPTIONS']) {
    test(`a ${method} body listed in Connection reaches the upstream whole, with its Content-Length`, async () => {
      const body = 'GET /smuggled HTTP/1.1\r\nHost: internal\r\n\r\n';
      const reply = await send(`${method} /a/x HTTP/1.1\r\nHost: h\r\nConnection: Content-Length\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      assert.match(reply, /^HTTP\/1\.1 200 /);
      assert.equal(seen.length, 1, JSON.stringify(seen.map((s) => s.method)));
      assert.equal(seen[0].method, method);
      assert.deepEqual(rawValues(seen[0].raw, 'content-length'), [String(body.length)]);
      assert.equal(seen[0].body, body);
    });
  }

  test('a chunked DELETE body is sent chunked, whatever Connection lists', async () => {
    const reply = await send('DELETE /a/x HTTP/1.1\r\nHost: h\r\nConnection: Transfer-Encoding, Content-Length\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n');
    assert.match(reply, /^HTTP\/1\.1 200 /);
    assert.deepEqual(rawValues(seen[0].raw, 'transfer-encoding'), ['chunked']);
    assert.deepEqual(rawValues(seen[0].raw, 'content-length'), []);
    assert.equal(seen[0].body, 'hello');
  });

  test('Connection cannot remove Host or Origin; it still removes what it may', async () => {
    await send('GET /a/x HTTP/1.1\r\nHost: h.example\r\nOrigin: http://h.example\r\nX-Hop: 1\r\nConnection: Host, Origin, X-Hop\r\n\r\n');
    assert.deepEqual(rawValues(seen[0].raw, 'host'), ['h.example']);
    assert.deepEqual(rawValues(seen[0].raw, 'origin'), ['http://h.example']);
    assert.deepEqual(rawValues(seen[0].raw, 'x-hop'), []);
  });

  test('a Content-Length with leading zeros is sent as a plain number', async () => {
    await send('POST /a/x HTTP/1.1\r\nHost: h\r\nContent-Length: 0005\r\n\r\nhello');
    assert.deepEqual(rawValues(seen[0].raw, 'content-length'), ['5']);
    assert.equal(seen[0].body, 'hello');
  });

  const refused: [string, string][] = [
    ['a Transfer-Encoding other than chunked', 'POST /a/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n'],
    ['Transfer-Encoding on HTTP/1.0', 'POST /a/x HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'],
    ['a request line without a version (read as HTTP/0.9)', 'GET /a/x?HTTP/1.1\r\nHost: h\r\n\r\n'],
    ['a WebSocket handshake with a body', 'GET /a/x HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nContent-Length: 5\r\n\r\nhello'],
  ];
  for (const [what, text] of refused) {
    test(`${what} is refused with 400 and reaches no upstream`, async () => {
      const reply = await send(text);
      assert.match(reply, /^HTTP\/1\.1 400 /, reply);
      assert.match(reply, /X-Porthole-Error: PH_ERR_(MALFORMED_REQUEST|BAD_HANDSHAKE)/i);
      assert.equal(reply.match(/^HTTP\/1\.1 /gm)?.length, 1, reply);
      assert.equal(seen.length, 0);
    });
  }
});
