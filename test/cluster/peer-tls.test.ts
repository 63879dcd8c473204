/**
 * The peer listener over TLS: node A verifies B's certificate against the
 * CA in its PeerTarget. With the right CA, HTTP and WebSockets go through;
 * with a wrong one (or none, for a private CA) A answers 502 / close 1014
 * PH_ERR_UPSTREAM_TLS naming the node, and nothing reaches B's app.
 */
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import WebSocket from 'ws';
import { after, before, describe, test } from 'node:test';
import { request } from '../helpers/http.js';
import { closed, nextMessage, wsCloseOf } from '../helpers/net.js';
import { selfSigned, tempDir } from '../tls/tls-helpers.js';
import { openThrough, startApp, startCluster, valuesOf, type App, type Cluster } from './peer-helpers.js';

describe('a TLS peer listener', () => {
  const dir = tempDir('porthole-peer-tls-');
  // B's certificate (its own CA: self-signed, for 127.0.0.1), and an unrelated one.
  const b = selfSigned(dir.dir, 'node-b', ['127.0.0.1']);
  const other = selfSigned(dir.dir, 'other', ['127.0.0.1']);
  let app: App;
  let c: Cluster;
  before(async () => {
    app = await startApp();
    // Files for the listener (PEM text works as well: see the CA below).
    c = await startCluster(app, { peer: { tls: { cert: b.certFile, key: b.keyFile } }, target: { ca: b.cert } });
  });
  after(async () => {
    await c.close();
    await app.close();
    dir.remove();
  });

  test('speaks https', () => {
    assert.match(c.peer.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  });

  test('with the CA that signed it: HTTP and a WebSocket go through A to the app behind B', async () => {
    const r = await request(`${c.aUrl}/web/hdr`);
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.text).url, '/hdr');
    const ws = await openThrough(`${c.aUrl.replace('http:', 'ws:')}/web/`);
    ws.send('over tls');
    assert.equal((await nextMessage(ws)).data.toString(), 'over tls');
    ws.send('bye');
    assert.deepEqual(await closed(ws), { code: 4001, reason: 'bye' });
  });

  for (const [what, ca] of [
    ['a wrong CA', other.cert],
    ['no CA (the system CAs do not know it)', undefined],
  ] as const) {
    test(`with ${what}: 502 and close 1014 PH_ERR_UPSTREAM_TLS naming the node; the app sees nothing`, async () => {
      const before = app.seen.length;
      c.a.reload(c.aConfig, { peers: new Map([['web', { ...c.target, ca }]]) });
      try {
        const r = await request(`${c.aUrl}/web/hdr`, { headers: { Accept: 'application/json' } });
        assert.equal(r.status, 502);
        assert.equal(r.headers['x-porthole-error'], 'PH_ERR_UPSTREAM_TLS');
        assert.match(JSON.parse(r.text).error.message, /web: TLS to node b \(127\.0\.0\.1:\d+\) failed \((DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)\)/);
        const ws = await wsCloseOf(`${c.aUrl.replace('http:', 'ws:')}/web/`);
        assert.equal(ws.code, 1014);
        assert.match(ws.reason, /TLS to node b/);
        assert.equal(app.seen.length, before);
      } finally {
        c.a.reload(c.aConfig, { peers: new Map([['web', c.target]]) });
      }
    });
  }

  test('A routing to it as http:// fails with 502 naming the node (the listener takes TLS only)', async () => {
    c.a.reload(c.aConfig, { peers: new Map([['web', { ...c.target, url: c.peer.url.replace('https:', 'http:') }]]) });
    try {
      const r = await request(`${c.aUrl}/web/hdr`, { headers: { Accept: 'application/json' } });
      assert.equal(r.status, 502);
      assert.match(JSON.parse(r.text).error.message, /node b/);
    } finally {
      c.a.reload(c.aConfig, { peers: new Map([['web', c.target]]) });
    }
  });
});

// B's peer listener is cleartext here: what the app and B's Origin check see as https can only come from A.
describe('A serving the client over TLS and HTTP/2, B behind a cleartext peer listener', () => {
  const dir = tempDir('porthole-peer-h2-');
  const aCert = selfSigned(dir.dir, 'node-a', ['localhost', '127.0.0.1']);
  let app: App;
  let c: Cluster;
  before(async () => {
    app = await startApp();
    c = await startCluster(app, { aTop: { tls: { cert: aCert.certFile, key: aCert.keyFile } } });
  });
  after(async () => {
    await c.close();
    await app.close();
    dir.remove();
  });

  test('an HTTP/2 request to A reaches the app behind B with X-Forwarded-Proto https and the client first', async () => {
    const session = http2.connect(c.aUrl, { ca: aCert.cert });
    try {
      const body = await new Promise<string>((ok, fail) => {
        const s = session.request({ ':path': '/web/hdr', ':method': 'GET' });
        let text = '';
        s.on('data', (d: Buffer) => (text += d.toString()));
        s.on('end', () => ok(text));
        s.on('error', fail);
      });
      const h = (JSON.parse(body) as { rawHeaders: string[] }).rawHeaders;
      assert.deepEqual(valuesOf(h, 'x-forwarded-proto'), ['https']);
      assert.deepEqual(valuesOf(h, 'x-forwarded-for'), ['127.0.0.1, 127.0.0.1']);
    } finally {
      session.close();
    }
  });

  test('a wss:// page of A opening a WebSocket with its own https:// Origin passes the same-origin check at B too', async () => {
    const origin = `https://127.0.0.1:${c.aPort}`;
    const ws = new WebSocket(`${c.aUrl.replace('https:', 'wss:')}/web/`, { ca: aCert.cert, headers: { Origin: origin } });
    await new Promise((ok, fail) => {
      ws.once('open', ok);
      ws.once('error', fail);
    });
    ws.send('same origin over tls');
    assert.equal((await nextMessage(ws)).data.toString(), 'same origin over tls');
    ws.close(1000);
    await closed(ws);
  });

  test('the http:// Origin of the same host is cross-origin for a wss:// socket: refused (1008)', async () => {
    const r = await wsCloseOf(`${c.aUrl.replace('https:', 'wss:')}/web/`, undefined, { ca: aCert.cert, headers: { Origin: `http://127.0.0.1:${c.aPort}` } });
    assert.equal(r.code, 1008);
  });
});
