/**
 * Who may use the hop between nodes, and who the app is told the user is.
 * The peer listener answers only requests carrying the cluster secret (403
 * PH_ERR_PEER_AUTH otherwise, nothing routed). Access is decided once, at
 * the edge node: refused there without credentials, admitted with them, and
 * the app behind B gets the identity headers it would have got had the
 * client come to B directly.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { newToken, tokenDigest } from '../../src/auth/password.js';
import { request } from '../helpers/http.js';
import { closed, collect, httpUpstream, nextMessage, rawRequest, wsCloseOf } from '../helpers/net.js';
import { cookieOf, postLogin, users } from '../auth/helpers.js';
import { openThrough, SECRET, startApp, startCluster, valuesOf, type App, type Cluster } from './peer-helpers.js';

/** The identity-bearing headers of a request head, for comparing two of them. */
function identity(raw: readonly string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const n of ['x-forwarded-user', 'remote-user', 'remote-groups', 'authorization', 'cookie']) out[n] = valuesOf(raw, n);
  return out;
}

describe('the cluster secret on the peer listener', () => {
  let app: App;
  let c: Cluster;
  let secret = SECRET;
  const intercepted: string[] = [];
  before(async () => {
    app = await startApp();
    c = await startCluster(app, {
      peer: { secret: () => secret },
      bOptions: {
        peerIntercept: (req, res) => {
          if (!(req.url ?? '').startsWith('/_porthole/api/')) return false;
          intercepted.push(req.url ?? '');
          res.end('admin of b');
          return true;
        },
      },
    });
  });
  after(async () => {
    await c.close();
    await app.close();
  });

  const cases: [string, Record<string, string | string[]>][] = [
    ['without X-Porthole-Peer', {}],
    ['with a wrong secret', { 'X-Porthole-Peer': 'guess' }],
    ['with the secret and a suffix', { 'X-Porthole-Peer': `${SECRET}x` }],
    ['with two X-Porthole-Peer headers', { 'X-Porthole-Peer': [SECRET, SECRET] }],
  ];
  for (const [what, headers] of cases) {
    test(`a request ${what} gets 403 PH_ERR_PEER_AUTH, with an error event, and the app sees nothing`, async () => {
      const before = app.seen.length;
      const errors = collect('error', c.b.id);
      const requests = collect('request', c.b.id);
      try {
        const r = await request(`${c.peer.url}/web/hdr`, { headers: { ...headers, Accept: 'application/json' } });
        assert.equal(r.status, 403);
        assert.equal(r.headers['x-porthole-error'], 'PH_ERR_PEER_AUTH');
        assert.equal(JSON.parse(r.text).error.code, 'PH_ERR_PEER_AUTH');
        assert.equal(app.seen.length, before);
        assert.equal(errors.events[0]?.code, 'PH_ERR_PEER_AUTH');
        assert.equal(requests.events[0]?.status, 403);
        assert.equal(requests.events[0]?.code, 'PH_ERR_PEER_AUTH');
      } finally {
        errors.stop();
        requests.stop();
      }
    });
  }

  test('an upgrade without the secret gets a plain 403 (no handshake completed), and the app sees nothing', async () => {
    const before = app.seen.length;
    const raw = await rawRequest(
      Number(new URL(c.peer.url).port),
      `GET /web/ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nX-Porthole-Peer: wrong\r\n\r\n`,
    );
    assert.match(raw, /^HTTP\/1\.1 403 /);
    assert.match(raw, /X-Porthole-Error: PH_ERR_PEER_AUTH/i);
    assert.equal(app.seen.length, before);
  });

  test('with the secret: no Host check (the edge did it), and the user named by the edge reaches the app as X-Forwarded-User', async () => {
    const r = await request(`${c.peer.url}/web/hdr`, { headers: { Host: 'evil.example', 'X-Porthole-Peer': SECRET, 'X-Porthole-Peer-User': encodeURIComponent('zoë'), 'X-Forwarded-User': 'mallory' } });
    assert.equal(r.status, 200);
    const h = (JSON.parse(r.text) as { rawHeaders: string[] }).rawHeaders;
    assert.deepEqual(valuesOf(h, 'x-forwarded-user'), ['zoë']);
    assert.deepEqual(valuesOf(h, 'host'), ['evil.example']);
  });

  test('/_porthole/ paths go to peerIntercept, only with the secret; what it does not take is 404', async () => {
    const refused = await request(`${c.peer.url}/_porthole/api/apps`);
    assert.equal(refused.status, 403);
    assert.deepEqual(intercepted, []);
    const ok = await request(`${c.peer.url}/_porthole/api/apps`, { headers: { 'X-Porthole-Peer': SECRET } });
    assert.equal(ok.text, 'admin of b');
    assert.deepEqual(intercepted, ['/_porthole/api/apps']);
    const other = await request(`${c.peer.url}/_porthole/health`, { headers: { 'X-Porthole-Peer': SECRET } });
    assert.equal(other.status, 404);
  });

  test('the secret is read per request: after it rotates, the old one is refused and the new one admitted', async () => {
    assert.equal((await request(`${c.aUrl}/web/hdr`)).status, 200);
    secret = 'rotated-secret-42';
    try {
      // For the client a node that refuses A's secret is a failure of the gateway, not a refusal of the client.
      const old = await request(`${c.aUrl}/web/hdr`, { headers: { Accept: 'application/json' } });
      assert.equal(old.status, 502);
      assert.equal(old.headers['x-porthole-error'], 'PH_ERR_PEER_REFUSED');
      assert.match(JSON.parse(old.text).error.message, /web: node b \(127\.0\.0\.1:\d+\) refused the cluster secret of this node/);
      // A WebSocket is never left with a bare 1006: handshake completed, then 1014 with the reason.
      const ws = await wsCloseOf(`${c.aUrl.replace('http:', 'ws:')}/web/`);
      assert.equal(ws.opened, true);
      assert.equal(ws.code, 1014);
      assert.match(ws.reason, /node b .* refused the cluster secret/);
      c.a.reload(c.aConfig, { peers: new Map([['web', { ...c.target, secret: 'rotated-secret-42' }]]) });
      assert.equal((await request(`${c.aUrl}/web/hdr`)).status, 200);
    } finally {
      secret = SECRET;
      c.a.reload(c.aConfig, { peers: new Map([['web', c.target]]) });
    }
  });

  test('an empty secret on B admits nobody, not even a request with an empty header', async () => {
    secret = '';
    try {
      const r = await rawRequest(Number(new URL(c.peer.url).port), 'GET /web/hdr HTTP/1.1\r\nHost: x\r\nX-Porthole-Peer: \r\nConnection: close\r\n\r\n');
      assert.match(r, /^HTTP\/1\.1 403 /);
    } finally {
      secret = SECRET;
    }
  });
});

