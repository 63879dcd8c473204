/**
 * `workers: 2`: the primary outlives a worker that dies while the primary is talking to it.
 * Between a worker's death and the moment the primary reads that its channel closed, every
 * message the primary sends that worker (asking for its connections, a route snapshot, the
 * answer to a wake-up question) fails with EPIPE. That failure must end nothing but the
 * dead worker: before, it was an unhandled 'error' event that ended the primary, and with it
 * the port and every other worker's tunnels.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startAdmin, type AdminGateway } from '../helpers/admin.js';
import { sleep } from '../helpers/net.js';

interface Health {
  workers: { pid: number; listening: boolean }[];
}

async function health(url: string): Promise<Health> {
  const res = await fetch(`${url}/_porthole/health`, { headers: { Accept: 'application/json' }, signal: AbortSignal.timeout(10_000) });
  assert.equal(res.status, 200);
  return (await res.json()) as Health;
}

describe('porthole serve with workers: 2: a worker that dies while the primary writes to it', () => {
  let gw: AdminGateway;
  before(async () => {
    gw = await startAdmin({ config: 'workers: 2\n' });
  });
  after(() => gw.cleanup());

  test('the primary, stopped, gets a health request (it asks every worker for its connections) queued before a worker\'s death: it survives, logs the exit, and replaces the worker', async () => {
    const primary = gw.child.pid!;
    for (let round = 0; round < 3; round++) {
      // Warm keep-alive hops from both workers to the primary: the queued request must be
      // readable on a connection the primary already holds, ahead of the dead worker's channel.
      for (let i = 0; i < 12; i++) await health(gw.url);
      const { workers } = await health(gw.url);
      assert.equal(workers.length, 2);
      const victim = workers[0].pid;
      process.kill(primary, 'SIGSTOP');
      let pending: Promise<Health> | undefined;
      try {
        // Taken by either worker and passed to the stopped primary: it waits in the primary's socket.
        pending = Promise.all([health(gw.url), health(gw.url), health(gw.url), health(gw.url)]).then((all) => all[3]);
        pending.catch(() => {});
        await sleep(300);
        process.kill(victim, 'SIGKILL');
        await sleep(200);
      } finally {
        process.kill(primary, 'SIGCONT');
      }
      // Requests the dead worker held die with it; the primary itself must not.
      await pending.catch(() => undefined);
      await sleep(300);
      assert.equal(gw.child.exitCode, null, `the primary is running (round ${round + 1}):\n${gw.stderr().slice(-2000)}`);
      assert.doesNotMatch(gw.stderr(), /Unhandled 'error' event|EPIPE/);
      let now: Health | undefined;
      for (const deadline = Date.now() + 15_000; Date.now() < deadline; await sleep(100)) {
        now = await health(gw.url);
        if (now.workers.length === 2 && now.workers.every((w) => w.listening) && !now.workers.some((w) => w.pid === victim)) break;
      }
      assert.ok(now && now.workers.length === 2 && !now.workers.some((w) => w.pid === victim), `the worker is replaced (round ${round + 1})`);
      const exits = gw.stdout().split('\n').filter((l) => l.includes('PH_ERR_WORKER_EXIT') && l.includes(`worker ${victim} exited`));
      assert.equal(exits.length, 1, `the exit of ${victim} is logged once`);
    }
  });
});
