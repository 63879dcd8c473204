/**
 * Issue 11, "How it is proven": with Redis persistence on (AOF, fsync on
 * every write), every registration the API acknowledged survives a
 * `kill -9` of Redis in the middle of a stream of registrations through
 * every node, on separate hosts; writes while it is down answer 503
 * PH_ERR_STORE_UNAVAILABLE; after the restart every node converges on the
 * version Redis kept (no reseed: the registry was not lost).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startNsCluster, until, withLogs } from './netns-helpers.js';

test('Redis with persistence killed with -9 during registrations through every node: every acknowledged registration survives, refused ones answered 503, every node converges on Redis\'s version', { timeout: 180_000 }, async (t) => {
  const cl = await startNsCluster(t, { persist: true });
  await withLogs(cl, async () => {
    const redis = () => {
      const r = new Redis(cl.redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
      r.on('error', () => {});
      t.after(() => r.disconnect());
      return r.connect().then(() => r);
    };
    const before = await redis();
    const epoch = await before.get('e2e:epoch');
    assert.ok(epoch, 'the registry has an epoch');
    before.disconnect();

    // Every node registers apps as fast as its API answers; the outcome of each is kept.
    const acked: string[] = [];
    const refused: string[] = [];
    const other: string[] = [];
    let stop = false;
    const writers = cl.nodes.map(async (n) => {
      for (let k = 0; !stop && k < 5_000; k++) {
        const name = `w-${n.name}-${k}`;
        const r = await n.api('PUT', `/apps/${name}`, { port: 7000 + (k % 1000) }).catch((e: Error) => ({ status: 0, body: { error: { code: e.message } } }));
        if (r.status === 200) acked.push(name);
        else if (r.status === 503 && r.body?.error?.code === 'PH_ERR_STORE_UNAVAILABLE') refused.push(name);
        else other.push(`${name}: ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
        if (r.status !== 200) await new Promise((res) => setTimeout(res, 20));
      }
    });
    await until('some registrations acknowledged', () => (acked.length >= 60 ? true : undefined), 20_000, 10);
    await cl.redis.kill();
    const ackedAtKill = acked.length;
    await until('writes refused on every node', () => (cl.nodes.every((n) => refused.some((x) => x.startsWith(`w-${n.name}-`))) ? true : undefined), 10_000, 10);
    const restarted = performance.now();
    await cl.redis.restart();
    await until('writes acknowledged again on every node', () => (cl.nodes.every((n) => acked.slice(ackedAtKill).some((x) => x.startsWith(`w-${n.name}-`))) ? true : undefined), 15_000, 10);
    stop = true;
    await Promise.all(writers);
    assert.deepEqual(other, [], 'every write was acknowledged (200) or refused (503 PH_ERR_STORE_UNAVAILABLE)');

    const r = await redis();
    assert.equal(await r.get('e2e:epoch'), epoch, 'the registry came back from the AOF (same epoch: no reseed)');
    const version = await until('every node at the version Redis holds', async () => {
      const views = await Promise.all(cl.nodes.map(async (n) => (await n.api('GET', '/cluster')).body.cluster));
      const stored = Number(await r.get('e2e:version'));
      return views.every((v) => v.store.up && v.version === stored) ? stored : undefined;
    }, 15_000, 20);
    const convergedMs = performance.now() - restarted;
    const inRedis = new Set(await r.smembers('e2e:apps'));
    const lost = acked.filter((n) => !inRedis.has(n));
    console.log(`persistence: ${ackedAtKill} registrations acknowledged before kill -9, ${refused.length} refused (503) while Redis was down, ${acked.length - ackedAtKill} after; every node at version ${version} ${convergedMs.toFixed(0)} ms after the restart; lost: ${lost.length}`);
    assert.deepEqual(lost, [], 'no acknowledged registration is lost');
    // Every node has every acknowledged app, and only what Redis has.
    for (const n of cl.nodes) {
      const names = new Set(((await n.api('GET', '/apps')).body.apps as { name: string }[]).map((x) => x.name));
      assert.deepEqual(acked.filter((x) => !names.has(x)), [], `node ${n.name} has every acknowledged app`);
      assert.deepEqual([...names].filter((x) => !inRedis.has(x)), [], `node ${n.name} has nothing Redis has not`);
    }
  });
});
