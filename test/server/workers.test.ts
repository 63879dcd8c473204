/**
 * `porthole serve` with `workers: 2` (docs/workers.md), as real processes: both workers take
 * connections, an app registered through the admin API is routed by every worker, the
 * admin API and the metrics see the tunnels of both, a worker killed with SIGKILL is
 * replaced while the other's tunnels keep echoing, and SIGTERM drains every worker.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import WebSocket from 'ws';
import { after, before, describe, test } from 'node:test';
import { startAdmin, type AdminGateway } from '../helpers/admin.js';
import { jsonLines } from '../helpers/cli.js';
import { closed, nextMessage, openWs, sleep, waitFor, wsUpstream, type WsUpstream } from '../helpers/net.js';

interface Health {
  status: string;
  tunnels: number;
  workers: { pid: number; listening: boolean; tunnels: number }[];
  worker: number;
}

/**
 * One request on a connection of its own (fetch would reuse a pooled keep-alive connection,
 * which may be to a worker a test has just killed): whichever worker accepts it answers.
 */
function health(url: string): Promise<Health> {
  return new Promise((ok, fail) => {
    const req = http.get(`${url}/_porthole/health`, { agent: false, headers: { Accept: 'application/json' }, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => (res.statusCode === 200 ? ok(JSON.parse(body) as Health) : fail(new Error(`health: ${res.statusCode} ${res.headers['x-porthole-error']}: ${body}`))));
      res.on('error', fail);
    });
    req.on('timeout', () => req.destroy(new Error('health: no answer in 5 s')));
    req.on('error', fail);
  });
}

async function tunnels(gw: AdminGateway): Promise<{ app: string; worker: number; id: number }[]> {
  return (await gw.api('GET', '/_porthole/api/tunnels')).body.tunnels;
}

async function echoes(ws: WebSocket, text: string): Promise<void> {
  ws.send(text);
  assert.equal((await nextMessage(ws)).data.toString(), text);
}

/**
 * Runs `fn` while every worker but `pid` is stopped (SIGSTOP): the stopped ones cannot accept,
 * so the connections `fn` makes are taken by `pid` (the kernel alone would pick, and may pick
 * one worker for a long run of connections on a busy machine).
 */
async function onWorker<T>(pids: number[], pid: number, fn: () => Promise<T>): Promise<T> {
  const others = pids.filter((p) => p !== pid);
  for (const p of others) process.kill(p, 'SIGSTOP');
  try {
    return await fn();
  } finally {
    for (const p of others) process.kill(p, 'SIGCONT');
  }
}

/** Opens a tunnel to `path` through each worker; returns them by worker pid, each checked in the admin API's list. */
async function tunnelOnEach(gw: AdminGateway, path: string, open: WebSocket[]): Promise<Map<number, WebSocket>> {
  const pids = (await health(gw.url)).workers.map((w) => w.pid);
  const byWorker = new Map<number, WebSocket>();
  const key = (t: { worker: number; id: number }) => `${t.worker}:${t.id}`;
  for (const pid of pids) {
    const known = new Set((await tunnels(gw)).map(key));
    const ws = await onWorker(pids, pid, async () => {
      const ws = await openWs(`ws://127.0.0.1:${gw.port}${path}`);
      open.push(ws);
      await echoes(ws, `hello ${pid}`);
      return ws;
    });
    // The one tunnel that was not listed before is this one, held by the worker that was left running.
    const fresh = (await tunnels(gw)).filter((t) => !known.has(key(t)));
    assert.deepEqual(fresh.map((t) => t.worker), [pid], 'the new tunnel is listed under the worker that took it');
    byWorker.set(pid, ws);
  }
  return byWorker;
}

