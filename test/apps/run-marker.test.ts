// Children that leave the app's process group — setsid, daemons, programs on
// a pty — are out of reach of a signal to the group. Every process of a run
// carries PORTHOLE_RUN=<marker> in its environment, and a stop (or the crash
// recovery after a gateway kill -9) also stops every process that has it.
// Real processes throughout; /proc is read directly to check what is left.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { isRunMarker, newRunMarker } from '../../src/apps/clean-env.js';
import { hasEnvEntry, procStat, runMembers, stopRun } from '../../src/apps/process-group.js';
import type { AppStatus } from '../../src/apps/supervisor.js';
import { app, FIXTURES, get, groupPids, harness, markedPids, procEnviron, sessionOf, tempDir, waitFor, type Harness } from '../fixtures/apps/harness.js';

const ESCAPE_SH = path.join(FIXTURES, 'escape.sh');
const HOST = path.join(FIXTURES, 'supervisor-host.ts');
const escapeApp = (name: string, env: Record<string, string> = {}, more: Partial<Parameters<typeof app>[0]> = {}) =>
  app({ name, cmd: `sh ${ESCAPE_SH}`, env: { NODE: process.execPath, ...env }, stop_timeout: 5000, ...more });

/** A process by pid and start time: a later process that got the same pid is not it. */
interface Proc {
  pid: number;
  startTime: string;
}

async function alive(p: Proc): Promise<boolean> {
  const s = await procStat(p.pid);
  return !!s && s.startTime === p.startTime && s.state !== 'Z' && s.state !== 'X';
}

/** SIGKILLs whatever of the marker is left after the test, whatever happened in it. */
function reapMarked(t: TestContext, marker: () => string | undefined): void {
  t.after(() => {
    const m = marker();
    if (!m) return;
    for (const pid of markedPids(m)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone meanwhile.
      }
    }
  });
}

/**
 * Waits for the children of escape.sh to write their pid files in
 * `cwd`, and checks they really left the leader's group and session.
 */
async function escapees(cwd: string, leader: number): Promise<Record<'bg' | 'fork' | 'daemon', Proc>> {
  const out = {} as Record<'bg' | 'fork' | 'daemon', Proc>;
  for (const name of ['bg', 'fork', 'daemon'] as const) {
    const file = path.join(cwd, `${name}.pid`);
    const pid = await waitFor(`${name}.pid`, () => {
      const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim() : '';
      return /^\d+$/.test(text) ? Number(text) : undefined;
    });
    // `exec sleep` / nohup: wait until the pid runs what it will run for good.
    const stat = await waitFor(`${name} (${pid}) to run sleep`, async () => {
      const s = await procStat(pid);
      return s && fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('sleep\0') ? s : undefined;
    });
    assert.notEqual(stat.pgid, leader, `${name} left the app's process group`);
    assert.notEqual(sessionOf(pid), sessionOf(leader), `${name} left the app's session`);
    out[name] = { pid, startTime: stat.startTime };
  }
  return out;
}

/** The marker of a running app, from what the kernel handed its leader. */
function markerOf(pid: number): string {
  const marker = procEnviron(pid).PORTHOLE_RUN;
  assert.ok(isRunMarker(marker), `the leader carries a run marker: ${marker}`);
  return marker;
}

async function startEscape(h: Harness, name: string, env: Record<string, string> = {}, more: Partial<Parameters<typeof app>[0]> = {}) {
  await h.sup.set(escapeApp(name, env, more));
  const status = await h.sup.start(name);
  assert.equal(await h.sup.waitReady(name, 20_000), 'running');
  const pid = status.pid!;
  const cwd = path.join(h.dataDir, 'apps', name);
  return { pid, port: status.port!, cwd, kids: await escapees(cwd, pid) };
}

test('a stop leaves no process of the run: setsid children, setsid -f and a double-forked daemon included', async (t) => {
  const h = harness(t);
  let marker: string | undefined;
  reapMarked(t, () => marker);
  const { pid, kids } = await startEscape(h, 'escape');
  marker = procEnviron(pid).PORTHOLE_RUN;
  const groupBefore = await groupPids(pid);
  for (const [name, kid] of Object.entries(kids)) assert.ok(!groupBefore.includes(kid.pid), `${name} is not in the group a group signal reaches`);

  const t0 = Date.now();
  const stopped = await h.sup.stop('escape');
  const took = Date.now() - t0;
  assert.equal(stopped.state, 'stopped');
  assert.ok(took < 4_000, `SIGTERM was enough, no wait for stop_timeout (took ${took} ms)`);
  // Without the marker (before this fix) all three were still running here.
  for (const [name, kid] of Object.entries(kids)) assert.equal(await alive(kid), false, `${name} (pid ${kid.pid}) survived the stop`);

  assert.ok(isRunMarker(marker), `the leader carried a run marker: ${marker}`);
  assert.deepEqual(markedPids(marker), [], 'no process with the marker remains');
  assert.deepEqual(await groupPids(pid), [], 'no process of the group remains');
  await h.sup.stopAll(); // flushes the log
  assert.ok(h.sup.logs('escape', 30).some((l) => /stopped processes that had left the process group .*PORTHOLE_RUN/.test(l)));
});

