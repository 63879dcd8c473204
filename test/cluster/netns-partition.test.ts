/**
 * Issue 11, "How it is proven": the link of one namespace (node c's) is cut.
 * partition() takes c's veth down on both sides: c reaches neither Redis nor
 * the other nodes, and the test process (root namespace) cannot reach c
 * either, so "c serves its own apps" is checked from inside c's namespace,
 * as a client on c's side of the cut would see it. The others mark c down
 * (503 PH_ERR_NODE_DOWN naming it); when the link returns c converges, and an
 * app registered during the partition is reached through c.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { ECHO_CMD, echoJson, firstAnswer, startNsCluster, until, withLogs, type NsCluster, type NsNode } from './netns-helpers.js';

/** GET from inside node n's namespace: status and body, or "no answer". */
async function getFrom(cl: NsCluster, n: NsNode, url: string): Promise<{ status: number; json: any } | 'no answer'> {
  const code = `fetch(process.argv[1],{headers:{accept:'application/json'},signal:AbortSignal.timeout(3000)}).then(async r=>console.log(JSON.stringify({status:r.status,body:await r.text()})),()=>console.log('no answer'))`;
  const r = await cl.net.exec(n.i, process.execPath, ['-e', code, url], 10_000);
  const out = r.stdout.trim();
  if (!out.startsWith('{')) return 'no answer';
  const { status, body } = JSON.parse(out) as { status: number; body: string };
  let json: any;
  try {
    json = JSON.parse(body);
  } catch {
    json = undefined;
  }
  return { status, json };
}

