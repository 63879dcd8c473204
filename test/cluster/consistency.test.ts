/**
 * Two nodes writing at once never both win: each write is checked against
 * the registry version it was validated on, and checked again when another
 * node changed it meanwhile. While Redis is away, writes are refused (503)
 * and nothing is acknowledged; routing goes on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis } from '../helpers/redis.js';
import { startNode, until } from './helpers.js';

test('two nodes registering apps with the same prefixes at once: one of each pair wins, the other gets 409, both end with one registry', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  const a = await startNode(t, 'a', redis.url);
  const b = await startNode(t, 'b', redis.url);
  const pairs = 12;
  const results = await Promise.all(
    Array.from({ length: pairs }, (_, i) => [a.api('PUT', `/apps/x${i}`, { port: 9, prefix: `/p${i}` }), b.api('PUT', `/apps/y${i}`, { port: 9, prefix: `/p${i}` })]).flat(),
  );
  for (let i = 0; i < pairs; i++) {
    const [ra, rb] = [results[2 * i], results[2 * i + 1]];
    const statuses = [ra.status, rb.status].sort();
    assert.deepEqual(statuses, [200, 409], `pair ${i}: ${JSON.stringify([ra.body, rb.body])}`);
    const loser = ra.status === 409 ? ra : rb;
    assert.match(loser.body.error.message, /prefix: "\/p\d+" is already the prefix of/);
  }
  const names = (n: typeof a) => n.api('GET', '/apps').then((r) => r.body.apps.map((x: { name: string }) => x.name).sort().join(','));
  const same = await until('both nodes hold the same apps', async () => {
    const [na, nb] = await Promise.all([names(a), names(b)]);
    return na === nb && na.split(',').length === pairs ? na : undefined;
  });
  assert.equal(same.split(',').length, pairs);
  const [va, vb] = await Promise.all([a.api('GET', '/cluster'), b.api('GET', '/cluster')]);
  assert.equal(va.body.cluster.version, vb.body.cluster.version);
});

test('while Redis is stopped: writes get 503 PH_ERR_STORE_UNAVAILABLE, health says degraded, routing goes on; afterwards writes work again', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  const a = await startNode(t, 'a', redis.url);
  const up = await a.api('PUT', '/apps/web', { port: 9 });
  assert.equal(up.status, 200);
  await redis.stop();
  const refused = await a.api('PUT', '/apps/more', { port: 9 });
  assert.equal(refused.status, 503, JSON.stringify(refused.body));
  assert.equal(refused.body.error.code, 'PH_ERR_STORE_UNAVAILABLE');
  assert.match(refused.body.error.message, /nothing was changed/);
  const removal = await a.api('DELETE', '/apps/web');
  assert.equal(removal.status, 503);
  const health = await until('health says degraded', async () => {
    const h = await (await fetch(`${a.url}/_porthole/health`)).json();
    return h.status === 'degraded' ? h : undefined;
  });
  assert.equal(health.cluster.store.up, false);
  assert.match(health.cluster.store.down_since, /^\d{4}-/);
  // The app is still routed (its upstream refuses: 502, not 404).
  assert.equal((await fetch(`${a.url}/web/`)).status, 502);
  assert.equal((await a.api('GET', '/apps/more')).status, 404, 'a refused write is not half applied');

  await redis.restart();
  const again = await until('writes work again', async () => {
    const r = await a.api('PUT', '/apps/more', { port: 9 });
    return r.status === 200 ? r : undefined;
  }, 10_000);
  assert.equal(again.body.app.name, 'more');
  const h2 = await (await fetch(`${a.url}/_porthole/health`)).json();
  assert.equal(h2.status, 'ok');
});
