/**
 * Issue 11, "How it is proven": a WebSocket through node c to an app on node
 * a survives 100 route changes of other apps (routes are rebuilt as
 * snapshots on every node; open tunnels are never cut), on separate hosts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ECHO_CMD, echo, echoJson, openWs, request, startNsCluster, until, withLogs } from './netns-helpers.js';

test('a WebSocket through node c to an app on node a keeps echoing through 100 route changes of other apps made through every node', { timeout: 180_000 }, async (t) => {
  const cl = await startNsCluster(t);
  const [a, b, c] = cl.nodes as [typeof cl.nodes[0], typeof cl.nodes[0], typeof cl.nodes[0]];
  await withLogs(cl, async () => {
    assert.equal((await a.api('PUT', '/apps/echo', { cmd: ECHO_CMD })).status, 200);
    assert.equal((await a.api('POST', '/apps/echo/start')).status, 200);
    const body = await until('c routes echo to a', () => echoJson(`${c.url}/echo/`), 5_000);
    assert.ok(body.cwd.startsWith(a.dataDir), `the app runs on a (cwd ${body.cwd})`);

    const ws = await openWs(`${c.url.replace('http', 'ws')}/echo/`);
    t.after(() => ws.terminate());
    let closed: string | undefined;
    ws.on('close', (code, reason) => (closed = `${code} ${reason}`));
    // Messages flow the whole time, not only between changes.
    let sent = 0;
    let stop = false;
    const chatter = (async () => {
      while (!stop && sent < 100_000) {
        await echo(ws, `m${sent++}`, 5_000);
        await new Promise((r) => setTimeout(r, 2));
      }
    })();

    // 100 changes of other apps, made through a, b and c in turn: register, update, remove.
    const writers = [a, b, c];
    for (let k = 0; k < 100; k++) {
      const through = writers[k % 3]!;
      const app = `other${Math.floor(k / 3)}`;
      const step = k % 3;
      const res = step === 0 ? await through.api('PUT', `/apps/${app}`, { port: 7001 }) : step === 1 ? await through.api('PUT', `/apps/${app}`, { port: 7002 }) : await through.api('DELETE', `/apps/${app}`);
      assert.equal(res.status, 200, `change ${k} (${app}) through ${through.name}: ${JSON.stringify(res.body)}`);
      assert.equal(closed, undefined, `the tunnel closed after change ${k}`);
      await echo(ws, `after change ${k}`);
    }
    // c has applied every change: the apps removed are gone, the last one registered (other33) is there.
    await until('c applied the 100 changes', async () => {
      const v = await Promise.all(cl.nodes.map(async (n) => (await n.api('GET', '/cluster')).body.cluster.version as number));
      return new Set(v).size === 1 ? v : undefined;
    });
    assert.equal((await c.api('GET', '/apps/other32')).status, 404);
    assert.equal((await c.api('GET', '/apps/other33')).status, 200);
    stop = true;
    await chatter;
    assert.equal(closed, undefined, 'the tunnel is still open');
    assert.ok(sent > 1, `messages kept flowing beside the changes (${sent} echoed)`);
    // And still carries traffic after the last change.
    await echo(ws, 'after the changes');
    console.log(`tunnel through c to a: ${sent} background messages and one after each change echoed during 100 route changes, never closed`);
    const after = await request(`${c.url}/echo/`);
    assert.equal(after.status, 200);
  });
});
