import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';
import { closeServer, closed, collect, listen, nextMessage, openFds, openWs, rawRequest, sleep, startGateway, waitFor, wsCloseOf, wsUpstream } from '../helpers/net.js';

/** A port nothing listens on: bind, read the number, close. */
async function deadPort(): Promise<number> {
  const s = net.createServer();
  const port = await listen(s);
  await closeServer(s);
  return port;
}

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const handshake = (path: string, extra = '', method = 'GET', version = '1.1') =>
  `${method} ${path} HTTP/${version}\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${extra}\r\n`;

describe('upstream failures are never a silent 1006', () => {
  test('upstream down: the client gets a completed handshake, then close 1014 naming the app and the cause', async () => {
    const g = await startGateway({ apps: [{ name: 'down', port: await deadPort() }] });
    const log = collect('upgrade', g.gw.id);
    try {
      const c = await wsCloseOf(`${g.wsUrl}/down/ws`);
      assert.equal(c.opened, true);
      assert.equal(c.code, 1014);
      assert.match(c.reason, /down/);
      assert.match(c.reason, /refused/);
      const e = await waitFor(() => log.events[0]);
      assert.equal(e.accepted, false);
      assert.equal(e.code, 'PH_ERR_UPSTREAM_REFUSED');
      assert.equal(e.closeCode, 1014);
    } finally {
      log.stop();
      await g.close();
    }
  });

  test('a browser-style client that offered a subprotocol still sees the close frame', async () => {
    const g = await startGateway({ apps: [{ name: 'down', port: await deadPort() }] });
    try {
      const c = await wsCloseOf(`${g.wsUrl}/down/`, ['binary', 'base64']);
      assert.equal(c.opened, true);
      assert.equal(c.code, 1014);
    } finally {
      await g.close();
    }
  });

  test('ws_errors: http sends a plain 502 instead', async () => {
    const g = await startGateway({ apps: [{ name: 'down', port: await deadPort(), ws_errors: 'http' }] });
    try {
      await assert.rejects(openWs(`${g.wsUrl}/down/`), (err: { status?: number; headers?: Record<string, string> }) => {
        assert.equal(err.status, 502);
        assert.equal(err.headers?.['x-porthole-error'], 'PH_ERR_UPSTREAM_REFUSED');
        return true;
      });
    } finally {
      await g.close();
    }
  });

  test('an upstream that answers something that is not HTTP: close 1014 "not HTTP"', async () => {
    const junk = net.createServer((s) => {
      s.on('error', () => {});
      s.end('SSH-2.0-OpenSSH_9.2\r\n');
    });
    const port = await listen(junk);
    const g = await startGateway({ apps: [{ name: 'junk', port }] });
    try {
      const c = await wsCloseOf(`${g.wsUrl}/junk/`);
      assert.equal(c.code, 1014);
      assert.match(c.reason, /not HTTP/);
    } finally {
      await g.close();
      await closeServer(junk);
    }
  });

  test('an upstream that resets during the handshake: close 1014 "reset"', async () => {
    const rst = net.createServer((s) => {
      s.on('error', () => {});
      s.once('data', () => s.resetAndDestroy());
    });
    const port = await listen(rst);
    const g = await startGateway({ apps: [{ name: 'rst', port }] });
    try {
      const c = await wsCloseOf(`${g.wsUrl}/rst/`);
      assert.equal(c.code, 1014);
      assert.match(c.reason, /reset|closed the connection/);
    } finally {
      await g.close();
      await closeServer(rst);
    }
  });

  test('an upstream that never answers the handshake: close 1014 after response_timeout', async () => {
    const mute = net.createServer((s) => s.on('error', () => {}));
    const port = await listen(mute);
    const g = await startGateway({ apps: [{ name: 'mute', port, response_timeout: '300ms' }] });
    try {
      const c = await wsCloseOf(`${g.wsUrl}/mute/`);
      assert.equal(c.code, 1014);
      assert.match(c.reason, /no response/);
    } finally {
      await g.close();
      await closeServer(mute);
    }
  });
});

