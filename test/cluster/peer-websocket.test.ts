/**
 * WebSockets through the hop between nodes: client → gateway A → B's peer
 * listener → the app. Spliced through both hops: messages echo, close codes
 * and reasons arrive intact either way, the edge refuses a cross-site Origin,
 * and open tunnels survive reloads of A's routes.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { closed, collect, nextMessage, waitFor, wsCloseOf, wsUpstream } from '../helpers/net.js';
import { createGateway } from '../../src/gateway/gateway.js';
import { request } from '../helpers/http.js';
import { openThrough, SECRET, startApp, startCluster, valuesOf, type App, type Cluster } from './peer-helpers.js';

describe('WebSockets through A to an app on B', () => {
  let app: App;
  let c: Cluster;
  let wsBase: string;
  before(async () => {
    app = await startApp();
    c = await startCluster(app, { app: { ws_path: '/socket' } });
    wsBase = c.aUrl.replace('http:', 'ws:');
  });
  after(async () => {
    await c.close();
    await app.close();
  });

  test('text and a 4 MiB binary message echo through A and B', async () => {
    const ws = await openThrough(`${wsBase}/web/any`);
    ws.send('hello');
    const m1 = await nextMessage(ws);
    assert.equal(m1.data.toString(), 'hello');
    assert.equal(m1.isBinary, false);
    const big = randomBytes(4 * 1024 * 1024);
    ws.send(big);
    const m2 = await nextMessage(ws);
    assert.equal(m2.isBinary, true);
    assert.ok(Buffer.from(m2.data).equals(big));
    ws.close(1000);
    await closed(ws);
  });

  test('the handshake reaches the app as B would send it: ws_path applied once, the client first in X-Forwarded-For, Origin and Host kept', async () => {
    const before = app.seen.length;
    const origin = `http://127.0.0.1:${c.aPort}`;
    const ws = await openThrough(`${wsBase}/web/any?x=1`, { Origin: origin });
    ws.close(1000);
    await closed(ws);
    const hs = app.seen.slice(before).find((s) => s.method === 'UPGRADE');
    assert.ok(hs);
    assert.equal(hs.url, '/socket?x=1');
    assert.deepEqual(valuesOf(hs.rawHeaders, 'origin'), [origin]);
    assert.deepEqual(valuesOf(hs.rawHeaders, 'host'), [`127.0.0.1:${c.aPort}`]);
    assert.deepEqual(valuesOf(hs.rawHeaders, 'x-forwarded-for'), ['127.0.0.1, 127.0.0.1']);
    assert.deepEqual(valuesOf(hs.rawHeaders, 'x-forwarded-prefix'), ['/web']);
    assert.deepEqual(valuesOf(hs.rawHeaders, 'x-porthole-peer'), []);
  });

  test('a close code and reason sent by the app (4001 "bye") reach the client intact', async () => {
    const ws = await openThrough(`${wsBase}/web/`);
    ws.send('bye');
    assert.deepEqual(await closed(ws), { code: 4001, reason: 'bye' });
  });

  test('a close code and reason sent by the client (4321 "client leaves") reach the app intact', async () => {
    const ws = await openThrough(`${wsBase}/web/`);
    const n = app.closes.length;
    ws.close(4321, 'client leaves');
    await closed(ws);
    const got = await waitFor(() => app.closes[n], 5000, 'the close at the app');
    assert.deepEqual(got, { code: 4321, reason: 'client leaves' });
  });

  test('a cross-site Origin is refused at the edge (1008) and the app sees no handshake', async () => {
    const before = app.seen.length;
    const atA = collect('upgrade', c.a.id);
    const atB = collect('upgrade', c.b.id);
    try {
      const r = await wsCloseOf(`${wsBase}/web/`, undefined, { headers: { Origin: 'https://evil.example' } });
      assert.equal(r.code, 1008);
      assert.match(r.reason, /cross-origin/);
      assert.equal(app.seen.length, before);
      assert.equal(atA.events[0]?.code, 'PH_ERR_ORIGIN_REFUSED');
      assert.equal(atB.events.length, 0, 'B was not even asked');
    } finally {
      atA.stop();
      atB.stop();
    }
  });

  test('the same Origin behind a TLS proxy of A (trust_forwarded) is judged by B against the client-facing scheme and host', async () => {
    // A trusts its proxy; the page is https://public.example; B sees A's X-Forwarded-Proto/-Host.
    const app2 = await startApp();
    const c2 = await startCluster(app2, { aTop: { trust_forwarded: true } });
    try {
      const ws = await openThrough(`${c2.aUrl.replace('http:', 'ws:')}/web/`, { Origin: 'https://public.example', 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'public.example' });
      ws.send('same origin');
      assert.equal((await nextMessage(ws)).data.toString(), 'same origin');
      ws.close(1000);
      await closed(ws);
    } finally {
      await c2.close();
      await app2.close();
    }
  });

  test('open tunnels through A survive 20 reloads of its routes (and of B\'s)', async () => {
    const sockets: WebSocket[] = [];
    for (let i = 0; i < 3; i++) sockets.push(await openThrough(`${wsBase}/web/`));
    for (let i = 0; i < 20; i++) {
      // Another app comes and goes on each reload; the peer route is rebuilt every time.
      const apps = [...(c.aConfig.apps as object[]), ...(i % 2 ? [{ name: `other${i}`, port: 1 }] : [])];
      c.a.reload({ ...c.aConfig, apps }, { peers: new Map([['web', { ...c.target }]]) });
      c.b.reload({ apps: [{ name: 'web', ws_path: '/socket', port: app.port }, ...(i % 2 ? [{ name: `other${i}`, port: 1 }] : [])] });
      for (const [k, ws] of sockets.entries()) {
        ws.send(`r${i}-${k}`);
        assert.equal((await nextMessage(ws)).data.toString(), `r${i}-${k}`);
      }
    }
    // And a new tunnel after the last reload goes through too.
    const fresh = await openThrough(`${wsBase}/web/`);
    fresh.send('fresh');
    assert.equal((await nextMessage(fresh)).data.toString(), 'fresh');
    for (const ws of [...sockets, fresh]) {
      ws.close(1000);
      await closed(ws);
    }
  });

  test('draining B closes a tunnel through A with 1001, and the client hears it', async () => {
    const app3 = await startApp();
    const c3 = await startCluster(app3);
    try {
      const ws = await openThrough(`${c3.aUrl.replace('http:', 'ws:')}/web/`);
      const end = closed(ws);
      await c3.b.drain(500);
      const got = await end;
      assert.equal(got.code, 1001);
    } finally {
      await c3.close();
      await app3.close();
    }
  });
});

describe('a bridge app (WebSocket to TCP) on B, through A', () => {
  test('binary messages reach the TCP service on B and come back; plain HTTP gets B\'s 426', async () => {
    const echo = net.createServer((s) => s.pipe(s));
    await new Promise<void>((ok) => echo.listen(0, '127.0.0.1', ok));
    const tcp = `127.0.0.1:${(echo.address() as AddressInfo).port}`;
    const b = createGateway({ apps: [{ name: 'vnc', bridge: tcp }] });
    const peer = await b.listenPeer({ host: '127.0.0.1', port: 0, secret: () => SECRET });
    // On A the app's entry is the cluster's: A never dials the bridge target itself.
    const aConfig = { apps: [{ name: 'vnc', bridge: '10.213.99.99:5900' }] };
    const a = createGateway(aConfig);
    a.reload(aConfig, { peers: new Map([['vnc', { node: 'b', url: peer.url, secret: SECRET }]]) });
    const addr = await a.listen('127.0.0.1', 0);
    try {
      const ws = await openThrough(`${addr.url.replace('http:', 'ws:')}/vnc/`);
      ws.send(Buffer.from('RFB 003.008\n'));
      const m = await nextMessage(ws);
      assert.equal(m.isBinary, true);
      assert.equal(Buffer.from(m.data).toString(), 'RFB 003.008\n');
      ws.close(1000);
      await closed(ws);
      const r = await request(`${addr.url}/vnc/`);
      assert.equal(r.status, 426);
    } finally {
      await a.drain(100);
      await b.drain(100);
      await new Promise((ok) => echo.close(ok));
    }
  });
});

describe('WebSocket handshake options through both hops', () => {
  test('a subprotocol and permessage-deflate negotiated with the app behind B: compressed messages echo', async () => {
    const up = await wsUpstream({ perMessageDeflate: true, handleProtocols: (protocols) => (protocols.has('chat.v2') ? 'chat.v2' : false) });
    const c = await startCluster({ port: up.port } as App);
    try {
      const ws = new WebSocket(`${c.aUrl.replace('http:', 'ws:')}/web/`, ['chat.v1', 'chat.v2'], { perMessageDeflate: true });
      await new Promise((ok, fail) => {
        ws.once('open', ok);
        ws.once('error', fail);
      });
      assert.equal(ws.protocol, 'chat.v2');
      assert.match(ws.extensions, /permessage-deflate/);
      const text = 'compressible '.repeat(10_000);
      ws.send(text);
      assert.equal((await nextMessage(ws)).data.toString(), text);
      ws.close(1000);
      await closed(ws);
    } finally {
      await c.close();
      await up.close();
    }
  });

  test('100 WebSockets open at once through A and B each get their own echo', async () => {
    const app = await startApp();
    const c = await startCluster(app);
    try {
      const sockets = await Promise.all(Array.from({ length: 100 }, () => openThrough(`${c.aUrl.replace('http:', 'ws:')}/web/`)));
      const answers = await Promise.all(
        sockets.map((ws, i) => {
          const next = nextMessage(ws);
          ws.send(`n${i}`);
          return next.then((m) => m.data.toString());
        }),
      );
      assert.deepEqual(answers, sockets.map((_, i) => `n${i}`));
      await Promise.all(sockets.map((ws) => (ws.close(1000), closed(ws))));
      // Both nodes let go of every tunnel once the clients closed.
      await waitFor(() => c.a.tunnels.size + c.b.tunnels.size === 0, 5000, 'the tunnels of A and B to end');
    } finally {
      await c.close();
      await app.close();
    }
  });
});
