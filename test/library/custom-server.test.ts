import assert from 'node:assert/strict';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { test } from 'node:test';
// Imported by package name, through the `exports` map, as a user would.
import { createGateway, type Gateway } from 'porthole';
import { closeServer, closed, listen, nextMessage, openWs, wsUpstream } from '../helpers/net.js';

test('the library inside a plain http.Server proxies only the paths it is given (seed 001)', async () => {
  const backend = await wsUpstream();
  const gateway: Gateway = createGateway({
    apps: [{ name: 'novnc', url: `http://127.0.0.1:${backend.port}`, prefix: '/api/auth/session', strip_prefix: false }],
  });
  const server = http.createServer((req, res) => {
    if (gateway.handleRequest(req, res)) return;
    res.end(`own route ${req.url}`);
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '').split('?')[0];
    if (path.includes('/novnc/websock') && gateway.handleUpgrade(req, socket, head)) return;
    socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  });
  const port = await listen(server);
  try {
    // The server's own routes are untouched.
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/dashboard`)).text(), 'own route /dashboard');
    // HTTP under the mount goes to the backend with the full path.
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/api/auth/session/abc/novnc`)).text(), 'http-ok /api/auth/session/abc/novnc');

    const ws = await openWs(`ws://127.0.0.1:${port}/api/auth/session/abc/novnc/websock`, ['binary'], { origin: `http://127.0.0.1:${port}` });
    assert.equal(backend.handshakes.at(-1)?.url, '/api/auth/session/abc/novnc/websock');
    assert.equal(backend.handshakes.at(-1)?.headers['sec-websocket-protocol'], 'binary');
    ws.send(Buffer.from('RFB 003.008\n'));
    assert.equal((await nextMessage(ws)).data.toString(), 'RFB 003.008\n');
    ws.close();
    await closed(ws);

    // Upgrades elsewhere are refused by the host server, and never reach the backend.
    const before = backend.handshakes.length;
    await assert.rejects(openWs(`ws://127.0.0.1:${port}/other/socket`), (err: { status?: number }) => err.status === 404);
    // handleUpgrade itself declines a path outside its mounts, leaving the socket to the caller.
    const fake = { url: '/elsewhere', headers: {} } as http.IncomingMessage;
    assert.equal(gateway.handleUpgrade(fake, null as unknown as Duplex, Buffer.alloc(0)), false);
    assert.equal(backend.handshakes.length, before);
  } finally {
    await gateway.drain(500);
    await closeServer(server);
    await backend.close();
  }
});
