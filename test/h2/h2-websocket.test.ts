/**
 * Issue 10, section 2: WebSockets over HTTP/2 (RFC 8441). The gateway
 * advertises SETTINGS_ENABLE_CONNECT_PROTOCOL; an extended CONNECT with
 * `:protocol: websocket` goes through the same checks as an HTTP/1.1
 * handshake and on to the app's HTTP/1.1 upgrade (or the built-in bridge),
 * answered `:status 200`, frames spliced by the same tunnel. Failures follow
 * the HTTP/1.1 rules: a completed stream and a close frame with a code and a
 * reason, or the HTTP status with `ws_errors: http`. The upgrade event says
 * which protocol the client used.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http2 from 'node:http2';
import { after, before, describe, test } from 'node:test';
import { tcpPeer, type TcpPeer } from '../fixtures/bridge/tcp-peers.js';
import { collect, httpUpstream, openWs, nextMessage, startGateway, waitFor, wsCloseOf, wsUpstream, type TestGateway, type WsUpstream } from '../helpers/net.js';
import { selfSigned, tempDir } from '../tls/tls-helpers.js';
import { clientFrame, closeOf, h2Connect, h2Request, h2WebSocket } from './h2-helpers.js';

const TEXT = 0x1;
const BINARY = 0x2;
const CLOSE = 0x8;

describe('WebSockets over HTTP/2', { timeout: 60_000 }, () => {
  const tmp = tempDir('porthole-h2ws-');
  const pair = selfSigned(tmp.dir, 'gw');
  let up: WsUpstream;
  let tcp: TcpPeer;
  let gw: TestGateway;
  let session: http2.ClientHttp2Session;
  const upgrades = collect('upgrade');
  const closes = collect('tunnel.close');

  before(async () => {
    up = await wsUpstream({ handleProtocols: (offered) => (offered.has('chat') ? 'chat' : false) });
    tcp = await tcpPeer();
    gw = await startGateway({
      tls: { cert: pair.certFile, key: pair.keyFile },
      apps: [
        { name: 'echo', port: up.port },
        { name: 'strict', port: up.port, ws_errors: 'http' },
        { name: 'term', port: up.port, ws_paths: ['/ws'] },
        { name: 'gone', port: 1 },
        { name: 'vnc', bridge: `127.0.0.1:${tcp.port}` },
      ],
    });
    session = await h2Connect(gw.port, pair.cert);
  });
  after(async () => {
    upgrades.stop();
    closes.stop();
    session.close();
    await gw.close();
    await up.close();
    await tcp.close();
    tmp.remove();
  });

  test('the server advertises SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 §3)', () => {
    assert.equal(session.alpnProtocol, 'h2');
    assert.equal(session.remoteSettings.enableConnectProtocol, true);
    assert.equal(session.remoteSettings.maxConcurrentStreams, 128, 'a bound on streams per connection, as nginx has');
  });

  test("an app's own answer to the handshake (404 and its body) is relayed on the stream, as over HTTP/1.1", async () => {
    const plain = await httpUpstream((_req, res) => {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('no sockets here');
    });
    const g = await startGateway({ tls: { cert: pair.certFile, key: pair.keyFile }, apps: [{ name: 'web', port: plain.port }] });
    const events = collect('upgrade', g.gw.id);
    try {
      const s = await h2Connect(g.port, pair.cert);
      const ws = await h2WebSocket(s, '/web/socket');
      assert.equal(ws.status, 404);
      assert.equal(ws.headers['content-type'], 'text/plain');
      let body = '';
      ws.stream.on('data', (d: Buffer) => (body += d));
      await new Promise((ok) => ws.stream.once('end', ok));
      assert.equal(body, 'no sockets here');
      assert.deepEqual(
        events.events.map((e) => [e.accepted, e.status, e.protocol]),
        [[false, 404, 'h2']],
      );
      s.close();
    } finally {
      events.stop();
      await g.close();
      await plain.close();
    }
  });

  test('an extended CONNECT reaches the app as an HTTP/1.1 upgrade; 200, the subprotocol mapped back, messages both ways, the event says h2', async () => {
    up.handshakes.length = 0;
    const ws = await h2WebSocket(session, '/echo/socket?x=1', { 'sec-websocket-protocol': 'chat, other', origin: `https://localhost:${gw.port}` });
    assert.equal(ws.status, 200);
    assert.equal(ws.headers['sec-websocket-protocol'], 'chat');
    assert.equal(ws.headers['sec-websocket-accept'], undefined, 'no accept hash over HTTP/2 (RFC 8441 §5)');
    const hs = up.handshakes[0];
    assert.equal(hs.httpVersion, '1.1');
    assert.equal(hs.url, '/socket?x=1');
    assert.equal(hs.headers.host, `localhost:${gw.port}`);
    assert.equal(hs.headers.upgrade, 'websocket');
    assert.equal(hs.headers['x-forwarded-proto'], 'https');
    assert.equal(hs.headers.origin, `https://localhost:${gw.port}`);
    assert.match(String(hs.headers['sec-websocket-key']), /^[A-Za-z0-9+/]{22}==$/);

    ws.stream.write(clientFrame(TEXT, 'hello over h2'));
    const back = await ws.frames.next();
    assert.equal(back?.opcode, TEXT);
    assert.equal(back?.payload.toString(), 'hello over h2');
    const big = randomBytes(60_000);
    ws.stream.write(clientFrame(BINARY, big));
    const bigBack = await ws.frames.next();
    assert.ok(bigBack?.payload.equals(big), 'a 60 kB binary message comes back unchanged');
    assert.equal(gw.gw.tunnels.size, 1, 'the tunnel is listed (dashboard, metrics)');

    const ev = upgrades.events.find((e) => e.app === 'echo' && e.accepted);
    assert.equal(ev?.protocol, 'h2');
    assert.equal(ev?.path, '/echo/socket?x=1');

    ws.stream.write(clientFrame(CLOSE, Buffer.from([0x03, 0xe8])));
    assert.equal(closeOf(await ws.frames.next()).code, 1000);
    ws.stream.end();
    const end = await waitFor(() => closes.events.find((e) => e.app === 'echo'));
    assert.equal(end.closeCode, 1000);
    assert.equal(end.closedBy, 'client');
    assert.equal(end.framesIn, 3);
    await waitFor(() => gw.gw.tunnels.size === 0, 5000, 'the tunnel to end');
  });

  test('the same app over HTTP/1.1 is recorded as http/1.1', async () => {
    const ws = await openWs(`wss://localhost:${gw.port}/echo/`, undefined, { ca: pair.cert });
    ws.send('x');
    await nextMessage(ws);
    ws.close();
    const ev = upgrades.events.filter((e) => e.app === 'echo' && e.accepted).at(-1);
    assert.equal(ev?.protocol, 'http/1.1');
  });

  test('a foreign Origin is refused as over HTTP/1.1: a completed stream, then close 1008 with the code in the reason', async () => {
    const ws = await h2WebSocket(session, '/echo/', { origin: 'https://evil.example' });
    assert.equal(ws.status, 200);
    const close = closeOf(await ws.frames.next());
    const h1 = await wsCloseOf(`wss://localhost:${gw.port}/echo/`, undefined, { ca: pair.cert, origin: 'https://evil.example' });
    assert.equal(close.code, 1008);
    assert.equal(close.code, h1.code);
    assert.equal(close.reason, h1.reason);
    assert.match(close.reason, /cross-origin WebSocket from https:\/\/evil\.example refused/);
    const ev = upgrades.events.find((e) => e.app === 'echo' && !e.accepted && e.protocol === 'h2');
    assert.equal(ev?.code, 'PH_ERR_ORIGIN_REFUSED');
  });

  test('ws_paths and an app that is down: close frames with the codes HTTP/1.1 gets', async () => {
    for (const path of ['/term/other', '/gone/']) {
      const ws = await h2WebSocket(session, path);
      assert.equal(ws.status, 200, path);
      const close = closeOf(await ws.frames.next());
      const h1 = await wsCloseOf(`wss://localhost:${gw.port}${path}`, undefined, { ca: pair.cert });
      assert.equal(close.code, h1.code, path);
      assert.equal(close.reason, h1.reason, path);
    }
    const path = await h2WebSocket(session, '/term/ws');
    path.stream.write(clientFrame(TEXT, 'ok'));
    assert.equal((await path.frames.next())?.payload.toString(), 'ok');
    path.stream.close();
  });

  test('ws_errors: http answers the stream with the HTTP status and the error code', async () => {
    const ws = await h2WebSocket(session, '/strict/', { origin: 'https://evil.example' });
    assert.equal(ws.status, 403);
    assert.equal(ws.headers['x-porthole-error'], 'PH_ERR_ORIGIN_REFUSED');
    assert.equal(ws.headers.connection, undefined);
  });

  test('an unrouted path is refused with the close reason HTTP/1.1 gets', async () => {
    const ws = await h2WebSocket(session, '/nowhere/websockify');
    assert.equal(ws.status, 200);
    const close = closeOf(await ws.frames.next());
    const h1 = await wsCloseOf(`wss://localhost:${gw.port}/nowhere/websockify`, undefined, { ca: pair.cert });
    assert.deepEqual(close, { code: h1.code, reason: h1.reason });
  });

  test('a CONNECT without :protocol websocket is refused with 400 PH_ERR_BAD_HANDSHAKE', async () => {
    const r = await h2Request(session, { ':method': 'CONNECT', ':authority': 'example.com:443' });
    assert.equal(r.status, 400);
    assert.equal(r.headers['x-porthole-error'], 'PH_ERR_BAD_HANDSHAKE');
  });

  test('a bridge app over HTTP/2: bytes reach the TCP target and come back', async () => {
    const ws = await h2WebSocket(session, '/vnc/websockify', { 'sec-websocket-protocol': 'binary' });
    assert.equal(ws.status, 200);
    assert.equal(ws.headers['sec-websocket-protocol'], 'binary');
    const data = randomBytes(20_000);
    ws.stream.write(clientFrame(BINARY, data));
    const chunks: Buffer[] = [];
    let got = 0;
    while (got < data.length) {
      const f = await ws.frames.next();
      assert.ok(f, 'a frame');
      chunks.push(f.payload);
      got += f.payload.length;
    }
    assert.ok(Buffer.concat(chunks).equals(data));
    assert.equal(gw.gw.bridges.size, 1);
    const ev = upgrades.events.find((e) => e.app === 'vnc' && e.accepted);
    assert.equal(ev?.protocol, 'h2');
    ws.stream.write(clientFrame(CLOSE, Buffer.from([0x03, 0xe8])));
    assert.equal(closeOf(await ws.frames.next()).code, 1000);
    // The client ends its stream after the closing handshake, as it closes TCP over HTTP/1.1 (RFC 8441 §5).
    ws.stream.end();
    await waitFor(() => gw.gw.bridges.size === 0, 5000, 'the bridge connection to end');
  });

  test('a client that resets its stream mid-tunnel: the app\'s connection is closed and the tunnel ends', async () => {
    let appClosed: Promise<number> | undefined;
    const app = await wsUpstream({}, (sock) => {
      appClosed = new Promise((ok) => sock.once('close', (code) => ok(code)));
      sock.on('message', (d) => sock.send(d));
    });
    const g = await startGateway({ tls: { cert: pair.certFile, key: pair.keyFile }, apps: [{ name: 'echo', port: app.port }] });
    const ended = collect('tunnel.close', g.gw.id);
    try {
      const s = await h2Connect(g.port, pair.cert);
      const ws = await h2WebSocket(s, '/echo/');
      ws.stream.write(clientFrame(TEXT, 'a'));
      await ws.frames.next();
      ws.stream.close(http2.constants.NGHTTP2_CANCEL);
      assert.equal(await appClosed, 1006, 'the app saw its connection go without a close frame');
      const end = await waitFor(() => ended.events[0]);
      assert.equal(end.closedBy, 'client');
      assert.equal(g.gw.tunnels.size, 0);
      assert.equal(s.closed, false, 'the HTTP/2 connection itself stays open for other streams');
      assert.equal((await h2Request(s, { ':path': '/echo/after' })).text, 'http-ok /after');
      s.close();
    } finally {
      ended.stop();
      await g.close();
      await app.close();
    }
  });

  test('an app that closes: its close frame reaches the client, then the stream ends', async () => {
    const app = await wsUpstream({}, (sock) => sock.on('message', () => sock.close(4001, 'bye from app')));
    const g = await startGateway({ tls: { cert: pair.certFile, key: pair.keyFile }, apps: [{ name: 'echo', port: app.port }] });
    try {
      const s = await h2Connect(g.port, pair.cert);
      const ws = await h2WebSocket(s, '/echo/');
      ws.stream.write(clientFrame(TEXT, 'close please'));
      assert.deepEqual(closeOf(await ws.frames.next()), { code: 4001, reason: 'bye from app' });
      ws.stream.write(clientFrame(CLOSE, Buffer.from([0x0f, 0xa1])));
      await new Promise((ok) => ws.stream.once('end', ok));
      ws.stream.end();
      await waitFor(() => g.gw.tunnels.size === 0, 5000, 'the tunnel to end');
      s.close();
    } finally {
      await g.close();
      await app.close();
    }
  });

  test('backpressure: a client that does not read stops the gateway reading from the app (HTTP/2 flow control)', async () => {
    let appSide: import('ws').WebSocket | undefined;
    const app = await wsUpstream({}, (sock) => (appSide = sock));
    const g = await startGateway({ tls: { cert: pair.certFile, key: pair.keyFile }, apps: [{ name: 'echo', port: app.port }] });
    try {
      const s = await h2Connect(g.port, pair.cert);
      const ws = await h2WebSocket(s, '/echo/');
      ws.stream.pause();
      ws.stream.removeAllListeners('data');
      await waitFor(() => appSide, 5000, 'the app side');
      const chunk = Buffer.alloc(256 * 1024, 1);
      // 64 MiB offered: with backpressure most of it stays queued at the app, not in the gateway.
      for (let i = 0; i < 256; i++) appSide!.send(chunk);
      await waitFor(() => appSide!.bufferedAmount > 32 * 1024 * 1024, 10_000, 'the app to be held back');
      const held = appSide!.bufferedAmount;
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(appSide!.bufferedAmount >= held - 8 * 1024 * 1024, `the gateway kept reading: ${held} → ${appSide!.bufferedAmount}`);
      ws.stream.close();
      s.close();
    } finally {
      await g.close();
      await app.close();
    }
  });

  test('idle_timeout closes a quiet tunnel over HTTP/2 with a close frame (1001), then the stream ends', async () => {
    const g = await startGateway({ tls: { cert: pair.certFile, key: pair.keyFile }, apps: [{ name: 'idle', port: up.port, idle_timeout: '400ms' }] });
    try {
      const s = await h2Connect(g.port, pair.cert);
      const ws = await h2WebSocket(s, '/idle/');
      const close = closeOf(await ws.frames.next(5000));
      assert.equal(close.code, 1001);
      assert.match(close.reason, /idle/);
      ws.stream.write(clientFrame(CLOSE, Buffer.from([0x03, 0xe9])));
      await new Promise((ok) => ws.stream.once('end', ok));
      ws.stream.end();
      await waitFor(() => g.gw.tunnels.size === 0, 5000, 'the tunnel to end');
      s.close();
    } finally {
      await g.close();
    }
  });

  test('a drain closes a tunnel over HTTP/2 with 1001', async () => {
    const g = await startGateway({ tls: { cert: pair.certFile, key: pair.keyFile }, apps: [{ name: 'echo', port: up.port }] });
    const s = await h2Connect(g.port, pair.cert);
    const ws = await h2WebSocket(s, '/echo/');
    ws.stream.write(clientFrame(TEXT, 'a'));
    await ws.frames.next();
    const closing = g.gw.drain(3000);
    const close = closeOf(await ws.frames.next());
    assert.equal(close.code, 1001);
    ws.stream.write(clientFrame(CLOSE, Buffer.from([0x03, 0xe9])));
    await closing;
    assert.equal(g.gw.tunnels.size, 0);
  });
});
