// Each app is its own process group, so a stop reaches every process of it —
// including what start.sh sent to the background with `&` — and /proc shows
// none of them afterwards.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { app, groupPids, harness, START_SH, waitFor, waitState } from '../fixtures/apps/harness.js';

const startSh = (env: Record<string, string> = {}) => ({ cmd: `sh ${START_SH}`, env: { NODE: process.execPath, ...env } });

test('stop leaves no process of the group, background children of start.sh included', async (t) => {
  const h = harness(t);
  await h.sup.set(app({ name: 'vnc', ...startSh(), stop_timeout: 10_000 }));
  const { pid } = await h.sup.start('vnc');
  assert.equal(await h.sup.waitReady('vnc', 20_000), 'running');
  // sh (leader), sleep, the sh loop (and its sleep), node.
  const before = await groupPids(pid!);
  assert.ok(before.length >= 4, `the group has the leader and its children: ${before}`);
  assert.ok(before.includes(pid!));

  const t0 = Date.now();
  const stopped = await h.sup.stop('vnc');
  assert.ok(Date.now() - t0 < 5_000, 'SIGTERM was enough, no wait for stop_timeout');
  assert.equal(stopped.state, 'stopped');
  assert.equal(stopped.pid, null);
  assert.deepEqual(await groupPids(pid!), [], 'no process of the group remains');
});

test('a child that ignores SIGTERM gets SIGKILL after stop_timeout', async (t) => {
  const h = harness(t);
  await h.sup.set(app({ name: 'stubborn', ...startSh({ IGNORE_TERM: '1' }), stop_timeout: 1500 }));
  const { pid } = await h.sup.start('stubborn');
  assert.equal(await h.sup.waitReady('stubborn', 20_000), 'running');
  assert.ok((await groupPids(pid!)).length >= 4);

  const t0 = Date.now();
  await h.sup.stop('stubborn');
  const took = Date.now() - t0;
  assert.ok(took >= 1450, `waited stop_timeout before SIGKILL (took ${took} ms)`);
  assert.deepEqual(await groupPids(pid!), [], 'SIGKILL reached the stubborn child');
  await h.sup.stopAll(); // flushes the log
  assert.ok(h.sup.logs('stubborn', 20).some((l) => l.includes('sent SIGKILL to the process group')));
});

test('when the leader exits, the children it left in the background are stopped too', async (t) => {
  const h = harness(t);
  // The leader exits at once; its background sleep would live on.
  await h.sup.set(app({ name: 'leaky', cmd: 'sleep 300 & exit 1', restart: 'never', stop_timeout: 2000 }));
  const { pid } = await h.sup.start('leaky');
  await waitState(h, 'leaky', 'stopped');
  await waitFor('the background sleep to be stopped', async () => (await groupPids(pid!)).length === 0, 10_000);
});

test('stop during backoff cancels the restart', async (t) => {
  const h = harness(t, { backoffBaseMs: 1000 });
  await h.sup.set(app({ name: 'flaky', cmd: 'exit 1' }));
  await h.sup.start('flaky');
  await waitState(h, 'flaky', 'backoff');
  const stopped = await h.sup.stop('flaky');
  assert.equal(stopped.state, 'stopped');
  await new Promise((r) => setTimeout(r, 1300));
  assert.equal(h.sup.status('flaky')?.state, 'stopped', 'the backoff timer did not start it again');
  assert.equal(h.sup.status('flaky')?.restarts, 0);
});
