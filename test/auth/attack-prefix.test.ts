/**
 * Attack on prefix routing under per-app auth: `/site` open to all and
 * `/site/admin` behind the login, both served by one upstream that (like
 * most servers) resolves dot segments, `%2e` and doubled slashes. A path
 * the gateway routes to the open app but the upstream reads as the admin
 * area must not get through.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { httpUpstream, rawRequest, startGateway } from '../helpers/net.js';
import { users } from './helpers.js';

test('a path that only a dot segment, %2e or a doubled slash moves into a login app is not let through the open app above it', async (t) => {
  const up = await httpUpstream((req, res) => {
    // What the upstream makes of the path: dot segments (and %2e) resolved, slashes merged.
    const path = new URL(req.url ?? '/', 'http://up.invalid').pathname.replace(/\/{2,}/g, '/');
    res.end(path.startsWith('/site/admin/') ? 'ADMIN AREA' : 'public');
  });
  t.after(() => up.close());
  const gw = await startGateway({
    auth: 'login',
    users: await users(),
    apps: [
      { name: 'site', port: up.port, prefix: '/site', strip_prefix: false, auth: 'none' },
      { name: 'siteadmin', port: up.port, prefix: '/site/admin', strip_prefix: false },
    ],
  });
  t.after(() => gw.close());
  const get = (path: string) => rawRequest(gw.port, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\nConnection: close\r\n\r\n`);
  assert.match(await get('/site/'), /public/);
  assert.match(await get('/site/admin/'), /PH_ERR_AUTH_REQUIRED/);
  for (const path of ['/site/x/../admin/', '/site/x/%2e%2e/admin/', '/site/x/%2E%2E/admin/', '/site/./admin/', '/site//admin/', '/site/%2e/admin/']) {
    const r = await get(path);
    assert.doesNotMatch(r, /ADMIN AREA/, path);
    assert.match(r, /^HTTP\/1\.1 404 [^]*PH_ERR_NOT_FOUND/, path);
  }
  // Paths that stay in the open app are not disturbed.
  assert.match(await get('/site/a//b/../c'), /public/);
});
