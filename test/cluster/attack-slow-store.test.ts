/**
 * A Redis that holds writes (CLIENT PAUSE WRITE: a replica failover, an
 * operator's pause) past the store's command timeout: the API answers 503
 * "nothing was changed", and that must stay true once Redis resumes and works
 * through the write it held: no node applies it, and the version stays.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startRedis } from '../helpers/redis.js';
import { startNode, until } from './helpers.js';

test('a write refused with 503 while Redis pauses writes is not applied by any node when Redis resumes', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  const r = new Redis(redis.url, { lazyConnect: true, retryStrategy: () => null });
  await r.connect();
  t.after(() => r.disconnect());
  const a = await startNode(t, 'a', redis.url);
  const b = await startNode(t, 'b', redis.url);
  await until('a sees b', async () => ((await a.api('GET', '/cluster')).body.cluster.nodes.length === 2 ? true : undefined));
  const version = Number(await r.get(`t${process.pid}:version`));
  // Write commands (the write script among them) wait 3 s; the store gives up after 2 s.
  await r.call('CLIENT', 'PAUSE', '3000', 'WRITE');
  const put = await a.api('PUT', '/apps/late', { port: 9 });
  assert.equal(put.status, 503, JSON.stringify(put.body));
  assert.equal(put.body.error.code, 'PH_ERR_STORE_UNAVAILABLE');
  assert.match(put.body.error.message, /nothing was changed/);
  // Redis resumes and runs what it held; a write after it is answered once the held one has run.
  await until('writes work again', async () => ((await b.api('PUT', '/apps/after', { port: 9 })).status === 200 ? true : undefined), 6_000);
  for (const n of [a, b]) await until(`${n.name} has after`, async () => ((await n.api('GET', '/apps/after')).status === 200 ? true : undefined));
  for (const n of [a, b]) assert.equal((await n.api('GET', '/apps/late')).status, 404, `${n.name} applied a write the API said was not made`);
  assert.equal(await r.exists(`t${process.pid}:app:late`), 0, 'Redis stored a write the API said was not made');
  assert.equal(Number(await r.get(`t${process.pid}:version`)), version + 1, 'only the write after it changed the version');
});
