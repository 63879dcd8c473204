/**
 * A Redis that answers too late (paused, swapping, a slow link): a write the
 * API gave up on may still be carried out by Redis once it resumes. The
 * answer must not claim that nothing was changed, and every node must end
 * with the change once Redis resumes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startRedis } from '../helpers/redis.js';
import { startNode, until } from './helpers.js';

test('a write that times out while Redis is paused says it may have been stored, and it is applied everywhere once Redis resumes', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  const r = new Redis(redis.url, { lazyConnect: true, retryStrategy: () => null });
  await r.connect();
  t.after(() => r.disconnect());
  const a = await startNode(t, 'a', redis.url);
  const b = await startNode(t, 'b', redis.url);
  await until('a sees b', async () => ((await a.api('GET', '/cluster')).body.cluster.nodes.length === 2 ? true : undefined));
  // Write commands (the write script) wait for 3 s; the store gives up after 2 s.
  await r.call('CLIENT', 'PAUSE', '3000', 'WRITE');
  const put = await a.api('PUT', '/apps/late', { port: 9 });
  assert.equal(put.status, 503, JSON.stringify(put.body));
  assert.equal(put.body.error.code, 'PH_ERR_STORE_UNAVAILABLE');
  assert.doesNotMatch(put.body.error.message, /nothing was changed/, 'Redis may still carry out a write it received: the answer cannot promise nothing changed');
  // Once Redis resumes, the write it held is carried out: both nodes have the app.
  for (const n of [a, b]) await until(`${n.name} has late`, async () => ((await n.api('GET', '/apps/late')).status === 200 ? true : undefined), 6_000);
});
