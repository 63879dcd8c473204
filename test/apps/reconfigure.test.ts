// Re-registering a running app: a change to what the process was started
// with restarts it (old group gone first — never two), anything else does not.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { app, get, groupPids, harness, NODE_SERVER } from '../fixtures/apps/harness.js';

/** Every live process on the machine whose environment says it belongs to app `name`. */
function processesOfApp(name: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]?.startsWith('Z')) continue;
      if (fs.readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').includes(`APP_NAME=${name}`)) pids.push(Number(entry));
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return pids;
}

test('re-set with a changed cmd restarts it: exactly one process, the new one', async (t) => {
  const h = harness(t);
  const name = `reconf-${process.pid}`;
  await h.sup.set(app({ name, cmd: NODE_SERVER, env: { MARK: 'old' } }));
  const old = await h.sup.start(name);
  assert.equal(await h.sup.waitReady(name, 20_000), 'running');
  assert.deepEqual(processesOfApp(name), [old.pid]);

  const seen = h.events.length;
  const updated = await h.sup.set(app({ name, cmd: `${NODE_SERVER} # v2`, env: { MARK: 'new' } }));
  assert.notEqual(updated.pid, old.pid);
  assert.equal(updated.port, old.port, 'the allocated port is kept');
  assert.deepEqual(await groupPids(old.pid!), [], 'the old group is gone');
  assert.equal(await h.sup.waitReady(name, 20_000), 'running');
  assert.deepEqual(processesOfApp(name), [updated.pid], 'exactly one process of the app runs');
  assert.equal(JSON.parse((await get(updated.port!, '/env')).body).MARK, 'new');
  // stopping → starting, with no `stopped` in between (a waiting request keeps waiting).
  assert.deepEqual(
    h.events.slice(seen).map((e) => e.status.state),
    ['stopping', 'starting', 'running'],
  );
});

test('re-set that changes only routing or policy fields does not restart', async (t) => {
  const h = harness(t);
  await h.sup.set(app({ name: 'steady', cmd: NODE_SERVER, env: { A: '1', B: '2' } }));
  const before = await h.sup.start('steady');
  assert.equal(await h.sup.waitReady('steady', 20_000), 'running');
  const seen = h.events.length;
  const after = await h.sup.set(
    app({ name: 'steady', cmd: NODE_SERVER, env: { B: '2', A: '1' }, description: 'now described', health_path: '/health', restart: 'always', stop_timeout: 3000 }),
  );
  assert.equal(after.pid, before.pid);
  assert.equal(after.state, 'running');
  assert.equal(after.port, before.port);
  assert.equal(h.events.length, seen, 'no state change');
});

test('re-set with a new port restarts the app on it', async (t) => {
  const h = harness(t);
  await h.sup.set(app({ name: 'mover', cmd: NODE_SERVER }));
  const first = await h.sup.start('mover');
  assert.equal(await h.sup.waitReady('mover', 20_000), 'running');
  const newPort = await h.sup.allocPort();
  const moved = await h.sup.set(app({ name: 'mover', cmd: NODE_SERVER, port: newPort }));
  assert.equal(moved.port, newPort);
  assert.equal(await h.sup.waitReady('mover', 20_000), 'running');
  assert.equal((await get(newPort)).body, 'hello from mover\n');
  assert.deepEqual(await groupPids(first.pid!), []);
});

test('remove stops the app and forgets it', async (t) => {
  const h = harness(t);
  await h.sup.set(app({ name: 'gone', cmd: NODE_SERVER }));
  const { pid } = await h.sup.start('gone');
  assert.equal(await h.sup.remove('gone'), true);
  assert.deepEqual(await groupPids(pid!), []);
  assert.equal(h.sup.status('gone'), undefined);
  assert.deepEqual(h.sup.list(), []);
  assert.equal(await h.sup.remove('gone'), false);
  await assert.rejects(h.sup.start('gone'), { code: 'PH_ERR_APP_UNKNOWN' });
});
