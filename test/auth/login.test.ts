/**
 * `auth: login`: the gateway's login page, its session cookie, refusals by
 * kind of client (page → login redirect, API → 401 JSON, WebSocket → close
 * 1008 "login required"), what reaches the app, logout, the rate limit on
 * failed logins, open-redirect attempts, and the cross-host handoff.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { test, type TestContext } from 'node:test';
import { localPath } from '../../src/auth/auth-gate.js';
import { UserSessions, IDLE_MS, MAX_AGE_MS } from '../../src/auth/user-sessions.js';
import { closed, collect, httpUpstream, nextMessage, openWs, startGateway, wsCloseOf, wsUpstream, type TestGateway } from '../helpers/net.js';
import { request } from '../helpers/http.js';
import { cookieOf, postLogin, users } from './helpers.js';

/** An upstream that answers with the request's headers as JSON (and echoes WebSockets). */
async function echoHeaders(t: TestContext) {
  const up = await wsUpstream();
  up.server.removeAllListeners('request');
  up.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ url: req.url, headers: req.headers }));
  });
  t.after(() => up.close());
  return up;
}

async function gateway(t: TestContext, config: Record<string, unknown>): Promise<TestGateway> {
  const gw = await startGateway(config);
  t.after(() => gw.close());
  return gw;
}

async function loginApp(t: TestContext, extra: Record<string, unknown> = {}, appExtra: Record<string, unknown> = {}) {
  const up = await echoHeaders(t);
  const gw = await gateway(t, { auth: 'login', users: await users(), ...extra, apps: [{ name: 'app', port: up.port, ...appExtra }] });
  return { up, gw };
}

async function logIn(gw: TestGateway, next = '/app/'): Promise<string> {
  const r = await postLogin(gw.url, { user: 'alice', password: 'correct horse', next });
  assert.equal(r.status, 303, r.text);
  const cookie = cookieOf(r);
  assert.ok(cookie);
  return cookie;
}

test('a page of a login app redirects to the login page with the path to come back to', async (t) => {
  const { gw } = await loginApp(t);
  const r = await request(`${gw.url}/app/x?y=1`, { headers: { Accept: 'text/html' } });
  assert.equal(r.status, 302);
  assert.equal(r.headers.location, `/_porthole/auth/login?next=${encodeURIComponent('/app/x?y=1')}`);
  assert.equal(r.headers['x-porthole-error'], 'PH_ERR_AUTH_REQUIRED');
  const page = await request(`${gw.url}${r.headers.location}`);
  assert.equal(page.status, 200);
  assert.match(page.text, /<form method="post" action="\/_porthole\/auth\/login">/);
  assert.match(page.text, /name="next" value="\/app\/x\?y=1"/);
  assert.doesNotMatch(page.text, /<script/);
  assert.match(String(page.headers['content-security-policy']), /default-src 'none'.*form-action 'self'.*frame-ancestors 'none'/);
});

test('an API client gets 401 JSON, and a POST gets 401 rather than a redirect', async (t) => {
  const { gw } = await loginApp(t);
  const r = await request(`${gw.url}/app/api`, { headers: { Accept: 'application/json' } });
  assert.equal(r.status, 401);
  assert.equal(JSON.parse(r.text).error.code, 'PH_ERR_AUTH_REQUIRED');
  const post = await request(`${gw.url}/app/api`, { method: 'POST', body: 'x', headers: { 'Content-Length': '1' } });
  assert.equal(post.status, 401);
});

test('a WebSocket before login gets a completed handshake and close 1008 "login required", never 1006', async (t) => {
  const { gw } = await loginApp(t);
  const events = collect('upgrade', gw.gw.id);
  t.after(events.stop);
  const c = await wsCloseOf(`${gw.wsUrl}/app/ws`);
  assert.equal(c.opened, true);
  assert.equal(c.code, 1008);
  assert.match(c.reason, /^PH_ERR_AUTH_REQUIRED: login required/);
  assert.equal(events.events.at(-1)?.code, 'PH_ERR_AUTH_REQUIRED');
});

test('with ws_errors: http a refused WebSocket gets the plain 401', async (t) => {
  const { gw } = await loginApp(t, {}, { ws_errors: 'http' });
  await assert.rejects(openWs(`${gw.wsUrl}/app/ws`), (err: { status?: number }) => err.status === 401);
});

