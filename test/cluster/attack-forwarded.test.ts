/**
 * The node that runs an app trusts the X-Forwarded-* of the node that sent
 * it a request (it carries the secret). That node must not pass on what a
 * client wrote there: through A (without trust_forwarded) the app on B sees
 * the client's real address first, never one the client made up.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { startRedis } from '../helpers/redis.js';
import { startNode, until } from './helpers.js';

const APP = fileURLToPath(new URL('../fixtures/cluster/echo-app.mjs', import.meta.url));

test('a client’s made-up X-Forwarded-For does not reach an app on another node as the client’s address', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  const a = await startNode(t, 'a', redis.url);
  const b = await startNode(t, 'b', redis.url);
  await until('a sees b', async () => ((await a.api('GET', '/cluster')).body.cluster.nodes.length === 2 ? true : undefined));
  assert.equal((await a.api('PUT', '/apps/echo', { cmd: `${process.execPath} ${APP}`, node: 'b', autostart: true })).status, 200);
  const seen = await until('echo answers through a', async () => {
    const r = await fetch(`${a.url}/echo/x`, { headers: { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' } });
    return r.status === 200 ? ((await r.json()) as { xff: string | null }) : undefined;
  });
  assert.ok(seen.xff !== null && !seen.xff.startsWith('6.6.6.6'), `the app on b took the client's made-up address: ${seen.xff}`);
  assert.match(seen.xff!, /^127\.0\.0\.1/);
});
