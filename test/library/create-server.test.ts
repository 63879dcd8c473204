/**
 * createServer() from the package, in-process: the composition `porthole
 * serve` runs, driven through its handle. Real upstreams, real supervised
 * processes, real sockets on port 0.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { ConfigError, createServer, ServerStartError, type PortholeServer, type ServerOptions, type ServerStarted } from 'porthole';
import { appCmd } from '../helpers/admin.js';
import { closed, collect, nextMessage, openWs, wsUpstream } from '../helpers/net.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function poll<T>(fn: () => Promise<T | undefined> | T | undefined, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A server on port 0 in a temp data dir, closed (and its apps killed if still alive) after the test. */
async function started(t: TestContext, options: ServerOptions = {}): Promise<{ server: PortholeServer; start: ServerStarted; dataDir: string; pids: number[] }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-create-server-'));
  const server = createServer({ listen: { port: 0 }, dataDir, ...options });
  const pids: number[] = [];
  t.after(async () => {
    await server.close();
    for (const pid of pids) if (alive(pid)) process.kill(-pid, 'SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });
  const start = await server.listen();
  return { server, start, dataDir, pids };
}

function api(start: ServerStarted, method: string, path: string, body?: unknown, token = start.token) {
  return fetch(`${start.url}${path}`, { method, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
}

test('listen() on port 0 creates the token once listening, and the admin API takes it', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-create-server-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const server = createServer({ listen: '127.0.0.1:0', dataDir });
  // Built, not started: nothing on disk yet, no token.
  assert.equal(existsSync(join(dataDir, 'private')), false);
  assert.equal(server.token, undefined);
  const listening = server.listen();
  t.after(() => server.close());
  // A second call is the same start, not a second registry load.
  assert.equal(server.listen(), listening);
  const start = await listening;
  assert.match(start.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.notEqual(start.port, 0);
  assert.equal(start.tokenCreated, true);
  assert.equal(start.tokenFile, join(dataDir, 'private', 'token'));
  assert.equal(server.tokenFile, start.tokenFile);
  assert.equal(readFileSync(start.tokenFile, 'utf8').trim(), start.token);
  assert.equal(statSync(start.tokenFile).mode & 0o777, 0o600);
  assert.equal(server.token, start.token);
  assert.equal((await api(start, 'GET', '/_porthole/api/apps', undefined, 'nope')).status, 401);
  const list = await api(start, 'GET', '/_porthole/api/apps');
  assert.equal(list.status, 200);
  assert.deepEqual(((await list.json()) as { apps: unknown[] }).apps, []);
  await server.close();

  // A second server on the same data dir reads the token; it did not create it.
  const again = createServer({ listen: { port: 0 }, dataDir });
  const second = await again.listen();
  await again.close();
  assert.equal(second.tokenCreated, false);
  assert.equal(second.token, start.token);
});

test('an invalid config or listen address throws ConfigError from createServer, before anything starts', () => {
  assert.throws(() => createServer({ config: { apps: [{ name: 'x', port: 'nope' }] } }), ConfigError);
  assert.throws(() => createServer({ config: { lisen: '127.0.0.1:1' } }), (err: ConfigError) => err instanceof ConfigError && /listen/.test(err.message));
  assert.throws(() => createServer({ listen: 'nowhere' }), ConfigError);
  assert.throws(() => createServer({ listen: { port: 70000 } }), ConfigError);
});

test('a port in use rejects listen() with ServerStartError stage listen, and creates no token', async (t) => {
  const blocker = net.createServer();
  await new Promise<void>((ok) => blocker.listen(0, '127.0.0.1', ok));
  t.after(() => new Promise<void>((ok) => blocker.close(() => ok())));
  const port = (blocker.address() as net.AddressInfo).port;
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-create-server-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const server = createServer({ listen: { port }, dataDir });
  const errors = collect('error');
  t.after(() => errors.stop());
  await assert.rejects(server.listen(), (err: ServerStartError) => {
    assert.ok(err instanceof ServerStartError);
    assert.equal(err.code, 'PH_ERR_START');
    assert.ok(errors.events.some((e) => e.code === 'PH_ERR_START' && /already in use/.test(e.message)), 'logged as an error event');
    assert.equal(err.stage, 'listen');
    assert.equal(err.cause.code, 'EADDRINUSE');
    assert.match(err.message, /already in use/);
    return true;
  });
  assert.equal(existsSync(join(dataDir, 'private', 'token')), false);
});

test('apps registered through the registry and through the admin API are routed and supervised', async (t) => {
  const upstream = await wsUpstream();
  t.after(() => upstream.close());
  const { server, start, pids } = await started(t);

  // Through the registry, in-process: an external app.
  const view = await server.registry.put({ name: 'ext', url: `http://127.0.0.1:${upstream.port}` });
  assert.equal(view.name, 'ext');
  assert.equal(await (await fetch(`${start.url}/ext/hello`)).text(), 'http-ok /hello');

  // Through the admin API: a supervised process.
  const reg = await api(start, 'POST', '/webapp', { action: 'register', name: 'proc', cmd: appCmd() });
  assert.equal(reg.status, 200, await reg.clone().text());
  assert.equal((await api(start, 'POST', '/webapp', { action: 'start', name: 'proc' })).status, 200);
  const status = await poll(() => {
    const s = server.supervisor.status('proc');
    return s?.state === 'running' ? s : undefined;
  }, 15_000, 'proc to run');
  pids.push(status.pid!);
  assert.equal(await (await fetch(`${start.url}/proc/x`)).text(), `app proc pid ${status.pid} path /x`);
  assert.deepEqual(server.registry.list().map((a) => a.name).sort(), ['ext', 'proc']);
});

test('reload(config) swaps the routes and keeps an open WebSocket tunnel; an invalid one is rejected and the old one stays', async (t) => {
  const a = await wsUpstream();
  const b = await wsUpstream();
  t.after(() => Promise.all([a.close(), b.close()]));
  const configs = collect('config');
  t.after(() => configs.stop());
  const { server, start } = await started(t, { config: { apps: [{ name: 'a', url: `http://127.0.0.1:${a.port}` }] } });
  await server.registry.put({ name: 'api-app', url: `http://127.0.0.1:${b.port}` });

  const ws = await openWs(`ws://127.0.0.1:${start.port}/a/socket`);
  ws.send('before');
  assert.equal((await nextMessage(ws)).data.toString(), 'before');

  const next = await server.reload({ apps: [{ name: 'a', url: `http://127.0.0.1:${a.port}` }, { name: 'b', url: `http://127.0.0.1:${b.port}` }] });
  assert.deepEqual(next.apps.map((x) => x.name), ['a', 'b']);
  assert.equal(server.config, next);
  assert.deepEqual(configs.events.at(-1), { action: 'reloaded', source: 'createServer', apps: 2 });
  // The tunnel opened before the reload still carries messages.
  ws.send('after');
  assert.equal((await nextMessage(ws)).data.toString(), 'after');
  assert.equal(await (await fetch(`${start.url}/b/new`)).text(), 'http-ok /new');
  // The app registered through the API stays.
  assert.equal(await (await fetch(`${start.url}/api-app/kept`)).text(), 'http-ok /kept');

  await assert.rejects(server.reload({ apps: [{ name: 'a', prot: 1 }] }), ConfigError);
  assert.equal(configs.events.at(-1)?.action, 'rejected');
  assert.equal(configs.events.at(-1)?.code, 'PH_ERR_CONFIG');
  assert.equal(server.config, next);
  ws.send('still');
  assert.equal((await nextMessage(ws)).data.toString(), 'still');
  // Without a config file there is nothing to read again.
  await assert.rejects(server.reload(), ConfigError);
  ws.close();
  await closed(ws);
});

test('drain() sends 1001 to open tunnels and stops every supervised app', async (t) => {
  const upstream = await wsUpstream();
  t.after(() => upstream.close());
  const { server, start, pids } = await started(t, {
    config: { apps: [{ name: 'ext', url: `http://127.0.0.1:${upstream.port}` }, { name: 'proc', cmd: appCmd(), autostart: true }] },
  });
  const status = await poll(() => {
    const s = server.supervisor.status('proc');
    return s?.state === 'running' ? s : undefined;
  }, 15_000, 'proc to run');
  pids.push(status.pid!);
  const toExt = await openWs(`ws://127.0.0.1:${start.port}/ext/socket`);
  const toProc = await openWs(`ws://127.0.0.1:${start.port}/proc/socket`);
  const closes = [closed(toExt), closed(toProc)];
  await server.drain();
  for (const c of await Promise.all(closes)) assert.equal(c.code, 1001);
  assert.equal(alive(status.pid!), false, 'the app process is gone once drain() resolves');
  assert.equal(server.supervisor.status('proc')?.state, 'stopped');
  // The port is closed.
  await assert.rejects(fetch(`${start.url}/ext/`));
});

test('close() closes open tunnels with 1001 and leaves no app process', async (t) => {
  const { server, start, pids } = await started(t, { config: { apps: [{ name: 'slow', cmd: appCmd(), autostart: true }] } });
  const status = await poll(() => {
    const s = server.supervisor.status('slow');
    return s?.state === 'running' ? s : undefined;
  }, 15_000, 'slow to run');
  pids.push(status.pid!);
  const ws = await openWs(`ws://127.0.0.1:${start.port}/slow/socket`);
  const wsClosed = closed(ws);
  await server.close();
  assert.equal((await wsClosed).code, 1001);
  assert.equal(alive(status.pid!), false);
  // close() and drain() again are no-ops that resolve.
  await server.close();
  await server.drain();
});

test('a config file: relative to its directory, reloaded from disk, named as the source of config events', async (t) => {
  const upstream = await wsUpstream();
  t.after(() => upstream.close());
  const dir = mkdtempSync(join(tmpdir(), 'porthole-create-server-file-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'porthole.yaml');
  // A port nothing listens on, for an app that is down.
  const probe = net.createServer();
  await new Promise<void>((ok) => probe.listen(0, '127.0.0.1', ok));
  const downPort = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((ok) => probe.close(() => ok()));
  writeFileSync(join(dir, 'offline.html'), '<p>offline page for ${PORTHOLE_APP}</p>');
  writeFileSync(file, `error_page: offline.html\napps:\n  - name: one\n    url: http://127.0.0.1:${upstream.port}\n  - name: down\n    port: ${downPort}\n`);
  const configs = collect('config');
  t.after(() => configs.stop());
  const { server, start } = await started(t, { configFile: file });
  assert.deepEqual(configs.events[0], { action: 'loaded', source: file, apps: 2 });
  assert.equal(await (await fetch(`${start.url}/one/x`)).text(), 'http-ok /x');
  // error_page was found beside the config file, not in the cwd.
  const down = await fetch(`${start.url}/down/`);
  assert.equal(down.status, 502);
  assert.match(await down.text(), /offline page for down/);
  writeFileSync(file, `apps:\n  - name: two\n    url: http://127.0.0.1:${upstream.port}\n`);
  await server.reload();
  assert.deepEqual(configs.events.at(-1), { action: 'reloaded', source: file, apps: 1 });
  assert.equal(await (await fetch(`${start.url}/two/y`)).text(), 'http-ok /y');
  assert.equal((await fetch(`${start.url}/one/x`)).status, 404);
});

test('listen() names the stage that failed: a corrupt registry (cause PH_ERR_STORE_CORRUPT), a data dir that is a file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'porthole-create-server-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'private'), { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, 'private', 'apps.json'), 'not json');
  await assert.rejects(createServer({ listen: { port: 0 }, dataDir: dir }).listen(), (err: ServerStartError) => {
    assert.ok(err instanceof ServerStartError);
    assert.equal(err.stage, 'registry');
    assert.equal(err.cause.code, 'PH_ERR_STORE_CORRUPT');
    return true;
  });
  assert.equal(existsSync(join(dir, 'private', 'token')), false);

  const file = join(dir, 'a-file');
  writeFileSync(file, '');
  await assert.rejects(createServer({ listen: { port: 0 }, dataDir: file }).listen(), (err: ServerStartError) => err instanceof ServerStartError && err.stage === 'data');
});
