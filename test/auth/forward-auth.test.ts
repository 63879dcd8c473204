/**
 * `forward_auth`: a small auth service written here decides by the cookie
 * and Authorization it is sent; the gateway lets 2xx through with the
 * configured response headers, returns anything else to the client as it is,
 * and answers 503 PH_ERR_AUTH_UNAVAILABLE when the service is down.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import { collect, httpUpstream, openWs, startGateway, wsCloseOf, wsUpstream, nextMessage } from '../helpers/net.js';
import { request } from '../helpers/http.js';

async function authService(t: TestContext) {
  const asked: http.IncomingMessage[] = [];
  const svc = await httpUpstream((req, res) => {
    asked.push(req);
    const auth = req.headers.authorization;
    if (req.headers.cookie?.includes('sso=good') || auth === 'Bearer good') {
      res.writeHead(200, { 'Remote-User': 'alice', 'Remote-Groups': 'admins', 'X-Other': 'not copied' });
      return res.end();
    }
    if (auth === 'Bearer forbidden') {
      res.writeHead(403, { 'Content-Type': 'text/plain', 'X-Secret': 'kept' });
      return res.end('forbidden by policy');
    }
    res.writeHead(302, { Location: `https://sso.example/login?rd=${encodeURIComponent(`${req.headers['x-forwarded-proto']}://${req.headers['x-forwarded-host']}${req.headers['x-forwarded-uri']}`)}`, 'Set-Cookie': 'sso_state=1; Path=/' });
    res.end('to the portal');
  });
  t.after(() => svc.close());
  return { svc, asked };
}

async function setup(t: TestContext, authUrl: string, appExtra: Record<string, unknown> = {}) {
  const up = await wsUpstream();
  up.server.removeAllListeners('request');
  up.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ url: req.url, headers: req.headers }));
  });
  const gw = await startGateway({ auth: { forward_auth: { url: authUrl, response_headers: ['Remote-User', 'Remote-Groups'], timeout: '2s' } }, apps: [{ name: 'app', port: up.port, ...appExtra }] });
  t.after(async () => {
    await gw.close();
    await up.close();
  });
  return { up, gw };
}

test('allowed: the request goes through with the configured response headers, and the service saw the original request', async (t) => {
  const { svc, asked } = await authService(t);
  const { gw } = await setup(t, `${svc.url}/verify`);
  const r = await request(`${gw.url}/app/x?y=1`, { method: 'POST', body: 'b', headers: { Cookie: 'sso=good', 'Content-Length': '1', 'Remote-User': 'mallory' } });
  assert.equal(r.status, 200);
  const h = JSON.parse(r.text).headers;
  assert.equal(h['remote-user'], 'alice', 'the service, not the client, says who it is');
  assert.equal(h['remote-groups'], 'admins');
  assert.equal(h['x-other'], undefined);
  assert.equal(h.cookie, 'sso=good', 'forward_auth consumes no credential');
  const q = asked[0];
  assert.equal(q.method, 'GET');
  assert.equal(q.url, '/verify');
  assert.equal(q.headers['x-forwarded-method'], 'POST');
  assert.equal(q.headers['x-forwarded-uri'], '/app/x?y=1');
  assert.equal(q.headers['x-forwarded-host'], `127.0.0.1:${gw.port}`);
  assert.equal(q.headers['x-forwarded-proto'], 'http');
  assert.equal(q.headers.cookie, 'sso=good');
});

test('a client-sent Remote-User is dropped even when the service allows without sending one', async (t) => {
  const svc = await httpUpstream((_q, res) => res.writeHead(204).end());
  t.after(() => svc.close());
  const { gw } = await setup(t, svc.url);
  const r = await request(`${gw.url}/app/`, { headers: { 'Remote-User': 'mallory' } });
  assert.equal(JSON.parse(r.text).headers['remote-user'], undefined);
});

test('denied: the service answer (status, body) reaches the client as it is', async (t) => {
  const { svc } = await authService(t);
  const { gw } = await setup(t, svc.url);
  const events = collect('request', gw.gw.id);
  t.after(events.stop);
  const r = await request(`${gw.url}/app/x`, { headers: { Authorization: 'Bearer forbidden' } });
  assert.equal(r.status, 403);
  assert.deepEqual(events.events.map((e) => [e.status, e.code]), [[403, 'PH_ERR_AUTH_DENIED']]);
  assert.equal(r.text, 'forbidden by policy');
  assert.equal(r.headers['content-type'], 'text/plain');
  assert.equal(r.headers['x-porthole-error'], 'PH_ERR_AUTH_DENIED');
});

test('redirect: the client is sent to the login portal with the Location (and cookie) of the service', async (t) => {
  const { svc } = await authService(t);
  const { gw } = await setup(t, svc.url);
  const r = await request(`${gw.url}/app/page`);
  assert.equal(r.status, 302);
  assert.equal(r.headers.location, `https://sso.example/login?rd=${encodeURIComponent(`http://127.0.0.1:${gw.port}/app/page`)}`);
  assert.deepEqual(r.headers['set-cookie'], ['sso_state=1; Path=/']);
  assert.equal(r.text, 'to the portal');
});

test('upgrades are checked too: allowed opens the tunnel with the headers copied, denied is close 1008 with a reason', async (t) => {
  const { svc } = await authService(t);
  const { up, gw } = await setup(t, svc.url);
  const ws = await openWs(`${gw.wsUrl}/app/ws`, undefined, { headers: { Authorization: 'Bearer good' } });
  ws.send('hi');
  assert.equal((await nextMessage(ws)).data.toString(), 'hi');
  ws.close();
  assert.equal(up.handshakes.at(-1)!.headers['remote-user'], 'alice');
  const c = await wsCloseOf(`${gw.wsUrl}/app/ws`, undefined, { headers: { Authorization: 'Bearer forbidden' } });
  assert.equal(c.opened, true);
  assert.equal(c.code, 1008);
  assert.match(c.reason, /^PH_ERR_AUTH_DENIED: forward_auth: the auth service answered 403/);
});

test('with ws_errors: http a refused upgrade gets the service answer', async (t) => {
  const { svc } = await authService(t);
  const { gw } = await setup(t, svc.url, { ws_errors: 'http' });
  await assert.rejects(openWs(`${gw.wsUrl}/app/ws`), (err: { status?: number; body?: string }) => err.status === 302 && err.body === 'to the portal');
});

test('the auth service down: 503 PH_ERR_AUTH_UNAVAILABLE, an error event, and close 1011 for a WebSocket', async (t) => {
  const closedPort = await new Promise<number>((ok) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => ok(p));
    });
  });
  const { gw } = await setup(t, `http://127.0.0.1:${closedPort}/verify`);
  const errors = collect('error', gw.gw.id);
  t.after(errors.stop);
  const r = await request(`${gw.url}/app/`, { headers: { Accept: 'application/json' } });
  assert.equal(r.status, 503);
  assert.equal(JSON.parse(r.text).error.code, 'PH_ERR_AUTH_UNAVAILABLE');
  assert.equal(errors.events[0]?.code, 'PH_ERR_AUTH_UNAVAILABLE');
  const c = await wsCloseOf(`${gw.wsUrl}/app/ws`);
  assert.equal(c.code, 1011);
  assert.match(c.reason, /^PH_ERR_AUTH_UNAVAILABLE/);
});

test('a service that does not answer in time is 503 too', async (t) => {
  const held = new Set<net.Socket>();
  const hang = net.createServer((s) => held.add(s));
  await new Promise<void>((ok) => hang.listen(0, '127.0.0.1', ok));
  t.after(() => {
    for (const s of held) s.destroy();
    return new Promise<void>((ok) => hang.close(() => ok()));
  });
  const port = (hang.address() as net.AddressInfo).port;
  const up = await httpUpstream((_q, s) => s.end('ok'));
  t.after(() => up.close());
  const gw = await startGateway({ auth: { forward_auth: { url: `http://127.0.0.1:${port}/`, timeout: '200ms' } }, apps: [{ name: 'app', port: up.port }] });
  t.after(() => gw.close());
  const r = await request(`${gw.url}/app/`);
  assert.equal(r.status, 503);
  assert.equal(r.headers['x-porthole-error'], 'PH_ERR_AUTH_UNAVAILABLE');
});

test('forward_auth: URL is the short form', async () => {
  const { parseConfig } = await import('../../src/config/schema.js');
  const cfg = parseConfig({ auth: { forward_auth: 'http://127.0.0.1:9091/api/verify' } });
  assert.deepEqual(cfg.auth, { mode: 'forward_auth', url: 'http://127.0.0.1:9091/api/verify', response_headers: [], timeout: 5000 });
  assert.throws(() => parseConfig({ auth: { forward_auth: 'ftp://x' } }), /scheme must be http or https/);
});
