/**
 * Attacks on access control over HTTP/2 (the seam between issue 10's
 * sections 2 and 3): every plain request and every extended CONNECT goes
 * through the same auth decision as HTTP/1.1; cookies split across several
 * HTTP/2 `cookie` fields are read (and the session cookie stripped) as one;
 * a client's X-Forwarded-User never passes; many failed logins on the
 * streams of one connection are rate-limited as on separate connections.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { test, type TestContext } from 'node:test';
import { httpUpstream, startGateway, wsUpstream } from '../helpers/net.js';
import { selfSigned, tempDir } from '../tls/tls-helpers.js';
import { users } from '../auth/helpers.js';
import { closeOf, h2Connect, h2Request, h2WebSocket } from './h2-helpers.js';

async function setup(t: TestContext, appExtra: Record<string, unknown> = {}) {
  const tmp = tempDir();
  t.after(tmp.remove);
  const pair = selfSigned(tmp.dir, 'gw');
  const up = await wsUpstream();
  up.server.removeAllListeners('request');
  up.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ url: req.url, headers: req.headers }));
  });
  t.after(() => up.close());
  const gw = await startGateway({ tls: { cert: pair.certFile, key: pair.keyFile }, auth: 'login', users: await users(), apps: [{ name: 'app', port: up.port, ...appExtra }] });
  t.after(() => gw.close());
  const session = await h2Connect(gw.port, pair.cert);
  t.after(() => session.destroy());
  const authority = `localhost:${gw.port}`;
  return { gw, up, session, authority };
}

async function logIn(session: Awaited<ReturnType<typeof h2Connect>>, authority: string): Promise<string> {
  const body = new URLSearchParams({ user: 'alice', password: 'correct horse', next: '/app/' }).toString();
  const r = await h2Request(session, { ':method': 'POST', ':path': '/_porthole/auth/login', ':authority': authority, 'content-type': 'application/x-www-form-urlencoded', origin: `https://${authority}` }, body);
  assert.equal(r.status, 303, r.text);
  const set = r.headers['set-cookie'] as string[] | string;
  const line = (Array.isArray(set) ? set : [set]).find((c) => c.startsWith('porthole_auth='))!;
  return line.split(';')[0];
}

test('over HTTP/2 a page is refused before login, and after it the session cookie (in its own cookie field) never reaches the app', async (t) => {
  const { session, authority } = await setup(t);
  const refused = await h2Request(session, { ':path': '/app/', ':authority': authority, accept: 'text/html' });
  assert.equal(refused.status, 302);
  assert.equal(refused.headers['x-porthole-error'], 'PH_ERR_AUTH_REQUIRED');
  const api = await h2Request(session, { ':path': '/app/', ':authority': authority, accept: 'application/json' });
  assert.equal(api.status, 401);
  const cookie = await logIn(session, authority);
  // HTTP/2 lets a client split Cookie into several fields (RFC 9113 §8.2.3).
  const r = await h2Request(session, { ':path': '/app/', ':authority': authority, cookie: ['a=1', cookie, 'b=2'], 'x-forwarded-user': 'root', 'x_forwarded_user': 'root' });
  assert.equal(r.status, 200, r.text);
  const h = JSON.parse(r.text).headers;
  assert.equal(h.cookie, 'a=1; b=2');
  assert.equal(h['x-forwarded-user'], 'alice');
  assert.equal(h['x_forwarded_user'], undefined);
});

test('an extended CONNECT is refused before login (200, then close 1008) and admitted after, without the session cookie or a spoofed user upstream', async (t) => {
  const { session, authority, up } = await setup(t);
  const before = await h2WebSocket(session, '/app/ws', { ':authority': authority });
  assert.equal(before.status, 200);
  const c = closeOf(await before.frames.next());
  assert.equal(c.code, 1008);
  assert.match(c.reason, /^PH_ERR_AUTH_REQUIRED/);
  assert.equal(up.handshakes.length, 0);
  const cookie = await logIn(session, authority);
  const after = await h2WebSocket(session, '/app/ws', { ':authority': authority, cookie: ['a=1', cookie], 'x-forwarded-user': 'root' });
  assert.equal(after.status, 200);
  assert.equal(up.handshakes.length, 1);
  const hs = up.handshakes[0].headers;
  assert.equal(hs.cookie, 'a=1');
  assert.equal(hs['x-forwarded-user'], 'alice');
  // Logout (over HTTP/2 too) ends the WebSocket on its stream with close 1008.
  const out = await h2Request(session, { ':method': 'POST', ':path': '/_porthole/auth/logout', ':authority': authority, cookie, origin: `https://${authority}` }, '');
  assert.equal(out.status, 200);
  const bye = closeOf(await after.frames.next());
  assert.equal(bye.code, 1008);
  assert.match(bye.reason, /logged out/);
  after.stream.close();
});

test('failed logins on many streams of one HTTP/2 connection are rate-limited like separate connections', async (t) => {
  const { session, authority } = await setup(t);
  const body = new URLSearchParams({ user: 'alice', password: 'wrong', next: '/' }).toString();
  const replies = await Promise.all(
    Array.from({ length: 12 }, () => h2Request(session, { ':method': 'POST', ':path': '/_porthole/auth/login', ':authority': authority, 'content-type': 'application/x-www-form-urlencoded', origin: `https://${authority}` }, body)),
  );
  const statuses = replies.map((r) => r.status);
  assert.ok(statuses.filter((s) => s === 401).length <= 5, statuses.join(' '));
  assert.ok(statuses.filter((s) => s === 429).length >= 7, statuses.join(' '));
});

test('forward_auth over an extended CONNECT: the service sees the original URI, and a client cannot smuggle the copied header', async (t) => {
  const asked: http.IncomingHttpHeaders[] = [];
  const svc = await httpUpstream((req, res) => {
    asked.push(req.headers);
    if (req.headers.authorization === 'Bearer good') res.writeHead(200, { 'Remote-User': 'alice' });
    else res.writeHead(401, { 'Content-Type': 'text/plain' });
    res.end();
  });
  t.after(() => svc.close());
  const tmp = tempDir();
  t.after(tmp.remove);
  const pair = selfSigned(tmp.dir, 'gw');
  const up = await wsUpstream();
  t.after(() => up.close());
  const gw = await startGateway({ tls: { cert: pair.certFile, key: pair.keyFile }, auth: { forward_auth: { url: `${svc.url}/verify`, response_headers: ['Remote-User'] } }, apps: [{ name: 'app', port: up.port }] });
  t.after(() => gw.close());
  const session = await h2Connect(gw.port, pair.cert);
  t.after(() => session.destroy());
  const authority = `localhost:${gw.port}`;
  const denied = await h2WebSocket(session, '/app/ws?room=1', { ':authority': authority, 'remote-user': 'root' });
  assert.equal(denied.status, 200);
  assert.equal(closeOf(await denied.frames.next()).code, 1008);
  assert.equal(up.handshakes.length, 0);
  assert.equal(asked[0]['x-forwarded-uri'], '/app/ws?room=1');
  assert.equal(asked[0]['x-forwarded-host'], authority);
  assert.equal(asked[0]['x-forwarded-proto'], 'https');
  const ok = await h2WebSocket(session, '/app/ws', { ':authority': authority, authorization: 'Bearer good', 'remote-user': 'root' });
  assert.equal(ok.status, 200);
  assert.equal(up.handshakes.length, 1);
  assert.equal(up.handshakes[0].headers['remote-user'], 'alice');
  ok.stream.close();
});

test('a request with both :authority and a Host of another app is routed and judged by :authority alone', async (t) => {
  const tmp = tempDir();
  t.after(tmp.remove);
  const pair = selfSigned(tmp.dir, 'gw', ['localhost', 'open.localhost', 'secret.localhost']);
  const open = await httpUpstream((req, res) => res.end(`open ${req.headers.host}`));
  const secret = await httpUpstream((req, res) => res.end(`SECRET ${req.headers.host}`));
  t.after(() => open.close());
  t.after(() => secret.close());
  const gw = await startGateway({
    tls: { cert: pair.certFile, key: pair.keyFile },
    auth: 'login',
    users: await users(),
    apps: [
      { name: 'open', port: open.port, auth: 'none' },
      { name: 'secret', port: secret.port },
    ],
  });
  t.after(() => gw.close());
  const session = await h2Connect(gw.port, pair.cert);
  t.after(() => session.destroy());
  const toOpen = await h2Request(session, { ':path': '/', ':authority': `open.localhost:${gw.port}`, host: `secret.localhost:${gw.port}` });
  assert.equal(toOpen.status, 200);
  assert.match(toOpen.text, /^open /);
  const toSecret = await h2Request(session, { ':path': '/', ':authority': `secret.localhost:${gw.port}`, host: `open.localhost:${gw.port}`, accept: 'application/json' });
  assert.equal(toSecret.status, 401);
  assert.doesNotMatch(toSecret.text, /SECRET/);
});
