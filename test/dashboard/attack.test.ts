/**
 * The dashboard's server side attacked over plain HTTP: each test pins a hole
 * a review found (another site, an app on the same origin, a client without
 * the token), and fails on the code that had it.
 * Browser-side attacks are in test/e2e/dashboard-attack-browser.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IncomingMessage } from 'node:http';
import { fileURLToPath } from 'node:url';
import { test, type TestContext } from 'node:test';
import { createServer, type PortholeServer, type ServerStarted } from 'porthole';
import { authorize } from '../../src/admin/guard.js';
import { Sessions } from '../../src/admin/session.js';
import { rawValues, request } from '../helpers/http.js';
import { closed as wsClosed, collect, httpUpstream, openWs, waitFor, wsCloseOf, wsUpstream } from '../helpers/net.js';

const FLOOD = fileURLToPath(new URL('../fixtures/dashboard/flood-app.mjs', import.meta.url));

async function started(t: TestContext, config: unknown = {}): Promise<{ server: PortholeServer; start: ServerStarted }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-dashboard-attack-'));
  const server = createServer({ listen: { port: 0 }, dataDir, config });
  t.after(async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return { server, start: await server.listen() };
}

/** Logs in with a fresh link and loads the page as a browser would: the cookie and the page's CSRF secret. */
async function login(server: PortholeServer): Promise<{ cookie: string; csrf: string }> {
  const url = server.loginUrl();
  const link = await request(url);
  const cookie = link.headers['set-cookie']![0].split(';')[0];
  const page = await request(new URL('/_porthole/', url).href, { headers: { Cookie: cookie, 'Sec-Fetch-Dest': 'document' } });
  const m = /<meta name="porthole-csrf" content="([^"]+)">/.exec(page.text);
  assert.ok(m, page.text.slice(0, 300));
  return { cookie, csrf: m[1] };
}

test('a prefixed app cannot send Cross-Origin-Opener-Policy: same-origin (its page would share the dashboard\'s browsing context group); at its host name, or with COEP require-corp, it can', async (t) => {
  const up = await httpUpstream((req, res) => {
    const q = new URL(req.url!, 'http://x').searchParams;
    for (const coop of q.getAll('coop')) res.appendHeader('Cross-Origin-Opener-Policy', coop);
    for (const coep of q.getAll('coep')) res.appendHeader('Cross-Origin-Embedder-Policy', coep);
    res.end('page');
  });
  t.after(() => up.close());
  const { start } = await started(t, {
    apps: [
      { name: 'strip', port: up.port },
      { name: 'keep', port: up.port, strip_prefix: false },
      { name: 'own', port: up.port, hosts: ['own.example'] },
    ],
  });
  const coop = async (path: string, host?: string) => rawValues((await request(`${start.url}${path}`, host ? { headers: { Host: host } } : {})).rawHeaders, 'cross-origin-opener-policy');
  for (const app of ['strip', 'keep']) {
    assert.deepEqual(await coop(`/${app}/?coop=same-origin`), [], app);
    assert.deepEqual(await coop(`/${app}/?coop=${encodeURIComponent(' same-origin; report-to="r"')}`), [], `${app}: with a parameter`);
    assert.deepEqual(await coop(`/${app}/?coop=same-origin&coop=same-origin`), [], `${app}: twice`);
    // Policies that never keep a same-origin opener with the dashboard pass.
    assert.deepEqual(await coop(`/${app}/?coop=same-origin-allow-popups`), ['same-origin-allow-popups']);
    assert.deepEqual(await coop(`/${app}/?coop=unsafe-none`), ['unsafe-none']);
    // Cross-origin isolation (COOP same-origin + COEP require-corp) is same-origin-plus-COEP: kept.
    assert.deepEqual(await coop(`/${app}/?coop=same-origin&coep=require-corp`), ['same-origin']);
    // …but not with a COEP the browser may not know (credentialless in Safari) or cannot parse (two fields).
    assert.deepEqual(await coop(`/${app}/?coop=same-origin&coep=credentialless`), []);
    assert.deepEqual(await coop(`/${app}/?coop=same-origin&coep=require-corp&coep=require-corp`), []);
  }
  // At its own host name the app is its own origin: nothing to protect.
  assert.deepEqual(await coop('/?coop=same-origin', `own.example:${start.port}`), ['same-origin']);
  // The rule holds while the dashboard's pages keep plain same-origin, without COEP.
  const page = await request(`${start.url}/_porthole/`);
  assert.deepEqual(rawValues(page.rawHeaders, 'cross-origin-opener-policy'), ['same-origin']);
  assert.deepEqual(rawValues(page.rawHeaders, 'cross-origin-embedder-policy'), []);
});

