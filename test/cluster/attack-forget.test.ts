/**
 * `porthole nodes --forget NAME` through one node forgets the node on every
 * node: `GET /cluster` of the others stops listing it too, as the docs say
 * ("stays listed as down until porthole nodes --forget").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis } from '../helpers/redis.js';
import { startNode, until } from './helpers.js';

type NodeRow = { name: string; up: boolean };

test('a node forgotten through one node is forgotten by every node', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  const a = await startNode(t, 'a', redis.url);
  const b = await startNode(t, 'b', redis.url);
  const c = await startNode(t, 'c', redis.url);
  for (const n of [a, b]) await until(`${n.name} sees c`, async () => ((await n.api('GET', '/cluster')).body.cluster.nodes.some((x: NodeRow) => x.name === 'c' && x.up) ? true : undefined));
  await c.close();
  for (const n of [a, b]) await until(`${n.name} sees c down`, async () => ((await n.api('GET', '/cluster')).body.cluster.nodes.some((x: NodeRow) => x.name === 'c' && !x.up) ? true : undefined));

  const forget = await a.api('DELETE', '/cluster/nodes/c');
  assert.equal(forget.status, 200, JSON.stringify(forget.body));
  assert.deepEqual((await a.api('GET', '/cluster')).body.cluster.nodes.map((x: NodeRow) => x.name), ['a', 'b']);
  // b looks every 400 ms (TTL 2 s): give it a few looks.
  await new Promise((ok) => setTimeout(ok, 1_500));
  assert.deepEqual((await b.api('GET', '/cluster')).body.cluster.nodes.map((x: NodeRow) => x.name), ['a', 'b'], 'b still lists the forgotten node c');
  // And a does not learn it back from b.
  assert.deepEqual((await a.api('GET', '/cluster')).body.cluster.nodes.map((x: NodeRow) => x.name), ['a', 'b']);
});
