/**
 * idle_stop and wake_on_request in a cluster (docs/cluster.md): an app that
 * runs on node b, reached through node a. A request through a wakes it on b
 * (a forwards, b holds), a browser through a gets b's waiting page, a
 * WebSocket through a connects once it is ready and keeps it awake (the
 * tunnel is open on b too), and b stops it when it is idle.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from '../helpers/http.js';
import { closed, nextMessage, openWs, sleep } from '../helpers/net.js';
import { startRedis } from '../helpers/redis.js';
import { freePort, sleepAppCmd } from '../helpers/sleep-app.js';
import { startNode, until } from '../cluster/helpers.js';

test('an app asleep on node b is woken by requests and a WebSocket through node a, and stopped by b when idle', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  const a = await startNode(t, 'a', redis.url);
  const b = await startNode(t, 'b', redis.url);
  const put = await a.api('PUT', '/apps/sleepy', { cmd: sleepAppCmd({ DELAY_MS: 2000 }), port: await freePort(), node: 'b', wake_on_request: true, idle_stop: '1s' });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  await until('b has sleepy, stopped', () => (b.server.supervisor.status('sleepy')?.state === 'stopped' ? true : undefined));
  await until('a routes sleepy to b', async () => ((await request(`${a.url}/sleepy/`, { headers: { Accept: 'application/json' }, timeoutMs: 30_000 })).status === 200 ? true : undefined), 30_000);
  const woken = b.server.supervisor.status('sleepy');
  assert.equal(woken?.state, 'running', 'woken on b');
  assert.equal(a.server.supervisor.status('sleepy'), undefined, 'a runs nothing');

  // Idle on b: stopped; then a browser through a gets b's waiting page, relayed as it is.
  await until('b stops sleepy for idleness', () => (b.server.supervisor.status('sleepy')?.state === 'stopped' ? true : undefined), 10_000);
  assert.match(b.server.supervisor.status('sleepy')?.message ?? '', /stopped after 1s idle/);
  const page = await request(`${a.url}/sleepy/`, { headers: { Accept: 'text/html' }, timeoutMs: 30_000 });
  assert.equal(page.status, 503);
  assert.equal(page.headers['x-porthole-error'], 'PH_ERR_APP_WAKING');
  assert.match(page.text, /<code>sleepy<\/code> is starting/);
  await until('b has sleepy running', () => (b.server.supervisor.status('sleepy')?.state === 'running' ? true : undefined), 30_000);
  await until('b stops sleepy again', () => (b.server.supervisor.status('sleepy')?.state === 'stopped' ? true : undefined), 10_000);

  // A WebSocket through a to the sleeping app: held until ready, echoes, and keeps it awake on b.
  const ws = await openWs(`${a.url.replace('http', 'ws')}/sleepy/`);
  t.after(() => ws.terminate());
  ws.send('through a');
  assert.equal((await nextMessage(ws)).data.toString(), 'through a');
  await sleep(2500);
  assert.equal(b.server.supervisor.status('sleepy')?.state, 'running', 'the tunnel through a keeps it running on b');
  ws.close(1000);
  await closed(ws);
  await until('b stops sleepy after the tunnel closed', () => (b.server.supervisor.status('sleepy')?.state === 'stopped' ? true : undefined), 10_000);
});
