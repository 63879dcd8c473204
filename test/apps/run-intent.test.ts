// Issue 8, item 4: the record of a run exists before any of its processes.
// A gateway killed between the spawn and the record used to leave processes
// nobody would stop; now the record (with the run's marker) is written first,
// and recovery finds the processes of a record that has only the marker.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { newRunMarker, RUN_MARKER_VAR } from '../../src/apps/clean-env.js';
import { procStat } from '../../src/apps/process-group.js';
import { app, harness, waitFor } from '../fixtures/apps/harness.js';

test("an app's first instruction already finds its run recorded, with its own marker", async (t) => {
  const h = harness(t);
  const runFile = path.join(h.dataDir, 'run', 'early.json');
  // The leader checks the record before anything else and writes what it saw.
  const cmd = `if grep -q "\\"marker\\":\\"$${RUN_MARKER_VAR}\\"" ${JSON.stringify(runFile)}; then echo recorded > seen; else echo missing > seen; fi; exec sleep 300`;
  await h.sup.set(app({ name: 'early', cmd, port: 9, stop_timeout: 1000 }));
  for (let i = 0; i < 5; i++) {
    const cwd = path.join(h.dataDir, 'apps', 'early');
    fs.rmSync(path.join(cwd, 'seen'), { force: true });
    await h.sup.restart('early');
    const seen = await waitFor('the app to report', () => (fs.existsSync(path.join(cwd, 'seen')) ? fs.readFileSync(path.join(cwd, 'seen'), 'utf8').trim() : undefined));
    assert.equal(seen, 'recorded', `run ${i}: the record named the run before it started`);
  }
});

test('recovery stops every process of a run whose record has only the marker (the gateway died right after the spawn)', async (t) => {
  const h = harness(t);
  const marker = newRunMarker();
  // A run as a killed gateway leaves it: a leader that forked a child into a session of its own.
  const leader = spawn('/bin/sh', ['-c', 'setsid sleep 300 & exec sleep 300'], { detached: true, stdio: 'ignore', env: { PATH: process.env.PATH, [RUN_MARKER_VAR]: marker } });
  const bystander = spawn('sleep', ['300'], { detached: true, stdio: 'ignore', env: { PATH: process.env.PATH, [RUN_MARKER_VAR]: newRunMarker() } });
  t.after(() => {
    for (const p of [leader, bystander]) p.kill('SIGKILL');
  });
  const marked = async () => {
    const out: number[] = [];
    for (const name of fs.readdirSync('/proc')) {
      const pid = Number(name);
      if (!Number.isInteger(pid)) continue;
      const env = await fs.promises.readFile(`/proc/${pid}/environ`, 'latin1').catch(() => '');
      const st = await procStat(pid);
      if (st && st.state !== 'Z' && env.split('\0').includes(`${RUN_MARKER_VAR}=${marker}`)) out.push(pid);
    }
    return out;
  };
  t.after(async () => {
    for (const pid of await marked()) process.kill(pid, 'SIGKILL');
  });
  await waitFor('both processes of the run', async () => (await marked()).length === 2);
  const runDir = path.join(h.dataDir, 'run');
  fs.mkdirSync(runDir, { recursive: true });
  fs.writeFileSync(path.join(runDir, 'cut.json'), JSON.stringify({ name: 'cut', marker, started_at: new Date().toISOString(), stop_timeout: 1000 }));

  assert.equal(await h.sup.recoverOrphans(), 1);
  assert.deepEqual(await marked(), [], 'every process carrying the marker is gone');
  assert.ok(await procStat(bystander.pid!), 'a process with another marker is left alone');
  assert.deepEqual(fs.readdirSync(runDir), [], 'the record is consumed');
});

test('an intent record with a malformed marker is not acted on, and deleted', async (t) => {
  const h = harness(t);
  const runDir = path.join(h.dataDir, 'run');
  fs.mkdirSync(runDir, { recursive: true });
  // '' would match every process that has PORTHOLE_RUN= at all.
  fs.writeFileSync(path.join(runDir, 'bad.json'), JSON.stringify({ name: 'bad', marker: '', started_at: '', stop_timeout: 1000 }));
  assert.equal(await h.sup.recoverOrphans(), 0);
  assert.deepEqual(fs.readdirSync(runDir), []);
});
