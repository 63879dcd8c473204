// An app is `running` only when what the gateway will use answers: TCP on
// port and ws_port, or the HTTP health_path. Not ready within start_timeout
// means stopped (the whole group) and counted as a failure.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tcpAnswers } from '../../src/apps/readiness.js';
import { app, get, groupPids, harness, NODE_SERVER, waitState } from '../fixtures/apps/harness.js';

test('start → starting while the port refuses, running once it answers', async (t) => {
  const h = harness(t);
  const set = await h.sup.set(app({ name: 'web', cmd: NODE_SERVER, env: { LISTEN_DELAY_MS: '1500' } }));
  assert.equal(set.state, 'stopped');
  assert.ok(set.port, 'a port was allocated');

  const started = await h.sup.start('web');
  assert.equal(started.state, 'starting');
  assert.equal(started.ready, false);
  assert.ok(started.pid);
  assert.equal(await tcpAnswers(started.port!), false, 'the app does not listen yet');
  assert.equal(h.sup.status('web')?.state, 'starting', 'refused port: still starting');

  assert.equal(await h.sup.waitReady('web', 20_000), 'running');
  const status = h.sup.status('web')!;
  assert.equal(status.state, 'running');
  assert.equal(status.ready, true);
  assert.equal(status.pid, started.pid);
  assert.deepEqual(await get(status.port!), { status: 200, body: 'hello from web\n' });
  assert.deepEqual(
    h.events.map((e) => e.status.state),
    ['starting', 'running'],
  );
});

test('with ws_port, both ports must answer', async (t) => {
  const h = harness(t, { crashLimit: 1 });
  const wsPort = await h.sup.allocPort();
  await h.sup.set(app({ name: 'half', cmd: NODE_SERVER, ws_port: wsPort, env: { SKIP_WS: '1' }, start_timeout: 1500 }));
  const { port } = await h.sup.start('half');
  await waitState(h, 'half', 'failed');
  assert.ok(h.sup.logs('half', 100).includes(`listening on ${port}`), 'the HTTP port did answer');
  assert.match(h.sup.status('half')!.message!, /not ready after 1\.5s/);

  await h.sup.set(app({ name: 'both', cmd: NODE_SERVER, ws_port: await h.sup.allocPort() }));
  await h.sup.start('both');
  assert.equal(await h.sup.waitReady('both', 20_000), 'running');
});

test('health_path: running only once GET health_path answers 2xx/3xx', async (t) => {
  const h = harness(t);
  await h.sup.set(app({ name: 'ok', cmd: NODE_SERVER, health_path: '/health' }));
  await h.sup.start('ok');
  assert.equal(await h.sup.waitReady('ok', 20_000), 'running');

  // The port answers TCP, but the health check says 503: never ready.
  await h.sup.set(app({ name: 'sick', cmd: NODE_SERVER, health_path: '/health', env: { HEALTH_STATUS: '503' }, start_timeout: 1500, restart: 'never' }));
  const { pid, port } = await h.sup.start('sick');
  await waitState(h, 'sick', 'stopped');
  assert.equal((await get(port!, '/health').catch(() => ({ status: 0 }))).status, 0, 'the group was stopped');
  assert.deepEqual(await groupPids(pid!), []);
});

test('start_timeout exceeded: the group is stopped and it counts as a crash', async (t) => {
  const h = harness(t, { backoffBaseMs: 100, crashLimit: 2 });
  // Never listens: `sleep` in place of a server.
  await h.sup.set(app({ name: 'mute', cmd: 'exec sleep 300', start_timeout: 1000, stop_timeout: 2000 }));
  const first = await h.sup.start('mute');
  const backoff = await waitState(h, 'mute', 'backoff');
  assert.match(backoff.message!, /not ready after 1s/);
  assert.equal(backoff.last_exit?.signal, 'SIGTERM', 'stopped by the supervisor');
  assert.deepEqual(await groupPids(first.pid!), [], 'no process of the first try is left');

  // The second timeout reaches crashLimit (2): failed, not restarted again.
  const failed = await waitState(h, 'mute', 'failed');
  assert.equal(failed.restarts, 1);
  assert.equal(failed.pid, null);
  const pids = h.events.filter((e) => e.status.state === 'starting').map((e) => e.status.pid!);
  assert.equal(pids.length, 2);
  for (const pid of pids) assert.deepEqual(await groupPids(pid), []);
  assert.equal(await h.sup.waitReady('mute', 1000), 'failed');
});

test('waitReady: stopped at once for a stopped app, timeout while it is still starting', async (t) => {
  const h = harness(t);
  await h.sup.set(app({ name: 'slow', cmd: NODE_SERVER, env: { LISTEN_DELAY_MS: '5000' } }));
  assert.equal(await h.sup.waitReady('slow', 10_000), 'stopped');
  assert.equal(await h.sup.waitReady('nobody', 10_000), 'stopped');
  await h.sup.start('slow');
  const t0 = Date.now();
  assert.equal(await h.sup.waitReady('slow', 300), 'timeout');
  assert.ok(Date.now() - t0 >= 290);
  // A stop while someone waits ends the wait with `stopped`.
  const waiting = h.sup.waitReady('slow', 20_000);
  await h.sup.stop('slow');
  assert.equal(await waiting, 'stopped');
});
