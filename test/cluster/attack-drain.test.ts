/**
 * A node that drains (SIGTERM, `porthole serve` reloading into a new
 * version) leaves the cluster first: the other nodes see it go and answer
 * its apps 503 PH_ERR_NODE_DOWN, rather than forwarding to a peer listener
 * that no longer accepts (502 "refused the connection").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startRedis } from '../helpers/redis.js';
import { startNode, until } from './helpers.js';

test('a draining node leaves the cluster first: the others answer its apps 503 PH_ERR_NODE_DOWN, never 502', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  // The app on b's loopback: /slow is held until released (it keeps b's drain waiting), the rest answers at once.
  const held: http.ServerResponse[] = [];
  const app = http.createServer((req, res) => {
    if (req.url?.endsWith('/slow')) return void held.push(res);
    res.end('ok');
  });
  await new Promise<void>((ok) => app.listen(0, '127.0.0.1', ok));
  t.after(() => new Promise<void>((ok) => (held.forEach((r) => r.destroy()), app.closeAllConnections(), app.close(() => ok()))));
  const port = (app.address() as AddressInfo).port;

  const a = await startNode(t, 'a', redis.url);
  const b = await startNode(t, 'b', redis.url);
  await until('a sees b', async () => ((await a.api('GET', '/cluster')).body.cluster.nodes.length === 2 ? true : undefined));
  assert.equal((await b.api('PUT', '/apps/web', { port })).status, 200);
  await until('a routes web to b', async () => ((await fetch(`${a.url}/web/x`)).status === 200 ? true : undefined));

  // A request in flight through a keeps b draining.
  const slow = fetch(`${a.url}/web/slow`).then((r) => r.status, () => 0);
  await until('the slow request reached the app', () => (held.length ? true : undefined));
  const draining = b.server.drain(10_000);

  const answers: string[] = [];
  const until503 = Date.now() + 4_000;
  let down = false;
  while (Date.now() < until503 && !down) {
    const r = await fetch(`${a.url}/web/x`);
    const code = r.headers.get('x-porthole-error') ?? '';
    answers.push(`${r.status} ${code}`);
    down = r.status === 503 && code === 'PH_ERR_NODE_DOWN';
    await new Promise((ok) => setTimeout(ok, 25));
  }
  held.forEach((r) => r.end('done'));
  assert.equal(await slow, 200, 'the request in flight finishes');
  await draining;
  assert.ok(down, `a never said b is down while b drained: ${[...new Set(answers)].join(', ')}`);
  const bad = answers.filter((s) => !s.startsWith('200') && s !== '503 PH_ERR_NODE_DOWN');
  assert.deepEqual([...new Set(bad)], [], 'while b drains, a answers its apps from b or says b is down, never a failed hop');
});
