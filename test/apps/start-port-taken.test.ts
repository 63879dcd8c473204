/**
 * Every start of an app's process (by hand: the admin API, `porthole apps
 * start`; autostart; a restart after a crash) checks the app's ports first, as
 * a wake does: another program listening on one would otherwise pass the
 * readiness check (a TCP connect) and get the app's traffic while the app
 * itself fails to bind. A port Porthole allocated is exchanged for a free one;
 * a port of the app's own definition refuses the start, naming it.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { jsonLines } from '../helpers/cli.js';
import { request } from '../helpers/http.js';
import { waitFor } from '../helpers/net.js';
import { sleep } from '../helpers/net.js';
import { freePort, sleepAppCmd, startSleepGateway } from '../helpers/sleep-app.js';

const JSON_ACCEPT = { Accept: 'application/json' };

/** A program that is not the app, on `port` (0: any), counting what reaches it. */
async function squat(port: number): Promise<{ port: number; hits: () => number; close: () => void }> {
  let hits = 0;
  const server = http.createServer((_req, res) => {
    hits++;
    res.end('not the app');
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', ok);
  });
  return { port: (server.address() as AddressInfo).port, hits: () => hits, close: () => server.close() };
}

test('a start by hand of an app whose allocated port another program took: the app gets a free port, and its requests reach it, never the other program', async (t) => {
  const gw = await startSleepGateway();
  t.after(() => gw.cleanup());
  await gw.webapp({ action: 'register', name: 'moved', cmd: sleepAppCmd() });
  const { port, state } = await gw.state('moved');
  assert.equal(state, 'stopped');
  assert.equal(typeof port, 'number');
  const squatter = await squat(port);
  t.after(() => squatter.close());

  const started = await gw.webapp({ action: 'start', name: 'moved' });
  assert.equal(started.status, 200, JSON.stringify(started.body));
  const now = await gw.until('moved', 'running');
  assert.notEqual(now.port, port, 'given a free port');
  const r = await request(`${gw.url}/moved/`, { headers: JSON_ACCEPT });
  assert.equal(r.status, 200, r.text);
  assert.match(r.text, new RegExp(`app moved pid ${now.pid}`));
  assert.equal(squatter.hits(), 0, 'nothing reached the other program');
});

test("a start by hand of an app whose own port (port: in its definition) is taken: refused with PH_ERR_APP_SPAWN naming the port, the app stays stopped", async (t) => {
  const gw = await startSleepGateway();
  t.after(() => gw.cleanup());
  const squatter = await squat(0);
  t.after(() => squatter.close());
  await gw.webapp({ action: 'register', name: 'fixed', cmd: sleepAppCmd(), port: squatter.port });

  const started = await gw.webapp({ action: 'start', name: 'fixed' });
  assert.notEqual(started.status, 200);
  const err = (started.body as { error: { code: string; message: string } }).error;
  assert.equal(err.code, 'PH_ERR_APP_SPAWN');
  assert.match(err.message, new RegExp(`port ${squatter.port} is in use by another program \\(port of fixed\\)`));
  assert.equal((await gw.state('fixed')).state, 'stopped');
  assert.equal((await gw.appLog('fixed')).filter((l) => l.startsWith('[porthole] started pid')).length, 0, 'no process was started');
  const r = await request(`${gw.url}/fixed/`, { headers: JSON_ACCEPT });
  assert.notEqual(r.status, 200);
  assert.equal(squatter.hits(), 0, 'nothing reached the other program');
});

test('an app with autostart whose own port is taken when the gateway starts: not started, and the error says which port and why', async (t) => {
  const squatter = await squat(0);
  t.after(() => squatter.close());
  const config = ['apps:', '  - name: early', `    cmd: ${JSON.stringify(sleepAppCmd())}`, `    port: ${squatter.port}`, '    autostart: true', ''].join('\n');
  const gw = await startSleepGateway({ config });
  t.after(() => gw.cleanup());
  const line = await waitFor(() => jsonLines(gw.stdout()).find((l) => l.event === 'error' && l.app === 'early'), 10_000, 'the error line');
  assert.equal(line.code, 'PH_ERR_SUPERVISOR');
  assert.match(String(line.message), new RegExp(`early: autostart failed: port ${squatter.port} is in use by another program \\(port of early\\)`));
  assert.equal((await gw.state('early')).state, 'stopped');
  assert.equal((await gw.appLog('early')).filter((l) => l.startsWith('[porthole] started pid')).length, 0, 'no process was started');
  assert.equal(squatter.hits(), 0);
});

