/**
 * A cluster node's metrics: every node's up/down as it sees it, its store,
 * its registry version and lease, and the cluster events.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startRedis } from '../helpers/redis.js';
import { startNode, until, type TestNode } from './helpers.js';

const scrape = async (n: TestNode) => (await fetch(`${n.url}/_porthole/metrics`, { headers: { authorization: `Bearer ${n.started.token}` } })).text();

test('metrics show each node up, then node b down once it leaves, with the store up, the version and one leader', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  const a = await startNode(t, 'a', redis.url);
  const b = await startNode(t, 'b', redis.url);
  await until('a sees b up', async () => ((await scrape(a)).includes('porthole_cluster_node_up{node="b"} 1') ? true : undefined));
  const text = await scrape(a);
  assert.match(text, /^porthole_cluster_node_up\{node="a"\} 1$/m);
  assert.match(text, /^porthole_cluster_store_up 1$/m);
  assert.match(text, /^porthole_cluster_registry_version \d+$/m);
  await until('one leader', async () => {
    const [la, lb] = await Promise.all([scrape(a), scrape(b)]).then((x) => x.map((s) => Number(/^porthole_cluster_leader (\d)$/m.exec(s)?.[1])));
    return la + lb === 1 ? true : undefined;
  });
  await b.close();
  const after = await until('a sees b down', async () => {
    const s = await scrape(a);
    return s.includes('porthole_cluster_node_up{node="b"} 0') ? s : undefined;
  });
  assert.match(after, /^porthole_cluster_events_total\{action="node_down"\} 1$/m);
  assert.match(after, /^porthole_cluster_leader 1$/m, 'a holds the lease once b is gone');
});

test('a draining node leaves the cluster before it drains: the other node answers for its apps at once', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  // An app that holds every request until released: b's drain waits for the one in flight.
  let release: () => void = () => {};
  const released = new Promise<void>((r) => (release = r));
  const slow = http.createServer((_req, res) => void released.then(() => res.end('done')));
  await new Promise<void>((r) => slow.listen(0, '127.0.0.1', () => r()));
  t.after(() => (release(), new Promise((r) => slow.close(r))));
  const a = await startNode(t, 'a', redis.url);
  const b = await startNode(t, 'b', redis.url, { drain_timeout: '30s' });
  assert.equal((await b.api('PUT', '/apps/slow', { port: (slow.address() as AddressInfo).port })).status, 200);
  assert.equal((await a.api('PUT', '/apps/web', { port: 9, node: 'b' })).status, 200);
  await until('a sees b', async () => ((await a.api('GET', '/cluster')).body.cluster.nodes.some((n: { name: string; up: boolean }) => n.name === 'b' && n.up) ? true : undefined));
  const held = fetch(`${b.url}/slow/`).then((r) => r.text());
  await until('the request is in flight on b', () => (b.server.gateway as unknown as { activeRequests: number }).activeRequests > 0 || undefined);
  const draining = b.server.drain(30_000);
  const down = await until('a answers for b while b drains', async () => {
    const r = await fetch(`${a.url}/web/`, { headers: { accept: 'application/json' } });
    return r.status === 503 ? ((await r.json()) as { error: { code: string; message: string } }) : undefined;
  }, 3_000);
  assert.equal(down.error.code, 'PH_ERR_NODE_DOWN');
  assert.match(down.error.message, /runs on node b, which is down/);
  release();
  assert.equal(await held, 'done', 'the request in flight on b finished');
  await draining;
});
