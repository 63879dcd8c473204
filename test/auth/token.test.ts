/**
 * `auth: token`: `Authorization: Bearer` for API clients and agents, and a
 * `?token=` link exchanged once for the session cookie, then removed from
 * the URL by a redirect and never forwarded to the app.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { test, type TestContext } from 'node:test';
import { newToken, tokenDigest } from '../../src/auth/password.js';
import { collect, startGateway, wsCloseOf, openWs, wsUpstream, nextMessage } from '../helpers/net.js';
import { request } from '../helpers/http.js';
import { cookieOf } from './helpers.js';

const TOKEN = newToken();

async function tokenApp(t: TestContext, appExtra: Record<string, unknown> = {}) {
  const up = await wsUpstream();
  up.server.removeAllListeners('request');
  const seen: http.IncomingMessage[] = [];
  up.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    seen.push(req);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ url: req.url, headers: req.headers }));
  });
  const gw = await startGateway({ auth: 'token', auth_tokens: [{ name: 'agent', sha256: tokenDigest(TOKEN) }], apps: [{ name: 'app', port: up.port, ...appExtra }] });
  t.after(async () => {
    await gw.close();
    await up.close();
  });
  return { up, gw, seen };
}

test('a bearer token of auth_tokens lets a request through; the app gets X-Forwarded-User, not the Authorization', async (t) => {
  const { gw } = await tokenApp(t);
  const r = await request(`${gw.url}/app/x`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  assert.equal(r.status, 200);
  const h = JSON.parse(r.text).headers;
  assert.equal(h.authorization, undefined);
  assert.equal(h['x-forwarded-user'], 'agent');
});

test('auth_forward_credentials: true passes the consumed Authorization on', async (t) => {
  const { gw } = await tokenApp(t, { auth_forward_credentials: true });
  const r = await request(`${gw.url}/app/x`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  assert.equal(JSON.parse(r.text).headers.authorization, `Bearer ${TOKEN}`);
});

test('without a token: 401 with WWW-Authenticate (no login page); a wrong one is PH_ERR_LOGIN_FAILED', async (t) => {
  const { gw } = await tokenApp(t);
  const none = await request(`${gw.url}/app/x`, { headers: { Accept: 'text/html' } });
  assert.equal(none.status, 401);
  assert.equal(none.headers['www-authenticate'], 'Bearer realm="porthole"');
  assert.equal(none.headers['x-porthole-error'], 'PH_ERR_AUTH_REQUIRED');
  const wrong = await request(`${gw.url}/app/x`, { headers: { Authorization: 'Bearer nope', Accept: 'application/json' } });
  assert.equal(wrong.status, 401);
  assert.equal(JSON.parse(wrong.text).error.code, 'PH_ERR_LOGIN_FAILED');
});

test('?token= is exchanged once for the cookie, removed by a redirect, and never reaches the app', async (t) => {
  const { gw, seen } = await tokenApp(t);
  const events = collect('auth', gw.gw.id);
  t.after(events.stop);
  const r = await request(`${gw.url}/app/page?a=1&token=${encodeURIComponent(TOKEN)}&b=2`);
  assert.equal(r.status, 303);
  assert.equal(r.headers.location, '/app/page?a=1&b=2');
  assert.equal(r.headers['referrer-policy'], 'no-referrer');
  const cookie = cookieOf(r)!;
  assert.match(r.headers['set-cookie']![0], /HttpOnly; SameSite=Lax/);
  assert.equal(seen.length, 0, 'the app saw nothing of the exchange');
  const page = await request(`${gw.url}${r.headers.location}`, { headers: { Cookie: cookie } });
  assert.equal(page.status, 200);
  assert.equal(JSON.parse(page.text).url, '/page?a=1&b=2');
  assert.equal(JSON.parse(page.text).headers['x-forwarded-user'], 'agent');
  assert.deepEqual(events.events.map((e) => [e.action, e.user]), [['token', 'agent']]);
  // The cookie opens WebSockets too; a WebSocket without it is closed 1008.
  const ws = await openWs(`${gw.wsUrl}/app/ws`, undefined, { headers: { Cookie: cookie } });
  ws.send('x');
  assert.equal((await nextMessage(ws)).data.toString(), 'x');
  ws.close();
  const refused = await wsCloseOf(`${gw.wsUrl}/app/ws`);
  assert.equal(refused.code, 1008);
  assert.match(refused.reason, /login required/);
});

test('a wrong ?token= counts toward the rate limit', async (t) => {
  const { gw } = await tokenApp(t);
  for (let i = 0; i < 5; i++) assert.equal((await request(`${gw.url}/app/?token=bad${i}`)).status, 401);
  const limited = await request(`${gw.url}/app/?token=${encodeURIComponent(TOKEN)}`);
  assert.equal(limited.status, 429);
  assert.ok(Number(limited.headers['retry-after']) >= 1);
});

test('a token-file bridge app keeps its own ?token= (it picks the bridge target)', async (t) => {
  const { parseConfig } = await import('../../src/config/schema.js');
  const cfg = parseConfig({ auth: 'token', auth_tokens: [{ name: 'agent', sha256: tokenDigest(TOKEN) }], apps: [{ name: 'vnc', port: 1, bridge_token_file: '/dev/null' }] });
  const { AuthGate } = await import('../../src/auth/auth-gate.js');
  const gate = new AuthGate({ gatewayId: 't', config: () => cfg, isAppHost: () => false, proto: () => 'http', endConnections: () => undefined });
  const d = gate.decide({ url: `/vnc/?token=${TOKEN}`, headers: {}, socket: { remoteAddress: '127.0.0.1' } } as unknown as http.IncomingMessage, cfg.apps[0], false);
  assert.equal((d as { kind: string }).kind, 'refuse');
  t.diagnostic('refused rather than exchanged: the query token is the bridge target name');
});
