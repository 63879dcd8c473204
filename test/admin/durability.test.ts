import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { appCmd, startAdmin } from '../helpers/admin.js';
import { sleep, waitFor } from '../helpers/net.js';

/** Pids of live processes whose environment holds MARK=<mark>. */
function processesMarked(mark: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const env = readFileSync(`/proc/${d}/environ`, 'latin1');
      const stat = readFileSync(`/proc/${d}/stat`, 'latin1');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (state !== 'Z' && env.split('\0').includes(`MARK=${mark}`)) out.push(Number(d));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

test('kill -9 at random moments during 200 registrations leaves a readable registry holding every acknowledged one', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-durable-'));
  const acked: string[] = [];
  let next = 0;
  try {
    for (let round = 0; round < 3 && next < 200; round++) {
      const gw = await startAdmin({ dataDir });
      const listed = (await gw.webapp({ action: 'list' })).body.apps.map((a: { name: string }) => a.name) as string[];
      for (const name of acked) assert.ok(listed.includes(name), `round ${round}: acknowledged ${name} survived kill -9`);
      // Kill after a random number of acknowledgements, while more registrations are in flight.
      const killAfter = round === 2 ? Infinity : 20 + Math.floor(Math.random() * 50);
      let inRound = 0;
      const inflight: Promise<void>[] = [];
      let killed = false;
      while (next < 200 && !killed) {
        const name = `app-${next++}`;
        const p = gw
          .webapp({ action: 'register', name, port: 10000 + next })
          .then((r) => {
            if (r.status === 200) acked.push(name);
          })
          .catch(() => {
            /* cut by the kill: not acknowledged */
          });
        inflight.push(p);
        if (inflight.length >= 4) await inflight.shift();
        if (++inRound >= killAfter) {
          gw.child.kill('SIGKILL');
          killed = true;
        }
      }
      await Promise.all(inflight);
      if (!killed) {
        assert.equal(acked.length, new Set(acked).size);
        await gw.stop();
      } else {
        await gw.exited;
      }
    }
    // A last start reads everything back.
    const gw = await startAdmin({ dataDir });
    try {
      const names = new Set((await gw.webapp({ action: 'list' })).body.apps.map((a: { name: string }) => a.name));
      assert.ok(acked.length >= 100, `enough registrations were acknowledged (${acked.length})`);
      for (const name of acked) assert.ok(names.has(name), `${name} survived`);
      const file = JSON.parse(readFileSync(join(dataDir, 'private', 'apps.json'), 'utf8'));
      assert.equal(file.version, 1);
    } finally {
      await gw.stop();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('after kill -9 of the gateway and a restart there is exactly one instance of each autostart app', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-orphans-'));
  const marks = { one: randomUUID(), two: randomUUID() };
  try {
    const first = await startAdmin({ dataDir });
    for (const [name, mark] of Object.entries(marks)) {
      // A shell that starts a background child too, as start.sh recipes do.
      const cmd = `sleep 300 & ${appCmd()}`;
      const r = await first.webapp({ action: 'register', name, cmd, autostart: true, env: { MARK: mark } });
      assert.equal(r.status, 200);
      await first.webapp({ action: 'start', name });
    }
    for (const mark of Object.values(marks)) await waitFor(() => processesMarked(mark).length >= 2, 10_000, 'app processes');
    const before = Object.fromEntries(Object.entries(marks).map(([n, m]) => [n, processesMarked(m)]));
    first.child.kill('SIGKILL');
    await first.exited;
    // The apps outlive the killed gateway (their own process groups)...
    for (const mark of Object.values(marks)) assert.ok(processesMarked(mark).length >= 2);

    const second = await startAdmin({ dataDir });
    try {
      for (const name of Object.keys(marks)) {
        let state = '';
        const deadline = Date.now() + 15_000;
        while (Date.now() < deadline && state !== 'running') {
          state = (await second.webapp({ action: 'status', name })).body.app.state;
          await sleep(100);
        }
        assert.equal(state, 'running');
      }
      for (const [name, mark] of Object.entries(marks)) {
        const now = processesMarked(mark);
        // ...and after the restart, none of the old ones is left: one shell, its app and its sleep.
        for (const pid of before[name]) assert.ok(!now.includes(pid), `old process ${pid} of ${name} was stopped`);
        const status = (await second.webapp({ action: 'status', name })).body.app;
        assert.ok(now.includes(status.pid), 'the running instance is the one the gateway knows');
        const servers = now.filter((pid) => readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes('app.mjs'));
        assert.equal(servers.length, 1, `exactly one ${name} server process (${servers.join(',')})`);
      }
    } finally {
      await second.stop();
    }
    for (const mark of Object.values(marks)) await waitFor(() => processesMarked(mark).length === 0, 15_000, 'apps stopped with the gateway');
  } finally {
    for (const mark of Object.values(marks)) for (const pid of processesMarked(mark)) process.kill(pid, 'SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
});
