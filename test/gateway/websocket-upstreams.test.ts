import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { test } from 'node:test';
import { WebSocketServer } from 'ws';
import { selfSignedCert, tempDir } from '../helpers/http.js';
import { closed, closeServer, listen, nextMessage, openWs, startGateway, wsCloseOf } from '../helpers/net.js';

test('a wss:// upstream with a self-signed certificate: refused with 1014 (TLS), works with tls_verify: false, with SNI', async () => {
  const dir = tempDir();
  const { key, cert } = selfSignedCert(dir);
  const server = https.createServer({ key, cert });
  const names: (string | false)[] = [];
  server.on('secureConnection', (s: TLSSocket) => names.push((s as TLSSocket & { servername?: string | false }).servername ?? false));
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => ws.on('message', (d) => ws.send(`${req.headers.host} ${d}`)));
  const port = await listen(server);
  const g = await startGateway({
    apps: [
      { name: 'strict', url: `wss://localhost:${port}/base` },
      { name: 'lax', url: `wss://localhost:${port}/base`, tls_verify: false },
    ],
  });
  try {
    const refused = await wsCloseOf(`${g.wsUrl}/strict/ws`);
    assert.equal(refused.code, 1014);
    assert.match(refused.reason, /TLS/);
    const ws = await openWs(`${g.wsUrl}/lax/ws`);
    ws.send('over tls');
    // Host is the upstream's own by default for a url upstream (what ngrok-style hosts need).
    assert.equal((await nextMessage(ws)).data.toString(), `localhost:${port} over tls`);
    assert.ok(names.includes('localhost'), `SNI sent: ${names.join(',')}`);
    ws.close();
    await closed(ws);
  } finally {
    await g.close();
    wss.close();
    await closeServer(server);
    dir.remove();
  }
});

test('a unix socket upstream takes WebSocket upgrades too', async () => {
  const dir = tempDir();
  const sock = dir.file('app.sock');
  const server = http.createServer();
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => ws.on('message', (d) => ws.send(`${req.url} ${d}`)));
  await new Promise<void>((ok) => server.listen(sock, ok));
  const g = await startGateway({ apps: [{ name: 'unix', socket: sock }] });
  try {
    const ws = await openWs(`${g.wsUrl}/unix/live`);
    ws.send('hello');
    assert.equal((await nextMessage(ws)).data.toString(), '/live hello');
    ws.close();
    await closed(ws);
  } finally {
    await g.close();
    wss.close();
    await new Promise((r) => server.close(r));
    dir.remove();
  }
});