test('a partitioned node serves its own apps on its side of the cut, the others mark it down, and it converges when the link returns', { timeout: 180_000 }, async (t) => {
  const cl = await startNsCluster(t);
  const [a, b, c] = cl.nodes as [NsNode, NsNode, NsNode];
  await withLogs(cl, async () => {
    for (const [n, app] of [
      [a, 'ea'],
      [c, 'ec'],
    ] as const) {
      assert.equal((await n.api('PUT', `/apps/${app}`, { cmd: ECHO_CMD })).status, 200);
      assert.equal((await n.api('POST', `/apps/${app}/start`)).status, 200);
    }
    for (const n of cl.nodes) for (const app of ['ea', 'ec']) await until(`${n.name} routes ${app}`, () => echoJson(`${n.url}/${app}/`), 5_000);
    // A node: any app placed on c (a and b are given two apps each, c has one).
    for (const [n, pads] of [
      [a, ['pa']],
      [b, ['pb1', 'pb2']],
    ] as const) {
      for (const pad of pads) assert.equal((await n.api('PUT', `/apps/${pad}`, { port: 7001 })).status, 200);
    }
    assert.equal((await a.api('PUT', '/apps/roamer', { cmd: ECHO_CMD, node: 'any', autostart: true })).status, 200);
    const onC = await until('roamer runs on c', () => echoJson(`${a.url}/roamer/`), 10_000);
    assert.ok(onC.cwd.startsWith(c.dataDir), `roamer was placed on c (cwd ${onC.cwd})`);

    const pollMs = Math.max(100, Math.min(1_000, Math.floor(cl.ttlMs / 5)));
    const cut = performance.now();
    await cl.net.partition(c.i);

    // The others mark c down: ec answers 503 naming node c through a and b.
    const detected = await Promise.all(
      [a, b].map(async (n) => {
        const { value: message, at } = await firstAnswer(`${n.url}/ec/`, (r) => (r.status === 503 && r.json?.error?.code === 'PH_ERR_NODE_DOWN' ? (r.json.error.message as string) : undefined), cl.ttlMs + pollMs + 5_000);
        assert.match(message, /node c\b/);
        return at - cut;
      }),
    );
    console.log(`partition of c detected by a in ${detected[0]!.toFixed(0)} ms, by b in ${detected[1]!.toFixed(0)} ms (heartbeat_ttl ${cl.ttlMs} ms, poll ${pollMs} ms)`);
    for (const ms of detected) assert.ok(ms <= cl.ttlMs + pollMs + 300, `within the TTL and one poll (${ms.toFixed(0)} ms; 300 ms slack for a loaded machine)`);
    const view = (await a.api('GET', '/cluster')).body.cluster;
    assert.equal(view.nodes.find((n: { name: string }) => n.name === 'c').up, false);

    // c, on its side of the cut: its own app answers, over and over, while it cannot reach Redis.
    assert.equal(await getFrom(cl, a, `${c.url}/ec/`), 'no answer', 'c is cut off from a');
    for (let k = 0; k < 5; k++) {
      const r = await getFrom(cl, c, `${c.url}/ec/`);
      assert.ok(r !== 'no answer' && r.status === 200 && r.json.cwd.startsWith(c.dataDir), `c serves ec from inside its namespace: ${JSON.stringify(r)}`);
    }
    const health = await getFrom(cl, c, `${c.url}/_porthole/health`);
    assert.ok(health !== 'no answer' && health.json.status === 'degraded' && health.json.cluster.store.up === false, `c's health says its store is down: ${JSON.stringify(health)}`);

    // roamer moves to a live node on the others' side; c, which cannot hear of it, keeps its copy meanwhile.
    const moved = await until('roamer answers through a from a live node', async () => {
      const j = await echoJson(`${a.url}/roamer/`);
      return j && !j.cwd.startsWith(c.dataDir) ? j : undefined;
    }, 10_000, 20);
    const r3 = await getFrom(cl, c, `${c.url}/roamer/`);
    assert.ok(r3 !== 'no answer' && r3.status === 200 && r3.json.pid === onC.pid, `c still serves its own copy of roamer: ${JSON.stringify(r3)}`);

    // Changes during the partition: a new app on a, one of c's apps removed through b.
    assert.equal((await a.api('PUT', '/apps/late', { cmd: ECHO_CMD })).status, 200);
    assert.equal((await a.api('POST', '/apps/late/start')).status, 200);
    assert.equal((await b.api('PUT', '/apps/x1', { port: 7001 })).status, 200);
    const target = (await a.api('GET', '/cluster')).body.cluster.version as number;
    // c's own app is still there for c while cut off (it cannot hear of any change).
    const r2 = await getFrom(cl, c, `${c.url}/ec/`);
    assert.ok(r2 !== 'no answer' && r2.status === 200);

    await new Promise((r) => setTimeout(r, Math.max(0, 10_000 - (performance.now() - cut)))); // a 10 s partition
    const healed = performance.now();
    await cl.net.heal(c.i);

    // c converges: same version as the others, store up, marked up again, and the app registered meanwhile reached through c.
    await until(
      'c at the others\' version with its store up',
      async () => {
        const views = await Promise.all(cl.nodes.map(async (n) => (await n.api('GET', '/cluster').catch(() => undefined))?.body?.cluster));
        return views.every((v) => v?.store.up && v.version === views[0].version && v.version >= target) ? true : undefined;
      },
      30_000,
      20,
    );
    const convergedMs = performance.now() - healed;
    const late = await until('c routes late (registered during the partition) to a', () => echoJson(`${c.url}/late/`), 5_000);
    assert.ok(late.cwd.startsWith(a.dataDir));
    assert.equal((await c.api('GET', '/apps/x1')).status, 200);
    for (const n of [a, b]) await until(`${n.name} routes ec again`, () => echoJson(`${n.url}/ec/`), 10_000);
    const upAgainMs = performance.now() - healed;
    // c learns roamer moved: it stops its copy, and routes roamer to where it runs now. One copy again.
    await until(`c stops its copy of roamer (pid ${onC.pid})`, () => (existsSync(`/proc/${onC.pid}`) ? undefined : true), 10_000, 20);
    const viaC = await until('c routes roamer to its new node', () => echoJson(`${c.url}/roamer/`), 5_000);
    assert.equal(viaC.pid, moved.pid);
    console.log(`after the link returned: c converged in ${convergedMs.toFixed(0)} ms; a and b route to c again ${upAgainMs.toFixed(0)} ms after the heal`);

    // Live again: changes made now reach c within 1 s, like on any node (its change feed is not
    // stuck behind what TCP had queued during the cut).
    const delays: number[] = [];
    for (let k = 0; k < 5; k++) {
      assert.equal((await a.api('PUT', `/apps/after${k}`, { port: 7001 })).status, 200);
      const t0 = performance.now();
      await until(`c has after${k}`, async () => ((await c.api('GET', `/apps/after${k}`)).status === 200 ? true : undefined), 20_000, 5);
      delays.push(performance.now() - t0);
    }
    console.log(`changes right after the heal reached c in ${delays.map((d) => d.toFixed(0)).join(', ')} ms`);
    for (const d of delays) assert.ok(d < 1_000, `a change after the heal reached c within 1 s (${d.toFixed(0)} ms)`);
  });
});