test('login sets an HttpOnly, SameSite=Lax cookie for every path and goes back to next; the app then answers', async (t) => {
  const { gw } = await loginApp(t);
  const events = collect('auth', gw.gw.id);
  t.after(events.stop);
  const r = await postLogin(gw.url, { user: 'alice', password: 'correct horse', next: '/app/x?y=1' });
  assert.equal(r.status, 303);
  assert.equal(r.headers.location, '/app/x?y=1');
  const set = r.headers['set-cookie']![0];
  assert.match(set, /^porthole_auth=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Lax; Max-Age=\d+$/);
  assert.doesNotMatch(set, /Secure/);
  const page = await request(`${gw.url}/app/x?y=1`, { headers: { Cookie: cookieOf(r)! } });
  assert.equal(page.status, 200);
  assert.equal(JSON.parse(page.text).url, '/x?y=1');
  assert.deepEqual(events.events.map((e) => [e.action, e.user]), [['login', 'alice']]);
});

test('the app never gets the session cookie (other cookies pass), gets X-Forwarded-User, and a client cannot send its own', async (t) => {
  for (const trust of [false, true]) {
    const { gw } = await loginApp(t, { trust_forwarded: trust });
    const cookie = await logIn(gw);
    const r = await request(`${gw.url}/app/`, { headers: { Cookie: `a=1; ${cookie}; b=2`, 'X-Forwarded-User': 'root', 'X-Forwarded_User': 'root' } });
    const seen = JSON.parse(r.text).headers;
    assert.equal(seen.cookie, 'a=1; b=2', `trust_forwarded ${trust}`);
    assert.equal(seen['x-forwarded-user'], 'alice');
    assert.equal(seen['x-forwarded_user'], undefined);
    const only = await request(`${gw.url}/app/`, { headers: { Cookie: cookie } });
    assert.equal(JSON.parse(only.text).headers.cookie, undefined);
  }
});

test('an app with no auth strips a client-sent X-Forwarded-User too', async (t) => {
  const up = await echoHeaders(t);
  const gw = await gateway(t, { trust_forwarded: true, apps: [{ name: 'app', port: up.port }] });
  const r = await request(`${gw.url}/app/`, { headers: { 'X-Forwarded-User': 'root' } });
  assert.equal(JSON.parse(r.text).headers['x-forwarded-user'], undefined);
});

test('auth_forward_credentials: true passes the session cookie on', async (t) => {
  const { gw } = await loginApp(t, {}, { auth_forward_credentials: true });
  const cookie = await logIn(gw);
  const r = await request(`${gw.url}/app/`, { headers: { Cookie: cookie } });
  assert.equal(JSON.parse(r.text).headers.cookie, cookie);
});

test('after login the WebSocket opens (without the cookie reaching the app); logout closes it 1008 and refuses the next', async (t) => {
  const { up, gw } = await loginApp(t);
  const cookie = await logIn(gw);
  const ws = await openWs(`${gw.wsUrl}/app/ws`, undefined, { headers: { Cookie: cookie } });
  ws.send('hi');
  assert.equal((await nextMessage(ws)).data.toString(), 'hi');
  assert.equal(up.handshakes.at(-1)!.headers.cookie, undefined);
  assert.equal(up.handshakes.at(-1)!.headers['x-forwarded-user'], 'alice');
  const out = await request(`${gw.url}/_porthole/auth/logout`, { method: 'POST', headers: { Cookie: cookie, 'Content-Length': '0' } });
  assert.equal(out.status, 200);
  assert.match(out.headers['set-cookie']![0], /^porthole_auth=; Path=\/; HttpOnly; SameSite=Lax; Max-Age=0/);
  const end = await closed(ws);
  assert.equal(end.code, 1008);
  assert.match(end.reason, /logged out/);
  const again = await wsCloseOf(`${gw.wsUrl}/app/ws`, undefined, { headers: { Cookie: cookie } });
  assert.equal(again.code, 1008);
  const page = await request(`${gw.url}/app/`, { headers: { Cookie: cookie } });
  assert.equal(page.status, 302);
});

