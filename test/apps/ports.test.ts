// Ports for apps without `port`: picked from the range by a real bind test
// on 127.0.0.1, and never handed to two apps.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { app, harness, NODE_SERVER, randomPortRange } from '../fixtures/apps/harness.js';

function listen(port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

test('allocPort returns a port of the range that is really free', async (t) => {
  const range = randomPortRange();
  const h = harness(t, { portRange: range });
  const port = await h.sup.allocPort();
  assert.ok(port >= range[0] && port <= range[1]);
  const server = await listen(port); // rejects if it were taken
  server.close();
});

test('a port something else listens on is skipped', async (t) => {
  const [first] = randomPortRange();
  const h = harness(t, { portRange: [first, first + 2] });
  const busy = await listen(first);
  t.after(() => busy.close());
  const port = await h.sup.allocPort();
  assert.notEqual(port, first);
  assert.ok(port === first + 1 || port === first + 2);
});

test('no port is given twice: apps, concurrent calls, explicit ports', async (t) => {
  const [first] = randomPortRange();
  const h = harness(t, { portRange: [first, first + 19] });
  const a = await h.sup.set(app({ name: 'a', cmd: NODE_SERVER }));
  const b = await h.sup.set(app({ name: 'b', cmd: NODE_SERVER }));
  // An explicit port of the range is not handed out either.
  await h.sup.set(app({ name: 'c', port: first + 2, ws_port: first + 3 }));
  assert.ok(a.port && b.port);
  assert.notEqual(a.port, b.port);
  const more = await Promise.all(Array.from({ length: 10 }, () => h.sup.allocPort()));
  const all = [a.port, b.port, first + 2, first + 3, ...more];
  assert.equal(new Set(all).size, all.length, `all distinct: ${all}`);
  // Re-setting keeps the app's port rather than taking a new one.
  assert.equal((await h.sup.set(app({ name: 'a', cmd: `${NODE_SERVER} # v2` }))).port, a.port);
});

test('an exhausted range fails with a clear message', async (t) => {
  const [first] = randomPortRange();
  const h = harness(t, { portRange: [first, first + 1] });
  await h.sup.allocPort();
  await h.sup.allocPort();
  await assert.rejects(h.sup.allocPort(), /no free port in \d+-\d+/);
});

test('an app that gets no port is not registered half-way', async (t) => {
  const [first] = randomPortRange();
  const h = harness(t, { portRange: [first, first] });
  await h.sup.allocPort();
  await assert.rejects(h.sup.set(app({ name: 'portless', cmd: NODE_SERVER })), /no free port/);
  assert.equal(h.sup.status('portless'), undefined);
});