test('a setsid child that ignores SIGTERM is SIGKILLed after stop_timeout', async (t) => {
  const h = harness(t);
  let marker: string | undefined;
  reapMarked(t, () => marker);
  const { pid, kids } = await startEscape(h, 'stubborn', { IGNORE_TERM: '1' }, { stop_timeout: 1500 });
  marker = markerOf(pid);

  const t0 = Date.now();
  await h.sup.stop('stubborn');
  const took = Date.now() - t0;
  assert.ok(took >= 1450, `waited stop_timeout before SIGKILL (took ${took} ms)`);
  assert.ok(took < 6_000, `and not much longer (took ${took} ms)`);
  assert.equal(await alive(kids.fork), false, 'SIGKILL reached the child in its own session');
  assert.deepEqual(markedPids(marker), []);
  await h.sup.stopAll();
  assert.ok(h.sup.logs('stubborn', 30).some((l) => /sent SIGKILL to the process group and \d+ marked process\(es\) outside it/.test(l)));
});

test('when the leader exits (a daemonizing cmd), the children it set free are stopped too', async (t) => {
  const h = harness(t);
  // Like `websockify -D` as the whole cmd: fork a daemon into its own session, exit 0 (once the test looked).
  const cmd = `setsid -f sh -c 'echo $$ > fork.pid; exec sleep 300'; while [ ! -e go ]; do sleep 0.05; done; exit 0`;
  await h.sup.set(app({ name: 'daemonizer', cmd, restart: 'never' }));
  const pid = (await h.sup.start('daemonizer')).pid!;
  const marker = markerOf(pid);
  reapMarked(t, () => marker);
  const cwd = path.join(h.dataDir, 'apps', 'daemonizer');
  const pidText = await waitFor('fork.pid', () => fs.existsSync(path.join(cwd, 'fork.pid')) && fs.readFileSync(path.join(cwd, 'fork.pid'), 'utf8').trim());
  const fork = { pid: Number(pidText), startTime: (await procStat(Number(pidText)))!.startTime };
  assert.notEqual(sessionOf(fork.pid), sessionOf(pid), 'the daemon left the session');

  fs.writeFileSync(path.join(cwd, 'go'), '');
  await waitFor('the leader to exit and its run to be cleaned up', async () => h.sup.status('daemonizer')?.state === 'stopped' && !(await alive(fork)), 10_000);
  assert.deepEqual(markedPids(marker), []);
  await waitFor('the run file to be removed', () => !fs.existsSync(path.join(h.dataDir, 'run', 'daemonizer.json')));
});

test("the marker is the supervisor's: an app's env cannot set it, and every run gets a new one", async (t) => {
  const h = harness(t);
  const forged = newRunMarker();
  await h.sup.set(app({ name: 'forger', cmd: 'exec sleep 300', env: { PORTHOLE_RUN: forged } }));
  const first = markerOf((await h.sup.start('forger')).pid!);
  assert.notEqual(first, forged);
  const record = JSON.parse(fs.readFileSync(path.join(h.dataDir, 'run', 'forger.json'), 'utf8'));
  assert.equal(record.marker, first, 'the run file records the marker');
  await h.sup.restart('forger');
  const second = markerOf(h.sup.status('forger')!.pid!);
  assert.notEqual(second, first);
  assert.notEqual(second, forged);
  await h.sup.stop('forger');
  assert.deepEqual(markedPids(first), []);
  assert.deepEqual(markedPids(second), []);
});