describe('auth: token decided at the edge', () => {
  const TOKEN = newToken();
  let app: App;
  let c: Cluster;
  before(async () => {
    app = await startApp();
    c = await startCluster(app, { top: { auth: 'token', auth_tokens: [{ name: 'agent', sha256: tokenDigest(TOKEN) }] } });
  });
  after(async () => {
    await c.close();
    await app.close();
  });

  test('refused at A without credentials (401), and B is not asked', async () => {
    const atB = collect('request', c.b.id);
    try {
      const r = await request(`${c.aUrl}/web/hdr`, { headers: { Accept: 'application/json' } });
      assert.equal(r.status, 401);
      assert.equal(r.headers['x-porthole-error'], 'PH_ERR_AUTH_REQUIRED');
      assert.equal(atB.events.length, 0);
      const ws = await wsCloseOf(`${c.aUrl.replace('http:', 'ws:')}/web/`);
      assert.equal(ws.code, 1008);
      assert.match(ws.reason, /login required/);
    } finally {
      atB.stop();
    }
  });

  test('admitted with the token: the app behind B gets the identity headers it gets when the client comes to B directly', async () => {
    const via = await request(`${c.aUrl}/web/hdr`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    const direct = await request(`${c.bUrl}/web/hdr`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    assert.equal(via.status, 200);
    assert.equal(direct.status, 200);
    const viaId = identity((JSON.parse(via.text) as { rawHeaders: string[] }).rawHeaders);
    const directId = identity((JSON.parse(direct.text) as { rawHeaders: string[] }).rawHeaders);
    assert.deepEqual(viaId['x-forwarded-user'], ['agent']);
    assert.deepEqual(viaId['authorization'], []);
    assert.deepEqual(viaId, directId);
  });

  test('auth_forward_credentials: true: the Authorization reaches the app behind B as it reaches an app of B\'s own', async () => {
    const app2 = await startApp();
    const c2 = await startCluster(app2, { top: { auth: 'token', auth_tokens: [{ name: 'agent', sha256: tokenDigest(TOKEN) }] }, app: { auth_forward_credentials: true } });
    try {
      const via = await request(`${c2.aUrl}/web/hdr`, { headers: { Authorization: `Bearer ${TOKEN}` } });
      const direct = await request(`${c2.bUrl}/web/hdr`, { headers: { Authorization: `Bearer ${TOKEN}` } });
      const viaId = identity((JSON.parse(via.text) as { rawHeaders: string[] }).rawHeaders);
      assert.deepEqual(viaId.authorization, [`Bearer ${TOKEN}`]);
      assert.deepEqual(viaId, identity((JSON.parse(direct.text) as { rawHeaders: string[] }).rawHeaders));
    } finally {
      await c2.close();
      await app2.close();
    }
  });

  test('a client cannot name itself to B through A: its X-Porthole-Peer-User is dropped at A', async () => {
    const r = await request(`${c.aUrl}/web/hdr`, { headers: { Authorization: `Bearer ${TOKEN}`, 'X-Porthole-Peer-User': 'root' } });
    const h = (JSON.parse(r.text) as { rawHeaders: string[] }).rawHeaders;
    assert.deepEqual(valuesOf(h, 'x-forwarded-user'), ['agent']);
  });

  test('a WebSocket admitted at A with the token: its handshake at the app names the user', async () => {
    const before = app.seen.length;
    const ws = await openThrough(`${c.aUrl.replace('http:', 'ws:')}/web/`, { Authorization: `Bearer ${TOKEN}` });
    ws.send('hi');
    assert.equal((await nextMessage(ws)).data.toString(), 'hi');
    ws.close(1000);
    await closed(ws);
    const hs = app.seen.slice(before).find((s) => s.method === 'UPGRADE');
    assert.ok(hs);
    assert.deepEqual(valuesOf(hs.rawHeaders, 'x-forwarded-user'), ['agent']);
    assert.deepEqual(valuesOf(hs.rawHeaders, 'authorization'), []);
  });
});

describe('auth: login decided at the edge', () => {
  let app: App;
  let c: Cluster;
  before(async () => {
    app = await startApp();
    c = await startCluster(app, { top: { auth: 'login', users: await users() } });
  });
  after(async () => {
    await c.close();
    await app.close();
  });

  test("a user logged in at A reaches the app behind B as herself; A's session cookie never reaches the app, the app's own cookies do", async () => {
    const login = await postLogin(c.aUrl, { user: 'alice', password: 'correct horse', next: '/web/' });
    assert.equal(login.status, 303);
    const cookie = cookieOf(login);
    assert.ok(cookie);
    const r = await request(`${c.aUrl}/web/hdr`, { headers: { Cookie: `${cookie}; theme=dark` } });
    assert.equal(r.status, 200);
    const h = (JSON.parse(r.text) as { rawHeaders: string[] }).rawHeaders;
    assert.deepEqual(valuesOf(h, 'x-forwarded-user'), ['alice']);
    assert.deepEqual(valuesOf(h, 'cookie'), ['theme=dark']);
    // B has auth: login too and no session of alice's: had it decided again, it would have refused.
  });

  test('logging out at A closes a WebSocket that went through A to B (1008)', async () => {
    const login = await postLogin(c.aUrl, { user: 'alice', password: 'correct horse', next: '/web/' });
    const cookie = cookieOf(login)!;
    const ws = await openThrough(`${c.aUrl.replace('http:', 'ws:')}/web/`, { Cookie: cookie, Origin: c.aUrl });
    ws.send('hi');
    assert.equal((await nextMessage(ws)).data.toString(), 'hi');
    const end = closed(ws);
    const out = await request(`${c.aUrl}/_porthole/auth/logout`, { method: 'POST', headers: { Cookie: cookie, Origin: c.aUrl, 'Content-Length': '0' } });
    assert.equal(out.status, 200);
    const got = await end;
    assert.equal(got.code, 1008);
    assert.match(got.reason, /logged out/);
  });
});

describe('forward_auth decided at the edge', () => {
  let app: App;
  let c: Cluster;
  let auth: Awaited<ReturnType<typeof httpUpstream>>;
  let asked = 0;
  before(async () => {
    auth = await httpUpstream((req: http.IncomingMessage, res: http.ServerResponse) => {
      asked++;
      if ((req.headers.cookie ?? '').includes('sso=good')) res.writeHead(200, { 'Remote-User': 'bob', 'Remote-Groups': 'ops' });
      else res.writeHead(403);
      res.end();
    });
    app = await startApp();
    c = await startCluster(app, { top: { auth: { forward_auth: { url: auth.url, response_headers: ['Remote-User', 'Remote-Groups'], timeout: '2s' } } } });
  });
  after(async () => {
    await c.close();
    await app.close();
    await auth.close();
  });

  test("the auth service's headers reach the app behind B as they reach an app of B's own, the client's spellings dropped, and the service is asked once", async () => {
    asked = 0;
    const headers = { Cookie: 'sso=good', 'Remote-User': 'mallory', Remote_Groups: 'admins' };
    const via = await request(`${c.aUrl}/web/hdr`, { headers });
    assert.equal(via.status, 200);
    assert.equal(asked, 1, 'only the edge asked');
    const direct = await request(`${c.bUrl}/web/hdr`, { headers });
    const viaId = identity((JSON.parse(via.text) as { rawHeaders: string[] }).rawHeaders);
    assert.deepEqual(viaId['remote-user'], ['bob']);
    assert.deepEqual(viaId['remote-groups'], ['ops']);
    assert.deepEqual(viaId, identity((JSON.parse(direct.text) as { rawHeaders: string[] }).rawHeaders));
    const h = (JSON.parse(via.text) as { rawHeaders: string[] }).rawHeaders;
    assert.deepEqual(valuesOf(h, 'remote_groups'), []);
  });
});
