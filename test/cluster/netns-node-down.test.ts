/**
 * Issue 11, "How it is proven": `kill -9` of node b, on separate hosts. Its
 * apps answer 503 PH_ERR_NODE_DOWN (WebSockets: close 1013) naming the node
 * within the heartbeat TTL (+ one poll of the others); a `node: any` app that
 * ran on b is started on a live node and answers again; an open tunnel
 * through a to an app on c is untouched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { ECHO_CMD, echo, echoJson, firstAnswer, openWs, startNsCluster, until, withLogs, wsClose } from './netns-helpers.js';

test('kill -9 of node b: its apps report node b down within the heartbeat TTL, its node: any app moves to a live node, a tunnel through a to c is untouched', { timeout: 180_000 }, async (t) => {
  const cl = await startNsCluster(t);
  const [a, b, c] = cl.nodes as [typeof cl.nodes[0], typeof cl.nodes[0], typeof cl.nodes[0]];
  await withLogs(cl, async () => {
    // Three apps on a and three on c first: the leader then places the node: any apps on b (it runs the fewest).
    for (const [n, app] of [
      [a, 'ea'],
      [c, 'ec'],
    ] as const) {
      assert.equal((await n.api('PUT', `/apps/${app}`, { cmd: ECHO_CMD })).status, 200);
      assert.equal((await n.api('POST', `/apps/${app}/start`)).status, 200);
      for (const pad of [1, 2]) assert.equal((await n.api('PUT', `/apps/pad-${n.name}${pad}`, { port: 7000 + pad })).status, 200);
    }
    // roamer starts by itself wherever it is placed (autostart); roamer2 is started through a, by its node.
    assert.equal((await a.api('PUT', '/apps/roamer', { cmd: ECHO_CMD, node: 'any', autostart: true })).status, 200);
    const placed = await until('roamer runs and answers through a', () => echoJson(`${a.url}/roamer/`), 10_000);
    assert.ok(placed.cwd.startsWith(b.dataDir), `roamer was placed on b, the node with the fewest apps (its cwd is ${placed.cwd})`);
    assert.equal((await a.api('PUT', '/apps/roamer2', { cmd: ECHO_CMD, node: 'any' })).status, 200);
    await until('roamer2 is placed', async () => ((await a.api('GET', '/apps/roamer2')).body.app.node ? true : undefined), 5_000, 20);
    const start2 = await a.api('POST', '/apps/roamer2/start');
    assert.equal(start2.status, 200, JSON.stringify(start2.body));
    const placed2 = await until('roamer2 answers through c', () => echoJson(`${c.url}/roamer2/`), 10_000);
    assert.ok(placed2.cwd.startsWith(b.dataDir), `roamer2 was placed on b too (its cwd is ${placed2.cwd})`);
    // b has published that roamer2 runs (its heartbeat): that is what the next node goes by.
    await until('a knows roamer2 runs', async () => ((await a.api('GET', '/apps/roamer2')).body.app.state === 'running' ? true : undefined), 5_000, 20);
    assert.equal((await b.api('PUT', '/apps/eb', { cmd: ECHO_CMD })).status, 200);
    assert.equal((await b.api('POST', '/apps/eb/start')).status, 200);
    for (const n of [a, c]) await until(`${n.name} routes eb`, () => echoJson(`${n.url}/eb/`), 5_000);

    // A tunnel through a to c's app, chattering through the whole failure.
    const tunnel = await openWs(`${a.url.replace('http', 'ws')}/ec/`);
    t.after(() => tunnel.terminate());
    let tunnelClosed: string | undefined;
    tunnel.on('close', (code, reason) => (tunnelClosed = `${code} ${reason}`));
    let echoed = 0;
    let stop = false;
    const chatter = (async () => {
      while (!stop && echoed < 100_000) {
        await echo(tunnel, `m${echoed}`, 5_000);
        echoed++;
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    // A tunnel through a to b's app: it ends with b (how, is printed).
    const doomed = await openWs(`${a.url.replace('http', 'ws')}/eb/`);
    t.after(() => doomed.terminate());
    const doomedClose = new Promise<string>((ok) => doomed.once('close', (code, reason) => ok(`${code} ${reason}`)));

    const pollMs = Math.max(100, Math.min(1_000, Math.floor(cl.ttlMs / 5)));
    const killed = performance.now();
    await b.kill9();

    // Through a and c: 503 PH_ERR_NODE_DOWN naming node b, within the TTL and one poll.
    const detected = await Promise.all(
      [a, c].map(async (n) => {
        const { value: message, at } = await firstAnswer(`${n.url}/eb/`, (r) => (r.status === 503 && r.json?.error?.code === 'PH_ERR_NODE_DOWN' ? (r.json.error.message as string) : undefined), cl.ttlMs + pollMs + 5_000);
        assert.match(message, /node b\b/, `the refusal names node b: ${message}`);
        return at - killed;
      }),
    );
    console.log(`node down detected ${detected.map((ms, i) => `by ${['a', 'c'][i]} in ${ms.toFixed(0)} ms`).join(', ')} after kill -9 (heartbeat_ttl ${cl.ttlMs} ms, poll ${pollMs} ms)`);
    // The bound: the last heartbeat expires at most one TTL after the kill; the others look every poll interval.
    // 300 ms of slack for a loaded machine (two cores shared by every test process).
    for (const ms of detected) assert.ok(ms <= cl.ttlMs + pollMs + 300, `detected within the TTL and one poll (${ms.toFixed(0)} ms)`);

    // A WebSocket to b's app: closed with 1013 and a reason naming node b.
    for (const n of [a, c]) {
      const ws = await wsClose(`${n.url.replace('http', 'ws')}/eb/`);
      assert.equal(ws.code, 1013, `WebSocket through ${n.name} to eb: ${ws.code} ${ws.reason}`);
      assert.match(ws.reason, /node b\b/);
    }
    console.log(`the tunnel through a to eb (on b) ended with: ${await doomedClose}`);

    // The node: any app moves to a live node and answers again.
    const moved = await until('roamer answers again through a', () => echoJson(`${a.url}/roamer/`), 10_000, 20);
    const movedMs = performance.now() - killed;
    const home = [a, c].find((n) => moved.cwd.startsWith(n.dataDir));
    assert.ok(home, `roamer now runs on a live node (cwd ${moved.cwd})`);
    const viaC = await until('roamer answers through c', () => echoJson(`${c.url}/roamer/`), 5_000);
    assert.equal(viaC.pid, moved.pid, 'a and c route roamer to the same process');
    console.log(`roamer (node: any) answered again ${movedMs.toFixed(0)} ms after kill -9, on node ${home!.name}`);
    // roamer2 has no autostart: it is started where it moves because it ran on b.
    const moved2 = await until('roamer2 answers again through c', () => echoJson(`${c.url}/roamer2/`), 10_000, 20);
    assert.ok([a, c].some((n) => moved2.cwd.startsWith(n.dataDir)), `roamer2 now runs on a live node (cwd ${moved2.cwd})`);
    const view = (await a.api('GET', '/cluster')).body.cluster;
    assert.deepEqual(
      view.nodes.map((n: { name: string; up: boolean }) => [n.name, n.up]),
      [
        ['a', true],
        ['b', false],
        ['c', true],
      ],
    );
    assert.ok(view.nodes.find((n: { name: string }) => n.name === home!.name).apps.includes('roamer'));

    // The tunnel through a to c never noticed.
    stop = true;
    await chatter;
    assert.equal(tunnelClosed, undefined, 'the tunnel through a to c stayed open');
    await echo(tunnel, 'still here');
    assert.ok(echoed > 10, `it echoed throughout (${echoed} messages)`);
    // And a's own app, and c's, still answer through every live node.
    for (const n of [a, c]) for (const app of ['ea', 'ec']) assert.ok(await echoJson(`${n.url}/${app}/`), `${app} through ${n.name}`);

    // b's apps outlive its gateway's kill -9 (they run in their own process groups, as on one
    // machine): unreachable, since only b's gateway routes to b's loopback. b started again stops
    // them (its orphan recovery), rejoins, and roamer stays where it moved: it never moves back.
    const orphanAlive = existsSync(`/proc/${placed.pid}`);
    await b.start();
    await until('a sees b up again', async () => ((await a.api('GET', '/cluster')).body.cluster.nodes.find((n: { name: string }) => n.name === 'b')?.up ? true : undefined), 10_000, 20);
    await until(`b's previous roamer process (pid ${placed.pid}) is stopped`, () => (existsSync(`/proc/${placed.pid}`) ? undefined : true), 15_000, 50);
    console.log(`b's roamer process ${orphanAlive ? 'outlived' : 'died with'} b's kill -9; b started again stopped it`);
    // Several leader passes with b up: roamer is still where it moved.
    const passes = (await a.api('GET', '/cluster')).body.cluster.heartbeat_ttl_ms as number;
    await new Promise((r) => setTimeout(r, passes)); // five placement passes (one per poll): nothing may move
    const still = await until('roamer answers through b', () => echoJson(`${b.url}/roamer/`), 5_000);
    assert.equal(still.pid, moved.pid, 'roamer did not move back to b');
    assert.ok(still.cwd.startsWith(home!.dataDir));
    assert.ok((await b.api('GET', '/cluster')).body.cluster.nodes.find((n: { name: string }) => n.name === home!.name).apps.includes('roamer'));
  });
});
