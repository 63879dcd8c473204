/**
 * Writes through several nodes at once: each node validates against the
 * registry version it holds, and a write that another node's change beat is
 * read again, checked again and retried, never answered 500. Regression test
 * for a defect the namespace tests found (test/cluster/netns-store-persist.test.ts).
 *
 * A registration that only collided with other nodes' writes is not a
 * conflict its caller made: it is retried (with a random backoff, for a
 * time budget) until it goes in, and answered 409 PH_ERR_CONFLICT only when
 * it is one (a taken prefix or host, a reserved or config-file name).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis } from '../helpers/redis.js';
import { startNode, until } from './helpers.js';

test('registrations and removals through two nodes at once are all acknowledged, and both nodes end with the same apps', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  const a = await startNode(t, 'a', redis.url);
  const b = await startNode(t, 'b', redis.url);
  const answers: string[] = [];
  await Promise.all(
    [a, b].map(async (n) => {
      for (let k = 0; k < 40; k++) {
        const put = await n.api('PUT', `/apps/${n.name}${k}`, { port: 7000 + k });
        if (put.status !== 200) answers.push(`PUT ${n.name}${k} through ${n.name}: ${put.status} ${JSON.stringify(put.body)}`);
        if (k % 4 === 3) {
          const del = await n.api('DELETE', `/apps/${n.name}${k - 1}`);
          if (del.status !== 200) answers.push(`DELETE ${n.name}${k - 1} through ${n.name}: ${del.status} ${JSON.stringify(del.body)}`);
        }
      }
    }),
  );
  assert.deepEqual(answers, [], 'every write through either node was acknowledged');
  const expected = ['a', 'b'].flatMap((n) => Array.from({ length: 40 }, (_, k) => k).filter((k) => k % 4 !== 2).map((k) => `${n}${k}`)).sort();
  for (const n of [a, b]) {
    const names = await until(`${n.name} has every app`, async () => {
      const got = ((await n.api('GET', '/apps')).body.apps as { name: string }[]).map((x) => x.name).sort();
      return JSON.stringify(got) === JSON.stringify(expected) ? got : undefined;
    });
    assert.deepEqual(names, expected);
  }
});

test('registrations through three nodes at once, as fast as each answers, are all acknowledged', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  const nodes = [await startNode(t, 'a', redis.url), await startNode(t, 'b', redis.url), await startNode(t, 'c', redis.url)];
  const refused: string[] = [];
  await Promise.all(
    nodes.map(async (n) => {
      for (let k = 0; k < 60; k++) {
        const put = await n.api('PUT', `/apps/${n.name}${k}`, { port: 7000 + k });
        if (put.status !== 200) refused.push(`PUT ${n.name}${k}: ${put.status} ${JSON.stringify(put.body)}`);
      }
    }),
  );
  assert.deepEqual(refused, [], 'every registration was acknowledged');
});

test('registrations of different apps through five nodes at once, two clients each, are all acknowledged: losing a race to other nodes is not a 409', { timeout: 120_000 }, async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  const nodes = [];
  for (const name of ['a', 'b', 'c', 'd', 'e']) nodes.push(await startNode(t, name, redis.url));
  const refused: string[] = [];
  await Promise.all(
    nodes.flatMap((n) =>
      [0, 1].map(async (client) => {
        for (let k = 0; k < 30; k++) {
          const name = `${n.name}${client}x${k}`;
          const put = await n.api('PUT', `/apps/${name}`, { port: 7000 + k });
          if (put.status !== 200) refused.push(`PUT ${name}: ${put.status} ${JSON.stringify(put.body)}`);
        }
      }),
    ),
  );
  assert.deepEqual(refused, [], 'every registration was acknowledged');
  // A real conflict is still one: a prefix another node's app holds.
  const taken = await nodes[4]!.api('PUT', '/apps/other', { port: 7999, prefix: '/a0x0' });
  assert.equal(taken.status, 409);
  assert.equal(taken.body.error.code, 'PH_ERR_CONFLICT');
  assert.doesNotMatch(taken.body.error.message, /kept changing/);
});
