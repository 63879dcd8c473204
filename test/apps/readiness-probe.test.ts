// Each readiness check says what it saw, so a state can carry the cause.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { httpCheck, probeOnce, tcpCheck, waitUntilReady } from '../../src/apps/readiness.js';
import { closeServer, listen } from '../helpers/net.js';

async function freePort(): Promise<number> {
  const s = net.createServer();
  const port = await listen(s);
  await closeServer(s);
  return port;
}

test('a refused port, a missing unix socket and an unreachable host are named', async () => {
  const port = await freePort();
  assert.deepEqual(await tcpCheck(port), { ok: false, cause: `port ${port} refused` });
  assert.deepEqual(await probeOnce({ socket: '/nonexistent/app.sock' }), { ok: false, cause: 'socket /nonexistent/app.sock refused' });
  assert.deepEqual(await probeOnce({ tcp: [{ host: '127.0.0.2', port }] }), { ok: false, cause: `127.0.0.2:${port} refused` });
});

test('a health_path is named with its status, its refusal or its timeout', async (t) => {
  const hung: http.ServerResponse[] = [];
  const server = http.createServer((req, res) => {
    if (req.url === '/ok') return res.end('ok');
    if (req.url === '/moved') return res.writeHead(302, { Location: '/ok' }).end();
    if (req.url === '/hang') return void hung.push(res);
    res.writeHead(403).end();
  });
  const port = await listen(server);
  t.after(() => closeServer(server));
  assert.deepEqual(await httpCheck(port, '/ok'), { ok: true });
  assert.deepEqual(await httpCheck(port, '/moved'), { ok: true });
  assert.deepEqual(await httpCheck(port, '/api/status'), { ok: false, cause: 'health_path /api/status answered 403' });
  assert.deepEqual(await httpCheck(port, '/hang', 200), { ok: false, cause: 'health_path /hang timed out after 200 ms' });
  const closed = await freePort();
  assert.deepEqual(await httpCheck(closed, '/ok'), { ok: false, cause: `health_path /ok: port ${closed} refused` });
});

test('waitUntilReady resolves with the last cause on timeout and reports every probe', async () => {
  const port = await freePort();
  const seen: string[] = [];
  const result = await waitUntilReady({ port }, 400, new AbortController().signal, (p) => seen.push(p.ok ? 'ok' : p.cause));
  assert.deepEqual(result, { ok: false, cause: `port ${port} refused` });
  assert.ok(seen.length >= 2 && seen.every((c) => c === `port ${port} refused`), seen.join(', '));
});
