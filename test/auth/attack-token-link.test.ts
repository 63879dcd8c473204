/**
 * Attacks on the `?token=` link of `auth: token`: the redirect that removes
 * the token must stay on the gateway's origin whatever the path looks like,
 * and a link opened by a browser that is already logged in (or an agent
 * that also sends its bearer) must not hand the token on to the app.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { test, type TestContext } from 'node:test';
import { newToken, tokenDigest } from '../../src/auth/password.js';
import { startGateway, wsUpstream } from '../helpers/net.js';
import { request } from '../helpers/http.js';
import { cookieOf } from './helpers.js';

const TOKEN = newToken();

async function tokenApp(t: TestContext, appExtra: Record<string, unknown> = {}) {
  const up = await wsUpstream();
  up.server.removeAllListeners('request');
  const urls: string[] = [];
  up.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    urls.push(req.url ?? '');
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ url: req.url }));
  });
  const gw = await startGateway({ auth: 'token', auth_tokens: [{ name: 'agent', sha256: tokenDigest(TOKEN) }], apps: [{ name: 'app', port: up.port, ...appExtra }] });
  t.after(async () => {
    await gw.close();
    await up.close();
  });
  return { gw, urls };
}

test('the redirect that removes ?token= stays on the origin for a path like //evil.example/ at an app host name', async (t) => {
  const { gw } = await tokenApp(t);
  for (const path of ['//evil.example/', '/\\evil.example/', '//evil.example']) {
    const r = await request(`${gw.url}${path}?token=${TOKEN}`, { headers: { Host: `app.localhost:${gw.port}` } });
    assert.equal(r.status, 303, `${path}: ${r.text}`);
    const target = new URL(String(r.headers.location), `http://app.localhost:${gw.port}/`);
    assert.equal(target.origin, `http://app.localhost:${gw.port}`, `${path} → ${r.headers.location}`);
  }
});

test('a ?token= link opened with a live session, or with the bearer too, is still taken out of the URL before the app sees it', async (t) => {
  const { gw, urls } = await tokenApp(t);
  const first = await request(`${gw.url}/app/x?token=${TOKEN}`);
  const cookie = cookieOf(first)!;
  assert.ok(cookie);
  const again = await request(`${gw.url}/app/x?token=${TOKEN}&y=1`, { headers: { Cookie: cookie } });
  assert.equal(again.status, 303);
  assert.equal(again.headers.location, '/app/x?y=1');
  const bearer = await request(`${gw.url}/app/x?y=2&token=${TOKEN}`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  assert.equal(bearer.status, 303);
  assert.equal(bearer.headers.location, '/app/x?y=2');
  // An app's own `token` parameter (Jupyter's) still reaches it once the browser is logged in.
  const own = await request(`${gw.url}/app/x?token=jupyter-own`, { headers: { Cookie: cookie } });
  assert.equal(own.status, 200);
  assert.equal(JSON.parse(own.text).url, '/x?token=jupyter-own');
  assert.ok(!urls.some((u) => u.includes(TOKEN)), urls.join(' '));
});
