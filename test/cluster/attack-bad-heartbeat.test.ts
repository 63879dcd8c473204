/**
 * A heartbeat in Redis that is not what a node of this version writes (a
 * node of another Porthole version during a rolling upgrade, a hand edit,
 * someone with write access to Redis): the other nodes treat that node as
 * down and keep working. Nothing in one heartbeat may break the admin API,
 * the routes, or the store's state on every node.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startRedis } from '../helpers/redis.js';
import { startNode, until } from './helpers.js';

const PREFIX = `t${process.pid}:`;

// All four at once: every test has its own Redis and node, and most of each is waiting for the node's looks at Redis.
describe('bad heartbeats in Redis', { concurrency: 4 }, () => {
  for (const [what, beat] of [
    ['without apps', { name: 'odd', instance: 'x', advertise: '127.0.0.1:9', started_at: 'now', version: 0 }],
    ['with an advertise that is no host:port', { name: 'odd', instance: 'x', advertise: 'no where/x', started_at: 'now', version: 0, apps: {} }],
    ['that is a JSON number', 5],
  ] as const) {
    test(`a heartbeat ${what} leaves the API, the routes and the store's state of the other nodes working`, async (t) => {
      const redis = await startRedis();
      t.after(() => redis.close());
      const r = new Redis(redis.url, { lazyConnect: true, retryStrategy: () => null });
      await r.connect();
      t.after(() => r.disconnect());
      const a = await startNode(t, 'a', redis.url);
      // A node "odd" with a heartbeat of the right shape first: an app may name it.
      const good = { name: 'odd', instance: 'x', advertise: '127.0.0.1:9', started_at: 'now', version: 0, apps: {} };
      await r.multi().set(`${PREFIX}node:odd`, JSON.stringify(good), 'PX', 60_000).hset(`${PREFIX}nodes`, 'odd', '{}').exec();
      await until('a sees odd', async () => ((await a.api('GET', '/cluster')).body.cluster.nodes.some((n: { name: string }) => n.name === 'odd') ? true : undefined));
      const put = await a.api('PUT', '/apps/far', { port: 9, node: 'odd' });
      assert.equal(put.status, 200, JSON.stringify(put.body));

      await r.set(`${PREFIX}node:odd`, JSON.stringify(beat), 'PX', 60_000);
      // Two looks of a (every 400 ms with a 2 s TTL).
      await new Promise((ok) => setTimeout(ok, 1_000));

      const list = await a.api('GET', '/apps');
      assert.equal(list.status, 200, `GET /apps: ${JSON.stringify(list.body).slice(0, 300)}`);
      const view = await a.api('GET', '/cluster');
      assert.equal(view.status, 200);
      assert.equal(view.body.cluster.store.up, true, 'the store is up: a bad heartbeat is not a store outage');
      const health = await (await fetch(`${a.url}/_porthole/health`)).json();
      assert.equal(health.status, 'ok', JSON.stringify(health).slice(0, 300));
      // A new app is registered and routed as usual.
      const app = await a.api('PUT', '/apps/near', { port: 9 });
      assert.equal(app.status, 200, JSON.stringify(app.body).slice(0, 300));
      const res = await fetch(`${a.url}/near/`);
      assert.equal(res.headers.get('x-porthole-error'), 'PH_ERR_UPSTREAM_REFUSED', 'near is routed (to its port 9, which refuses)');
      // The app on the odd node is refused as its node's (never sent to a host the heartbeat names at random).
      const far = await fetch(`${a.url}/far/`);
      assert.equal(far.status, 503, `far: ${far.status} ${far.headers.get('x-porthole-error')}`);
      assert.equal(far.headers.get('x-porthole-error'), 'PH_ERR_NODE_DOWN');
    });
  }

  test('a name in the nodes hash that no node could have is not listed as a node', async (t) => {
    const redis = await startRedis();
    t.after(() => redis.close());
    const r = new Redis(redis.url, { lazyConnect: true, retryStrategy: () => null });
    await r.connect();
    t.after(() => r.disconnect());
    const a = await startNode(t, 'a', redis.url);
    await r.hset(`${PREFIX}nodes`, '<img src=x onerror=alert(1)>', '{}', 'any', '{}');
    await new Promise((ok) => setTimeout(ok, 1_000));
    const view = await a.api('GET', '/cluster');
    assert.deepEqual(view.body.cluster.nodes.map((n: { name: string }) => n.name), ['a']);
  });
});
