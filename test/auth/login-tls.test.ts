/**
 * `auth: login` on the TLS listener: the session cookie is `Secure`, and the
 * login (and its redirect back) works over https://.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { httpUpstream, startGateway } from '../helpers/net.js';
import { httpsRequest, selfSigned, tempDir } from '../tls/tls-helpers.js';
import { users } from './helpers.js';

test('over the TLS listener the session cookie is Secure, and it lets the page through', async (t) => {
  const tmp = tempDir();
  t.after(tmp.remove);
  const pair = selfSigned(tmp.dir, 'gw');
  const up = await httpUpstream((_q, s) => s.end('secret page'));
  t.after(() => up.close());
  const gw = await startGateway({ tls: { cert: pair.certFile, key: pair.keyFile }, auth: 'login', users: await users(), apps: [{ name: 'app', port: up.port }] });
  t.after(() => gw.close());
  const base = `https://127.0.0.1:${gw.port}`;
  const refused = await httpsRequest(`${base}/app/`, pair.cert);
  assert.equal(refused.status, 302);
  const body = new URLSearchParams({ user: 'alice', password: 'correct horse', next: '/app/' }).toString();
  const r = await httpsRequest(`${base}/_porthole/auth/login`, pair.cert, { method: 'POST', body, headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': String(body.length), Origin: base } });
  assert.equal(r.status, 303);
  const set = (r.headers['set-cookie'] as string[])[0];
  assert.match(set, /; HttpOnly; SameSite=Lax; Max-Age=\d+; Secure$/);
  const page = await httpsRequest(`${base}/app/`, pair.cert, { headers: { Cookie: set.split(';')[0] } });
  assert.equal(page.body, 'secret page');
});