test('a wrong password is 401 PH_ERR_LOGIN_FAILED; the sixth failure in a minute is 429 with Retry-After, even with the right password', async (t) => {
  const { gw } = await loginApp(t);
  const events = collect('auth', gw.gw.id);
  t.after(events.stop);
  for (let i = 0; i < 5; i++) {
    const r = await postLogin(gw.url, { user: i % 2 ? 'alice' : 'nobody\n12:00:00 forged log line', password: 'wrong', next: '/app/' });
    assert.equal(r.status, 401);
    assert.equal(r.headers['x-porthole-error'], 'PH_ERR_LOGIN_FAILED');
    assert.match(r.text, /Wrong user name or password/);
    assert.equal(cookieOf(r), undefined);
  }
  const limited = await postLogin(gw.url, { user: 'alice', password: 'correct horse', next: '/app/' });
  assert.equal(limited.status, 429);
  assert.equal(limited.headers['x-porthole-error'], 'PH_ERR_LOGIN_RATE_LIMITED');
  const wait = Number(limited.headers['retry-after']);
  assert.ok(wait >= 1 && wait <= 60, `Retry-After ${wait}`);
  assert.equal(cookieOf(limited), undefined);
  assert.ok(events.events.every((e) => !/[\n\r]/.test(e.user ?? '')), 'a name cannot forge log lines');
  assert.deepEqual(
    events.events.map((e) => e.action),
    ['login_failed', 'login_failed', 'login_failed', 'login_failed', 'login_failed', 'rate_limited'],
  );
});

test('next accepts only local paths: open-redirect attempts land on /', async (t) => {
  const { gw } = await loginApp(t);
  for (const next of ['//evil.example/x', '/\\evil.example', 'https://evil.example/', 'http:evil.example', '/\t/evil.example', 'javascript:alert(1)', '']) {
    const r = await postLogin(gw.url, { user: 'alice', password: 'correct horse', next });
    assert.equal(r.status, 303);
    assert.equal(r.headers.location, '/', `next ${JSON.stringify(next)}`);
  }
  assert.equal(localPath('/app/x?y=//z'), '/app/x?y=//z');
  assert.equal(localPath('/%2F%2Fevil.example'), '/%2F%2Fevil.example');
});

test('a login form posted from another origin is refused (login CSRF)', async (t) => {
  const { gw } = await loginApp(t);
  const r = await postLogin(gw.url, { user: 'alice', password: 'correct horse', next: '/' }, { Origin: 'http://evil.example' });
  assert.equal(r.status, 403);
  assert.equal(r.headers['x-porthole-error'], 'PH_ERR_CSRF');
  assert.equal(cookieOf(r), undefined);
});

test("an app's auth wins over the global one, both ways", async (t) => {
  const up = await echoHeaders(t);
  const gw = await gateway(t, {
    auth: 'login',
    users: await users(),
    apps: [
      { name: 'open', port: up.port, auth: 'none' },
      { name: 'closed', port: up.port },
    ],
  });
  assert.equal((await request(`${gw.url}/open/`)).status, 200);
  assert.equal((await request(`${gw.url}/closed/`)).status, 302);
  const gw2 = await gateway(t, { users: await users(), apps: [{ name: 'open', port: up.port }, { name: 'closed', port: up.port, auth: 'login' }] });
  assert.equal((await request(`${gw2.url}/open/`)).status, 200);
  assert.equal((await request(`${gw2.url}/closed/`)).status, 302);
});

test('the cookie is Secure when the client came over https through a trusted proxy', async (t) => {
  const { gw } = await loginApp(t, { trust_forwarded: true });
  const r = await postLogin(gw.url, { user: 'alice', password: 'correct horse', next: '/' }, { 'X-Forwarded-Proto': 'https' });
  assert.match(r.headers['set-cookie']![0], /; Secure$/);
});

