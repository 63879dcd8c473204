// The supervisor's surface: autostart and shutdown, status and list, the
// events it publishes, its run files, and the errors it throws.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { subscribe, type EventMap } from '../../src/events.js';
import { app, groupPids, harness, NODE_SERVER, START_SH, waitFor, waitState } from '../fixtures/apps/harness.js';

test('startAutostart starts only autostart apps; stopAll stops every group', async (t) => {
  const h = harness(t);
  await h.sup.set(app({ name: 'auto', cmd: NODE_SERVER, autostart: true }));
  await h.sup.set(app({ name: 'auto-sh', cmd: `sh ${START_SH}`, env: { NODE: process.execPath }, autostart: true }));
  await h.sup.set(app({ name: 'manual', cmd: NODE_SERVER }));
  await h.sup.set(app({ name: 'remote', port: 1, autostart: true })); // routed only: nothing to start
  await h.sup.startAutostart();

  const started = (state: string) => state === 'starting' || state === 'running';
  const states = Object.fromEntries(h.sup.list().map((s) => [s.name, started(s.state) ? 'started' : s.state]));
  assert.deepEqual(states, { auto: 'started', 'auto-sh': 'started', manual: 'stopped', remote: 'stopped' });
  assert.equal(await h.sup.waitReady('auto', 20_000), 'running');
  assert.equal(await h.sup.waitReady('auto-sh', 20_000), 'running');
  const pids = h.sup.list().flatMap((s) => (s.pid ? [s.pid] : []));
  assert.equal(pids.length, 2);

  await h.sup.stopAll();
  assert.deepEqual(h.sup.list().map((s) => s.state), ['stopped', 'stopped', 'stopped', 'stopped']);
  for (const pid of pids) assert.deepEqual(await groupPids(pid), []);
});

test('every state change is published as an `app` event and emitted as `state`', async (t) => {
  const published: EventMap['app'][] = [];
  t.after(subscribe('app', (e) => e.app === 'events' && published.push(e)));
  const h = harness(t);
  await h.sup.set(app({ name: 'events', cmd: NODE_SERVER }));
  const { pid } = await h.sup.start('events');
  await waitState(h, 'events', 'running');
  await h.sup.stop('events');

  assert.deepEqual(published.map((e) => e.state), ['starting', 'running', 'stopping', 'stopped']);
  assert.deepEqual(h.events.map((e) => e.status.state), ['starting', 'running', 'stopping', 'stopped']);
  assert.equal(published[0].pid, pid);
  assert.equal(published[3].pid, undefined);
});

test('a run file exists while the group runs and is deleted on a clean stop', async (t) => {
  const h = harness(t);
  await h.sup.set(app({ name: 'recorded', cmd: NODE_SERVER }));
  const { pid } = await h.sup.start('recorded');
  const file = path.join(h.dataDir, 'run', 'recorded.json');
  const record = JSON.parse(fs.readFileSync(file, 'utf8'));
  assert.equal(record.pid, pid);
  assert.equal(record.pgid, pid);
  assert.match(record.start_time, /^\d+$/);
  await h.sup.stop('recorded');
  assert.equal(fs.existsSync(file), false);
});

test('the default cwd is {dataDir}/apps/{name}, created; a missing explicit cwd fails clearly', async (t) => {
  const h = harness(t);
  await h.sup.set(app({ name: 'where', cmd: 'pwd; exec sleep 300' }));
  await h.sup.start('where');
  const cwd = path.join(h.dataDir, 'apps', 'where');
  assert.ok(fs.statSync(cwd).isDirectory());
  await waitFor('pwd to print the cwd', () => h.sup.logs('where', 10).includes(fs.realpathSync(cwd)));
  await h.sup.stop('where');

  await h.sup.set(app({ name: 'nowhere', cmd: 'true', cwd: path.join(h.dataDir, 'missing') }));
  // No process came of it: start rejects with a code (issue 8), and the state says why.
  await assert.rejects(h.sup.start('nowhere'), { code: 'PH_ERR_APP_SPAWN', message: /cwd .*missing is not a directory/ });
  const failed = h.sup.status('nowhere')!;
  assert.equal(failed.state, 'failed');
  assert.match(failed.message!, /cwd .*missing is not a directory/);
});

test('start and stop of an unknown app, and start of an app without cmd, fail with a code', async (t) => {
  const h = harness(t);
  await assert.rejects(h.sup.start('ghost'), { code: 'PH_ERR_APP_UNKNOWN' });
  await assert.rejects(h.sup.stop('ghost'), { code: 'PH_ERR_APP_UNKNOWN' });
  await h.sup.set(app({ name: 'routed', port: 1 }));
  await assert.rejects(h.sup.start('routed'), { code: 'PH_ERR_APP_NO_CMD' });
  assert.equal(h.sup.status('routed')?.port, 1);
  assert.deepEqual(h.sup.logs('ghost', 10), []);
});
