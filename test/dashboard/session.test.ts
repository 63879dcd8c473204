/**
 * Getting into the dashboard: the one-time login link, the pasted token, the
 * session cookie and the CSRF secret that must come with it, logout. A real
 * server (createServer) on port 0, real HTTP requests.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { createServer, type ServerStarted, type PortholeServer } from 'porthole';
import { request, type Reply } from '../helpers/http.js';

async function started(t: TestContext, config: unknown = {}): Promise<{ server: PortholeServer; start: ServerStarted }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-dashboard-'));
  const server = createServer({ listen: { port: 0 }, dataDir, config });
  t.after(async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return { server, start: await server.listen() };
}

/** `porthole_session=…` from a Set-Cookie answer. */
function cookieOf(r: Reply): string {
  const set = r.headers['set-cookie']?.[0];
  assert.ok(set, `expected a Set-Cookie, got status ${r.status}: ${r.text.slice(0, 200)}`);
  return set.split(';')[0];
}

/** Logs in with a fresh link and loads the page as a browser would: the cookie and the page's CSRF secret. */
async function login(server: PortholeServer): Promise<{ cookie: string; csrf: string }> {
  const link = await request(server.loginUrl());
  const cookie = cookieOf(link);
  const page = await request(`${link.headers.location ? new URL(server.loginUrl()).origin : ''}/_porthole/`, { headers: { Cookie: cookie, 'Sec-Fetch-Dest': 'document' } });
  const m = /<meta name="porthole-csrf" content="([^"]+)">/.exec(page.text);
  assert.ok(m, `the page carries the CSRF secret: ${page.text.slice(0, 300)}`);
  return { cookie, csrf: m[1] };
}

test('the login link logs in once: a session cookie (HttpOnly, SameSite=Lax, Path=/_porthole/), then 401', async (t) => {
  const { server } = await started(t);
  const url = server.loginUrl();
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/_porthole\/\?login=[\w-]{40,}$/);
  const first = await request(url);
  assert.equal(first.status, 303);
  assert.equal(first.headers.location, '/_porthole/', 'the link leaves the address bar');
  const set = first.headers['set-cookie']![0];
  assert.match(set, /^porthole_session=[\w-]{40,}; /);
  for (const attr of ['Path=/_porthole/', 'HttpOnly', 'SameSite=Lax']) assert.ok(set.includes(attr), `${attr} in ${set}`);
  assert.ok(!set.includes('Secure'), 'no Secure over cleartext');
  const again = await request(url);
  assert.equal(again.status, 401);
  assert.equal(again.headers['x-porthole-error'], 'PH_ERR_UNAUTHORIZED');
  assert.equal(again.headers['set-cookie'], undefined);
  assert.match(again.text, /used already or has expired/);
  assert.match(again.text, /<form class="login"/, 'the page offers the token form instead');
  // A made-up code is no better.
  const made = await request(url.replace(/login=.*/, 'login=AAAA'));
  assert.equal(made.status, 401);
});

test('the pasted token logs in; a wrong one gets the form again with the reason, and no cookie', async (t) => {
  const { server, start } = await started(t);
  const post = (token: string, headers: Record<string, string> = {}) =>
    request(`${start.url}/_porthole/login`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...headers }, body: `token=${encodeURIComponent(token)}` });
  const wrong = await post('not-the-token');
  assert.equal(wrong.status, 401);
  assert.equal(wrong.headers['set-cookie'], undefined);
  assert.match(wrong.text, /<p class="error" role="alert">That is not the admin token/);
  const right = await post(start.token, { Origin: start.url });
  assert.equal(right.status, 303);
  const cookie = cookieOf(right);
  const page = await request(`${start.url}/_porthole/`, { headers: { Cookie: cookie, 'Sec-Fetch-Dest': 'document' } });
  assert.match(page.text, /<meta name="porthole-csrf" content="[\w-]{40,}">/);
  assert.match(page.text, /<script type="module" src="\/_porthole\/ui\/app.js"><\/script>/);
  // A login form posted from another site is refused (login CSRF).
  const foreign = await post(start.token, { Origin: 'http://evil.example' });
  assert.equal(foreign.status, 403);
  assert.equal(foreign.headers['x-porthole-error'], 'PH_ERR_CSRF');
  assert.equal(foreign.headers['set-cookie'], undefined);
  void server;
});

