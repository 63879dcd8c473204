import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { appCmd, startAdmin, type AdminGateway } from '../helpers/admin.js';
import { closed, nextMessage, openWs, waitFor, wsCloseOf } from '../helpers/net.js';

describe('Agent Zero\'s POST /webapp flow (seed 000)', () => {
  let gw: AdminGateway;
  before(async () => {
    gw = await startAdmin({ env: { PORTHOLE_TOKEN: 'gateway-secret-token', SECRET_X: 'do-not-leak' } });
  });
  after(() => gw.cleanup());

  test('register, start, status, list, logs, restart, stop and remove, in the seed\'s shapes', async () => {
    const reg = await gw.webapp({ action: 'register', name: 'my-app', cmd: appCmd(), description: 'My app', env: { GREETING: 'hi' } });
    assert.equal(reg.status, 200);
    assert.equal(reg.body.url, '/my-app/');
    assert.equal(reg.body.app.name, 'my-app');
    assert.equal(reg.body.app.state, 'stopped');
    assert.equal(typeof reg.body.app.port, 'number', 'a port was allocated');
    for (const k of ['pid', 'ready', 'restarts', 'last_exit']) assert.ok(k in reg.body.app, `status has ${k}`);

    const start = await gw.webapp({ action: 'start', name: 'my-app' });
    assert.equal(start.status, 200);
    assert.ok(['starting', 'running'].includes(start.body.app.state));
    assert.equal(typeof start.body.app.pid, 'number');

    // Requests for a starting app are held until it is ready, then served.
    const page = await fetch(`${gw.url}/my-app/hello`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /^app my-app pid \d+ path \/hello$/);

    const status = await gw.webapp({ action: 'status', name: 'my-app' });
    assert.equal(status.body.app.state, 'running');
    assert.equal(status.body.app.ready, true);
    const viaGet = await gw.api('GET', '/webapp?action=status&name=my-app');
    assert.equal(viaGet.body.app.state, 'running');
    const list = await gw.api('GET', '/webapp?action=list');
    assert.deepEqual(
      list.body.apps.map((a: { name: string }) => a.name),
      ['my-app'],
    );

    const logs = await gw.webapp({ action: 'logs', name: 'my-app', lines: 20 });
    assert.ok(logs.body.lines.some((l: string) => l.includes('listening on')), logs.body.lines.join('\n'));

    const pid1 = status.body.app.pid;
    const restarted = await gw.webapp({ action: 'restart', name: 'my-app' });
    assert.notEqual(restarted.body.app.pid, pid1);

    const stop = await gw.webapp({ action: 'stop', name: 'my-app' });
    assert.equal(stop.body.app.state, 'stopped');
    assert.equal(stop.body.app.pid, null);
    assert.ok(stop.body.app.last_exit);

    // A stopped app: 503 for HTTP, 1013 for WebSocket, both naming the app.
    const down = await fetch(`${gw.url}/my-app/`, { headers: { Accept: 'application/json' } });
    assert.equal(down.status, 503);
    assert.equal(((await down.json()) as { error: { code: string } }).error.code, 'PH_ERR_APP_STOPPED');
    const ws = await wsCloseOf(`ws://127.0.0.1:${gw.port}/my-app/ws`);
    assert.equal(ws.code, 1013);
    assert.match(ws.reason, /my-app is stopped/);

    const removed = await gw.webapp({ action: 'unregister', name: 'my-app' });
    assert.equal(removed.status, 200);
    assert.equal(removed.body.removed, 'my-app');
    assert.equal((await gw.webapp({ action: 'status', name: 'my-app' })).status, 404);
    assert.equal((await fetch(`${gw.url}/my-app/`)).status, 404);
  });

  test('the app gets a clean environment: its env, PORT, APP_NAME, BASE_PATH; never the gateway\'s secrets', async () => {
    await gw.webapp({ action: 'register', name: 'env-app', cmd: appCmd(), env: { GREETING: 'hi' } });
    await gw.webapp({ action: 'start', name: 'env-app' });
    const env = (await (await fetch(`${gw.url}/env-app/env`)).json()) as Record<string, string>;
    assert.equal(env.GREETING, 'hi');
    assert.equal(env.APP_NAME, 'env-app');
    assert.equal(env.BASE_PATH, '/env-app/');
    assert.match(env.PORT, /^\d+$/);
    assert.equal(env.PORTHOLE_TOKEN, undefined);
    assert.equal(env.SECRET_X, undefined);
    assert.ok(!Object.values(env).includes('gateway-secret-token'));
    await gw.webapp({ action: 'remove', name: 'env-app' });
  });

  test('split port/ws_port with a WebSocket through the supervised app', async () => {
    const port = (await gw.webapp({ action: 'alloc_port' })).body.port as number;
    const wsPort = (await gw.webapp({ action: 'alloc_port' })).body.port as number;
    assert.ok(port >= 9000 && port <= 9999);
    // One process serving the page on PORT; a second instance of the fixture serves WebSockets on WS_PORT.
    const cmd = `${appCmd()} & PORT=$WS_PORT ${appCmd()}`;
    const reg = await gw.webapp({ action: 'register', name: 'split', port, ws_port: wsPort, cmd, autostart: true });
    assert.equal(reg.status, 200);
    await gw.webapp({ action: 'start', name: 'split' });
    assert.match(await (await fetch(`${gw.url}/split/`)).text(), /^app split/);
    const ws = await openWs(`ws://127.0.0.1:${gw.port}/split/websockify`);
    ws.send('vnc bytes');
    assert.equal((await nextMessage(ws)).data.toString(), 'vnc bytes');
    ws.close();
    await closed(ws);
    const auto = await gw.webapp({ action: 'autostart', name: 'split', enabled: false });
    assert.equal(auto.body.app.autostart, false);
    await gw.webapp({ action: 'remove', name: 'split' });
  });

  test('an app that is not ready within start_timeout: held requests get 503, upgrades 1013', async () => {
    await gw.webapp({ action: 'register', name: 'slow', cmd: appCmd({ DELAY_MS: 30000 }), start_timeout: '1500ms', restart: 'never' });
    await gw.webapp({ action: 'start', name: 'slow' });
    const t0 = Date.now();
    const [res, ws] = await Promise.all([fetch(`${gw.url}/slow/`), wsCloseOf(`ws://127.0.0.1:${gw.port}/slow/ws`)]);
    assert.equal(res.status, 503);
    assert.ok(Date.now() - t0 >= 1000, 'the request was held while the app was starting');
    assert.equal(ws.code, 1013);
    await gw.webapp({ action: 'remove', name: 'slow' });
  });

  test('REST: PUT/GET/DELETE, start/stop, and logs followed as Server-Sent Events', async () => {
    const put = await gw.api('PUT', '/_porthole/api/apps/rest-app', { cmd: appCmd() });
    assert.equal(put.status, 200);
    assert.equal(put.body.app.name, 'rest-app');
    const mismatch = await gw.api('PUT', '/_porthole/api/apps/rest-app', { name: 'other', cmd: 'true' });
    assert.equal(mismatch.status, 400);

    // Follow the log before starting: the start's output arrives as events.
    const lines: string[] = [];
    const follow = new Promise<void>((ok, fail) => {
      const req = http.get(`${gw.url}/_porthole/api/apps/rest-app/logs?follow=1&lines=5`, { headers: { Authorization: `Bearer ${gw.token}` } }, (res) => {
        assert.equal(res.headers['content-type'], 'text/event-stream');
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          for (const m of d.matchAll(/^data: (.*)$/gm)) lines.push(m[1]);
          if (lines.some((l) => l.includes('listening on'))) {
            req.destroy();
            ok();
          }
        });
      });
      req.on('error', (e) => (lines.some((l) => l.includes('listening on')) ? ok() : fail(e)));
    });
    const started = await gw.api('POST', '/_porthole/api/apps/rest-app/start');
    assert.equal(started.status, 200);
    await follow;
    // Printing "listening" comes just before the readiness probe sees the port.
    const deadline = Date.now() + 10_000;
    let state = '';
    while (Date.now() < deadline && state !== 'running') {
      state = (await gw.api('GET', '/_porthole/api/apps/rest-app')).body.app.state;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(state, 'running');
    const stopped = await gw.api('POST', '/_porthole/api/apps/rest-app/stop');
    assert.equal(stopped.body.app.state, 'stopped');
    const del = await gw.api('DELETE', '/_porthole/api/apps/rest-app');
    assert.deepEqual(del.body, { ok: true, removed: 'rest-app' });
  });
});
