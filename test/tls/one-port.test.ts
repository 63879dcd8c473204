/**
 * Issue 10, section 1: one port answers TLS and cleartext, told apart by the
 * first byte. Over TLS the apps get `X-Forwarded-Proto: https` and
 * `Forwarded: proto=https`, and the same-origin check sees https pages;
 * cleartext requests get a 308 to https:// (cleartext upgrades a completed
 * handshake and close 1008 "use wss://") unless `redirect_http: false`.
 * No byte is lost in telling the two apart, and a client that sends nothing
 * (or too little) is still cut by the header timeout.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { collect, httpUpstream, nextMessage, openWs, rawRequest, sleep, startGateway, wsCloseOf, wsUpstream, type TestGateway, type WsUpstream } from '../helpers/net.js';
import { httpsRequest, selfSigned, servedCertificate, tempDir } from './tls-helpers.js';

describe('TLS and cleartext on one port', () => {
  const tmp = tempDir();
  const pair = selfSigned(tmp.dir, 'gw');
  let up: WsUpstream;
  let echo: Awaited<ReturnType<typeof httpUpstream>>;
  let gw: TestGateway;
  let open: TestGateway;
  const listening = collect('gateway');
  before(async () => {
    up = await wsUpstream();
    echo = await httpUpstream((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        res.writeHead(200, { 'Content-Type': 'application/json', 'Set-Cookie': 'sid=abc; Path=/; Secure; HttpOnly; SameSite=Lax' });
        res.end(JSON.stringify({ url: req.url, method: req.method, body, xfp: req.headers['x-forwarded-proto'], forwarded: req.headers.forwarded }));
      });
    });
    const apps = [
      { name: 'ws', port: up.port },
      { name: 'echo', port: echo.port },
    ];
    gw = await startGateway({ tls: { cert: 'gw.crt', key: 'gw.key' }, header_timeout: '600ms', apps }, { baseDir: tmp.dir });
    open = await startGateway({ tls: { cert: pair.certFile, key: pair.keyFile, redirect_http: false }, apps });
  });
  after(async () => {
    listening.stop();
    await gw.close();
    await open.close();
    await up.close();
    await echo.close();
    tmp.remove();
  });

  test('ALPN settles on http/1.1 for a client that offers only it, and TLS is at least 1.2', async () => {
    assert.equal((await servedCertificate(gw.port, { ca: pair.cert })).alpn, 'http/1.1');
    const old = await new Promise<string>((ok) => {
      const s = tls.connect({ host: '127.0.0.1', port: gw.port, servername: 'localhost', ca: pair.cert, maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }, () => ok('connected'));
      s.on('error', (e: NodeJS.ErrnoException) => ok(e.code ?? e.message));
    });
    assert.notEqual(old, 'connected');
  });

  test('the listening address and event say https://', () => {
    assert.equal(gw.url, `https://127.0.0.1:${gw.port}`);
    const ev = listening.events.find((e) => e.gateway === gw.gw.id && e.action === 'listening');
    assert.equal(ev?.address, `https://127.0.0.1:${gw.port}`);
    assert.deepEqual(ev?.apps?.echo, [`https://127.0.0.1:${gw.port}/echo/`, `https://echo.localhost:${gw.port}/`]);
  });

  test('over TLS the app gets X-Forwarded-Proto: https and Forwarded: proto=https, and its Secure cookie', async () => {
    const r = await httpsRequest(`https://localhost:${gw.port}/echo/x?y=1`, pair.cert);
    assert.equal(r.status, 200);
    const seen = JSON.parse(r.body) as { url: string; xfp: string; forwarded: string };
    assert.equal(seen.url, '/x?y=1');
    assert.equal(seen.xfp, 'https');
    assert.match(seen.forwarded, /;proto=https(;|$)/);
    assert.deepEqual(r.headers['set-cookie'], ['sid=abc; Path=/echo/; Secure; HttpOnly; SameSite=Lax']);
  });

  test('a cleartext request gets a 308 to the same host and path over https://, POST included', async () => {
    const get = await new Promise<http.IncomingMessage>((ok, fail) => http.get(`http://localhost:${gw.port}/echo/a/b?c=d`, ok).on('error', fail));
    get.resume();
    assert.equal(get.statusCode, 308);
    assert.equal(get.headers.location, `https://localhost:${gw.port}/echo/a/b?c=d`);
    const raw = await rawRequest(gw.port, `POST /echo/form HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\nContent-Length: 3\r\n\r\nabc`);
    assert.match(raw, /^HTTP\/1\.1 308 /);
    assert.match(raw, new RegExp(`\\r\\nLocation: https://127\\.0\\.0\\.1:${gw.port}/echo/form\\r\\n`, 'i'));
    // Followed, the POST keeps its method and body.
    const r = await httpsRequest(`https://localhost:${gw.port}/echo/form`, pair.cert, { method: 'POST', body: 'abc' });
    assert.deepEqual([JSON.parse(r.body).method, JSON.parse(r.body).body], ['POST', 'abc']);
  });

  test('an absolute-form or asterisk request target is redirected to its path, never to a second URL', async () => {
    const abs = await rawRequest(gw.port, `GET http://127.0.0.1:${gw.port}/echo/p?q=1 HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\n\r\n`);
    assert.match(abs, new RegExp(`\\r\\nLocation: https://127\\.0\\.0\\.1:${gw.port}/echo/p\\?q=1\\r\\n`, 'i'));
    const star = await rawRequest(gw.port, `OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\n\r\n`);
    assert.match(star, new RegExp(`\\r\\nLocation: https://127\\.0\\.0\\.1:${gw.port}/\\r\\n`, 'i'));
  });

  test('a cleartext request for a Host that is not the gateway\'s gets 421, not a redirect', async () => {
    const raw = await rawRequest(gw.port, `GET /echo/ HTTP/1.1\r\nHost: evil.example:${gw.port}\r\n\r\n`);
    assert.match(raw, /^HTTP\/1\.1 421 /);
  });

  test('wss:// tunnels through; a cleartext ws:// upgrade gets a completed handshake and close 1008 naming wss://', async () => {
    const ws = await openWs(`wss://localhost:${gw.port}/ws/`, undefined, { ca: pair.cert });
    ws.send('over tls');
    assert.equal((await nextMessage(ws)).data.toString(), 'over tls');
    ws.close();
    const refused = await wsCloseOf(`ws://localhost:${gw.port}/ws/`);
    assert.equal(refused.opened, true);
    assert.equal(refused.code, 1008);
    assert.match(refused.reason, /^PH_ERR_TLS_REQUIRED: use wss:\/\//);
  });

  test('the same-origin check over TLS: an https page of the gateway is let in, an http page of the same host is not', async () => {
    const ok = await openWs(`wss://localhost:${gw.port}/ws/`, undefined, { ca: pair.cert, origin: `https://localhost:${gw.port}` });
    ok.close();
    const refused = await wsCloseOf(`wss://localhost:${gw.port}/ws/`, undefined, { ca: pair.cert, origin: `http://localhost:${gw.port}` });
    assert.equal(refused.code, 1008);
    assert.match(refused.reason, /cross-origin WebSocket from http:\/\/localhost:\d+ refused/);
  });

  test('redirect_http: false serves cleartext too, with X-Forwarded-Proto: http', async () => {
    const raw = await rawRequest(open.port, `GET /echo/plain HTTP/1.1\r\nHost: 127.0.0.1:${open.port}\r\nConnection: close\r\n\r\n`);
    assert.match(raw, /^HTTP\/1\.1 200 /);
    assert.match(raw, /"xfp":"http"/);
    const ws = await openWs(`ws://127.0.0.1:${open.port}/ws/`);
    ws.send('cleartext');
    assert.equal((await nextMessage(ws)).data.toString(), 'cleartext');
    ws.close();
    const tlsWs = await openWs(`wss://localhost:${open.port}/ws/`, undefined, { ca: pair.cert });
    tlsWs.send('tls');
    assert.equal((await nextMessage(tlsWs)).data.toString(), 'tls');
    tlsWs.close();
  });

  test('no byte is lost: a cleartext request whose first byte comes alone, then pipelined requests', async () => {
    const sock = net.connect(open.port, '127.0.0.1');
    let out = '';
    sock.on('data', (d) => (out += d.toString('latin1')));
    await new Promise((ok) => sock.once('connect', ok));
    const req = (path: string, close = false) => `GET /echo${path} HTTP/1.1\r\nHost: 127.0.0.1:${open.port}\r\n${close ? 'Connection: close\r\n' : ''}\r\n`;
    const first = req('/one');
    sock.write(first.slice(0, 1));
    await sleep(100);
    sock.write(first.slice(1) + req('/two') + req('/three', true));
    await new Promise((ok) => sock.once('close', ok));
    const urls = [...out.matchAll(/"url":"([^"]+)"/g)].map((m) => m[1]);
    assert.deepEqual(urls, ['/one', '/two', '/three']);
  });

  test('no byte is lost: a TLS ClientHello split after its first byte still completes', async () => {
    // A TCP proxy in the test splits the client's first write after one byte.
    const splitter = net.createServer((client) => {
      const server = net.connect(open.port, '127.0.0.1');
      let first = true;
      client.on('data', async (d) => {
        if (!first) return void server.write(d);
        first = false;
        client.pause();
        server.write(d.subarray(0, 1));
        await sleep(100);
        server.write(d.subarray(1));
        client.resume();
      });
      server.pipe(client);
      client.on('error', () => server.destroy());
      server.on('error', () => client.destroy());
      client.on('close', () => server.destroy());
    });
    await new Promise<void>((ok) => splitter.listen(0, '127.0.0.1', ok));
    try {
      const port = (splitter.address() as net.AddressInfo).port;
      const r = await httpsRequest(`https://localhost:${port}/echo/split`, pair.cert, { headers: { Host: `localhost:${open.port}` } });
      assert.equal(JSON.parse(r.body).url, '/split');
      assert.equal(JSON.parse(r.body).xfp, 'https');
    } finally {
      await new Promise((ok) => splitter.close(ok));
    }
  });

  test('the header timeout still applies: silent, half-sent cleartext and idle TLS connections are cut', async () => {
    const t0 = Date.now();
    // Silent: closed quietly (nothing asked, nothing answered).
    const silent = await rawRequest(gw.port, '', 5000);
    assert.equal(silent, '');
    // Half a request head in cleartext: 408.
    const half = await rawRequest(gw.port, 'GET /echo/ HTTP/1.1\r\nHost: x', 5000);
    assert.match(half, /^HTTP\/1\.1 408 /);
    // A TLS handshake, then nothing (a browser's preconnect): closed quietly, like a silent cleartext one.
    const requests = collect('request', gw.gw.id);
    const closedAfter = await new Promise<number>((ok, fail) => {
      const start = Date.now();
      const s = tls.connect({ host: '127.0.0.1', port: gw.port, servername: 'localhost', ca: pair.cert });
      s.on('error', fail);
      s.on('close', () => ok(Date.now() - start));
      s.resume();
    });
    assert.ok(closedAfter < 4000, `idle TLS connection closed after ${closedAfter} ms`);
    requests.stop();
    assert.deepEqual(requests.events, [], 'an unused TLS connection is not logged as a 408');
    assert.ok(Date.now() - t0 < 12_000);
  });

  test('bytes that are not HTTP inside TLS get the same 400 PH_ERR_MALFORMED_REQUEST as in cleartext, over TLS', async () => {
    const out = await new Promise<string>((ok, fail) => {
      const s = tls.connect({ host: '127.0.0.1', port: gw.port, servername: 'localhost', ca: pair.cert }, () => s.write('NOT HTTP AT ALL\r\n\r\n'));
      let got = '';
      s.on('data', (d) => (got += d));
      s.on('close', () => ok(got));
      s.on('error', fail);
    });
    assert.match(out, /^HTTP\/1\.1 400 /);
    assert.match(out, /X-Porthole-Error: PH_ERR_MALFORMED_REQUEST/i);
  });

  test('a client that never finishes its TLS handshake is cut by the header timeout', async () => {
    const out = await rawRequest(gw.port, '\x16\x03\x01\x00\x05', 5000);
    assert.equal(out, '');
  });

  test('an upgrade over TLS goes to the app unchanged (nothing is re-framed)', async () => {
    const big = Buffer.alloc(200_000, 7);
    const ws = new WebSocket(`wss://localhost:${gw.port}/ws/`, { ca: pair.cert });
    await new Promise((ok, fail) => {
      ws.once('open', ok);
      ws.once('error', fail);
    });
    ws.send(big);
    const back = await nextMessage(ws);
    assert.equal(back.data.length, big.length);
    ws.close();
  });
});

describe('draining a TLS port', () => {
  test('connections still being told apart or in their handshake do not hold the drain up to the header timeout', async () => {
    const tmp = tempDir();
    const pair = selfSigned(tmp.dir, 'gw');
    const gw = await startGateway({ tls: { cert: pair.certFile, key: pair.keyFile }, header_timeout: '60s' });
    try {
      const silent = net.connect(gw.port, '127.0.0.1');
      const halfHello = net.connect(gw.port, '127.0.0.1');
      await Promise.all([new Promise((ok) => silent.once('connect', ok)), new Promise((ok) => halfHello.once('connect', ok))]);
      halfHello.write(Buffer.from([0x16, 0x03, 0x01]));
      silent.on('error', () => {});
      halfHello.on('error', () => {});
      await sleep(100);
      const timersBefore = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
      const t0 = Date.now();
      await gw.gw.drain(200);
      assert.ok(Date.now() - t0 < 3000, `drained in ${Date.now() - t0} ms`);
      await Promise.all([new Promise((ok) => (silent.destroyed ? ok(null) : silent.once('close', ok))), new Promise((ok) => (halfHello.destroyed ? ok(null) : halfHello.once('close', ok)))]);
      // Nothing of those connections is left to keep the process up until the header timeout.
      await sleep(50);
      const timersAfter = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
      assert.ok(timersAfter <= timersBefore - 1, `timers before the drain ${timersBefore}, after ${timersAfter}`);
    } finally {
      await gw.close();
      tmp.remove();
    }
  });
});

describe('ws_errors: http on a TLS port', () => {
  test('a cleartext upgrade gets a plain 403 PH_ERR_TLS_REQUIRED instead of 101 + close', async () => {
    const tmp = tempDir();
    const pair = selfSigned(tmp.dir, 'gw');
    const gw = await startGateway({ tls: { cert: pair.certFile, key: pair.keyFile }, ws_errors: 'http' });
    try {
      const raw = await rawRequest(
        gw.port,
        `GET /x/ HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
      assert.match(raw, /^HTTP\/1\.1 403 /);
      assert.match(raw, /\r\nX-Porthole-Error: PH_ERR_TLS_REQUIRED\r\n/i);
      assert.match(raw, /use wss:\/\//);
    } finally {
      await gw.close();
      tmp.remove();
    }
  });
});