test('logout posted from another origin is refused and clears no cookie (another site\'s form could log the admin out)', async (t) => {
  const { server, start } = await started(t);
  const { cookie, csrf } = await login(server);
  // The form of another site arrives without the SameSite=Lax cookie.
  const foreign = await request(`${start.url}/_porthole/logout`, { method: 'POST', headers: { Origin: 'http://evil.example', 'Content-Type': 'application/x-www-form-urlencoded' } });
  assert.equal(foreign.status, 403);
  assert.equal(foreign.headers['x-porthole-error'], 'PH_ERR_CSRF');
  assert.equal(foreign.headers['set-cookie'], undefined, 'no cleared cookie for another site\'s post');
  const nullOrigin = await request(`${start.url}/_porthole/logout`, { method: 'POST', headers: { Origin: 'null' } });
  assert.equal(nullOrigin.status, 403);
  assert.equal(nullOrigin.headers['set-cookie'], undefined);
  // The page's own logout still works.
  const own = await request(`${start.url}/_porthole/logout`, { method: 'POST', headers: { Origin: start.url, Cookie: cookie, 'X-Porthole-CSRF': csrf } });
  assert.equal(own.status, 204);
  assert.match(own.headers['set-cookie']![0], /^porthole_session=; .*Max-Age=0/);
});

test('a log follow whose client stops reading is cut once 4 MiB wait for it, instead of holding all the app prints in memory', async (t) => {
  const { server, start } = await started(t, { apps: [{ name: 'flood', cmd: `exec ${process.execPath} ${FLOOD}`, autostart: true }] });
  const errors = collect('error');
  t.after(errors.stop);
  await waitFor(() => server.registry.list().find((a) => a.name === 'flood' && a.state === 'running'), 20_000, 'flood running');
  // A follower that reads the head and then nothing (a laptop put to sleep with the dashboard open).
  const socket = net.connect(start.port, '127.0.0.1');
  t.after(() => socket.destroy());
  socket.write(`GET /_porthole/api/apps/flood/logs?entries=1&follow=1&lines=1 HTTP/1.1\r\nHost: 127.0.0.1:${start.port}\r\nAuthorization: Bearer ${start.token}\r\n\r\n`);
  let received = 0;
  let head = '';
  await new Promise<void>((ok) => {
    const onData = (d: Buffer) => {
      received += d.length;
      head += d.toString('latin1');
      if (head.includes('\r\n\r\n')) {
        socket.off('data', onData);
        socket.pause();
        ok();
      }
    };
    socket.on('data', onData);
  });
  assert.match(head, /^HTTP\/1\.1 200 /);
  const closed = new Promise<void>((ok) => socket.once('close', () => ok()));
  // 48 MiB printed while nobody reads.
  const flood = await request(`${start.url}/flood/flood?mb=48`, { timeoutMs: 60_000 });
  assert.equal(flood.text.trim(), String(48 * 1024));
  socket.on('data', (d: Buffer) => (received += d.length));
  socket.resume();
  const cut = await Promise.race([closed.then(() => true), new Promise<boolean>((ok) => setTimeout(() => ok(false), 15_000))]);
  assert.ok(cut, `the stream was not cut (${received} bytes received so far)`);
  assert.ok(received < 40 * 1024 * 1024, `received ${received} bytes: the gateway kept the flood for a client that did not read`);
  assert.ok(errors.events.some((e) => e.code === 'PH_ERR_STREAM_SLOW'), JSON.stringify(errors.events));
});

