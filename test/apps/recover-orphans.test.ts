// After the gateway dies by kill -9, its apps' process groups live on
// (they are detached). The next gateway's recoverOrphans() finds them through
// {dataDir}/run/{name}.json and stops them — but only them: a pid that now
// names another process (different start time) is left alone.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { procStat } from '../../src/apps/process-group.js';
import type { AppStatus } from '../../src/apps/supervisor.js';
import { app, FIXTURES, groupPids, harness, START_SH, tempDir, waitFor } from '../fixtures/apps/harness.js';
import { Supervisor } from '../../src/apps/supervisor.js';

const HOST = path.join(FIXTURES, 'supervisor-host.ts');

/** Runs a stand-in gateway that starts `fields` and reports its status once ready. */
async function hostApp(t: TestContext, dataDir: string, fields: Parameters<typeof app>[0]): Promise<{ host: ChildProcess; status: AppStatus }> {
  const host = spawn(process.execPath, ['--import', 'tsx', HOST, dataDir, JSON.stringify(app(fields))], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  host.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  const status = await waitFor('the host to report its app ready', () => {
    if (host.exitCode !== null) throw new Error(`host exited with ${host.exitCode}`);
    const m = /^ready (.*)$/m.exec(out);
    return m ? (JSON.parse(m[1]) as AppStatus) : undefined;
  }, 30_000);
  // Whatever happens, leave no process behind.
  t.after(() => {
    host.kill('SIGKILL');
    try {
      process.kill(-status.pid!, 'SIGKILL');
    } catch {
      // Already gone: the expected case.
    }
  });
  return { host, status };
}

function killHard(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

test('recoverOrphans stops the group a kill -9ed gateway left running', async (t) => {
  const dataDir = tempDir(t);
  const port = await new Supervisor({ dataDir: tempDir(t) }).allocPort();
  const { host, status } = await hostApp(t, dataDir, { name: 'orphan', cmd: `sh ${START_SH}`, port, env: { NODE: process.execPath }, stop_timeout: 5000 });
  const pgid = status.pid!;
  const runFile = path.join(dataDir, 'run', 'orphan.json');
  const record = JSON.parse(fs.readFileSync(runFile, 'utf8'));
  assert.equal(record.pid, pgid);
  assert.equal(record.pgid, pgid);
  assert.equal(record.start_time, (await procStat(pgid))?.startTime, 'field 22 of /proc/PID/stat');

  await killHard(host);
  const orphans = await groupPids(pgid);
  assert.ok(orphans.length >= 4, `the group outlived its gateway: ${orphans}`);

  // The next gateway, on the same data dir.
  const h = harness(t, { dataDir });
  assert.equal(await h.sup.recoverOrphans(), 1);
  assert.deepEqual(await groupPids(pgid), [], 'no process of the old group remains');
  assert.equal(fs.existsSync(runFile), false, 'the run file is consumed');
  assert.equal(await h.sup.recoverOrphans(), 0, 'nothing left to recover');
});

/**
 * A detached group like an app's: a leader with two background children,
 * APP_NAME in their environment. Returns its pgid once the children run.
 */
async function fakeAppGroup(t: TestContext, appName: string): Promise<{ leader: ChildProcess; pgid: number; startTime: string }> {
  const leader = spawn('/bin/sh', ['-c', 'sleep 300 & sleep 300 & wait'], { detached: true, stdio: 'ignore', env: { PATH: process.env.PATH, APP_NAME: appName } });
  const pgid = leader.pid!;
  t.after(() => {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  });
  const startTime = (await procStat(pgid))!.startTime;
  await waitFor('the background children', async () => (await groupPids(pgid)).length === 3);
  return { leader, pgid, startTime };
}

test('recoverOrphans stops the background children of a leader that died (and was reaped) meanwhile', async (t) => {
  const h = harness(t);
  const ours = await fakeAppGroup(t, 'halfdead');
  const theirs = await fakeAppGroup(t, 'someone-else');
  const runDir = path.join(h.dataDir, 'run');
  fs.mkdirSync(runDir, { recursive: true });
  for (const [name, g] of [['halfdead', ours], ['stranger', theirs]] as const) {
    fs.writeFileSync(path.join(runDir, `${name}.json`), JSON.stringify({ name, pid: g.pgid, pgid: g.pgid, start_time: g.startTime, started_at: '', stop_timeout: 2000 }));
    // The leader dies and is reaped (by us, its parent): its pid names nothing now.
    await new Promise((resolve) => {
      g.leader.once('exit', resolve);
      g.leader.kill('SIGKILL');
    });
    assert.equal(await procStat(g.pgid), undefined);
    assert.equal((await groupPids(g.pgid)).length, 2, 'the children outlive the leader');
  }

  // Only the group whose members carry APP_NAME=halfdead is ours to stop.
  assert.equal(await h.sup.recoverOrphans(), 1);
  assert.deepEqual(await groupPids(ours.pgid), []);
  assert.equal((await groupPids(theirs.pgid)).length, 2, 'a group that is not the app\'s is left alone');
  assert.deepEqual(fs.readdirSync(runDir), []);
});

test('a run file whose pid now names another process is not acted on', async (t) => {
  const h = harness(t);
  // An unrelated process (its own group) that happens to have the recorded pid.
  const bystander = spawn('sleep', ['300'], { detached: true, stdio: 'ignore', env: { PATH: process.env.PATH, APP_NAME: 'other' } });
  t.after(() => bystander.kill('SIGKILL'));
  const pid = bystander.pid!;
  const realStart = (await procStat(pid))!.startTime;
  const runDir = path.join(h.dataDir, 'run');
  fs.mkdirSync(runDir, { recursive: true });
  const record = { name: 'old', pid, pgid: pid, start_time: String(Number(realStart) - 1000), started_at: new Date().toISOString(), stop_timeout: 1000 };
  fs.writeFileSync(path.join(runDir, 'old.json'), JSON.stringify(record));
  // And a record of a process that no longer exists at all.
  fs.writeFileSync(path.join(runDir, 'ghost.json'), JSON.stringify({ ...record, name: 'ghost', pid: 2 ** 22 + 1, pgid: 2 ** 22 + 1 }));

  assert.equal(await h.sup.recoverOrphans(), 0);
  assert.equal((await procStat(pid))?.startTime, realStart, 'the bystander still runs');
  assert.deepEqual(fs.readdirSync(runDir), [], 'stale records are deleted');
});
