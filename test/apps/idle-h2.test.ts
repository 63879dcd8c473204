/**
 * wake_on_request and idle_stop over HTTP/2 (RFC 8441 WebSockets, docs/http2.md):
 * a request and an extended CONNECT to a sleeping app are held and answered by
 * the woken app, and the HTTP/2 WebSocket keeps it awake while it is open.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createServer } from 'porthole';
import { sleep, waitFor } from '../helpers/net.js';
import { freePort, sleepAppCmd } from '../helpers/sleep-app.js';
import { selfSigned, tempDir } from '../tls/tls-helpers.js';
import { clientFrame, closeOf, h2Connect, h2Request, h2WebSocket } from '../h2/h2-helpers.js';

const TEXT = 0x1;
const CLOSE = 0x8;

test('over HTTP/2, a request and a WebSocket (extended CONNECT) wake a sleeping app, and the open WebSocket keeps it awake', async (t) => {
  const tmp = tempDir();
  t.after(tmp.remove);
  const pair = selfSigned(tmp.dir, 'gw');
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-idle-h2-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const server = createServer({
    config: { tls: { cert: pair.certFile, key: pair.keyFile }, apps: [{ name: 'deep', port: await freePort(), cmd: sleepAppCmd({ DELAY_MS: 1000 }), wake_on_request: true, idle_stop: '1s' }] },
    dataDir,
    listen: { port: 0 },
  });
  const started = await server.listen();
  t.after(() => server.close());
  const port = Number(new URL(started.url).port);
  const session = await h2Connect(port, pair.cert);
  t.after(() => session.destroy());
  const authority = `localhost:${port}`;
  const state = () => server.supervisor.status('deep')?.state;
  assert.equal(state(), 'stopped');

  const r = await h2Request(session, { ':path': '/deep/', ':authority': authority, accept: 'application/json' });
  assert.equal(r.status, 200, r.text);
  assert.match(r.text, new RegExp(`app deep pid ${server.supervisor.status('deep')?.pid}`));
  await waitFor(() => state() === 'stopped', 10_000, 'the idle stop');

  const ws = await h2WebSocket(session, '/deep/', { origin: `https://${authority}` });
  assert.equal(ws.status, 200);
  assert.equal(state(), 'running', 'woken before the answer');
  ws.stream.write(clientFrame(TEXT, 'hello over h2'));
  assert.equal((await ws.frames.next())?.payload.toString(), 'hello over h2');
  await sleep(2500);
  assert.equal(state(), 'running', 'the HTTP/2 WebSocket is a tunnel: use while open');
  ws.stream.write(clientFrame(CLOSE, Buffer.from([0x03, 0xe8])));
  assert.equal(closeOf(await ws.frames.next()).code, 1000);
  ws.stream.end();
  await waitFor(() => state() === 'stopped', 10_000, 'the idle stop after the close');
});