test("two apps' stops never touch each other's processes, even when one's env names the other's marker", async (t) => {
  const h = harness(t);
  const markers: string[] = [];
  reapMarked(t, () => markers[0]);
  reapMarked(t, () => markers[1]);
  const a = await startEscape(h, 'app-a');
  markers.push(markerOf(a.pid));
  // b asks for a's marker: if it got it, a's stop would take b's processes with it.
  const b = await startEscape(h, 'app-b', { PORTHOLE_RUN: markers[0] });
  markers.push(markerOf(b.pid));
  assert.notEqual(markers[1], markers[0]);
  const bMarked = markedPids(markers[1]).sort();
  const bGroup = await groupPids(b.pid);
  for (const kid of Object.values(b.kids)) assert.ok(bMarked.includes(kid.pid), "b's children carry b's marker");
  assert.ok(!markedPids(markers[0]).some((pid) => bMarked.includes(pid)), "none of b's carries a's");

  await h.sup.stop('app-a');
  assert.deepEqual(markedPids(markers[0]), [], "a's processes are gone");
  for (const kid of Object.values(a.kids)) assert.equal(await alive(kid), false);
  assert.equal(h.sup.status('app-b')?.state, 'running');
  for (const kid of Object.values(b.kids)) assert.equal(await alive(kid), true, "b's setsid children are untouched");
  assert.deepEqual(markedPids(markers[1]).sort(), bMarked, "every process of b is still there");
  assert.deepEqual(await groupPids(b.pid), bGroup);
  assert.equal((await get(b.port, '/')).status, 200, 'b still answers');

  await h.sup.stop('app-b');
  assert.deepEqual(markedPids(markers[1]), []);
  for (const kid of Object.values(b.kids)) assert.equal(await alive(kid), false);
});

/** Runs a stand-in gateway (supervisor-host.ts) that starts `fields` and reports its status once ready. */
async function hostApp(t: TestContext, dataDir: string, fields: Parameters<typeof app>[0]): Promise<{ host: ChildProcess; status: AppStatus }> {
  const host = spawn(process.execPath, ['--import', 'tsx', HOST, dataDir, JSON.stringify(fields)], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => host.kill('SIGKILL'));
  let out = '';
  host.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  const status = await waitFor('the host to report its app ready', () => {
    if (host.exitCode !== null) throw new Error(`host exited with ${host.exitCode}`);
    const m = /^ready (.*)$/m.exec(out);
    return m ? (JSON.parse(m[1]) as AppStatus) : undefined;
  }, 30_000);
  return { host, status };
}

test('after a gateway kill -9, recoverOrphans on a new Supervisor stops the marked processes too — only those', async (t) => {
  const dataDir = tempDir(t);
  let marker: string | undefined;
  reapMarked(t, () => marker);
  const { host, status } = await hostApp(t, dataDir, escapeApp('orphan'));
  const pgid = status.pid!;
  t.after(() => {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // Gone: the expected case.
    }
  });
  marker = markerOf(pgid);
  const kids = await escapees(path.join(dataDir, 'apps', 'orphan'), pgid);
  const record = JSON.parse(fs.readFileSync(path.join(dataDir, 'run', 'orphan.json'), 'utf8'));
  assert.equal(record.marker, marker);

  // Bystanders in sessions of their own whose environments come close to the marker, but not exactly.
  const near = [`PORTHOLE_RUN=${marker}0`, `XPORTHOLE_RUN=${marker}`, `PORTHOLE_RUN=${marker.slice(0, -1)}`].map((entry) => {
    const [key, value] = entry.split('=');
    const p = spawn('sleep', ['300'], { detached: true, stdio: 'ignore', env: { PATH: process.env.PATH, [key]: value } });
    t.after(() => p.kill('SIGKILL'));
    return p.pid!;
  });
  const nearProcs = await Promise.all(near.map(async (pid) => ({ pid, startTime: (await procStat(pid))!.startTime })));

  await new Promise((resolve) => {
    host.once('exit', resolve);
    host.kill('SIGKILL');
  });
  for (const kid of Object.values(kids)) assert.equal(await alive(kid), true, 'the setsid children outlived their gateway');
  assert.ok((await groupPids(pgid)).length >= 1, 'and so did the group');

  // The next gateway, on the same data dir.
  const h = harness(t, { dataDir });
  assert.equal(await h.sup.recoverOrphans(), 1);
  for (const [name, kid] of Object.entries(kids)) assert.equal(await alive(kid), false, `${name} was stopped`);
  assert.deepEqual(markedPids(marker), [], 'no process with the marker remains');
  assert.deepEqual(await groupPids(pgid), [], 'no process of the old group remains');
  for (const p of nearProcs) assert.equal(await alive(p), true, `bystander ${p.pid} (a marker that is not exactly ours) still runs`);
  assert.equal(fs.existsSync(path.join(dataDir, 'run', 'orphan.json')), false, 'the run file is consumed');
});