test("an app's own host name logs in through localhost and gets its own cookie by a one-time handoff code", async (t) => {
  const { gw } = await loginApp(t);
  const appHost = `app.localhost:${gw.port}`;
  const first = await request(`${gw.url}/page?q=1`, { headers: { Host: appHost } });
  assert.equal(first.status, 302);
  const login = new URL(first.headers.location!);
  assert.equal(login.origin, `http://localhost:${gw.port}`);
  assert.equal(login.searchParams.get('next'), '/page?q=1');
  assert.equal(login.searchParams.get('host'), appHost);
  // The app's host ties the handoff to this browser: a nonce cookie, only for the handoff path.
  const nonce = login.searchParams.get('nonce')!;
  assert.match(nonce, /^[\w-]{30,}$/);
  const nonceCookie = cookieOf(first, 'porthole_handoff')!;
  assert.equal(nonceCookie, `porthole_handoff=${nonce}`);
  assert.match(first.headers['set-cookie']![0], /Path=\/_porthole\/auth\/handoff; HttpOnly; SameSite=Lax/);
  const form = await request(`${gw.url}${login.pathname}${login.search}`, { headers: { Host: `localhost:${gw.port}` } });
  assert.match(form.text, new RegExp(`name="host" value="${appHost}"`));
  assert.match(form.text, new RegExp(`name="nonce" value="${nonce}"`));
  // Chromium holds the redirects after a POST to form-action: the app's origin must be allowed.
  assert.match(String(form.headers['content-security-policy']), new RegExp(`form-action 'self' http://${appHost};`));
  const r = await postLogin(gw.url, { user: 'alice', password: 'correct horse', next: '/page?q=1', host: appHost, nonce }, { Host: `localhost:${gw.port}` });
  assert.equal(r.status, 303);
  const handoff = new URL(r.headers.location!);
  assert.equal(handoff.origin, `http://${appHost}`);
  assert.equal(handoff.pathname, '/_porthole/auth/handoff');
  const localhostCookie = cookieOf(r)!;
  // The code is for that host only.
  const wrongHost = await request(`${gw.url}${handoff.pathname}${handoff.search}`, { headers: { Host: `localhost:${gw.port}`, Cookie: nonceCookie } });
  assert.equal(wrongHost.status, 401);
  // A code is used up even by a wrong try: ask for a new one (already logged in at localhost: no form).
  const again = await request(`${gw.url}${login.pathname}${login.search}`, { headers: { Host: `localhost:${gw.port}`, Cookie: localhostCookie } });
  assert.equal(again.status, 303);
  const code = new URL(again.headers.location!);
  const got = await request(`${gw.url}${code.pathname}${code.search}`, { headers: { Host: appHost, Cookie: nonceCookie } });
  assert.equal(got.status, 303);
  assert.equal(got.headers.location, '/page?q=1');
  const appCookie = cookieOf(got)!;
  assert.notEqual(appCookie, localhostCookie);
  assert.match(got.headers['set-cookie']!.join('\n'), /porthole_handoff=; .*Max-Age=0/, 'the nonce is cleared');
  const page = await request(`${gw.url}/page?q=1`, { headers: { Host: appHost, Cookie: appCookie } });
  assert.equal(page.status, 200);
  assert.equal(JSON.parse(page.text).headers['x-forwarded-user'], 'alice');
  const reuse = await request(`${gw.url}${code.pathname}${code.search}`, { headers: { Host: appHost, Cookie: nonceCookie } });
  assert.equal(reuse.status, 401);
  // Logout on one name ends the login on every name.
  await request(`${gw.url}/_porthole/auth/logout`, { method: 'POST', headers: { Host: `localhost:${gw.port}`, Cookie: localhostCookie, 'Content-Length': '0' } });
  assert.equal((await request(`${gw.url}/page`, { headers: { Host: appHost, Cookie: appCookie } })).status, 302);
});

