/**
 * Redis restarted under a running cluster (two or three nodes in the test
 * process): what the nodes know about each other must outlive the store's
 * data. Regression tests for defects the namespace tests found
 * (test/cluster/netns-store-outage.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { startRedis } from '../helpers/redis.js';
import { Redis } from 'ioredis';
import { startNode, until } from './helpers.js';
import { request } from './netns-helpers.js';

const APP = fileURLToPath(new URL('../fixtures/cluster/echo-app.mjs', import.meta.url));
const cmd = `${process.execPath} ${APP}`;

/** GETs `url` until stopped; every answer but the app's 200 is kept. */
function traffic(url: string): { stop(): Promise<{ ok: number; failures: string[] }> } {
  let stopping = false;
  const out = { ok: 0, failures: [] as string[] };
  const loop = (async () => {
    for (let k = 0; !stopping && k < 20_000; k++) {
      try {
        const r = await request(url, { headers: { accept: 'application/json' }, timeoutMs: 5_000 });
        if (r.status === 200) out.ok++;
        else out.failures.push(`${r.status} ${r.body.slice(0, 200)}`);
      } catch (err) {
        out.failures.push((err as Error).message);
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  return {
    async stop() {
      stopping = true;
      await loop;
      return out;
    },
  };
}

test('Redis restarted empty: a node keeps routing to another node\'s app while that node has not beaten again (it is not forgotten, nor marked down)', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  const a = await startNode(t, 'a', redis.url);
  // b beats every 2 s (a third of its TTL): after Redis comes back empty, its heartbeat is missing that long.
  const b = await startNode(t, 'b', redis.url, {}, { heartbeat_ttl: '6s' });
  assert.equal((await b.api('PUT', '/apps/echo', { cmd })).status, 200);
  assert.equal((await b.api('POST', '/apps/echo/start')).status, 200);
  await until('a routes echo to b', async () => ((await fetch(`${a.url}/echo/`)).status === 200 ? true : undefined));

  const load = traffic(`${a.url}/echo/`);
  // Right after b's heartbeat: its next one is 2 s away, so the window is there every run.
  const r = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  r.on('error', () => {});
  await r.connect();
  await until('b has just beaten', async () => ((await r.pttl(`t${process.pid}:node:b`)) > 5_900 ? true : undefined), 5_000);
  r.disconnect();
  await redis.restart();
  // Until b has beaten again, and both have the registry back.
  await until('both nodes at one version with the store up', async () => {
    const [va, vb] = await Promise.all([a.api('GET', '/cluster'), b.api('GET', '/cluster')]);
    return va.body.cluster.store.up && vb.body.cluster.store.up && va.body.cluster.version === vb.body.cluster.version && va.body.cluster.version > 0 ? true : undefined;
  }, 10_000);
  await new Promise((r) => setTimeout(r, 2_500)); // past b's next heartbeat: the window in which a used to forget it
  const result = await load.stop();
  assert.deepEqual(result.failures.slice(0, 5), [], `no request through a to b's app failed (${result.ok} answered)`);
  assert.ok(result.ok > 10);
  const view = (await a.api('GET', '/cluster')).body.cluster;
  assert.deepEqual(view.nodes.map((n: { name: string; up: boolean }) => [n.name, n.up]), [
    ['a', true],
    ['b', true],
  ]);
});

test('Redis with persistence back after the heartbeats expired: a node keeps routing to another node\'s app until that node has had time to beat again', async (t) => {
  const redis = await startRedis({ persist: true });
  t.after(() => redis.close());
  const a = await startNode(t, 'a', redis.url);
  // b beats every second (a third of its TTL): its heartbeat key expires during a 3.5 s outage.
  const b = await startNode(t, 'b', redis.url, {}, { heartbeat_ttl: '3s' });
  assert.equal((await b.api('PUT', '/apps/echo', { cmd })).status, 200);
  assert.equal((await b.api('POST', '/apps/echo/start')).status, 200);
  await until('a routes echo to b', async () => ((await fetch(`${a.url}/echo/`)).status === 200 ? true : undefined));

  const load = traffic(`${a.url}/echo/`);
  await redis.kill();
  await new Promise((r) => setTimeout(r, 3_500)); // every heartbeat in Redis has expired
  await redis.restart();
  await until('both nodes see the store up', async () => {
    const [va, vb] = await Promise.all([a.api('GET', '/cluster'), b.api('GET', '/cluster')]);
    return va.body.cluster.store.up && vb.body.cluster.store.up ? true : undefined;
  }, 10_000);
  await new Promise((r) => setTimeout(r, 2_500)); // past b's reconnect and next heartbeat
  const result = await load.stop();
  assert.deepEqual(result.failures.slice(0, 5), [], `no request through a to b's app failed (${result.ok} answered)`);
  assert.ok(result.ok > 10);
});

test('Redis restarted empty: a node that joins afterwards gets the cluster secret the running nodes use, so its forwarded requests are admitted', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  const a = await startNode(t, 'a', redis.url);
  const b = await startNode(t, 'b', redis.url);
  assert.equal((await b.api('PUT', '/apps/echo', { cmd })).status, 200);
  assert.equal((await b.api('POST', '/apps/echo/start')).status, 200);
  await until('a routes echo to b', async () => ((await fetch(`${a.url}/echo/`)).status === 200 ? true : undefined));
  await redis.restart();
  await until('the registry is back in Redis', async () => {
    const [va, vb] = await Promise.all([a.api('GET', '/cluster'), b.api('GET', '/cluster')]);
    return va.body.cluster.store.up && vb.body.cluster.store.up && va.body.cluster.version === vb.body.cluster.version && va.body.cluster.version > 0 ? true : undefined;
  }, 10_000);
  const c = await startNode(t, 'c', redis.url);
  await until('c sees a and b up', async () => ((await c.api('GET', '/cluster')).body.cluster.nodes.filter((n: { up: boolean }) => n.up).length === 3 ? true : undefined));
  const r = await request(`${c.url}/echo/`, { headers: { accept: 'application/json' } });
  assert.equal(r.status, 200, `c forwards to b with the secret b admits: ${r.body}`);
  // And b forwards to c's apps just as well.
  assert.equal((await c.api('PUT', '/apps/echo2', { cmd })).status, 200);
  assert.equal((await c.api('POST', '/apps/echo2/start')).status, 200);
  await until('b routes echo2', async () => ((await b.api('GET', '/apps/echo2')).body.app?.state === 'running' ? true : undefined));
  const r2 = await request(`${b.url}/echo2/`, { headers: { accept: 'application/json' } });
  assert.equal(r2.status, 200, `b forwards to c with the secret c admits: ${r2.body}`);
});
