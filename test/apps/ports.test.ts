// Ports for apps without `port`: picked from the range by a real bind test
// on 127.0.0.1, and never handed to two apps.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import { PortAllocator, portTaken } from '../../src/apps/ports.js';
import { tcpAnswers } from '../../src/apps/readiness.js';
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
  // An explicit port of the range is not handed out either (registered first: the search may start anywhere in the range).
  await h.sup.set(app({ name: 'c', port: first + 2, ws_port: first + 3 }));
  const a = await h.sup.set(app({ name: 'a', cmd: NODE_SERVER }));
  const b = await h.sup.set(app({ name: 'b', cmd: NODE_SERVER }));
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

test('two processes allocating from the same range at the same moment get different ports (each starts its search elsewhere)', async () => {
  const { spawn } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const root = fileURLToPath(new URL('../../', import.meta.url));
  // Each allocates one port and prints it, without binding it: as two Portholes registering an app each.
  const script = "import { PortAllocator } from './src/apps/ports.ts'; console.log(await new PortAllocator([9000, 9999]).alloc());";
  const one = () =>
    new Promise<number>((ok, fail) => {
      const c = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      c.stdout.on('data', (d) => (out += d));
      c.on('exit', (code) => (code === 0 ? ok(Number(out.trim())) : fail(new Error(`exited ${code}`))));
    });
  const ports = await Promise.all([one(), one(), one()]);
  for (const p of ports) assert.ok(p >= 9000 && p <= 9999, `${p}`);
  assert.equal(new Set(ports).size, 3, `distinct: ${ports}`);
});

test('the first search starts spread over the range by the seed: nearby seeds far apart, always inside the range', () => {
  const starts = (size: number) => Array.from({ length: 40 }, (_, i) => new PortAllocator([10_000, 10_000 + size - 1], 4000 + i));
  // One port: every seed starts (and ends) on it.
  for (const a of starts(1)) assert.equal(a.next(), 10_000);
  const firsts = starts(1000).map((a) => a.next());
  assert.equal(new Set(firsts).size, 40, 'forty seeds in a row: forty places');
  for (const p of firsts) assert.ok(p >= 10_000 && p <= 10_999);
  // Any whole seed, negative too, starts inside the range; anything else is refused.
  for (const seed of [-1, -3, -4001, 0, 2 ** 40, Number.MAX_SAFE_INTEGER]) {
    const at = new PortAllocator([1, 10], seed).next();
    assert.ok(at >= 1 && at <= 10, `seed ${seed}: ${at}`);
  }
  for (const seed of [NaN, Infinity, 1.5]) assert.throws(() => new PortAllocator([1, 10], seed), RangeError);
  // Seeds one apart start at least a third of the range apart.
  for (let i = 1; i < firsts.length; i++) {
    const d = Math.abs(firsts[i] - firsts[i - 1]);
    assert.ok(Math.min(d, 1000 - d) >= 333, `${firsts[i - 1]} → ${firsts[i]}`);
  }
});

test('a port is taken only when a bind says EADDRINUSE: a listener on it, yes; a free port, no; a port this process may not bind (below 1024 as nobody), not known to be taken', async (t) => {
  const { portTaken } = await import('../../src/apps/ports.js');
  const held = await listen(0);
  t.after(() => held.close());
  assert.equal(await portTaken((held.address() as net.AddressInfo).port), true);
  const free = await listen(0);
  const freePortNumber = (free.address() as net.AddressInfo).port;
  await new Promise((ok) => free.close(ok));
  assert.equal(await portTaken(freePortNumber), false);
  if (process.getuid?.() !== 0) return assert.equal(await portTaken(9), false, 'EACCES is not EADDRINUSE');
  // As root: the same question asked by a process running as nobody (port 9 needs a privilege it lacks).
  // The built module (it imports node:net alone) is copied where nobody may read it: the checkout may be in a 0700 directory.
  const { spawnSync } = await import('node:child_process');
  const { chmodSync, copyFileSync, mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { fileURLToPath } = await import('node:url');
  const dir = mkdtempSync(join(tmpdir(), 'porthole-ports-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  copyFileSync(fileURLToPath(new URL('../../dist/apps/ports.js', import.meta.url)), join(dir, 'ports.mjs'));
  chmodSync(join(dir, 'ports.mjs'), 0o644);
  const r = spawnSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, '--input-type=module', '-e', "import { portTaken } from './ports.mjs'; console.log(await portTaken(9));"], { cwd: dir, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'false', 'EACCES is not EADDRINUSE');
});

test('tcpAnswers (the readiness check, and the ports check of an app\'s own port): true for a port a listener holds; false for one held only as the local end of an outgoing connection (which portTaken counts as taken)', async (t) => {
  const server = net.createServer((s) => s.end());
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  t.after(() => server.close());
  const listened = (server.address() as net.AddressInfo).port;
  assert.equal(await tcpAnswers(listened), true);
  const client = net.connect(listened, '127.0.0.1');
  await once(client, 'connect');
  t.after(() => client.destroy());
  // The kernel gave the connection a local port from its ephemeral range: nothing listens there, though no listener can bind it now.
  assert.equal(await portTaken(client.localPort!), true);
  assert.equal(await tcpAnswers(client.localPort!), false);
});