test('an app cannot take the gateway\'s own names (localhost, 127.0.0.1, ::1, admin.hosts): it would receive the admin token and the login links', async (t) => {
  for (const host of ['127.0.0.1', 'LocalHost', 'localhost.']) {
    assert.throws(() => createServer({ config: { apps: [{ name: 'evil', port: 9, hosts: [host] }] } }), (err: Error) => /is the gateway's own name/.test(err.message), host);
  }
  assert.throws(() => createServer({ config: { admin: { hosts: ['ops.example'] }, apps: [{ name: 'evil', port: 9, hosts: ['OPS.example'] }] } }), /is the gateway's own name/);
  // Through the admin API too: refused beside the field.
  const { start } = await started(t, {});
  const r = await fetch(`${start.url}/_porthole/api/apps/evil`, { method: 'PUT', headers: { Authorization: `Bearer ${start.token}` }, body: JSON.stringify({ port: 9, hosts: ['localhost'] }) });
  assert.equal(r.status, 400);
  assert.match(((await r.json()) as { error: { fields: { hosts: string } } }).error.fields.hosts, /gateway's own name/);
});

test('the login link never points at an address an app owns (the app would get the one-time code, and with it a session)', async (t) => {
  const seen: string[] = [];
  const up = await httpUpstream((req, res) => {
    seen.push(req.url!);
    res.end('the app');
  });
  t.after(() => up.close());
  // A gateway on 127.0.0.2 whose app takes that address as its host name: every path there is the app's.
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-dashboard-attack-'));
  const server = createServer({ listen: '127.0.0.2:0', dataDir, config: { apps: [{ name: 'evil', port: up.port, hosts: ['127.0.0.2'] }] } });
  t.after(async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  await server.listen();
  assert.throws(() => server.loginUrl(), /127\.0\.0\.2.*app evil/s);
  assert.deepEqual(seen, [], 'nothing reached the app');
});

test('the dashboard\'s API shows tunnel paths as the log does: an app\'s token in the query is written as …', async (t) => {
  const up = await wsUpstream({}, () => {});
  t.after(() => up.close());
  const { start } = await started(t, { apps: [{ name: 'jup', port: up.port }] });
  const get = async (path: string) => (await (await fetch(`${start.url}/_porthole/api/${path}`, { headers: { Authorization: `Bearer ${start.token}` } })).json()) as Record<string, any>;
  // Jupyter's page opens its kernel socket with its token in the query.
  const ws = await openWs(`ws://127.0.0.1:${start.port}/jup/api/kernels/1/channels?session_id=s&token=s3cret-jupyter-token`);
  const open = (await get('tunnels')).tunnels;
  assert.equal(open[0].path, '/jup/api/kernels/1/channels?session_id=s&token=…');
  ws.close(1000);
  await wsClosed(ws);
  let closes: { path: string }[] = [];
  for (let i = 0; i < 100 && closes.length === 0; i++) {
    closes = (await get('tunnels')).closes;
    if (closes.length === 0) await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(closes[0]?.path, '/jup/api/kernels/1/channels?session_id=s&token=…');
  // A refused upgrade's event names its path the same way.
  await wsCloseOf(`ws://127.0.0.1:${start.port}/nothing/here?token=s3cret-jupyter-token`).catch(() => undefined);
  const events = (await get('events')).events as { message: string }[];
  assert.ok(events.some((e) => e.message.includes('/nothing/here?token=…')), JSON.stringify(events));
  assert.doesNotMatch(JSON.stringify(events), /s3cret/);
});

test('a call refused for want of the CSRF header does not keep the session alive (an app\'s script could extend it past 12 h idle forever)', async () => {
  const sessions = new Sessions();
  const s = sessions.create();
  const guard = { token: 'the-token', localNoAuth: false, hosts: [], sessions };
  const call = (headers: Record<string, string>) =>
    authorize({ headers: { host: '127.0.0.1:50000', cookie: `porthole_session=${s.id}`, ...headers }, socket: { remoteAddress: '127.0.0.1' } } as unknown as IncomingMessage, guard);
  const before = s.lastUsed;
  await new Promise((r) => setTimeout(r, 20));
  const refused = call({});
  assert.equal('code' in refused && refused.code, 'PH_ERR_CSRF');
  assert.equal(s.lastUsed, before, 'the refused call moved the idle deadline');
  // The same at the sessions' level, with the clock given: a lookup alone is no use.
  const t0 = s.created;
  const req = { headers: { cookie: `porthole_session=${s.id}` } } as IncomingMessage;
  assert.equal(sessions.of(req, t0 + 11 * 3600_000)?.id, s.id);
  assert.equal(sessions.of(req, t0 + 13 * 3600_000), null, 'looked up at 11 h, the session must still end 12 h after its last use');
  // A call with the header is a use.
  const s2 = sessions.create();
  const ok = authorize({ headers: { host: '127.0.0.1:50000', cookie: `porthole_session=${s2.id}`, 'x-porthole-csrf': s2.csrf }, socket: {} } as unknown as IncomingMessage, guard);
  assert.equal('via' in ok && ok.via, 'session');
  assert.ok(s2.lastUsed >= s2.created);
  const req2 = { headers: { cookie: `porthole_session=${s2.id}` } } as IncomingMessage;
  sessions.touch(s2, s2.created + 11 * 3600_000);
  assert.equal(sessions.of(req2, s2.created + 13 * 3600_000)?.id, s2.id, 'used at 11 h, it lives past 12 h');
});
