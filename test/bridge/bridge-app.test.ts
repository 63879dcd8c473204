/**
 * Apps with `bridge:` / `ws_bridge:` in an in-process gateway: WebSocket
 * upgrades are bridged to a real TCP server, after the same edge checks as
 * proxied upgrades, with every failure a close code and a reason.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import WebSocket from 'ws';
import { closed, collect, httpUpstream, openWs, sleep, startGateway, waitFor, wsCloseOf } from '../helpers/net.js';
import { deadPort, nthSocket, tcpPeer } from '../fixtures/bridge/tcp-peers.js';
import { receiveBytes } from '../fixtures/bridge/ws-bytes.js';

describe('bridge app', { timeout: 30_000 }, () => {
  test('binary messages reach the TCP target and come back byte-exact; events count bytes and messages', async () => {
    const echo = await tcpPeer();
    const g = await startGateway({ apps: [{ name: 'vnc', bridge: `127.0.0.1:${echo.port}` }] });
    const upgrades = collect('upgrade', g.gw.id);
    const closes = collect('tunnel.close', g.gw.id);
    try {
      const ws = await openWs(`${g.wsUrl}/vnc/websockify`, ['binary'], { perMessageDeflate: false });
      assert.equal(ws.protocol, 'binary', 'the binary subprotocol is selected when offered');
      const data = randomBytes(300_000);
      const back = receiveBytes(ws, data.length);
      for (let off = 0; off < data.length; off += 60_000) ws.send(data.subarray(off, off + 60_000));
      assert.ok((await back).equals(data), 'the bytes come back unchanged');
      assert.equal(g.gw.bridges.size, 1);
      ws.close(1000, 'done');
      await closed(ws);
      assert.ok((await echo.ended[0]).equals(data), 'the target got every byte, then EOF');
      const end = await waitFor(() => closes.events[0]);
      assert.equal(end.app, 'vnc');
      assert.equal(end.path, '/vnc/websockify');
      assert.equal(end.bytesIn, data.length);
      assert.equal(end.bytesOut, data.length);
      assert.equal(end.framesIn, 5);
      assert.ok(end.framesOut >= 1);
      assert.equal(end.closeCode, 1000);
      assert.equal(end.closedBy, 'client');
      assert.deepEqual(
        upgrades.events.map((e) => [e.app, e.accepted, e.status]),
        [['vnc', true, 101]],
      );
      await waitFor(() => g.gw.bridges.size === 0, 2000, 'the connection to leave gw.bridges');
    } finally {
      upgrades.stop();
      closes.stop();
      await g.close();
      await echo.close();
    }
  });

  test('no subprotocol is selected when none is offered; one without binary is refused with 1002 and a reason', async () => {
    const echo = await tcpPeer({ banner: 'RFB 003.008\n' });
    const g = await startGateway({ apps: [{ name: 'vnc', bridge: `127.0.0.1:${echo.port}` }] });
    try {
      // Listening before the handshake: the banner may arrive in the same packet as the 101.
      const ws = new WebSocket(`${g.wsUrl}/vnc/`);
      const banner = receiveBytes(ws, 12);
      await once(ws, 'open');
      assert.equal(ws.protocol, '');
      assert.equal((await banner).toString(), 'RFB 003.008\n', 'what the target says first reaches the client');
      ws.close();
      const refused = await wsCloseOf(`${g.wsUrl}/vnc/`, ['chat']);
      assert.equal(refused.code, 1002);
      assert.match(refused.reason, /vnc: this bridge speaks the "binary" subprotocol; the client offered only chat/);
      assert.equal(echo.sockets.length, 1, 'no TCP connection for a refused handshake');
    } finally {
      await g.close();
      await echo.close();
    }
  });

  test('plain HTTP to a bridge app gets 426 and a text saying it is a WebSocket bridge', async () => {
    const echo = await tcpPeer();
    const g = await startGateway({ apps: [{ name: 'vnc', bridge: `127.0.0.1:${echo.port}` }] });
    try {
      const res = await fetch(`${g.url}/vnc/`);
      assert.equal(res.status, 426);
      assert.equal(res.headers.get('upgrade'), 'websocket');
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
      assert.match(await res.text(), new RegExp(`vnc is a WebSocket bridge to 127\\.0\\.0\\.1:${echo.port}`));
      assert.equal(echo.sockets.length, 0, 'HTTP never reaches the TCP target');
    } finally {
      await g.close();
      await echo.close();
    }
  });

  test('ws_bridge next to port: pages from the port, upgrades bridged to TCP', async () => {
    const echo = await tcpPeer();
    const pages = await httpUpstream((req, res) => res.end(`page ${req.url}`));
    const g = await startGateway({ apps: [{ name: 'novnc', port: pages.port, ws_bridge: `127.0.0.1:${echo.port}` }] });
    try {
      assert.equal(await (await fetch(`${g.url}/novnc/vnc.html`)).text(), 'page /vnc.html');
      const ws = await openWs(`${g.wsUrl}/novnc/websockify`, ['binary']);
      const back = receiveBytes(ws, 3);
      ws.send(Buffer.from([0, 1, 255]));
      assert.deepEqual([...(await back)], [0, 1, 255]);
      ws.close();
    } finally {
      await g.close();
      await echo.close();
      await pages.close();
    }
  });

  test('text messages are refused with 1003; bridge_text: binary passes their UTF-8 bytes', async () => {
    const echo = await tcpPeer();
    const g = await startGateway({
      apps: [
        { name: 'strict', bridge: `127.0.0.1:${echo.port}` },
        { name: 'lenient', bridge: `127.0.0.1:${echo.port}`, bridge_text: 'binary' },
      ],
    });
    try {
      const strict = await openWs(`${g.wsUrl}/strict/`);
      strict.send('hello');
      const c = await closed(strict);
      assert.equal(c.code, 1003);
      assert.match(c.reason, /strict: text messages are refused/);
      await echo.ended[0];

      const lenient = await openWs(`${g.wsUrl}/lenient/`);
      const got = new Promise<{ data: Buffer; isBinary: boolean }>((ok) => lenient.once('message', (data, isBinary) => ok({ data: data as Buffer, isBinary })));
      lenient.send('héllo');
      const m = await got;
      assert.ok(m.isBinary, 'what comes back from TCP is binary');
      assert.ok(m.data.equals(Buffer.from('héllo')));
      lenient.close();
    } finally {
      await g.close();
      await echo.close();
    }
  });

  test('a target that is down: the handshake completes, then close 1014 with a reason naming the app and the target', async () => {
    const port = await deadPort();
    const g = await startGateway({ apps: [{ name: 'down', bridge: `127.0.0.1:${port}` }] });
    const upgrades = collect('upgrade', g.gw.id);
    try {
      const c = await wsCloseOf(`${g.wsUrl}/down/websockify`, ['binary']);
      assert.ok(c.opened, 'the handshake was completed');
      assert.equal(c.code, 1014);
      assert.equal(c.reason, `down: upstream 127.0.0.1:${port} refused the connection`);
      const e = await waitFor(() => upgrades.events[0]);
      assert.equal(e.accepted, false);
      assert.equal(e.code, 'PH_ERR_UPSTREAM_REFUSED');
      assert.equal(e.closeCode, 1014);
    } finally {
      upgrades.stop();
      await g.close();
    }
  });

  test('the target closes TCP: the client gets what it sent, then close 1000', async () => {
    const peer = await tcpPeer({ onSocket: (s) => s.end('bye') });
    const g = await startGateway({ apps: [{ name: 'vnc', bridge: `127.0.0.1:${peer.port}` }] });
    const closes = collect('tunnel.close', g.gw.id);
    try {
      const ws = new WebSocket(`${g.wsUrl}/vnc/`);
      const got = receiveBytes(ws, 3);
      const c = closed(ws);
      assert.equal((await got).toString(), 'bye');
      const { code, reason } = await c;
      assert.equal(code, 1000);
      assert.equal(reason, `vnc: 127.0.0.1:${peer.port} closed the connection`);
      const end = await waitFor(() => closes.events[0]);
      assert.equal(end.closedBy, 'upstream');
      assert.equal(end.closeCode, 1000);
    } finally {
      closes.stop();
      await g.close();
      await peer.close();
    }
  });

  test('the target sends a lot and closes: a client that reads slowly still gets every byte before the 1000', async () => {
    const big = Buffer.alloc(16 * 1024 * 1024, 0x5a);
    const peer = await tcpPeer({ onSocket: (s) => s.end(big) });
    const g = await startGateway({ apps: [{ name: 'vnc', bridge: `127.0.0.1:${peer.port}` }] });
    try {
      const ws = new WebSocket(`${g.wsUrl}/vnc/`, { perMessageDeflate: false });
      const got = receiveBytes(ws, big.length);
      const c = closed(ws);
      await once(ws, 'open');
      // The target has sent everything and closed; backpressure holds the rest until the reader comes back.
      ws.pause();
      await sleep(1500);
      ws.resume();
      const data = await got;
      assert.equal(data.length, big.length);
      assert.ok(data.equals(big));
      assert.equal((await c).code, 1000);
    } finally {
      await g.close();
      await peer.close();
    }
  });

  test('the target resets mid-stream: close 1014 saying so, and nothing leaks', async () => {
    const peer = await tcpPeer({ onSocket: (s) => s.once('data', () => s.resetAndDestroy()) });
    const g = await startGateway({ apps: [{ name: 'vnc', bridge: `127.0.0.1:${peer.port}` }] });
    try {
      const ws = await openWs(`${g.wsUrl}/vnc/`);
      ws.send(Buffer.from('x'));
      const c = await closed(ws);
      assert.equal(c.code, 1014);
      assert.match(c.reason, /vnc: upstream 127\.0\.0\.1:\d+ reset the connection/);
      await waitFor(() => g.gw.bridges.size === 0, 5000, 'the bridge connection to end');
    } finally {
      await g.close();
      await peer.close();
    }
  });

  test('the edge checks apply first: a cross-origin upgrade or a path outside ws_paths gets 1008 and no TCP connection', async () => {
    const echo = await tcpPeer();
    const g = await startGateway({ apps: [{ name: 'vnc', bridge: `127.0.0.1:${echo.port}`, ws_paths: ['/websockify'] }] });
    try {
      const foreign = await wsCloseOf(`${g.wsUrl}/vnc/websockify`, ['binary'], { origin: 'https://evil.example' });
      assert.equal(foreign.code, 1008);
      assert.match(foreign.reason, /cross-origin/);
      const path = await wsCloseOf(`${g.wsUrl}/vnc/other`, ['binary']);
      assert.equal(path.code, 1008);
      assert.match(path.reason, /not in ws_paths/);
      assert.equal(echo.sockets.length, 0);
      const ok = await openWs(`${g.wsUrl}/vnc/websockify`, ['binary'], { origin: g.url });
      ok.close();
    } finally {
      await g.close();
      await echo.close();
    }
  });

  test('ping_interval pings the client; the old base64 subprotocol carries base64 text', async () => {
    const echo = await tcpPeer();
    const g = await startGateway({ apps: [{ name: 'vnc', bridge: `127.0.0.1:${echo.port}`, ping_interval: '100ms' }] });
    try {
      const ws = await openWs(`${g.wsUrl}/vnc/`, ['base64']);
      assert.equal(ws.protocol, 'base64');
      await new Promise<void>((ok) => ws.once('ping', () => ok()));
      const got = new Promise<{ data: Buffer; isBinary: boolean }>((ok) => ws.once('message', (data, isBinary) => ok({ data: data as Buffer, isBinary })));
      ws.send(Buffer.from([1, 2, 3, 250]).toString('base64'));
      const m = await got;
      assert.equal(m.isBinary, false);
      assert.deepEqual([...Buffer.from(m.data.toString(), 'base64')], [1, 2, 3, 250]);
      ws.close();
    } finally {
      await g.close();
      await echo.close();
    }
  });

  test('a gateway drain closes bridge connections with 1001 and ends their TCP connections', async () => {
    const echo = await tcpPeer();
    const g = await startGateway({ apps: [{ name: 'vnc', bridge: `127.0.0.1:${echo.port}` }] });
    try {
      const ws = await openWs(`${g.wsUrl}/vnc/`);
      await nthSocket(echo, 0);
      const c = closed(ws);
      await g.gw.drain(2000);
      assert.equal((await c).code, 1001);
      await echo.ended[0];
      assert.equal(g.gw.bridges.size, 0);
    } finally {
      await g.close();
      await echo.close();
    }
  });
});