test('the session cookie alone opens nothing: every API call needs the session\'s X-Porthole-CSRF', async (t) => {
  const { server, start } = await started(t);
  const { cookie, csrf } = await login(server);
  const call = (method: string, path: string, headers: Record<string, string>, body?: string) =>
    request(`${start.url}/_porthole/api/${path}`, { method, headers: { Cookie: cookie, ...(body ? { 'Content-Type': 'application/json' } : {}), ...headers }, body });
  const bare = await call('GET', 'apps', {});
  assert.equal(bare.status, 403);
  assert.equal(JSON.parse(bare.text).error.code, 'PH_ERR_CSRF');
  const wrong = await call('GET', 'apps', { 'X-Porthole-CSRF': `${csrf.slice(0, -1)}x` });
  assert.equal(wrong.status, 403);
  const ok = await call('GET', 'apps', { 'X-Porthole-CSRF': csrf });
  assert.equal(ok.status, 200, ok.text);
  assert.deepEqual(JSON.parse(ok.text).apps, []);
  const session = await call('GET', 'session', { 'X-Porthole-CSRF': csrf });
  assert.equal(JSON.parse(session.text).via, 'session');
  assert.ok(Date.parse(JSON.parse(session.text).expires_at) > Date.now());
  // A state change through the session: an app registered.
  const put = await call('PUT', 'apps/notes', { 'X-Porthole-CSRF': csrf }, JSON.stringify({ port: 9 }));
  assert.equal(put.status, 200, put.text);
  // The Agent Zero endpoint takes the session the same way.
  const webapp = await request(`${start.url}/webapp?action=list`, { headers: { Cookie: cookie } });
  assert.equal(webapp.status, 403);
  // The token still works without any session.
  const bearer = await request(`${start.url}/_porthole/api/session`, { headers: { Authorization: `Bearer ${start.token}` } });
  assert.equal(JSON.parse(bearer.text).via, 'token');
});

test('the CSRF secret is only in a page load (Sec-Fetch-Dest: document): a script\'s fetch of the page gets the login form', async (t) => {
  const { server, start } = await started(t);
  const { cookie } = await login(server);
  for (const dest of ['empty', 'iframe', 'object']) {
    const r = await request(`${start.url}/_porthole/`, { headers: { Cookie: cookie, 'Sec-Fetch-Dest': dest } });
    assert.equal(r.status, 200);
    assert.doesNotMatch(r.text, /porthole-csrf/, `no secret for Sec-Fetch-Dest: ${dest}`);
  }
  const none = await request(`${start.url}/_porthole/`, { headers: { Cookie: cookie } });
  assert.doesNotMatch(none.text, /porthole-csrf/);
  assert.match(none.text, /Sec-Fetch-Dest/, 'says why');
});