/**
 * Kills the app's process as a crash would and takes its port as soon as the process is gone:
 * well inside the restart's backoff (1 s), however slowly the gateway's API would answer.
 */
async function crashAndSquat(pid: number, port: number): Promise<Awaited<ReturnType<typeof squat>>> {
  process.kill(pid, 'SIGKILL');
  const deadline = Date.now() + 900;
  for (;;) {
    try {
      return await squat(port);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || Date.now() > deadline) throw err;
      await sleep(5);
    }
  }
}

test('a restart after a crash, while another program took the allocated port: the app comes back on a free port, its requests reach it, never the other program', async (t) => {
  const gw = await startSleepGateway();
  t.after(() => gw.cleanup());
  await gw.webapp({ action: 'register', name: 'crashy', cmd: sleepAppCmd() });
  assert.equal((await gw.webapp({ action: 'start', name: 'crashy' })).status, 200);
  const first = await gw.until('crashy', 'running');
  // The restart comes after the backoff (1 s): the port is taken before it.
  const squatter = await crashAndSquat(first.pid, first.port);
  t.after(() => squatter.close());

  let now = await gw.state('crashy');
  for (const deadline = Date.now() + 15_000; !(now.state === 'running' && now.pid !== first.pid); now = await gw.state('crashy')) {
    assert.ok(Date.now() < deadline, `the app is not back: ${JSON.stringify(now)}`);
    await sleep(50);
  }
  assert.notEqual(now.port, first.port, 'given a free port');
  const r = await request(`${gw.url}/crashy/`, { headers: JSON_ACCEPT });
  assert.equal(r.status, 200, r.text);
  assert.match(r.text, new RegExp(`app crashy pid ${now.pid}`));
  assert.equal(squatter.hits(), 0, 'nothing reached the other program');
  assert.ok((await gw.appLog('crashy')).some((l) => l === `[porthole] port ${first.port} is in use by another program: starting on port ${now.port} instead`));
});

test("a restart after a crash, while another program took the app's own port: the app is failed, saying which port, and nothing reaches the other program", async (t) => {
  const gw = await startSleepGateway();
  t.after(() => gw.cleanup());
  const port = await freePort();
  await gw.webapp({ action: 'register', name: 'owned', cmd: sleepAppCmd(), port });
  assert.equal((await gw.webapp({ action: 'start', name: 'owned' })).status, 200);
  const first = await gw.until('owned', 'running');
  const squatter = await crashAndSquat(first.pid, port);
  t.after(() => squatter.close());

  const failed = await gw.until('owned', 'failed', 15_000);
  assert.match(String(failed.message), new RegExp(`port ${port} is in use by another program \\(port of owned\\)`));
  const line = await waitFor(() => jsonLines(gw.stdout()).find((l) => l.event === 'error' && l.app === 'owned'), 10_000, 'the error line');
  assert.match(String(line.message), /owned: restart failed: port \d+ is in use by another program/);
  assert.equal((await gw.appLog('owned')).filter((l) => l.startsWith('[porthole] started pid')).length, 1, 'no second process was started');
  const r = await request(`${gw.url}/owned/`, { headers: JSON_ACCEPT });
  assert.notEqual(r.status, 200);
  assert.equal(squatter.hits(), 0, 'nothing reached the other program');
});

test('a start refused for one port after another was exchanged: the routes follow the exchange, so the next start (a wake) is reached on the new port, never the other program on the old one', async (t) => {
  const gw = await startSleepGateway();
  t.after(() => gw.cleanup());
  const wsPort = await freePort();
  await gw.webapp({ action: 'register', name: 'both', cmd: sleepAppCmd(), ws_port: wsPort, wake_on_request: true });
  const { port } = await gw.state('both');
  const onPort = await squat(port);
  t.after(() => onPort.close());
  const onWsPort = await squat(wsPort);

  // The allocated port is exchanged first, then the app's own ws_port refuses the start.
  const refused = await gw.webapp({ action: 'start', name: 'both' });
  assert.equal((refused.body as { error: { code: string } }).error.code, 'PH_ERR_APP_SPAWN');
  assert.match((refused.body as { error: { message: string } }).error.message, new RegExp(`port ${wsPort} is in use by another program \\(ws_port of both\\)`));
  onWsPort.close();
  await sleep(100);

  // A request wakes it; nothing moves this time (the new port is free), so only the refused start's exchange routes it right.
  const r = await request(`${gw.url}/both/`, { headers: JSON_ACCEPT, timeoutMs: 20_000 });
  const now = await gw.state('both');
  assert.equal(r.status, 200, r.text);
  assert.match(r.text, new RegExp(`app both pid ${now.pid}`));
  assert.notEqual(now.port, port);
  assert.equal(onPort.hits(), 0, 'nothing reached the program on the old port');
});