describe('porthole serve with workers: 2', () => {
  let echo: WsUpstream;
  let later: WsUpstream;
  let gw: AdminGateway;
  const open: WebSocket[] = [];
  before(async () => {
    [echo, later] = await Promise.all([wsUpstream(), wsUpstream()]);
    gw = await startAdmin({ config: `workers: 2\napps:\n  - name: echo\n    port: ${echo.port}\n` });
  });
  after(async () => {
    for (const ws of open) ws.terminate();
    await gw.cleanup();
    await Promise.all([echo.close(), later.close()]);
  });

  test('two worker processes take connections; /_porthole/health lists both and names the one that answered', async () => {
    assert.match(gw.stderr(), /listening on http:\/\/127\.0\.0\.1:\d+ \(1 app, 2 workers\)/);
    const first = await health(gw.url);
    assert.equal(first.workers.length, 2);
    assert.ok(first.workers.every((w) => w.listening));
    const pids = first.workers.map((w) => w.pid);
    assert.ok(!pids.includes(gw.child.pid!), 'the primary does not take connections');
    for (const pid of pids) {
      const h = await onWorker(pids, pid, () => health(gw.url));
      assert.equal(h.worker, pid, 'the worker left running answered, and health names it');
    }
  });

  test('an app registered through the admin API is routed by every worker', async () => {
    const reg = await gw.api('PUT', '/_porthole/api/apps/later', { port: later.port });
    assert.equal(reg.status, 200, JSON.stringify(reg.body));
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${gw.url}/later/page`, { headers: { Connection: 'close' } });
      assert.equal(res.status, 200);
      assert.equal(await res.text(), 'http-ok /page');
    }
    const each = await tunnelOnEach(gw, '/later/', open);
    assert.equal(each.size, 2, 'a tunnel to the new app through each worker');
  });

  test('an app the workers cannot run yet (stdio) is refused by the admin API with 400, nothing stored', async () => {
    const reg = await gw.api('PUT', '/_porthole/api/apps/sh', { stdio: 'cat' });
    assert.equal(reg.status, 400);
    assert.match(JSON.stringify(reg.body), /app\.stdio: not supported with workers: 2 yet/);
    assert.equal((await gw.api('GET', '/_porthole/api/apps/sh')).status, 404);
  });

  test('tunnels on both workers: listed by the admin API, counted by the metrics and health', async () => {
    const each = await tunnelOnEach(gw, '/echo/', open);
    assert.equal(each.size, 2);
    const listed = await tunnels(gw);
    const pids = new Set(listed.filter((t) => t.app === 'echo').map((t) => t.worker));
    assert.equal(pids.size, 2, 'the list holds tunnels of both workers');
    const total = listed.length;
    const metrics = await fetch(`${gw.url}/_porthole/metrics`, { headers: { Authorization: `Bearer ${gw.token}` } }).then((r) => r.text());
    const gauge = [...metrics.matchAll(/^porthole_tunnels_open\{[^}]*\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
    assert.equal(gauge, total, 'porthole_tunnels_open sums every worker');
    const h = await health(gw.url);
    assert.equal(h.tunnels, total);
    assert.equal(h.workers.reduce((n, w) => n + w.tunnels, 0), total);
  });

  test('a worker killed with SIGKILL is replaced; the other worker\'s tunnels keep echoing', async () => {
    const each = await tunnelOnEach(gw, '/echo/', open);
    const [victim, survivor] = [...each.keys()];
    const doomed = each.get(victim)!;
    const kept = each.get(survivor)!;
    const gone = closed(doomed);
    process.kill(victim, 'SIGKILL');
    await gone;
    await echoes(kept, 'still here');
    let replaced: Health | undefined;
    for (const deadline = Date.now() + 10_000; !replaced && Date.now() < deadline; await sleep(100)) {
      const h = await health(gw.url);
      if (h.workers.length === 2 && h.workers.every((w) => w.listening) && !h.workers.some((w) => w.pid === victim)) replaced = h;
    }
    assert.ok(replaced, 'a replacement worker listens');
    assert.ok(replaced.workers.some((w) => w.pid === survivor));
    await echoes(kept, 'after the replacement');
    // New connections work, whichever worker takes them.
    for (let i = 0; i < 4; i++) {
      const ws = await openWs(`ws://127.0.0.1:${gw.port}/echo/`);
      open.push(ws);
      await echoes(ws, `new ${i}`);
    }
    const exit = await waitFor(() => jsonLines(gw.stdout()).find((l) => l.event === 'error' && l.code === 'PH_ERR_WORKER_EXIT'), 5_000, 'the exit logged');
    assert.match(String(exit.message), new RegExp(`worker ${victim} exited \\(signal SIGKILL\\)`));
  });

  test('SIGTERM drains every worker: each open tunnel gets 1001, then exit 0', async () => {
    const each = await tunnelOnEach(gw, '/echo/', open);
    assert.equal(each.size, 2);
    const live = open.filter((ws) => ws.readyState === WebSocket.OPEN);
    const closes = live.map((ws) => closed(ws));
    const workerPids = (await health(gw.url)).workers.map((w) => w.pid);
    gw.child.kill('SIGTERM');
    const codes = await Promise.all(closes);
    assert.ok(codes.every((c) => c.code === 1001), `every tunnel closed 1001: ${JSON.stringify(codes.map((c) => c.code))}`);
    assert.equal(await gw.exited, 0);
    for (const pid of workerPids) assert.throws(() => process.kill(pid, 0), 'the worker is gone');
  });
});

describe('porthole serve with workers: 2: a worker that keeps dying', () => {
  let gw: AdminGateway;
  before(async () => {
    gw = await startAdmin({ config: 'workers: 2\n' });
  });
  after(() => gw.cleanup());

  test('5 replacements within 60 s, then PH_ERR_WORKER_RESTARTS: the place stays empty, the other worker serves', async () => {
    let pids = (await health(gw.url)).workers.map((w) => w.pid);
    for (let i = 0; i < 5; i++) {
      const victim = pids[0];
      process.kill(victim, 'SIGKILL');
      let now: Health | undefined;
      for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(100)) {
        now = await health(gw.url);
        if (now.workers.length === 2 && now.workers.every((w) => w.listening) && !now.workers.some((w) => w.pid === victim)) break;
      }
      assert.ok(now && now.workers.length === 2 && !now.workers.some((w) => w.pid === victim), `replacement ${i + 1}`);
      pids = now.workers.map((w) => w.pid);
    }
    const last = pids[0];
    process.kill(last, 'SIGKILL');
    const limit = await waitFor(() => jsonLines(gw.stdout()).find((l) => l.event === 'error' && l.code === 'PH_ERR_WORKER_RESTARTS'), 10_000, 'the restart limit logged');
    assert.match(String(limit.message), /workers ended 6 times within 60 s/);
    await sleep(500);
    const h = await health(gw.url);
    assert.deepEqual(h.workers.map((w) => w.pid), [pids[1]], 'one worker left, not replaced');
    assert.equal(h.status, 'ok');
  });
});
