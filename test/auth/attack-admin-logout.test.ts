/**
 * Attack on the seam between the gateway login and the dashboard: an
 * `admin: true` user's login starts a dashboard session of its own. Logging
 * out (on a shared machine, say) must end that one too, or the browser keeps
 * the admin API after the user logged out.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createServer } from 'porthole';
import { request } from '../helpers/http.js';
import { aliceHash, cookieOf, postLogin } from './helpers.js';

test("logging out of the gateway ends the dashboard session an admin user's login started", async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-auth-admin-'));
  const server = createServer({ listen: { port: 0 }, dataDir, config: { auth: 'login', users: [{ name: 'alice', password_hash: await aliceHash(), admin: true }] } });
  t.after(async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const url = (await server.listen()).url;
  const userCookie = cookieOf(await postLogin(url, { user: 'alice', password: 'correct horse', next: '/_porthole/' }))!;
  const page = await request(`${url}/_porthole/`, { headers: { Cookie: userCookie, 'Sec-Fetch-Dest': 'document' } });
  const dash = cookieOf(page, 'porthole_session')!;
  assert.ok(dash);
  const shell = await request(`${url}/_porthole/`, { headers: { Cookie: `${userCookie}; ${dash}`, 'Sec-Fetch-Dest': 'document' } });
  const csrf = /<meta name="porthole-csrf" content="([^"]+)">/.exec(shell.text)![1];
  const before = await request(`${url}/_porthole/api/apps`, { headers: { Cookie: dash, 'X-Porthole-CSRF': csrf } });
  assert.equal(before.status, 200);
  const out = await request(`${url}/_porthole/auth/logout`, { method: 'POST', headers: { Cookie: `${userCookie}; ${dash}`, 'Content-Length': '0' } });
  assert.equal(out.status, 200);
  const after = await request(`${url}/_porthole/api/apps`, { headers: { Cookie: dash, 'X-Porthole-CSRF': csrf } });
  assert.equal(after.status, 401, 'the dashboard session outlived the logout');
});
