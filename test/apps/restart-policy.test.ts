// What happens when an app's process ends on its own: on-failure restarts
// crashes with growing backoff and gives up on a crash loop; never does not
// restart; always restarts even a clean exit.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CrashHistory, DEFAULT_RESTART } from '../../src/apps/restart-policy.js';
import { app, harness, waitFor, waitState } from '../fixtures/apps/harness.js';

test('a crash restarts after a backoff that doubles, and a crash loop ends in failed', async (t) => {
  const h = harness(t, { backoffBaseMs: 200, crashLimit: 5 });
  await h.sup.set(app({ name: 'crashy', cmd: 'echo boom; exit 3' }));
  await h.sup.start('crashy');
  const failed = await waitState(h, 'crashy', 'failed', 30_000);

  const states = h.events.map((e) => e.status.state);
  assert.deepEqual(states, ['starting', 'backoff', 'starting', 'backoff', 'starting', 'backoff', 'starting', 'backoff', 'starting', 'failed']);
  // From each `backoff` to the next `starting`: at least 200, 400, 800, 1600 ms.
  const delays: number[] = [];
  h.events.forEach((e, i) => {
    if (e.status.state === 'backoff') delays.push(h.events[i + 1].at - e.at);
  });
  // (Lower bounds only: on a loaded machine a spawn may take longer, never shorter.)
  assert.equal(delays.length, 4);
  [200, 400, 800, 1600].forEach((min, i) => assert.ok(delays[i] >= min - 5, `delay ${i} was ${delays[i]} ms, expected ≥ ${min} (${delays.join(', ')})`));
  assert.deepEqual(
    h.events.filter((e) => e.status.state === 'backoff').map((e) => e.status.message),
    ['exited with code 3; restarting in 200ms', 'exited with code 3; restarting in 400ms', 'exited with code 3; restarting in 800ms', 'exited with code 3; restarting in 1.6s'],
  );

  assert.equal(failed.restarts, 4);
  assert.equal(failed.pid, null);
  assert.equal(failed.last_exit?.code, 3);
  assert.match(failed.message!, /ended 5 times within 60s/);
  assert.ok(h.sup.logs('crashy', 1000).filter((l) => l === 'boom').length === 5, 'every run logged its output');

  // failed means no more restarts …
  await sleep(600);
  assert.equal(h.sup.status('crashy')?.state, 'failed');
  // … until an explicit start, which begins afresh.
  const seen = h.events.length;
  await h.sup.start('crashy');
  await waitFor('a new crash after the explicit start', () => h.events.slice(seen).find((e) => e.status.state === 'backoff'));
  const after = h.events.slice(seen).map((e) => [e.status.state, e.status.message]);
  assert.deepEqual(after.slice(0, 2), [['starting', undefined], ['backoff', 'exited with code 3; restarting in 200ms']]);
  await h.sup.stop('crashy');
});

test('restart: never — a crash leaves the app stopped', async (t) => {
  const h = harness(t, { backoffBaseMs: 50 });
  await h.sup.set(app({ name: 'once', cmd: 'exit 3', restart: 'never' }));
  await h.sup.start('once');
  const stopped = await waitState(h, 'once', 'stopped');
  assert.equal(stopped.last_exit?.code, 3);
  assert.equal(stopped.restarts, 0);
  assert.equal(stopped.message, 'exited with code 3 (restart: never)');
  await sleep(500); // ten backoff periods: a restart would have happened by now
  assert.deepEqual(h.events.map((e) => e.status.state), ['starting', 'stopped']);
});

test('restart: on-failure — a clean exit is not restarted, a signal is', async (t) => {
  const h = harness(t, { backoffBaseMs: 50 });
  await h.sup.set(app({ name: 'clean', cmd: 'exit 0' }));
  await h.sup.start('clean');
  const stopped = await waitState(h, 'clean', 'stopped');
  assert.equal(stopped.last_exit?.code, 0);
  assert.equal(stopped.message, undefined);

  await h.sup.set(app({ name: 'killed', cmd: 'kill -KILL $$' }));
  await h.sup.start('killed');
  const restarted = await waitFor('a restart after SIGKILL', () => {
    const s = h.sup.status('killed');
    return s && s.restarts >= 1 ? s : undefined;
  });
  assert.equal(restarted.last_exit?.signal, 'SIGKILL');
  await h.sup.stop('killed');
});

test('restart: always — even exit 0 is restarted', async (t) => {
  const h = harness(t, { backoffBaseMs: 50 });
  await h.sup.set(app({ name: 'loop', cmd: 'echo tick; exit 0', restart: 'always' }));
  await h.sup.start('loop');
  const s = await waitFor('two restarts', () => {
    const st = h.sup.status('loop');
    return st && st.restarts >= 2 ? st : undefined;
  });
  assert.equal(s.last_exit?.code, 0);
  assert.ok(h.sup.logs('loop', 100).filter((l) => l === 'tick').length >= 2);
  const stopped = await h.sup.stop('loop');
  assert.equal(stopped.state, 'stopped');
});

test('backoff: 1 s, 2 s, 4 s … capped; a run as long as the crash window forgives', () => {
  const history = new CrashHistory({ ...DEFAULT_RESTART, crashLimit: 100 });
  const delays: number[] = [];
  let now = 0;
  for (let i = 0; i < 9; i++) {
    now += 70_000; // spread out, so the crash-loop cap is not what stops it
    const d = history.record(now, 100);
    assert.ok(d.restart);
    delays.push(d.delayMs);
  }
  assert.deepEqual(delays, [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]);
  const afterLongRun = history.record(now + 70_000, 60_000);
  assert.deepEqual(afterLongRun, { restart: true, delayMs: 1_000 });

  const loop = new CrashHistory(DEFAULT_RESTART);
  const decisions = [0, 1, 2, 3, 4].map((i) => loop.record(i * 1000, 10));
  assert.deepEqual(decisions.map((d) => d.restart), [true, true, true, true, false]);
});
