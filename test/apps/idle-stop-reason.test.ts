// The supervisor's side of idle_stop (issue 12, section 3): a stop the gateway decides by itself
// carries its reason into the states and the app's log, and is looked at again when its turn in
// the app's queue comes, so a request or tunnel that arrived meanwhile keeps the app running.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { app, harness, NODE_SERVER, waitState } from '../fixtures/apps/harness.js';

test('an idle stop whose still() says no by its turn leaves the app running, the same process, and logs nothing', async (t) => {
  const h = harness(t);
  await h.sup.set(app({ name: 'kept', cmd: NODE_SERVER }));
  const { pid } = await h.sup.start('kept');
  await waitState(h, 'kept', 'running');
  let asked = 0;
  const st = await h.sup.stop('kept', { reason: 'stopped after 1s idle (test)', still: () => (asked++, false) });
  assert.equal(asked, 1, 'asked once, when the stop came to run');
  assert.equal(st.state, 'running');
  assert.equal(st.pid, pid);
  assert.ok(!h.sup.logs('kept', 50).some((l) => l.includes('stopped after 1s idle') || l.includes('SIGTERM')), h.sup.logs('kept', 50).join('\n'));
});

test('an idle stop carries its reason into the stopping and stopped states, their events and the app log', async (t) => {
  const h = harness(t);
  await h.sup.set(app({ name: 'idle', cmd: NODE_SERVER }));
  await h.sup.start('idle');
  await waitState(h, 'idle', 'running');
  const reason = 'stopped after 1s idle (idle_stop: no request and no open tunnel)';
  const st = await h.sup.stop('idle', { reason, still: () => true });
  assert.equal(st.state, 'stopped');
  assert.equal(st.message, reason);
  const changes = h.events.map((e) => [e.status.state, e.status.message]);
  assert.deepEqual(changes.slice(-2), [['stopping', reason], ['stopped', reason]]);
  assert.ok(h.sup.logs('idle', 50).includes(`[porthole] ${reason}`));
});

test('an idle stop of an app that is not running (stopped by hand meanwhile, or still starting) does nothing', async (t) => {
  const h = harness(t);
  await h.sup.set(app({ name: 'asleep', cmd: NODE_SERVER }));
  const before = h.events.length;
  const st = await h.sup.stop('asleep', { reason: 'idle', still: () => true });
  assert.equal(st.state, 'stopped');
  assert.equal(st.message, undefined, 'the state keeps what it said');
  assert.equal(h.events.length, before, 'no state change');
});