test('recovery trusts a recorded marker only for processes no older than the recorded leader', async (t) => {
  const h = harness(t);
  const marker = newRunMarker();
  reapMarked(t, () => marker);
  // A lone process in its own session with the marker; its leader is long gone.
  const p = spawn('sleep', ['300'], { detached: true, stdio: 'ignore', env: { PATH: process.env.PATH, PORTHOLE_RUN: marker } });
  t.after(() => p.kill('SIGKILL'));
  const proc = { pid: p.pid!, startTime: (await procStat(p.pid!))!.startTime };
  const runDir = path.join(h.dataDir, 'run');
  fs.mkdirSync(runDir, { recursive: true });
  const record = (start: number) => JSON.stringify({ name: 'gone', pid: 2 ** 22 + 1, pgid: 2 ** 22 + 1, start_time: String(start), marker, started_at: '', stop_timeout: 1000 });

  // A leader that started after the process: the process cannot be its descendant.
  fs.writeFileSync(path.join(runDir, 'gone.json'), record(Number(proc.startTime) + 1000));
  assert.equal(await h.sup.recoverOrphans(), 0);
  assert.equal(await alive(proc), true);
  // A malformed marker is not trusted at all (an empty one would match any PORTHOLE_RUN=).
  fs.writeFileSync(path.join(runDir, 'gone.json'), record(0).replace(marker, ''));
  assert.equal(await h.sup.recoverOrphans(), 0);
  assert.equal(await alive(proc), true);
  // A leader that started before it: ours.
  fs.writeFileSync(path.join(runDir, 'gone.json'), record(Number(proc.startTime)));
  assert.equal(await h.sup.recoverOrphans(), 1);
  assert.equal(await alive(proc), false);
  assert.deepEqual(fs.readdirSync(runDir), []);
});

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

test('real daemons: a private tmux server and websockify -D are stopped with the app', { skip: !process.env.CI && !(has('tmux') && has('websockify')) && 'needs tmux and websockify' }, async (t) => {
  const h = harness(t);
  const wsPort = await h.sup.allocPort();
  const cmd = [
    // A tmux server of its own (not the user's shared one), daemonized, running a session.
    `tmux -S "$PWD/tmux.sock" new-session -d 'sleep 300'`,
    // websockify daemonizes (double fork, setsid) and serves WS_PORT.
    `websockify -D 127.0.0.1:$WS_PORT 127.0.0.1:9 >/dev/null 2>&1`,
    `exec "$NODE" ${JSON.stringify(path.join(FIXTURES, 'http-server.mjs'))}`,
  ].join(' && ');
  await h.sup.set(app({ name: 'daemons', cmd, ws_port: wsPort, env: { NODE: process.execPath, SKIP_WS: '1', TERM: 'xterm' }, stop_timeout: 5000 }));
  const pid = (await h.sup.start('daemons')).pid!;
  assert.equal(await h.sup.waitReady('daemons', 20_000), 'running');
  const marker = markerOf(pid);
  reapMarked(t, () => marker);
  const comm = (p: number) => {
    try {
      return fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim();
    } catch {
      return ''; // a daemon's intermediate fork, gone meanwhile
    }
  };
  // The daemons, once the forks in between have exited: outside the group, marked.
  const outside = await waitFor('the tmux server, its session and websockify outside the group', async () => {
    const group = await groupPids(pid);
    const pids = markedPids(marker).filter((p) => !group.includes(p));
    const comms = pids.map(comm);
    const ok = comms.some((c) => c.startsWith('tmux')) && comms.includes('sleep') && comms.some((c) => /websockify|python/.test(c));
    return ok ? pids.filter((_, i) => /^(tmux|sleep|websockify|python)/.test(comms[i])) : undefined;
  }, 10_000);
  for (const p of outside) assert.notEqual(sessionOf(p), sessionOf(pid), `pid ${p} (${comm(p)}) left the app's session`);

  await h.sup.stop('daemons');
  assert.deepEqual(markedPids(marker), [], 'no process with the marker remains');
  for (const p of outside) assert.equal(await procStat(p).then((s) => !!s && s.state !== 'Z'), false, `pid ${p} is gone`);
});