describe('malformed handshakes are answered at the edge', () => {
  test('missing key, bad key, bad version, POST and HTTP/1.0 get 400/426 with a reason, and the gateway keeps serving', async () => {
    const up = await wsUpstream();
    const g = await startGateway({ apps: [{ name: 'a', port: up.port }] });
    try {
      const cases: [string, RegExp][] = [
        [handshake('/a/', 'Sec-WebSocket-Version: 13\r\n'), /^HTTP\/1\.1 400[^]*Sec-WebSocket-Key is missing/],
        [handshake('/a/', 'Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n'), /^HTTP\/1\.1 400[^]*16 bytes/],
        [handshake('/a/', `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 8\r\n`), /^HTTP\/1\.1 426[^]*Sec-WebSocket-Version: 13[^]*version 8 is not supported/],
        [handshake('/a/', `Sec-WebSocket-Key: ${KEY}\r\n`), /^HTTP\/1\.1 426/],
        [handshake('/a/', `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n`, 'POST'), /^HTTP\/1\.1 400[^]*must be a GET/],
        [handshake('/a/', `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n`, 'GET', '1.0'), /^HTTP\/1\.1 400[^]*HTTP\/1\.1/],
      ];
      for (const [req, want] of cases) {
        const res = await rawRequest(g.port, req);
        assert.match(res, want, `for request:\n${req}`);
      }
      // Still serving.
      const ws = await openWs(`${g.wsUrl}/a/`);
      ws.send('still here');
      assert.equal((await nextMessage(ws)).data.toString(), 'still here');
      ws.close();
      await closed(ws);
      assert.equal(up.handshakes.length, 1, 'no malformed handshake reached the upstream');
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('an upgrade to an unknown path gets a completed handshake and close 1008 (not a dropped socket); ws_errors: http gets a 404', async () => {
    const g = await startGateway({ apps: [] });
    const h = await startGateway({ ws_errors: 'http', apps: [] });
    try {
      const res = await rawRequest(g.port, handshake('/nope/', `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n`), 500);
      assert.match(res, /^HTTP\/1\.1 101 [^]*\r\n\r\n\x88.\x03\xf0no app at \/nope\//);
      const plain = await rawRequest(h.port, handshake('/nope/', `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n`));
      assert.match(plain, /^HTTP\/1\.1 404/);
    } finally {
      await g.close();
      await h.close();
    }
  });
});

describe('origin and path policy', () => {
  test('default: same origin or no Origin allowed; a foreign Origin closes 1008', async () => {
    const up = await wsUpstream();
    const g = await startGateway({ apps: [{ name: 'o', port: up.port }] });
    try {
      const same = await openWs(`${g.wsUrl}/o/`, undefined, { origin: `http://127.0.0.1:${g.port}` });
      same.close();
      const none = await openWs(`${g.wsUrl}/o/`);
      none.close();
      const c = await wsCloseOf(`${g.wsUrl}/o/`, undefined, { origin: 'https://evil.example' });
      assert.equal(c.code, 1008);
      assert.match(c.reason, /cross-origin/);
      assert.equal(up.handshakes.length, 2, 'the refused upgrade never reached the app');
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('allowed_origins lists origins; ["*"] opens it', async () => {
    const up = await wsUpstream();
    const g = await startGateway({
      apps: [
        { name: 'listed', port: up.port, allowed_origins: ['https://app.example'] },
        { name: 'open', port: up.port, allowed_origins: ['*'] },
      ],
    });
    try {
      (await openWs(`${g.wsUrl}/listed/`, undefined, { origin: 'https://app.example' })).close();
      assert.equal((await wsCloseOf(`${g.wsUrl}/listed/`, undefined, { origin: 'https://other.example' })).code, 1008);
      (await openWs(`${g.wsUrl}/open/`, undefined, { origin: 'https://anything.example' })).close();
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('ws_paths: other upgrade paths are refused with 1008; ws_path replaces the upstream path', async () => {
    const up = await wsUpstream();
    const g = await startGateway({
      apps: [
        { name: 'p', port: up.port, ws_paths: ['/websockify'] },
        { name: 'r', port: up.port, ws_path: '/ws' },
      ],
    });
    try {
      const ok = await openWs(`${g.wsUrl}/p/websockify`);
      ok.close();
      const c = await wsCloseOf(`${g.wsUrl}/p/other`);
      assert.equal(c.code, 1008);
      assert.match(c.reason, /ws_paths/);
      const r = await openWs(`${g.wsUrl}/r/anything?token=1`);
      assert.equal(up.handshakes.at(-1)?.url, '/ws?token=1');
      r.close();
    } finally {
      await g.close();
      await up.close();
    }
  });
});

describe('closing from the gateway', () => {
  test('idle timeout sends a real close frame (1001) to the client, not a TCP reset', async () => {
    const up = await wsUpstream();
    const g = await startGateway({ apps: [{ name: 'idle', port: up.port, idle_timeout: '400ms' }] });
    const log = collect('tunnel.close', g.gw.id);
    try {
      const ws = await openWs(`${g.wsUrl}/idle/`);
      const upstreamClosed = new Promise<number>((ok) => up.wss.clients.forEach((c) => c.once('close', (code) => ok(code))));
      ws.send('activity');
      await nextMessage(ws);
      const t0 = Date.now();
      const c = await closed(ws);
      assert.equal(c.code, 1001);
      assert.match(c.reason, /idle/);
      assert.ok(Date.now() - t0 >= 300, 'closed only after the idle time');
      assert.equal(await upstreamClosed, 1001, 'the upstream got a close frame too');
      const e = await waitFor(() => log.events[0]);
      assert.equal(e.closedBy, 'gateway');
      assert.equal(e.closeCode, 1001);
    } finally {
      log.stop();
      await g.close();
      await up.close();
    }
  });

  test('the close frame waits for the end of a frame in flight', async () => {
    // The upstream streams a large message; the gateway's close must come after it, intact.
    const big = Buffer.alloc(8 * 1024 * 1024, 7);
    const up = await wsUpstream({}, (ws) => ws.on('message', () => ws.send(big)));
    const g = await startGateway({ apps: [{ name: 'mid', port: up.port }] });
    try {
      const ws = await openWs(`${g.wsUrl}/mid/`, undefined, { perMessageDeflate: false });
      const got = nextMessage(ws);
      ws.send('go');
      // Stop reading: backpressure holds the big frame half-way through the gateway.
      ws.pause();
      const [tunnel] = await waitFor(() => g.gw.tunnels.size === 1 && [...g.gw.tunnels]);
      await waitFor(() => tunnel.bytesOut > 0);
      await sleep(100);
      assert.ok(tunnel.bytesOut < big.length, 'the close is requested in the middle of the frame');
      tunnel.close(1001, 'test close');
      ws.resume();
      const m = await got;
      assert.equal(m.data.length, big.length);
      assert.ok(m.data.every((b) => b === 7));
      assert.equal((await closed(ws)).code, 1001);
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('a client and an upstream that reset mid-stream: no crash, no leaked file descriptor', async () => {
    let serverSide: import('ws').WebSocket | null = null;
    const up = await wsUpstream({}, (ws) => {
      serverSide = ws;
      ws.on('message', (d) => ws.send(d));
    });
    const g = await startGateway({ apps: [{ name: 'r', port: up.port }] });
    try {
      const warm = await openWs(`${g.wsUrl}/r/`);
      warm.close();
      await closed(warm);
      await waitFor(() => g.gw.tunnels.size === 0);
      const before = openFds();
      for (let i = 0; i < 20; i++) {
        // Client resets.
        const a = await openWs(`${g.wsUrl}/r/`);
        a.send(Buffer.alloc(64 * 1024));
        a.terminate();
        (a as unknown as { _socket?: net.Socket })._socket?.resetAndDestroy?.();
        // Upstream resets.
        const b = await openWs(`${g.wsUrl}/r/`);
        b.send('x');
        await nextMessage(b);
        (serverSide as unknown as { _socket: net.Socket })._socket.resetAndDestroy();
        const c = await closed(b);
        assert.equal(c.code, 1006);
      }
      await waitFor(() => g.gw.tunnels.size === 0, 10_000, 'tunnels to end');
      await sleep(100);
      assert.ok(openFds() <= before + 2, `fds before ${before}, after ${openFds()}`);
      const ok = await openWs(`${g.wsUrl}/r/`);
      ok.send('alive');
      assert.equal((await nextMessage(ok)).data.toString(), 'alive');
      ok.close();
    } finally {
      await g.close();
      await up.close();
    }
  });
});