test('a handoff code works only in the browser that was sent to log in: another user\'s code opened by a victim logs nobody in (login CSRF)', async (t) => {
  const { gw } = await loginApp(t);
  const appHost = `app.localhost:${gw.port}`;
  // The attacker, a user of this gateway, goes through the flow and stops before the handoff.
  const first = await request(`${gw.url}/`, { headers: { Host: appHost } });
  const login = new URL(first.headers.location!);
  const r = await postLogin(gw.url, { user: 'alice', password: 'correct horse', next: '/', host: appHost, nonce: login.searchParams.get('nonce')! }, { Host: `localhost:${gw.port}` });
  const handoff = new URL(r.headers.location!);
  // The victim's browser opens the attacker's link: it has no nonce, or one of its own.
  const bare = await request(`${gw.url}${handoff.pathname}${handoff.search}`, { headers: { Host: appHost } });
  assert.equal(bare.status, 401);
  assert.equal(bare.headers['set-cookie']?.some((c) => c.startsWith('porthole_auth=')) ?? false, false);
  const victimFirst = await request(`${gw.url}/`, { headers: { Host: appHost } });
  const victimNonce = cookieOf(victimFirst, 'porthole_handoff')!;
  // A fresh code of the attacker's (the first was used up by the try above).
  const again = await request(`${gw.url}${login.pathname}${login.search}`, { headers: { Host: `localhost:${gw.port}`, Cookie: cookieOf(r)! } });
  const code = new URL(again.headers.location!);
  const own = await request(`${gw.url}${code.pathname}${code.search}`, { headers: { Host: appHost, Cookie: victimNonce } });
  assert.equal(own.status, 401);
  // Without a nonce in the login, no code is made at all: the browser goes back to the app's host to start over.
  const noNonce = await postLogin(gw.url, { user: 'alice', password: 'correct horse', next: '/x', host: appHost }, { Host: `localhost:${gw.port}` });
  assert.equal(noNonce.headers.location, `http://${appHost}/x`);
});

test('a host that is not an app of this gateway, or on another port, never receives a handoff code', async (t) => {
  const { gw } = await loginApp(t);
  // app.localhost on another port is loopback too, where any local program may listen.
  for (const host of ['evil.example', `evil.example:${gw.port}`, 'app.localhost:1', 'app.localhost']) {
    const r = await postLogin(gw.url, { user: 'alice', password: 'correct horse', next: '/x', host });
    assert.equal(r.status, 303);
    assert.equal(r.headers.location, '/x', host);
  }
});

test('sessions end after 12 h unused or 7 days after login, and with their user', () => {
  const sessions = new UserSessions();
  const t0 = 1_000_000;
  const s = sessions.create('alice', 'login', undefined, t0);
  const req = { headers: { cookie: `porthole_auth=${s.id}` } } as http.IncomingMessage;
  assert.equal(sessions.of(req, t0 + IDLE_MS - 1)?.user, 'alice');
  sessions.touch(s, t0 + IDLE_MS - 1);
  assert.equal(sessions.of(req, t0 + 2 * IDLE_MS - 2)?.user, 'alice');
  for (let at = t0; at < t0 + MAX_AGE_MS; at += IDLE_MS / 2) sessions.touch(s, at);
  assert.equal(sessions.of(req, t0 + MAX_AGE_MS + 1), null);
  const b = sessions.create('bob', 'login', undefined, t0);
  sessions.keepUsers((x) => x.user !== 'bob');
  assert.equal(sessions.of({ headers: { cookie: `porthole_auth=${b.id}` } } as http.IncomingMessage, t0), null);
});

test('a reload that removes a user ends their sessions', async (t) => {
  const up = await httpUpstream((_q, s) => s.end('ok'));
  t.after(() => up.close());
  const config = { auth: 'login', users: await users(), apps: [{ name: 'app', port: up.port }] };
  const gw = await gateway(t, config);
  const cookie = await logIn(gw);
  assert.equal((await request(`${gw.url}/app/`, { headers: { Cookie: cookie } })).status, 200);
  gw.gw.reload({ ...config, users: [{ ...config.users[0], name: 'carol' }] });
  assert.equal((await request(`${gw.url}/app/`, { headers: { Cookie: cookie } })).status, 302);
});

test("a reload that changes a user's password ends the sessions made with the old one", async (t) => {
  const up = await httpUpstream((_q, s) => s.end('ok'));
  t.after(() => up.close());
  const config = { auth: 'login', users: await users(), apps: [{ name: 'app', port: up.port }] };
  const gw = await gateway(t, config);
  const cookie = await logIn(gw);
  gw.gw.reload({ ...config, users: [{ ...config.users[0], admin: true }] });
  assert.equal((await request(`${gw.url}/app/`, { headers: { Cookie: cookie } })).status, 200, 'other changes keep it');
  const { hashPassword } = await import('../../src/auth/password.js');
  gw.gw.reload({ ...config, users: [{ name: 'alice', password_hash: await hashPassword('new one', { n: 1024 }) }] });
  assert.equal((await request(`${gw.url}/app/`, { headers: { Cookie: cookie } })).status, 302);
});

