/**
 * A node forgotten through one node (`porthole nodes --forget`) is gone from
 * every node's list, while a node that is up is never dropped because the
 * store lost the list of nodes (test/cluster/store-restart.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis } from '../helpers/redis.js';
import { startNode, until } from './helpers.js';

test('a node forgotten through node a is gone from node b\'s list too', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  const a = await startNode(t, 'a', redis.url);
  const b = await startNode(t, 'b', redis.url);
  const c = await startNode(t, 'c', redis.url);
  const names = async (n: typeof a) => ((await n.api('GET', '/cluster')).body.cluster.nodes as { name: string; up: boolean }[]).map((x) => `${x.name}:${x.up ? 'up' : 'down'}`);
  await until('b sees c up', async () => ((await names(b)).includes('c:up') ? true : undefined));
  await c.close();
  await until('a and b see c down', async () => ((await names(a)).includes('c:down') && (await names(b)).includes('c:down') ? true : undefined));
  const forgot = await a.api('DELETE', '/cluster/nodes/c');
  assert.equal(forgot.status, 200, JSON.stringify(forgot.body));
  assert.deepEqual(await names(a), ['a:up', 'b:up']);
  const onB = await until('b forgets c', async () => {
    const list = await names(b);
    return list.some((x) => x.startsWith('c:')) ? undefined : list;
  }, 5_000);
  assert.deepEqual(onB, ['a:up', 'b:up']);
});
