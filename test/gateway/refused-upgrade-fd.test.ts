/**
 * Regression (found by test/reliability/fuzz.test.ts): an upgrade refused with
 * a plain HTTP answer (here a 404: no app at the path), whose client sent more
 * bytes after its head in another packet. The answer ended the socket but
 * nothing read it: the unread bytes kept the client's FIN from ever being
 * seen, and the socket (half-open allowed on a server's sockets) stayed open
 * for good — one fd per such client, in a real `porthole serve`.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startServe } from '../helpers/cli.js';
import { sleep, wsUpstream } from '../helpers/net.js';

const fds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

test('a refused upgrade gives its socket back even when the client sent more after its head', { timeout: 60_000 }, async (t) => {
  const gw = await startServe(['--log-format', 'json']);
  t.after(() => gw.stop());
  const pid = gw.child.pid!;
  await sleep(200);
  const before = fds(pid);

  for (let i = 0; i < 10; i++) {
    const client = net.connect(gw.port, '127.0.0.1');
    client.setNoDelay(true);
    client.on('error', () => undefined);
    client.resume();
    const closed = new Promise<void>((ok) => client.once('close', () => ok()));
    await new Promise((ok) => client.once('connect', ok));
    client.write(`GET /nowhere HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    await sleep(5);
    client.write('0123456789');
    client.end();
    await closed;
  }
  const deadline = Date.now() + 5000;
  while (fds(pid) > before && Date.now() < deadline) await sleep(50);
  assert.equal(fds(pid), before, 'every refused connection is closed on the gateway side too');
});

test('an upgrade the app refuses (its 401 relayed) gives its socket back even when the client sent more after its head', { timeout: 60_000 }, async (t) => {
  const up = await wsUpstream({ verifyClient: () => false });
  t.after(() => up.close());
  const dir = mkdtempSync(join(tmpdir(), 'porthole-refused-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'porthole.yaml'), `apps:\n  - name: ws\n    port: ${up.port}\n`);
  const gw = await startServe(['--log-format', 'json', '--config', join(dir, 'porthole.yaml'), '--data', dir]);
  t.after(() => gw.stop());
  const pid = gw.child.pid!;
  await sleep(200);
  const before = fds(pid);

  for (let i = 0; i < 10; i++) {
    const client = net.connect(gw.port, '127.0.0.1');
    client.setNoDelay(true);
    client.on('error', () => undefined);
    let answer = '';
    client.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    const closed = new Promise<void>((ok) => client.once('close', () => ok()));
    await new Promise((ok) => client.once('connect', ok));
    client.write(`GET /ws/x HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    await sleep(5);
    client.write('0123456789');
    client.end();
    await closed;
    assert.match(answer, /^HTTP\/1\.1 401 /, 'the app\'s own answer is relayed');
  }
  const deadline = Date.now() + 8000;
  while (fds(pid) > before && Date.now() < deadline) await sleep(50);
  assert.equal(fds(pid), before, 'every refused connection is closed on the gateway side too');
});
