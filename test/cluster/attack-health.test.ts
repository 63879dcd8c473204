/**
 * `/_porthole/health` answers anyone who reaches the public listener, without
 * a token (load balancers probe it). In a cluster it says whether the store
 * is up; it must not hand a stranger the cluster's map: the peer listeners'
 * private addresses, where Redis is, which apps run where.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis } from '../helpers/redis.js';
import { startNode, until } from './helpers.js';

test('the health endpoint without a token says the store is up, and nothing of the nodes’ addresses, Redis or the apps', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  const a = await startNode(t, 'a', redis.url);
  const b = await startNode(t, 'b', redis.url);
  assert.equal((await a.api('PUT', '/apps/secretive', { port: 9, node: 'b' })).status, 200);
  await until('b has secretive', async () => ((await b.api('GET', '/apps/secretive')).status === 200 ? true : undefined));
  const res = await fetch(`${a.url}/_porthole/health`);
  assert.equal(res.status, 200);
  const text = await res.text();
  const health = JSON.parse(text);
  assert.equal(health.status, 'ok');
  assert.equal(health.cluster.store.up, true);
  for (const secret of [a.started.node!.peer, b.started.node!.peer, `:${redis.port}`, 'secretive', b.url]) {
    assert.ok(!text.includes(secret), `the health answer shows ${secret} to anyone: ${text}`);
  }
  // The admin API (with the token) still has it all.
  const view = (await a.api('GET', '/cluster')).body.cluster;
  assert.equal(view.nodes.find((n: { name: string }) => n.name === 'b').advertise, b.started.node!.peer);
});
