/**
 * Agent Zero's `/webapp` JSON API through any node, for an app another node
 * runs: its logs come from the node that runs it, as `GET /apps/{name}/logs`
 * does, never an empty list from the node that was asked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { startRedis } from '../helpers/redis.js';
import { startNode, until } from './helpers.js';

const APP = fileURLToPath(new URL('../fixtures/cluster/echo-app.mjs', import.meta.url));

test('POST /webapp {action: logs} through node a returns the log of an app that runs on node b', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  const a = await startNode(t, 'a', redis.url);
  const b = await startNode(t, 'b', redis.url);
  await until('a sees b', async () => ((await a.api('GET', '/cluster')).body.cluster.nodes.length === 2 ? true : undefined));
  assert.equal((await a.api('PUT', '/apps/echo', { cmd: `${process.execPath} ${APP}`, node: 'b', autostart: true })).status, 200);
  await until('echo runs on b', async () => ((await b.api('GET', '/apps/echo')).body.app?.state === 'running' ? true : undefined));
  const rest = await a.api('GET', '/apps/echo/logs?lines=20');
  assert.ok(rest.body.lines.some((l: string) => /listening on/.test(l)), `REST: ${JSON.stringify(rest.body)}`);

  const res = await fetch(`${a.url}/webapp`, {
    method: 'POST',
    headers: { authorization: `Bearer ${a.started.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ action: 'logs', name: 'echo', lines: 20 }),
  });
  const body = (await res.json()) as { ok: boolean; lines: string[] };
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.ok(body.lines.some((l) => /listening on/.test(l)), `/webapp logs through a: ${JSON.stringify(body)}`);
});