test('a logout form posted from another origin is refused (logout CSRF)', async (t) => {
  const { gw } = await loginApp(t);
  const cookie = await logIn(gw);
  const r = await request(`${gw.url}/_porthole/auth/logout`, { method: 'POST', headers: { Cookie: cookie, Origin: 'http://evil.example', 'Content-Length': '0' } });
  assert.equal(r.status, 403);
  assert.equal((await request(`${gw.url}/app/`, { headers: { Cookie: cookie } })).status, 200);
});

test('login needs users: the config says so', async () => {
  const { parseConfig } = await import('../../src/config/schema.js');
  assert.throws(() => parseConfig({ auth: 'login' }), /auth: login needs at least one entry in users/);
  assert.throws(() => parseConfig({ apps: [{ name: 'a', port: 1, auth: 'login' }] }), /apps\[0\]\.auth: login needs/);
  assert.throws(() => parseConfig({ auth: 'open' }), /auth: expected "none", "login", "token"/);
  assert.throws(() => parseConfig({ users: [{ name: 'a', password_hash: 'plain' }] }), /porthole passwd/);
  // An app stored back as it was parsed (the admin API's updates) reads the same again.
  const { parseApp } = await import('../../src/config/schema.js');
  for (const auth of ['login', { forward_auth: { url: 'http://127.0.0.1:9091/', response_headers: ['Remote-User'], timeout: '2s' } }]) {
    const once = parseApp({ name: 'a', port: 1, auth });
    assert.deepEqual(parseApp(JSON.parse(JSON.stringify(once))).auth, once.auth);
  }
});

test('parallel guesses from one address do not slip past the limit: attempts in flight count', async (t) => {
  const { gw } = await loginApp(t);
  const replies = await Promise.all(Array.from({ length: 12 }, () => postLogin(gw.url, { user: 'alice', password: 'wrong', next: '/' })));
  const statuses = replies.map((r) => r.status);
  assert.ok(statuses.filter((s) => s === 401).length <= 5, `at most 5 checked: ${statuses.join(' ')}`);
  assert.ok(statuses.filter((s) => s === 429).length >= 7, statuses.join(' '));
});

test('an embedded gateway (handleRequest) serves the login pages too', async (t) => {
  const { createGateway } = await import('../../src/gateway/gateway.js');
  const up = await httpUpstream((_q, s) => s.end('ok'));
  t.after(() => up.close());
  const gw = createGateway({ auth: 'login', users: await users(), apps: [{ name: 'app', port: up.port }] });
  const server = http.createServer((req, res) => {
    if (!gw.handleRequest(req, res)) res.writeHead(404).end('mine');
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  t.after(() => new Promise<void>((ok) => server.close(() => ok())));
  const base = `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}`;
  assert.equal((await request(`${base}/app/`, { headers: { Accept: 'text/html' } })).status, 302);
  const r = await postLogin(base, { user: 'alice', password: 'correct horse', next: '/app/' });
  assert.equal(r.status, 303);
  assert.equal((await request(`${base}/app/`, { headers: { Cookie: cookieOf(r)! } })).text, 'ok');
  assert.equal((await request(`${base}/other`)).text, 'mine');
});

test("an app cannot set or clear the gateway's session cookie (session fixation); its own cookies pass", async (t) => {
  const up = await httpUpstream((_q, res) => {
    res.setHeader('Set-Cookie', ['porthole_auth=attacker-session; Path=/', 'mine=1; Path=/']);
    res.end('ok');
  });
  t.after(() => up.close());
  const gw = await gateway(t, { auth: 'none', apps: [{ name: 'app', port: up.port }] });
  for (const host of [`127.0.0.1:${gw.port}`, `app.localhost:${gw.port}`]) {
    const r = await request(`${gw.url}${host.startsWith('app.') ? '/' : '/app/'}`, { headers: { Host: host } });
    assert.equal(r.text, 'ok');
    assert.deepEqual(r.headers['set-cookie']?.map((c) => c.split(';')[0]), ['mine=1'], host);
  }
});
