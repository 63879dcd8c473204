/**
 * Two nodes in one process sharing a real redis-server: a change through
 * either node's API is applied by the other; an app runs only on its node,
 * and the other node forwards its requests and WebSockets there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { startRedis } from '../helpers/redis.js';
import { startNode, until } from './helpers.js';

const APP = fileURLToPath(new URL('../fixtures/cluster/echo-app.mjs', import.meta.url));
const cmd = `${process.execPath} ${APP}`;

test('an app registered through node a is routed by node b at once, runs only on its node, and is reached through the other', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  const a = await startNode(t, 'a', redis.url);
  const b = await startNode(t, 'b', redis.url);

  const put = await a.api('PUT', '/apps/echo', { cmd, node: 'b', autostart: true });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  assert.equal(put.body.app.node, 'b');

  // b adopts it and starts it (autostart); a runs nothing.
  const running = await until('b runs echo', async () => {
    const v = await b.api('GET', '/apps/echo');
    return v.status === 200 && v.body.app.state === 'running' ? v.body.app : undefined;
  });
  assert.equal(a.server.supervisor.status('echo'), undefined, 'node a must not run an app of node b');
  assert.ok(running.pid > 0);

  // Through a: forwarded to b, whose app answers (its cwd is in b's data dir).
  const viaA = await until('a routes echo', async () => {
    const r = await fetch(`${a.url}/echo/hi`);
    return r.status === 200 ? ((await r.json()) as { cwd: string; url: string; pid: number }) : undefined;
  });
  assert.equal(viaA.url, '/hi');
  assert.ok(viaA.cwd.startsWith(b.server.dataDir), `${viaA.cwd} is in b's data dir`);

  // a's view shows b's state.
  const seen = await until('a sees echo running', async () => {
    const v = await a.api('GET', '/apps/echo');
    return v.body.app?.state === 'running' ? v.body.app : undefined;
  });
  assert.equal(seen.node, 'b');
  assert.equal(seen.pid, running.pid);

  // A WebSocket through a reaches b's app; the app's close code and reason come back intact.
  const ws = new WebSocket(`${a.url.replace('http', 'ws')}/echo/`);
  await new Promise((ok, fail) => (ws.once('open', ok), ws.once('error', fail)));
  ws.send('ping');
  const msg = await new Promise<Buffer>((ok) => ws.once('message', (data) => ok(data as Buffer)));
  assert.equal(msg.toString(), 'ping');
  ws.send('close:4001:bye from b');
  const [code, reason] = (await new Promise((ok) => ws.once('close', (...args) => ok(args)))) as [number, Buffer];
  assert.equal(code, 4001);
  assert.equal(reason.toString(), 'bye from b');

  // Stop through a: carried out by b.
  const stop = await a.api('POST', '/apps/echo/stop');
  assert.equal(stop.status, 200, JSON.stringify(stop.body));
  assert.equal(stop.body.app.state, 'stopped');
  assert.equal(b.server.supervisor.status('echo')?.state, 'stopped');

  // Logs through a come from b.
  const logs = await a.api('GET', '/apps/echo/logs?lines=20');
  assert.equal(logs.status, 200);
  assert.ok(logs.body.lines.some((l: string) => /listening on/.test(l)), JSON.stringify(logs.body));

  // Remove through b: gone from a too.
  assert.equal((await b.api('DELETE', '/apps/echo')).status, 200);
  await until('a forgets echo', async () => ((await a.api('GET', '/apps/echo')).status === 404 ? true : undefined));
});

test('the cluster view lists both nodes, up, with their apps, and an unknown node is refused', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  const a = await startNode(t, 'a', redis.url);
  const b = await startNode(t, 'b', redis.url);
  await until('a sees b', async () => ((await a.api('GET', '/cluster')).body.cluster.nodes.length === 2 ? true : undefined));
  assert.equal((await a.api('PUT', '/apps/one', { port: 9 })).status, 200);
  const view = await until('b sees one', async () => {
    const c = (await b.api('GET', '/cluster')).body.cluster;
    return c.nodes.find((n: { name: string; apps: string[] }) => n.name === 'a')?.apps.includes('one') ? c : undefined;
  });
  assert.equal(view.node, 'b');
  assert.equal(view.store.up, true);
  assert.deepEqual(
    view.nodes.map((n: { name: string; up: boolean; self: boolean }) => [n.name, n.up, n.self]),
    [
      ['a', true, false],
      ['b', true, true],
    ],
  );
  const bad = await a.api('PUT', '/apps/two', { port: 9, node: 'zz' });
  assert.equal(bad.status, 400);
  assert.match(bad.body.error.message, /no node named "zz" in this cluster \(nodes: a, b; or "any"\)/);
  const health = await (await fetch(`${b.url}/_porthole/health`)).json();
  assert.equal(health.status, 'ok');
  assert.equal(health.cluster.store.up, true);
});

test('autostart in a cluster: an app registered through its own node starts as one registered through another node does', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  const a = await startNode(t, 'a', redis.url);
  const b = await startNode(t, 'b', redis.url);
  assert.equal((await a.api('PUT', '/apps/here', { cmd, autostart: true })).status, 200);
  assert.equal((await a.api('PUT', '/apps/there', { cmd, autostart: true, node: 'b' })).status, 200);
  const states = await until('both run', async () => {
    const [here, there] = await Promise.all([a.api('GET', '/apps/here'), b.api('GET', '/apps/there')]);
    return here.body.app?.state === 'running' && there.body.app?.state === 'running' ? [here.body.app.node, there.body.app.node] : undefined;
  }, 10_000);
  assert.deepEqual(states, ['a', 'b']);
});