test('every page refuses framing, keeps its opener out, and loads nothing from outside the gateway', async (t) => {
  const { server, start } = await started(t);
  const { cookie } = await login(server);
  for (const r of [await request(`${start.url}/_porthole/`), await request(`${start.url}/_porthole/`, { headers: { Cookie: cookie, 'Sec-Fetch-Dest': 'document' } })]) {
    const csp = String(r.headers['content-security-policy']);
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(csp, /script-src 'self' 'sha256-[\w+/=]+';/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/);
    assert.equal(r.headers['x-frame-options'], 'DENY');
    assert.equal(r.headers['cross-origin-opener-policy'], 'same-origin');
    assert.equal(r.headers['cache-control'], 'no-store');
    assert.doesNotMatch(r.text, /(src|href)="(https?:)?\/\//, 'no absolute URL in the page');
  }
});

test('logout ends the session: its cookie and secret are refused afterwards, and the page shows the form', async (t) => {
  const { server, start } = await started(t);
  const { cookie, csrf } = await login(server);
  const noSecret = await request(`${start.url}/_porthole/logout`, { method: 'POST', headers: { Cookie: cookie } });
  assert.equal(noSecret.status, 403, 'a cross-site form cannot log the user out either');
  const out = await request(`${start.url}/_porthole/logout`, { method: 'POST', headers: { Cookie: cookie, 'X-Porthole-CSRF': csrf } });
  assert.equal(out.status, 204);
  assert.match(out.headers['set-cookie']![0], /^porthole_session=; .*Max-Age=0/);
  const after = await request(`${start.url}/_porthole/api/apps`, { headers: { Cookie: cookie, 'X-Porthole-CSRF': csrf } });
  assert.equal(after.status, 401);
  assert.match(JSON.parse(after.text).error.message, /session ended/);
  const page = await request(`${start.url}/_porthole/`, { headers: { Cookie: cookie, 'Sec-Fetch-Dest': 'document' } });
  assert.match(page.text, /Your session has ended/);
  assert.doesNotMatch(page.text, /porthole-csrf/);
});

test('a cookie of the same name set by an app on a narrower path does not shadow the real session', async (t) => {
  const { server, start } = await started(t);
  const { cookie, csrf } = await login(server);
  const r = await request(`${start.url}/_porthole/api/apps`, { headers: { Cookie: `porthole_session=planted-by-an-app; ${cookie}`, 'X-Porthole-CSRF': csrf } });
  assert.equal(r.status, 200, r.text);
});

test('the dashboard answers only under the admin API\'s host names, like the API', async (t) => {
  const { server, start } = await started(t, { apps: [{ name: 'notes', port: 9 }] });
  const url = server.loginUrl();
  const r = await request(url, { headers: { Host: `notes.localhost:${start.port}` } });
  // notes.localhost is the app's own host: every path there is the app's, so no login happens.
  assert.equal(r.headers['set-cookie'], undefined);
  const rebound = await request(url, { headers: { Host: `attacker.example:${start.port}` } });
  assert.equal(rebound.status, 403);
  assert.equal(rebound.headers['x-porthole-error'], 'PH_ERR_FORBIDDEN');
  assert.equal(rebound.headers['set-cookie'], undefined);
  // The code was not spent by the refused requests.
  assert.equal((await request(url)).status, 303);
});

test('POST /_porthole/api/login-link makes a new one-time link (the "porthole dashboard" command uses it)', async (t) => {
  const { start } = await started(t);
  const r = await request(`${start.url}/_porthole/api/login-link`, { method: 'POST', headers: { Authorization: `Bearer ${start.token}` } });
  assert.equal(r.status, 200, r.text);
  const { path } = JSON.parse(r.text);
  assert.match(path, /^\/_porthole\/\?login=[\w-]{40,}$/);
  assert.equal((await request(`${start.url}${path}`)).status, 303);
  assert.equal((await request(`${start.url}${path}`)).status, 401);
  const anonymous = await request(`${start.url}/_porthole/api/login-link`, { method: 'POST' });
  assert.equal(anonymous.status, 401);
});

test('the page\'s files: the UI library from the installed packages, nothing outside the folder', async (t) => {
  const { start } = await started(t);
  for (const f of ['preact.mjs', 'hooks.mjs', 'htm.mjs']) {
    const r = await request(`${start.url}/_porthole/ui/vendor/${f}`);
    assert.equal(r.status, 200, f);
    assert.equal(r.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.ok(r.body.length > 500);
  }
  const etag = (await request(`${start.url}/_porthole/ui/vendor/htm.mjs`)).headers.etag!;
  assert.equal((await request(`${start.url}/_porthole/ui/vendor/htm.mjs`, { headers: { 'If-None-Match': etag } })).status, 304);
  for (const p of ['..%2f..%2fpackage.json', '..%2F..%2Fsrc%2Fadmin%2Ftoken.ts', 'vendor/..%2f..%2fpackage.json', '%2e%2e/%2e%2e/package.json', 'vendor/preact.js', '.hidden.js', 'a%00.js', 'x.ts', 'vendor/']) {
    const r = await request(`${start.url}/_porthole/ui/${p}`);
    assert.equal(r.status, 404, `${p}: ${r.status} ${r.text.slice(0, 80)}`);
  }
  const post = await request(`${start.url}/_porthole/ui/vendor/htm.mjs`, { method: 'POST' });
  assert.equal(post.status, 400);
});

test('/_porthole redirects to /_porthole/ keeping the login code', async (t) => {
  const { server, start } = await started(t);
  const code = new URL(server.loginUrl()).search;
  const r = await request(`${start.url}/_porthole${code}`);
  assert.equal(r.status, 308);
  assert.equal(r.headers.location, `/_porthole/${code}`);
});

test('behind a TLS-terminating proxy the gateway trusts (trust_forwarded), the cookie is Secure; a client\'s own X-Forwarded-Proto is not believed', async (t) => {
  const trusted = await started(t, { trust_forwarded: true });
  const viaProxy = await request(trusted.server.loginUrl(), { headers: { 'X-Forwarded-Proto': 'https' } });
  assert.match(viaProxy.headers['set-cookie']![0], /; Secure$/);
  const plain = await started(t, {});
  const forged = await request(plain.server.loginUrl(), { headers: { 'X-Forwarded-Proto': 'https' } });
  assert.doesNotMatch(forged.headers['set-cookie']![0], /Secure/);
});