test("an update that moves a running app to a port another program holds: the update stands, the app is failed saying which port, and nothing reaches the other program", async (t) => {
  const gw = await startSleepGateway();
  t.after(() => gw.cleanup());
  await gw.webapp({ action: 'register', name: 'upd', cmd: sleepAppCmd(), port: await freePort() });
  assert.equal((await gw.webapp({ action: 'start', name: 'upd' })).status, 200);
  await gw.until('upd', 'running');
  const squatter = await squat(0);
  t.after(() => squatter.close());

  const put = await gw.api('PUT', '/_porthole/api/apps/upd', { cmd: sleepAppCmd(), port: squatter.port });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  const app = await gw.until('upd', 'failed');
  assert.equal(app.port, squatter.port, 'the new definition is the one in force');
  assert.match(String(app.message), new RegExp(`port ${squatter.port} is in use by another program \\(port of upd\\)`));
  const line = await waitFor(() => jsonLines(gw.stdout()).find((l) => l.event === 'error' && l.app === 'upd'), 10_000, 'the error line');
  assert.match(String(line.message), /upd: restart after the definition changed failed: port \d+ is in use/);
  const r = await request(`${gw.url}/upd/`, { headers: JSON_ACCEPT });
  assert.notEqual(r.status, 200);
  assert.equal(squatter.hits(), 0, 'nothing reached the other program');
});

test('a config reload that moves a running app to a port another program holds: the app is failed saying which port, and the rest of the reload is carried out', async (t) => {
  const first = await freePort();
  const app = (port: number) => ['  - name: cfg', `    cmd: ${JSON.stringify(sleepAppCmd())}`, `    port: ${port}`, '    autostart: true'];
  const gw = await startSleepGateway({ config: ['apps:', ...app(first), ''].join('\n') });
  t.after(() => gw.cleanup());
  await gw.until('cfg', 'running');
  const squatter = await squat(0);
  t.after(() => squatter.close());
  const other = await squat(0);
  t.after(() => other.close());

  // cfg moves onto the taken port; an app after it in the file is new.
  writeFileSync(join(gw.dataDir, 'porthole.yaml'), ['apps:', ...app(squatter.port), '  - name: later', `    port: ${other.port}`, ''].join('\n'));
  gw.child.kill('SIGHUP');
  const failed = await gw.until('cfg', 'failed');
  assert.match(String(failed.message), new RegExp(`port ${squatter.port} is in use by another program \\(port of cfg\\)`));
  await waitFor(() => jsonLines(gw.stdout()).some((l) => l.event === 'config' && l.action === 'reloaded'), 10_000, 'the reload');
  const r = await request(`${gw.url}/later/`, { headers: JSON_ACCEPT });
  assert.equal(r.text, 'not the app', 'the app after it in the file is routed');
  assert.equal(squatter.hits(), 0, 'nothing reached the program on the taken port');
});

test("an app's own port held for a moment by a connection's local end (no listener there): the start is not refused, and the app comes up on that port once it is free", async (t) => {
  const gw = await startSleepGateway();
  t.after(() => gw.cleanup());
  let serverSide: import('node:net').Socket | undefined;
  const server = (await import('node:net')).createServer((s) => (serverSide = s));
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  t.after(() => server.close());
  const { Socket } = await import('node:net');
  const client = new Socket();
  t.after(() => client.destroy());
  await new Promise<void>((ok) => client.connect((server.address() as AddressInfo).port, '127.0.0.1', ok));
  const held = client.localPort!;
  await gw.webapp({ action: 'register', name: 'transient', cmd: sleepAppCmd(), port: held });

  const started = await gw.webapp({ action: 'start', name: 'transient' });
  assert.equal(started.status, 200, JSON.stringify(started.body));
  // The app cannot bind while the connection lasts (it fails and is restarted). The other end closes
  // first, so the port is not left in TIME_WAIT: the app's next start listens there.
  await sleep(300);
  serverSide!.destroy();
  const now = await gw.until('transient', 'running', 20_000);
  assert.equal(now.port, held);
  const r = await request(`${gw.url}/transient/`, { headers: JSON_ACCEPT });
  assert.match(r.text, new RegExp(`app transient pid ${now.pid}`));
});
