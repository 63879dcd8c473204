/**
 * Issue 10, section 2: HTTP/2 on the TLS port. ALPN offers h2 (and still
 * http/1.1), and plain requests over HTTP/2 reach HTTP/1.1 apps by the same
 * rules as over HTTP/1.1: Host from :authority, no pseudo-headers, no
 * hop-by-hop headers either way (an app's `Connection: keep-alive` would make
 * Node's HTTP/2 server throw), cookies joined, X-Forwarded-Proto https,
 * Location and cookie paths rewritten, bodies streamed both ways, Porthole's
 * error pages with their codes.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import type http from 'node:http';
import http2 from 'node:http2';
import { after, before, describe, test } from 'node:test';
import { collect, httpUpstream, startGateway, type TestGateway } from '../helpers/net.js';
import { selfSigned, servedCertificate, tempDir } from '../tls/tls-helpers.js';
import { h2Connect, h2Request } from './h2-helpers.js';

interface Seen {
  httpVersion: string;
  rawHeaders: string[];
  headers: http.IncomingHttpHeaders;
  url: string;
  method: string;
  bodySha: string;
  bodyLength: number;
}

describe('plain requests over HTTP/2', () => {
  const tmp = tempDir('porthole-h2-');
  const pair = selfSigned(tmp.dir, 'gw');
  let app: Awaited<ReturnType<typeof httpUpstream>>;
  let gw: TestGateway;
  let session: http2.ClientHttp2Session;
  const seen: Seen[] = [];
  const requests = collect('request');

  before(async () => {
    app = await httpUpstream((req, res) => {
      if (req.url === '/stream') {
        // An event stream: the first event must reach the client before the response ends.
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.write('data: first\n\n');
        req.once('data', () => res.end('data: last\n\n'));
        return;
      }
      if (req.url === '/redirect') {
        res.writeHead(302, { Location: '/login', 'Set-Cookie': ['a=1; Path=/', 'b=2; Path=/x; HttpOnly'], Connection: 'keep-alive', 'Keep-Alive': 'timeout=5' });
        res.end();
        return;
      }
      const hash = createHash('sha256');
      let length = 0;
      req.on('data', (d: Buffer) => {
        hash.update(d);
        length += d.length;
      });
      req.on('end', () => {
        seen.push({ httpVersion: req.httpVersion, rawHeaders: req.rawHeaders, headers: req.headers, url: req.url ?? '', method: req.method ?? '', bodySha: hash.digest('hex'), bodyLength: length });
        // Node's HTTP/1.1 server adds Connection: keep-alive and Keep-Alive itself; Upgrade and Transfer-Encoding too here.
        res.writeHead(200, { 'Content-Type': 'text/plain', 'X-App': 'yes', Upgrade: 'h2c', 'Proxy-Connection': 'keep-alive' });
        res.end(`got ${length}`);
      });
    });
    gw = await startGateway({ tls: { cert: pair.certFile, key: pair.keyFile }, apps: [{ name: 'app', port: app.port }] });
    session = await h2Connect(gw.port, pair.cert);
  });
  after(async () => {
    requests.stop();
    session.close();
    await gw.close();
    await app.close();
    tmp.remove();
  });

  test('ALPN offers h2 first and still http/1.1 to clients that only speak it', async () => {
    assert.equal(session.alpnProtocol, 'h2');
    assert.equal((await servedCertificate(gw.port, { ca: pair.cert })).alpn, 'http/1.1');
  });

  test('curl --http2 (the check docs/http2.md gives) settles on h2 and gets the app', async () => {
    // Not spawnSync: the gateway runs in this process.
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((ok) => {
      execFile('curl', ['--http2', '-sv', '--cacert', pair.certFile, `https://localhost:${gw.port}/app/curl`], { encoding: 'utf8', timeout: 15_000 }, (err, stdout, stderr) =>
        ok({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr }),
      );
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /ALPN: server accepted h2/);
    assert.match(r.stderr, /using HTTP\/2/);
    assert.match(r.stderr, /< HTTP\/2 200/);
    assert.equal(r.stdout, 'got 0');
  });

  test('a GET reaches the app as HTTP/1.1 with Host from :authority, no pseudo-headers, cookies joined, forwarded as https', async () => {
    seen.length = 0;
    const r = await h2Request(session, { ':path': '/app/hello?x=1', cookie: ['a=1', 'b=2'], 'x-custom': 'kept', te: 'trailers' });
    assert.equal(r.status, 200);
    assert.equal(r.text, 'got 0');
    const s = seen[0];
    assert.equal(s.httpVersion, '1.1');
    assert.equal(s.url, '/hello?x=1');
    assert.equal(s.headers.host, `localhost:${gw.port}`);
    assert.ok(!s.rawHeaders.some((n, i) => i % 2 === 0 && n.startsWith(':')), `no pseudo-headers upstream: ${s.rawHeaders}`);
    assert.equal(s.rawHeaders.filter((n, i) => i % 2 === 0 && n.toLowerCase() === 'host').length, 1);
    assert.equal(s.headers.cookie, 'a=1; b=2');
    assert.equal(s.headers['x-custom'], 'kept');
    assert.equal(s.headers.te, undefined);
    assert.equal(s.headers['x-forwarded-proto'], 'https');
    assert.match(String(s.headers.forwarded), /proto=https/);
    assert.equal(s.headers['x-forwarded-prefix'], '/app');
  });

  test("the app's hop-by-hop headers (Connection: keep-alive, Keep-Alive, Upgrade) are dropped instead of breaking the stream", async () => {
    const r = await h2Request(session, { ':path': '/app/plain' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-app'], 'yes');
    for (const h of ['connection', 'keep-alive', 'upgrade', 'proxy-connection', 'transfer-encoding']) assert.equal(r.headers[h], undefined, h);
  });

  test('Location and Set-Cookie paths are put back under the prefix; several Set-Cookie survive', async () => {
    const r = await h2Request(session, { ':path': '/app/redirect' });
    assert.equal(r.status, 302);
    assert.equal(r.headers.location, '/app/login');
    assert.deepEqual(r.headers['set-cookie'], ['a=1; Path=/app/', 'b=2; Path=/app/x; HttpOnly']);
  });

  test('request bodies stream upstream, with a length or without one (sent on chunked)', async () => {
    const body = Buffer.alloc(3 * 1024 * 1024, 7);
    const sha = createHash('sha256').update(body).digest('hex');
    seen.length = 0;
    const sized = await h2Request(session, { ':path': '/app/upload', ':method': 'POST', 'content-length': String(body.length) }, body);
    assert.equal(sized.text, `got ${body.length}`);
    assert.equal(seen[0].headers['content-length'], String(body.length));
    const unsized = await h2Request(session, { ':path': '/app/upload', ':method': 'PUT' }, body);
    assert.equal(unsized.text, `got ${body.length}`);
    assert.equal(seen[1].headers['transfer-encoding'], 'chunked');
    assert.equal(seen[1].bodySha, sha);
    assert.equal(seen[0].bodySha, sha);
  });

  test('a response streams to the client before it ends (an event stream)', async () => {
    const stream = session.request({ ':path': '/app/stream', ':method': 'POST' }, { endStream: false });
    const first = await new Promise<string>((ok) => stream.once('data', (d: Buffer) => ok(d.toString())));
    assert.equal(first, 'data: first\n\n');
    let rest = '';
    stream.on('data', (d: Buffer) => (rest += d));
    stream.end('go');
    await new Promise((ok) => stream.once('end', ok));
    assert.equal(rest, 'data: last\n\n');
  });

  test("failures get Porthole's status, code and page over HTTP/2 (404, 502 as JSON)", async () => {
    const missing = await h2Request(session, { ':path': '/nothing-here' });
    assert.equal(missing.status, 404);
    assert.equal(missing.headers['x-porthole-error'], 'PH_ERR_NOT_FOUND');
    assert.match(missing.text, /No app is routed/);
    const dead = await startGateway({ tls: { cert: pair.certFile, key: pair.keyFile }, apps: [{ name: 'gone', port: 1 }] });
    try {
      const s = await h2Connect(dead.port, pair.cert);
      const r = await h2Request(s, { ':path': '/gone/', accept: 'application/json' });
      s.close();
      assert.equal(r.status, 502);
      assert.equal(JSON.parse(r.text).error.code, 'PH_ERR_UPSTREAM_REFUSED');
    } finally {
      await dead.close();
    }
  });

  test('a Host that is not the gateway\'s is refused over HTTP/2 too (421), and each request is logged', async () => {
    const r = await h2Request(session, { ':path': '/app/x', ':authority': `evil.example:${gw.port}` });
    assert.equal(r.status, 421);
    assert.ok(requests.events.some((e) => e.status === 421 && e.gateway === gw.gw.id));
    assert.ok(requests.events.some((e) => e.status === 200 && e.app === 'app' && e.path === '/app/plain'));
  });

  test('the drain sends GOAWAY and closes the HTTP/2 connection', async () => {
    const g = await startGateway({ tls: { cert: pair.certFile, key: pair.keyFile }, apps: [{ name: 'app', port: app.port }] });
    const s = await h2Connect(g.port, pair.cert);
    assert.equal((await h2Request(s, { ':path': '/app/ok' })).status, 200);
    const goaway = new Promise((ok) => s.once('goaway', ok));
    const closed = new Promise((ok) => s.once('close', ok));
    await g.close();
    await goaway;
    await closed;
  });
});
