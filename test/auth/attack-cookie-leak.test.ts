/**
 * Attack on the seam between a gateway-wide `auth: login` and an app that
 * opts out (`auth: none`) or asks another service (`forward_auth`): the
 * browser sends the gateway's session cookie (Path=/) to every app of the
 * host, so an app with no login of its own must not receive it either, or
 * it could replay it against every other app.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { test, type TestContext } from 'node:test';
import { httpUpstream, openWs, startGateway, wsUpstream } from '../helpers/net.js';
import { request } from '../helpers/http.js';
import { cookieOf, postLogin, users } from './helpers.js';

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

test('an auth: none app on a login gateway never gets the session cookie (requests and upgrades); other cookies pass', async (t) => {
  const secret = await echoHeaders(t);
  const open = await echoHeaders(t);
  const gw = await startGateway({
    auth: 'login',
    users: await users(),
    apps: [
      { name: 'secret', port: secret.port },
      { name: 'open', port: open.port, auth: 'none' },
    ],
  });
  t.after(() => gw.close());
  const r = await postLogin(gw.url, { user: 'alice', password: 'correct horse', next: '/secret/' });
  const cookie = cookieOf(r)!;
  assert.ok(cookie);
  const seen = await request(`${gw.url}/open/`, { headers: { Cookie: `a=1; ${cookie}` } });
  assert.equal(seen.status, 200);
  assert.equal(JSON.parse(seen.text).headers.cookie, 'a=1', 'the open app must not be able to replay the login');
  const ws = await openWs(`${gw.wsUrl}/open/ws`, undefined, { headers: { Cookie: cookie } });
  ws.close();
  assert.equal(open.handshakes.at(-1)!.headers.cookie, undefined);
});

test('a forward_auth app and its auth service never get the gateway session cookie; the auth service cookies pass', async (t) => {
  const asked: (string | undefined)[] = [];
  const svc = await httpUpstream((req, res) => {
    asked.push(req.headers.cookie);
    res.writeHead(200);
    res.end();
  });
  t.after(() => svc.close());
  const app = await echoHeaders(t);
  const gw = await startGateway({
    auth: 'login',
    users: await users(),
    apps: [{ name: 'fa', port: app.port, auth: { forward_auth: { url: `${svc.url}/verify` } } }],
  });
  t.after(() => gw.close());
  const r = await postLogin(gw.url, { user: 'alice', password: 'correct horse', next: '/' });
  const cookie = cookieOf(r)!;
  const seen = await request(`${gw.url}/fa/`, { headers: { Cookie: `sso=good; ${cookie}` } });
  assert.equal(seen.status, 200);
  assert.equal(JSON.parse(seen.text).headers.cookie, 'sso=good');
  assert.deepEqual(asked, ['sso=good'], 'the auth service may be another party: it gets its own cookies only');
});
