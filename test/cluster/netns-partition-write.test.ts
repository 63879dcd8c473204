/**
 * A write through a node that is cut off from Redis: the API answers 503
 * PH_ERR_STORE_UNAVAILABLE ("nothing was changed"), and it must stay so:
 * the command that timed out must not be applied when the link returns and
 * TCP delivers what it had queued.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startNsCluster, until, withLogs, type NsCluster, type NsNode } from './netns-helpers.js';

/** An admin API call from inside node n's own namespace (the test process cannot reach it during a partition). */
async function apiFrom(cl: NsCluster, n: NsNode, method: string, path: string, body?: unknown): Promise<{ status: number; json: any } | 'no answer'> {
  const code = `fetch(process.argv[1],{method:process.argv[2],headers:{authorization:'Bearer '+process.argv[3],'content-type':'application/json'},body:process.argv[4]||undefined,signal:AbortSignal.timeout(8000)}).then(async r=>console.log(JSON.stringify({status:r.status,body:await r.text()})),(e)=>console.log('no answer '+e.message))`;
  const r = await cl.net.exec(n.i, process.execPath, ['-e', code, `${n.url}/_porthole/api${path}`, method, n.token, body === undefined ? '' : JSON.stringify(body)], 15_000);
  const out = r.stdout.trim();
  if (!out.startsWith('{')) return 'no answer';
  const parsed = JSON.parse(out) as { status: number; body: string };
  return { status: parsed.status, json: JSON.parse(parsed.body) };
}

test('a write through a partitioned node answers 503 and is never applied, not even when the link returns', { timeout: 180_000 }, async (t) => {
  const cl = await startNsCluster(t);
  const [a, , c] = cl.nodes as [NsNode, NsNode, NsNode];
  await withLogs(cl, async () => {
    const redis = new Redis(cl.redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    redis.on('error', () => {});
    await redis.connect();
    t.after(() => redis.disconnect());
    assert.equal((await a.api('PUT', '/apps/before', { port: 7001 })).status, 200);
    await until('c has the registry', async () => ((await c.api('GET', '/apps/before')).status === 200 ? true : undefined));
    const version = Number(await redis.get('e2e:version'));

    await cl.net.partition(c.i);
    // Through c, from c's side of the cut: refused, since c cannot reach Redis.
    for (const [method, path, body] of [
      ['PUT', '/apps/ghost', { port: 7002 }],
      ['DELETE', '/apps/before', undefined],
    ] as const) {
      const r = await apiFrom(cl, c, method, path, body);
      assert.ok(r !== 'no answer', `${method} ${path} through c answered`);
      assert.equal(r.status, 503, `${method} ${path} through c: ${JSON.stringify(r.json)}`);
      assert.equal(r.json.error.code, 'PH_ERR_STORE_UNAVAILABLE');
    }
    await cl.net.heal(c.i);
    // c reads the registry again over the same connection its timed-out writes were queued on:
    // once it is back at Redis's version, Redis has seen (and must have refused) them.
    await until(
      'c converged after the heal',
      async () => {
        const v = (await c.api('GET', '/cluster').catch(() => undefined))?.body?.cluster;
        return v?.store.up && v.version === Number(await redis.get('e2e:version')) ? true : undefined;
      },
      30_000,
      20,
    );
    // And a heartbeat of c's after that, on the same connection.
    // (the key's time to live only goes up when c writes it again)
    let ttlLeft = await redis.pttl('e2e:node:c');
    await until(
      'c beats again',
      async () => {
        const now = await redis.pttl('e2e:node:c');
        const beaten = now > ttlLeft;
        ttlLeft = now;
        return beaten ? true : undefined;
      },
      10_000,
      20,
    );
    assert.equal(Number(await redis.get('e2e:version')), version, 'the registry version did not move: nothing was written');
    assert.equal(await redis.sismember('e2e:apps', 'ghost'), 0, 'the refused registration was not applied later');
    assert.equal(await redis.sismember('e2e:apps', 'before'), 1, 'the refused removal was not applied later');
    for (const n of cl.nodes) {
      assert.equal((await n.api('GET', '/apps/ghost')).status, 404, `node ${n.name} has no ghost`);
      assert.equal((await n.api('GET', '/apps/before')).status, 200, `node ${n.name} still has before`);
    }
  });
});
