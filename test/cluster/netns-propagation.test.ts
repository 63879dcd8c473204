/**
 * Issue 11, "How it is proven": a change made through one node is applied by
 * every node within 1 s, on separate hosts (network namespaces). An app
 * registered through node a is reached through b and c over HTTP and
 * WebSocket; then 200 changes (register, update, remove) made through a are
 * timed until b and c route them, and p50/p99 are printed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ECHO_APP, ECHO_CMD, echo, echoJson, openWs, percentile, request, startNsCluster, until, withLogs } from './netns-helpers.js';

test('an app registered through node a is reached through b and c (HTTP and WebSocket) within 1 s; 200 changes through a each reach b and c within 1 s', { timeout: 180_000 }, async (t) => {
  const cl = await startNsCluster(t);
  const [a, b, c] = cl.nodes as [typeof cl.nodes[0], typeof cl.nodes[0], typeof cl.nodes[0]];
  await withLogs(cl, async () => {

  // --- one app, registered and started through a, run by a, reached through b and c
  const put = await a.api('PUT', '/apps/echo', { cmd: ECHO_CMD });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  const acked = performance.now();
  assert.equal(put.body.app.node, 'a');
  // Registering does not start an app (autostart is for the gateway's start): started through a, by a.
  const start = await a.api('POST', '/apps/echo/start');
  assert.equal(start.status, 200, JSON.stringify(start.body));
  const reach = (name: string, since: number) =>
    Promise.all(
      [b, c].map(async (n) => {
        const body = await until(`${n.name} routes ${name}`, () => echoJson(`${n.url}/${name}/x`), 10_000, 2);
        assert.ok(body.cwd.startsWith(a.dataDir), `the app runs on a (its cwd ${body.cwd} is in a's data dir)`);
        const ws = await openWs(`${n.url.replace('http', 'ws')}/${name}/`);
        await echo(ws, `hello through ${n.name}`);
        ws.close();
        return performance.now() - since;
      }),
    );
  const first = await reach('echo', acked);
  console.log(`echo, registered and started through a: reached through b in ${first[0]!.toFixed(0)} ms, through c in ${first[1]!.toFixed(0)} ms (HTTP and WebSocket; the app's own start included)`);
  // The registration alone, timed: a second app at the running process's port, registered through a.
  const port = (await a.api('GET', '/apps/echo')).body.app.port as number;
  assert.ok(Number.isInteger(port), `echo has a port on a: ${port}`);
  assert.equal((await a.api('PUT', '/apps/alias', { port })).status, 200);
  const registered = performance.now();
  const reached = await reach('alias', registered);
  console.log(`alias, registered through a: reached through b in ${reached[0]!.toFixed(0)} ms, through c in ${reached[1]!.toFixed(0)} ms after a acknowledged it (HTTP and WebSocket)`);
  for (const ms of reached) assert.ok(ms < 1_000, `reached within 1 s (took ${ms.toFixed(0)} ms)`);

  // --- 200 changes through a, each timed until b and c route it
  // Every namespace has two loopback servers, "one" on 7001 and "two" on 7002. An app without
  // cmd and with node: any is routed by each node to its own loopback, so what b and c answer
  // is what their own registry says: registered (one), updated (two), removed (404).
  for (const n of cl.nodes) {
    for (const [port, name] of [
      [7001, 'one'],
      [7002, 'two'],
    ] as const) {
      const p = cl.net.spawn(n.i, process.execPath, [ECHO_APP], { stdio: 'ignore', env: { ...process.env, PORT: String(port), APP_NAME: name } });
      t.after(() => p.kill('SIGKILL'));
    }
  }
  const local = (n: typeof a, port: number) => cl.net.exec(n.i, process.execPath, ['-e', `fetch('http://127.0.0.1:${port}/').then(r=>r.json()).then(j=>console.log(j.app),()=>console.log('down'))`]);
  for (const n of cl.nodes) await until(`${n.name}'s loopback servers`, async () => ((await local(n, 7001)).stdout.trim() === 'one' && (await local(n, 7002)).stdout.trim() === 'two' ? true : undefined), 10_000, 50);

  const answer = async (url: string): Promise<string> => {
    const r = await request(url, { timeoutMs: 2_000 }).catch(() => undefined);
    if (!r) return 'no answer';
    if (r.status === 200 && r.json?.app) return r.json.app;
    return String(r.status);
  };
  const delays: Record<string, number[]> = { b: [], c: [] };
  const changes: { op: string; app: string }[] = [];
  for (let k = 0; changes.length < 200; k++) {
    const app = `p${k}`;
    changes.push({ op: 'register', app }, { op: 'update', app });
    if (changes.length < 200) changes.push({ op: 'remove', app });
  }
  for (const ch of changes) {
    const [res, expect] =
      ch.op === 'register'
        ? [await a.api('PUT', `/apps/${ch.app}`, { port: 7001, node: 'any' }), 'one']
        : ch.op === 'update'
          ? [await a.api('PUT', `/apps/${ch.app}`, { port: 7002, node: 'any' }), 'two']
          : [await a.api('DELETE', `/apps/${ch.app}`), '404'];
    assert.equal(res.status, 200, `${ch.op} ${ch.app}: ${JSON.stringify(res.body)}`);
    const t0 = performance.now();
    await Promise.all(
      [b, c].map(async (n) => {
        let last = '';
        await until(`${n.name} routes ${ch.op} of ${ch.app} (answers ${expect}, last answer ${last})`, async () => ((last = await answer(`${n.url}/${ch.app}/`)) === expect ? true : undefined), 3_000, 2);
        delays[n.name]!.push(performance.now() - t0);
      }),
    );
  }
  const all = [...delays.b!, ...delays.c!];
  const fmt = (v: number[]) => `p50=${percentile(v, 50).toFixed(1)}ms p99=${percentile(v, 99).toFixed(1)}ms max=${Math.max(...v).toFixed(1)}ms`;
  console.log(`propagation ${fmt(all)} over ${changes.length} changes through a, seen by b and c (${all.length} samples; b: ${fmt(delays.b!)}; c: ${fmt(delays.c!)})`);
  const late = all.filter((ms) => ms >= 1_000);
  assert.deepEqual(late, [], 'every change reaches b and c within 1 s');

  // Every node holds the same registry version at the end.
  const versions = await Promise.all(cl.nodes.map(async (n) => (await n.api('GET', '/cluster')).body.cluster.version as number));
  assert.equal(new Set(versions).size, 1, `versions ${versions}`);
  });
});
