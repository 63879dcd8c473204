/**
 * In a cluster, a node that takes up an app with autostart (registered through
 * it, or through another node) checks the app's ports before starting it, as a
 * start by hand does: another program on the app's own port would pass the
 * readiness check and get the app's traffic. The start is refused with an
 * error event naming the port, and no process is started.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { collect, sleep } from '../helpers/net.js';
import { startRedis } from '../helpers/redis.js';
import { startNode, until } from './helpers.js';

const APP = fileURLToPath(new URL('../fixtures/cluster/echo-app.mjs', import.meta.url));
const cmd = `${process.execPath} ${APP}`;

test("autostart in a cluster with the app's own port taken: refused with an error event naming the port, on its own node and through another node; nothing reaches the other program", async (t) => {
  let hits = 0;
  const squatter = http.createServer((_req, res) => {
    hits++;
    res.end('not the app');
  });
  await new Promise<void>((ok) => squatter.listen(0, '127.0.0.1', ok));
  t.after(() => squatter.close());
  const port = (squatter.address() as AddressInfo).port;
  const errors = collect('error');
  t.after(() => errors.stop());

  const redis = await startRedis();
  t.after(() => redis.close());
  const a = await startNode(t, 'a', redis.url);
  const b = await startNode(t, 'b', redis.url);
  // One through its own node, one through another: the same port for both.
  assert.equal((await a.api('PUT', '/apps/here', { cmd, port, autostart: true })).status, 200);
  assert.equal((await a.api('PUT', '/apps/there', { cmd, port, autostart: true, node: 'b' })).status, 200);
  for (const [app, node] of [['here', a], ['there', b]] as const) {
    const e = await until(`the error of ${app}`, async () => errors.events.find((x) => x.app === app));
    assert.equal(e.code, 'PH_ERR_SUPERVISOR');
    assert.match(e.message, new RegExp(`${app}: port ${port} is in use by another program \\(port of ${app}\\)`));
    assert.equal((await node.api('GET', `/apps/${app}`)).body.app.state, 'stopped');
  }
  await sleep(300);
  for (const [app, node] of [['here', a], ['there', b]] as const) assert.equal((await node.api('GET', `/apps/${app}`)).body.app.state, 'stopped', `${app} was not started`);
  await fetch(`${a.url}/here/`).catch(() => undefined);
  await fetch(`${a.url}/there/`).catch(() => undefined);
  assert.equal(hits, 0, 'nothing reached the other program');
});
