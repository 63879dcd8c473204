// Issue 8, item 4: a gateway killed with `kill -9` while apps are being
// registered and started must leave nothing behind that the next gateway does
// not find. Each trial fires concurrent register+start calls at a real
// `porthole serve`, kills it hard part-way through, starts a new gateway on
// the same data dir and checks: no process of the dead gateway's runs
// survives (zero orphans), every registration that was acknowledged is still
// there (zero lost), and once the new gateway stops no app process is left.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readToken } from '../../src/admin/token.js';
import { startServe } from '../helpers/cli.js';
import { FULL, record, size } from './harness.js';

const TRIALS = size(20, 100);
const CONCURRENT = 100;

/** Pids of live processes whose environment holds `entry` exactly. */
function carrying(entry: string): number[] {
  const needle = Buffer.from(entry);
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
      if (state === 'Z' || state === 'X') continue;
      const environ = readFileSync(`/proc/${pid}/environ`);
      if (environ.toString('latin1').split('\0').includes(needle.toString('latin1'))) pids.push(pid);
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

function killAll(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone.
    }
  }
}

async function api(url: string, token: string, method: string, path: string, body?: unknown): Promise<number> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  await res.arrayBuffer();
  return res.status;
}

test(`kill -9 during ${CONCURRENT} concurrent register+start calls leaves no orphan and loses no acknowledged registration (${TRIALS} trials)`, { timeout: FULL ? 900_000 : 170_000 }, async (t) => {
  let orphans = 0;
  let lost = 0;
  let acknowledgedTotal = 0;
  let startedTotal = 0;
  const tag = `PORTHOLE_TEST_KILL9=${randomBytes(8).toString('hex')}`;
  t.after(() => killAll(carrying(tag)));
  for (let trial = 0; trial < TRIALS; trial++) {
    const dataDir = mkdtempSync(join(tmpdir(), 'porthole-kill9-'));
    try {
      const first = await startServe(['--data', dataDir, '--log-format', 'json']);
      const token = readToken(dataDir)!;
      assert.ok(token, 'the gateway wrote its token');
      // Killed once this many registrations were acknowledged: early, middle or late in the burst.
      const killAfter = 1 + ((trial * 37) % 60);
      const acknowledged = new Set<string>();
      let killed = false;
      const killNow = () => {
        if (killed) return;
        killed = true;
        first.child.kill('SIGKILL');
      };
      const calls = Array.from({ length: CONCURRENT }, async (_, i) => {
        const name = `k${i}`;
        try {
          const body = { action: 'register', name, cmd: 'sleep 300', env: { PORTHOLE_TEST_KILL9: tag.split('=')[1] }, stop_timeout: 2000 };
          if ((await api(first.url, token, 'POST', '/webapp', body)) !== 200) return;
          acknowledged.add(name);
          if (acknowledged.size >= killAfter) killNow();
          if ((await api(first.url, token, 'POST', '/webapp', { action: 'start', name })) === 200) startedTotal++;
        } catch {
          // The gateway died under this call: not acknowledged, or acknowledged before.
        }
      });
      await Promise.all(calls);
      killNow();
      await first.exited;
      acknowledgedTotal += acknowledged.size;

      // The next gateway on the same data dir recovers before it listens.
      const second = await startServe(['--data', dataDir, '--log-format', 'json']);
      try {
        const left = carrying(tag);
        orphans += left.length;
        assert.deepEqual(left, [], `trial ${trial}: processes of the killed gateway's runs survived its restart`);
        const res = await fetch(`${second.url}/_porthole/api/apps`, { headers: { Authorization: `Bearer ${readToken(dataDir)}` } });
        const listed = new Set(((await res.json()) as { apps: { name: string }[] }).apps.map((a) => a.name));
        const missing = [...acknowledged].filter((n) => !listed.has(n));
        lost += missing.length;
        assert.deepEqual(missing, [], `trial ${trial}: acknowledged registrations lost`);
      } finally {
        await second.stop();
      }
      const after = carrying(tag);
      orphans += after.length;
      assert.deepEqual(after, [], `trial ${trial}: app processes outlived the restarted gateway's stop`);
    } finally {
      killAll(carrying(tag));
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
  record({ suite: 'kill -9 during registrations', cases: TRIALS, failures: orphans + lost, crashes: 0, note: `${acknowledgedTotal} acknowledged registrations, ${startedTotal} acknowledged starts, ${orphans} orphans, ${lost} lost` });
});
