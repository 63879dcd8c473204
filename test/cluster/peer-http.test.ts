/**
 * HTTP through the hop between nodes: client → gateway A → B's peer listener
 * → the app on B's loopback. The app sees what it would see had the client
 * come to B: the client first in X-Forwarded-For, the prefix stripped once,
 * Location and Set-Cookie put back under the prefix once, bodies streamed.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { request } from '../helpers/http.js';
import { SECRET, startApp, startCluster, valuesOf, type App, type Cluster } from './peer-helpers.js';

describe('HTTP through A to an app on B', () => {
  let app: App;
  let c: Cluster;
  before(async () => {
    app = await startApp();
    c = await startCluster(app, { app: { set_headers: { 'X-Set-By-Porthole': 'once' } } });
  });
  after(async () => {
    await c.close();
    await app.close();
  });

  test('the app gets the prefix stripped once, the client first in X-Forwarded-For, the client Host, and X-Forwarded-Prefix once', async () => {
    const r = await request(`${c.aUrl}/web/hdr?q=1`, { headers: { Host: `localhost:${c.aPort}` } });
    assert.equal(r.status, 200);
    const got = JSON.parse(r.text) as { url: string; rawHeaders: string[] };
    assert.equal(got.url, '/hdr?q=1');
    const h = got.rawHeaders;
    assert.deepEqual(valuesOf(h, 'host'), [`localhost:${c.aPort}`]);
    // The client (127.0.0.1 as A saw it) first, then node A as B saw it.
    assert.deepEqual(valuesOf(h, 'x-forwarded-for'), ['127.0.0.1, 127.0.0.1']);
    assert.deepEqual(valuesOf(h, 'x-forwarded-prefix'), ['/web']);
    assert.deepEqual(valuesOf(h, 'x-forwarded-proto'), ['http']);
    assert.deepEqual(valuesOf(h, 'x-forwarded-host'), [`localhost:${c.aPort}`]);
    // set_headers is applied by the node that runs the app, and only there.
    assert.deepEqual(valuesOf(h, 'x-set-by-porthole'), ['once']);
    // The cluster secret never reaches the app.
    assert.equal(h.some((n, i) => i % 2 === 0 && n.toLowerCase().startsWith('x-porthole-peer')), false);
  });

  test('Location and Set-Cookie Path are put back under the prefix exactly once', async () => {
    const r = await request(`${c.aUrl}/web/redir`);
    assert.equal(r.status, 302);
    assert.equal(r.headers.location, '/web/landed');
    assert.deepEqual(r.headers['set-cookie'], ['s=1; Path=/web/']);
  });

  test('A redirects /web to /web/ itself (nothing reaches B)', async () => {
    const before = app.seen.length;
    const r = await request(`${c.aUrl}/web`);
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, '/web/');
    assert.equal(app.seen.length, before);
  });

  test('a 64 MiB upload streams through both hops and arrives whole', async () => {
    const total = 64 * 1024 * 1024;
    const block = randomBytes(1024 * 1024);
    const hash = createHash('sha256');
    const reply = await new Promise<{ status: number; body: string }>((ok, fail) => {
      const req = http.request(`${c.aUrl}/web/upload`, { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, agent: false });
      req.on('error', fail);
      req.on('response', (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => ok({ status: res.statusCode ?? 0, body }));
      });
      let sent = 0;
      const more = () => {
        while (sent < total) {
          sent += block.length;
          hash.update(block);
          if (!req.write(block)) return void req.once('drain', more);
        }
        req.end();
      };
      more();
    });
    assert.equal(reply.status, 200);
    assert.deepEqual(JSON.parse(reply.body), { bytes: total, sha256: hash.digest('hex') });
  });

  test('a 64 MiB download arrives whole through both hops', async () => {
    const total = 64 * 1024 * 1024;
    const hash = createHash('sha256');
    const bytes = await new Promise<number>((ok, fail) => {
      http
        .get(`${c.aUrl}/web/download?n=${total}`, { agent: false }, (res) => {
          let n = 0;
          res.on('data', (d: Buffer) => {
            n += d.length;
            hash.update(d);
          });
          res.on('end', () => ok(n));
          res.on('error', fail);
        })
        .on('error', fail);
    });
    assert.equal(bytes, total);
    assert.equal(hash.digest('hex'), createHash('sha256').update(Buffer.alloc(total, 7)).digest('hex'));
  });

  test('a response body is streamed through both hops: its first part arrives while the app still holds the rest', async () => {
    const text = await new Promise<string>((ok, fail) => {
      http
        .get(`${c.aUrl}/web/stream`, { agent: false }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => {
            body += d.toString();
            // Only a client that got the first part lets the app finish: a buffering hop would hang here.
            if (body === 'first\n') app.release();
          });
          res.on('end', () => ok(body));
          res.on('error', fail);
        })
        .on('error', fail);
    });
    assert.equal(text, 'first\nlast\n');
  });

  test('X-Porthole-Peer and X-Porthole-Peer-User sent by a client to A never reach the app, in any spelling', async () => {
    const r = await request(`${c.aUrl}/web/hdr`, {
      // A raw list: Node adds no Host of its own to one.
      headers: ['Host', `127.0.0.1:${c.aPort}`, 'X-Porthole-Peer', 'forged', 'X-Porthole-Peer-User', 'root', 'X_Porthole_Peer_User', 'root', 'x-porthole-peer-anything', 'x'],
    });
    assert.equal(r.status, 200);
    const h = (JSON.parse(r.text) as { rawHeaders: string[] }).rawHeaders;
    for (let i = 0; i < h.length; i += 2) assert.equal(/^x[-_]porthole[-_]peer/i.test(h[i]), false, `${h[i]} reached the app`);
    assert.deepEqual(valuesOf(h, 'x-forwarded-user'), []);
    assert.deepEqual(valuesOf(h, 'remote-user'), []);
  });

  test("X-Porthole-Peer with the right secret, sent to B's public listener, is stripped and changes nothing", async () => {
    const r = await request(`${c.bUrl}/web/hdr`, { headers: { 'X-Porthole-Peer': SECRET, 'X-Porthole-Peer-User': 'root', 'X-Forwarded-For': '6.6.6.6' } });
    assert.equal(r.status, 200);
    const h = (JSON.parse(r.text) as { rawHeaders: string[] }).rawHeaders;
    assert.deepEqual(valuesOf(h, 'x-porthole-peer'), []);
    assert.deepEqual(valuesOf(h, 'x-porthole-peer-user'), []);
    assert.deepEqual(valuesOf(h, 'x-forwarded-user'), []);
    // Not trusted as a peer: the client's X-Forwarded-For is dropped, not believed.
    assert.deepEqual(valuesOf(h, 'x-forwarded-for'), ['127.0.0.1']);
  });
});

describe('apps routed by host name, or without prefix stripping, through A', () => {
  let app: App;
  let c: Cluster;
  before(async () => {
    app = await startApp();
    c = await startCluster(app, { app: { hosts: ['web.test'] } });
  });
  after(async () => {
    await c.close();
    await app.close();
  });

  test('at its own host name the app gets the path whole, no X-Forwarded-Prefix, and the client Host', async () => {
    const r = await request(`${c.aUrl}/deep/hdr`, { headers: { Host: `web.test:${c.aPort}` } });
    assert.equal(r.status, 200);
    const got = JSON.parse(r.text) as { url: string; rawHeaders: string[] };
    assert.equal(got.url, '/deep/hdr');
    assert.deepEqual(valuesOf(got.rawHeaders, 'host'), [`web.test:${c.aPort}`]);
    assert.deepEqual(valuesOf(got.rawHeaders, 'x-forwarded-prefix'), []);
    assert.deepEqual(valuesOf(got.rawHeaders, 'x-forwarded-host'), [`web.test:${c.aPort}`]);
  });

  test("at its own host name, /_porthole/ paths are the app's on B too (not the peer listener's own)", async () => {
    const r = await request(`${c.aUrl}/_porthole/x`, { headers: { Host: `web.test:${c.aPort}` } });
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.text).url, '/_porthole/x');
  });

  test('a Host that is not one of A\'s names is refused at A (421) and B is not asked', async () => {
    const before = app.seen.length;
    const r = await request(`${c.aUrl}/web/hdr`, { headers: { Host: 'rebind.evil.example', Accept: 'application/json' } });
    assert.equal(r.status, 421);
    assert.equal(app.seen.length, before);
  });

  test('a client X-Forwarded-For sent to A (which does not trust it) never reaches the app', async () => {
    const r = await request(`${c.aUrl}/web/hdr`, { headers: { 'X-Forwarded-For': '6.6.6.6', Forwarded: 'for=6.6.6.6' } });
    const h = (JSON.parse(r.text) as { rawHeaders: string[] }).rawHeaders;
    assert.deepEqual(valuesOf(h, 'x-forwarded-for'), ['127.0.0.1, 127.0.0.1']);
    assert.equal(valuesOf(h, 'forwarded').join(',').includes('6.6.6.6'), false);
  });

  test('strip_prefix: false: the app gets the prefix in the path, once', async () => {
    const app2 = await startApp();
    const c2 = await startCluster(app2, { app: { strip_prefix: false } });
    try {
      const r = await request(`${c2.aUrl}/web/hdr`);
      assert.equal(JSON.parse(r.text).url, '/web/hdr');
    } finally {
      await c2.close();
      await app2.close();
    }
  });
});

describe('connections from A to B', () => {
  test('256 event streams held open to one app on B do not hold up requests to another app on B', async () => {
    const app = await startApp();
    const other = await startApp();
    const c = await startCluster(app);
    // A second app on B, routed from A to the same peer listener.
    c.b.reload({ apps: [{ name: 'web', port: app.port }, { name: 'api', port: other.port }] });
    const aConfig = { apps: [{ name: 'web', cmd: 'true' }, { name: 'api', cmd: 'true' }] };
    c.a.reload(aConfig, { peers: new Map([['web', c.target], ['api', c.target]]) });
    const held: http.ClientRequest[] = [];
    try {
      const firstParts: Promise<void>[] = [];
      for (let i = 0; i < 256; i++) {
        firstParts.push(
          new Promise((ok, fail) => {
            const req = http.get(`${c.aUrl}/web/stream`, { agent: false }, (res) => res.once('data', () => ok()));
            req.on('error', fail);
            held.push(req);
          }),
        );
      }
      await Promise.all(firstParts);
      const r = await request(`${c.aUrl}/api/hdr`, { timeoutMs: 5000 });
      assert.equal(r.status, 200);
    } finally {
      app.release();
      for (const req of held) req.destroy();
      await c.close();
      await app.close();
      await other.close();
    }
  });
});
