/**
 * A write the API refused because Redis did not answer in time (503
 * PH_ERR_STORE_UNAVAILABLE, "nothing was changed") must not be applied when
 * Redis gets to it later. Redis is frozen with SIGSTOP here, so the command
 * waits in its socket; the namespace test does the same with a partition
 * (test/cluster/netns-partition-write.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startRedis } from '../helpers/redis.js';
import { startNode, until } from './helpers.js';

test('a registration refused with 503 while Redis hangs is not applied when Redis resumes', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  t.after(() => {
    try {
      process.kill(redis.pid, 'SIGCONT');
    } catch {
      // gone
    }
  });
  const a = await startNode(t, 'a', redis.url);
  const r = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  r.on('error', () => {});
  await r.connect();
  t.after(() => r.disconnect());
  const prefix = `t${process.pid}:`;
  const version = Number(await r.get(`${prefix}version`));

  process.kill(redis.pid, 'SIGSTOP');
  const put = await a.api('PUT', '/apps/ghost', { port: 7002 });
  assert.equal(put.status, 503, JSON.stringify(put.body));
  assert.equal(put.body.error.code, 'PH_ERR_STORE_UNAVAILABLE');
  process.kill(redis.pid, 'SIGCONT');

  // Redis works through what waited in the node's connection, in order: once a command sent after
  // the refused write is answered, the write has been run (or refused) by Redis.
  await until('a has the store back', async () => ((await a.api('GET', '/cluster')).body.cluster.store.up ? true : undefined), 10_000);
  assert.equal(await r.sismember(`${prefix}apps`, 'ghost'), 0, 'the refused registration was not applied later');
  assert.equal(Number(await r.get(`${prefix}version`)), version, 'the version did not move');
  assert.equal((await a.api('GET', '/apps/ghost')).status, 404);
  // And the next registration is acknowledged and stored.
  assert.equal((await a.api('PUT', '/apps/real', { port: 7003 })).status, 200);
  assert.equal(await r.sismember(`${prefix}apps`, 'real'), 1);
});
