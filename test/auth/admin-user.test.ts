/**
 * An `admin: true` user's gateway login leads to a dashboard session (and so
 * to the admin API, with the session's CSRF secret); the user cookie alone
 * never authorizes an admin call, and a user without `admin` gets the
 * dashboard's own login form.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { createServer } from 'porthole';
import { request } from '../helpers/http.js';
import { aliceHash, cookieOf, postLogin } from './helpers.js';

async function started(t: TestContext) {
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-auth-admin-'));
  const hash = await aliceHash();
  const server = createServer({
    listen: { port: 0 },
    dataDir,
    config: { auth: 'login', users: [{ name: 'alice', password_hash: hash, admin: true }, { name: 'bob', password_hash: hash }] },
  });
  t.after(async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return (await server.listen()).url;
}

test('an admin user reaches the dashboard and, with its CSRF secret, the admin API; the user cookie alone does not', async (t) => {
  const url = await started(t);
  const userCookie = cookieOf(await postLogin(url, { user: 'alice', password: 'correct horse', next: '/_porthole/' }))!;
  // The user cookie alone is no admin credential.
  const bare = await request(`${url}/_porthole/api/apps`, { headers: { Cookie: userCookie } });
  assert.equal(bare.status, 401);
  // A script's fetch of the page (not a page load) starts nothing.
  const fetched = await request(`${url}/_porthole/`, { headers: { Cookie: userCookie, 'Sec-Fetch-Dest': 'empty' } });
  assert.equal(fetched.headers['set-cookie'], undefined);
  const page = await request(`${url}/_porthole/`, { headers: { Cookie: userCookie, 'Sec-Fetch-Dest': 'document' } });
  assert.equal(page.status, 303);
  const dash = cookieOf(page, 'porthole_session')!;
  assert.ok(dash);
  const shell = await request(`${url}/_porthole/`, { headers: { Cookie: `${userCookie}; ${dash}`, 'Sec-Fetch-Dest': 'document' } });
  const csrf = /<meta name="porthole-csrf" content="([^"]+)">/.exec(shell.text)![1];
  const noCsrf = await request(`${url}/_porthole/api/apps`, { headers: { Cookie: `${userCookie}; ${dash}` } });
  assert.equal(noCsrf.status, 403);
  assert.equal(noCsrf.headers['x-porthole-error'], 'PH_ERR_CSRF');
  const ok = await request(`${url}/_porthole/api/apps`, { headers: { Cookie: `${userCookie}; ${dash}`, 'X-Porthole-CSRF': csrf } });
  assert.equal(ok.status, 200);
});

test('a user without admin gets the dashboard login form, not a session', async (t) => {
  const url = await started(t);
  const userCookie = cookieOf(await postLogin(url, { user: 'bob', password: 'correct horse', next: '/' }))!;
  const page = await request(`${url}/_porthole/`, { headers: { Cookie: userCookie, 'Sec-Fetch-Dest': 'document' } });
  assert.equal(page.status, 200);
  assert.equal(page.headers['set-cookie'], undefined);
  assert.match(page.text, /Admin token/);
});

test('an app registered through the admin API keeps its auth through a stored update (autostart) and a restart', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-auth-api-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const config = { users: [{ name: 'alice', password_hash: await aliceHash() }] };
  const first = createServer({ listen: { port: 0 }, dataDir, config });
  const start = await first.listen();
  const call = (url: string, token: string, body: unknown) =>
    request(`${url}/webapp`, { method: 'POST', body: JSON.stringify(body), headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' } });
  let r = await call(start.url, start.token, { action: 'register', name: 'guarded', port: 9, auth: 'login' });
  assert.equal(r.status, 200, r.text);
  r = await call(start.url, start.token, { action: 'autostart', name: 'guarded', enabled: false });
  assert.equal(r.status, 200, r.text);
  assert.equal((await request(`${start.url}/guarded/`, { headers: { Accept: 'text/html' } })).status, 302);
  await first.close();
  const second = createServer({ listen: { port: 0 }, dataDir, config });
  t.after(() => second.close());
  const again = await second.listen();
  assert.equal((await request(`${again.url}/guarded/`, { headers: { Accept: 'text/html' } })).status, 302, 'still guarded after a restart');
});