test('hasEnvEntry matches whole NUL-separated entries only', () => {
  const env = (...entries: string[]) => Buffer.from(entries.join('\0') + '\0');
  const entry = Buffer.from('PORTHOLE_RUN=abc');
  assert.equal(hasEnvEntry(env('A=1', 'PORTHOLE_RUN=abc', 'B=2'), entry), true);
  assert.equal(hasEnvEntry(env('PORTHOLE_RUN=abc'), entry), true, 'first entry');
  assert.equal(hasEnvEntry(Buffer.from('A=1\0PORTHOLE_RUN=abc'), entry), true, 'last entry without its NUL');
  assert.equal(hasEnvEntry(env('PORTHOLE_RUN=abcd'), entry), false, 'a longer value');
  assert.equal(hasEnvEntry(env('XPORTHOLE_RUN=abc'), entry), false, 'a longer name');
  assert.equal(hasEnvEntry(env('A=PORTHOLE_RUN=abc'), entry), false, 'inside another value');
  assert.equal(hasEnvEntry(env('PORTHOLE_RUN=abcd', 'PORTHOLE_RUN=abc'), entry), true, 'a near miss first, then the entry');
  assert.equal(hasEnvEntry(Buffer.alloc(0), entry), false, 'a zombie or kernel thread: empty');
});

test('the scan survives processes that vanish under it (ENOENT) and finds every marked one meanwhile', async (t) => {
  const marker = newRunMarker();
  reapMarked(t, () => marker);
  // A marked shell that forks short-lived marked processes as fast as it can.
  const churn = spawn('/bin/sh', ['-c', 'while :; do /bin/true; done'], { detached: true, stdio: 'ignore', env: { PATH: process.env.PATH, PORTHOLE_RUN: marker } });
  t.after(() => churn.kill('SIGKILL'));
  const since = (await procStat(churn.pid!))!.startTime;
  for (let i = 0; i < 40; i++) {
    const found = await runMembers({ marker, since });
    assert.ok(found.some((s) => s.pid === churn.pid), 'the loop itself is always found');
    assert.ok(found.every((s) => s.state !== 'Z'), 'no zombie counts');
  }
  const result = await stopRun({ marker, since }, 2000);
  assert.equal(result.gone, true);
  assert.equal(result.killed, false);
  assert.deepEqual(markedPids(marker), []);
});

const isRoot = process.getuid?.() === 0;
test("another user's processes are skipped, not fatal (EACCES), and a user's own are found", { skip: !process.env.CI && !(isRoot && has('setpriv')) && 'needs root and setpriv (in CI it must run)' }, async (t) => {
  const marker = newRunMarker();
  reapMarked(t, () => marker);
  const asNobody = ['--reuid=65534', '--regid=65534', '--clear-groups'];
  const env = { PATH: process.env.PATH, PORTHOLE_RUN: marker };
  // Both marked: one of root's (unreadable for nobody), one of nobody's own.
  const rootOwned = spawn('sleep', ['300'], { detached: true, stdio: 'ignore', env });
  const nobodyOwned = spawn('setpriv', [...asNobody, 'sleep', '300'], { detached: true, stdio: 'ignore', env });
  t.after(() => [rootOwned, nobodyOwned].forEach((c) => c.kill('SIGKILL')));
  // Until setpriv has exec'd sleep, its process is root's (then not dumpable): wait for sleep itself.
  const runsSleep = (pid: number) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8') === 'sleep\0' + '300\0';
    } catch {
      return false;
    }
  };
  await waitFor('both sleeps to run', () => runsSleep(rootOwned.pid!) && runsSleep(nobodyOwned.pid!) && markedPids(marker).length === 2);
  // The scan, run as nobody. The checkout may sit in a directory nobody cannot enter (a fresh
  // clone under a 0700 temp dir), so the built module (node builtins only) is copied to a
  // directory nobody can read.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'porthole-nobody-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.chmodSync(dir, 0o755);
  for (const f of ['process-group.js', 'clean-env.js']) {
    fs.copyFileSync(path.resolve(FIXTURES, '../../../dist/apps', f), path.join(dir, f));
    fs.chmodSync(path.join(dir, f), 0o644);
  }
  fs.writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}');
  fs.chmodSync(path.join(dir, 'package.json'), 0o644);
  const script = `import('./process-group.js').then(async (m) => console.log(JSON.stringify((await m.runMembers({ marker: ${JSON.stringify(marker)} })).map((s) => s.pid))))`;
  const out = spawnSync('setpriv', [...asNobody, process.execPath, '--input-type=module', '-e', script], { cwd: dir, encoding: 'utf8', env: { PATH: process.env.PATH, HOME: '/tmp' } });
  assert.equal(out.status, 0, `${out.stdout}\n${out.stderr}`);
  assert.deepEqual(JSON.parse(out.stdout.trim().split('\n').pop()!), [nobodyOwned.pid], `${out.stdout}\n${out.stderr}`);
});
