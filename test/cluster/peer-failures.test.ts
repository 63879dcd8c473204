/**
 * When the hop between nodes fails: the app stopped on B (B's 503 / close
 * 1013 reaches the client through A), B not listening (A's 502 / close 1014
 * naming the node), nodes that disagree about where an app runs (refused,
 * never a loop), an error page that exists only on B.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { AppStoppedError } from '../../src/errors.js';
import { createGateway, type Gateway } from '../../src/gateway/gateway.js';
import { rawUpstream, request } from '../helpers/http.js';
import { collect, wsCloseOf } from '../helpers/net.js';
import { SECRET, startApp, startCluster, type App, type Cluster } from './peer-helpers.js';

describe('the app is stopped on B', () => {
  let app: App;
  let c: Cluster;
  let stopped = false;
  let nodeDown = false;
  before(async () => {
    app = await startApp();
    c = await startCluster(app, {
      bOptions: { appGate: () => (stopped ? Promise.resolve(new AppStoppedError('app web is stopped (on node b)', { app: 'web' })) : null) },
      // The edge's own gate is asked first: the cluster layer answers there for a node it knows is down.
      aOptions: { appGate: () => (nodeDown ? Promise.resolve(new AppStoppedError('app web: node b is down', { app: 'web' })) : null) },
    });
  });
  after(async () => {
    await c.close();
    await app.close();
  });

  test("HTTP through A gets B's 503 PH_ERR_APP_STOPPED, its message intact", async () => {
    stopped = true;
    try {
      const r = await request(`${c.aUrl}/web/hdr`, { headers: { Accept: 'application/json' } });
      assert.equal(r.status, 503);
      assert.equal(r.headers['x-porthole-error'], 'PH_ERR_APP_STOPPED');
      assert.match(r.text, /app web is stopped \(on node b\)/);
    } finally {
      stopped = false;
    }
  });

  test("a WebSocket through A gets B's close 1013 with its reason", async () => {
    stopped = true;
    try {
      const r = await wsCloseOf(`${c.aUrl.replace('http:', 'ws:')}/web/`);
      assert.equal(r.opened, true);
      assert.equal(r.code, 1013);
      assert.match(r.reason, /app web is stopped \(on node b\)/);
    } finally {
      stopped = false;
    }
  });

  test("A's own gate answers first: 503 from A, and B is not asked", async () => {
    nodeDown = true;
    const atB = collect('request', c.b.id);
    try {
      const r = await request(`${c.aUrl}/web/hdr`, { headers: { Accept: 'application/json' } });
      assert.equal(r.status, 503);
      assert.match(r.text, /node b is down/);
      const ws = await wsCloseOf(`${c.aUrl.replace('http:', 'ws:')}/web/`);
      assert.equal(ws.code, 1013);
      assert.match(ws.reason, /node b is down/);
      assert.equal(atB.events.length, 0);
    } finally {
      nodeDown = false;
      atB.stop();
    }
    assert.equal((await request(`${c.aUrl}/web/hdr`)).status, 200);
  });
});

describe('B is not listening', () => {
  let app: App;
  let c: Cluster;
  before(async () => {
    app = await startApp();
    c = await startCluster(app);
    // B goes away; A still routes the app to B's (now closed) peer listener.
    await c.b.drain(100);
  });
  after(async () => {
    await c.close();
    await app.close();
  });

  test('HTTP through A gets 502 PH_ERR_UPSTREAM_REFUSED naming the node and its address', async () => {
    const errors = collect('request', c.a.id);
    try {
      const r = await request(`${c.aUrl}/web/hdr`, { headers: { Accept: 'application/json' } });
      assert.equal(r.status, 502);
      assert.equal(r.headers['x-porthole-error'], 'PH_ERR_UPSTREAM_REFUSED');
      const port = new URL(c.peer.url).port;
      assert.match(r.text, new RegExp(`web: upstream node b \\(127\\.0\\.0\\.1:${port}\\) refused the connection`));
      assert.equal(errors.events.at(-1)?.code, 'PH_ERR_UPSTREAM_REFUSED');
    } finally {
      errors.stop();
    }
  });

  test('a WebSocket through A is closed 1014 with a reason naming the node', async () => {
    const r = await wsCloseOf(`${c.aUrl.replace('http:', 'ws:')}/web/`);
    assert.equal(r.opened, true);
    assert.equal(r.code, 1014);
    assert.match(r.reason, /node b \(127\.0\.0\.1:\d+\) refused the connection/);
  });
});

describe('an app that does not answer in its response_timeout', () => {
  test("the client gets B's 504, which names the app on B, not a timeout of the hop that races it", async () => {
    const app = await startApp();
    const c = await startCluster(app, { app: { response_timeout: '300ms' } });
    try {
      const r = await request(`${c.aUrl}/web/hang`, { headers: { Accept: 'application/json' } });
      assert.equal(r.status, 504);
      assert.equal(r.headers['x-porthole-error'], 'PH_ERR_UPSTREAM_TIMEOUT');
      assert.match(JSON.parse(r.text).error.message, new RegExp(`web: upstream 127\\.0\\.0\\.1:${app.port} sent no response in 0\\.3 s`));
    } finally {
      await c.close();
      await app.close();
    }
  });
});

describe('a node that accepts connections but never answers', () => {
  test('the edge gives up after start_timeout + connect_timeout + response_timeout + 1 s: 504 and close 1014 naming the node', async () => {
    const frozen = await rawUpstream(() => undefined);
    const aConfig = { apps: [{ name: 'web', cmd: 'true', start_timeout: '100ms', connect_timeout: '100ms', response_timeout: '200ms' }] };
    const a = createGateway(aConfig);
    a.reload(aConfig, { peers: new Map([['web', { node: 'b', url: `http://127.0.0.1:${frozen.port}`, secret: SECRET }]]) });
    assert.equal(a.routes[0].responseMs, 1400);
    const addr = await a.listen('127.0.0.1', 0);
    try {
      const started = Date.now();
      const r = await request(`${addr.url}/web/x`, { headers: { Accept: 'application/json' } });
      assert.equal(r.status, 504);
      assert.equal(r.headers['x-porthole-error'], 'PH_ERR_UPSTREAM_TIMEOUT');
      assert.match(JSON.parse(r.text).error.message, /web: upstream node b \(127\.0\.0\.1:\d+\) sent no response in 1\.4 s/);
      assert.ok(Date.now() - started >= 1300);
      const ws = await wsCloseOf(`${addr.url.replace('http:', 'ws:')}/web/`);
      assert.equal(ws.code, 1014);
      assert.match(ws.reason, /node b/);
    } finally {
      await a.drain(50);
      await frozen.close();
    }
  });

  test('response_timeout 0 (no limit) on the app stays no limit on the edge', () => {
    const cfg = { apps: [{ name: 'web', cmd: 'true', response_timeout: 0 }] };
    const a = createGateway(cfg);
    a.reload(cfg, { peers: new Map([['web', { node: 'b', url: 'http://127.0.0.1:1', secret: SECRET }]]) });
    assert.equal(a.routes[0].responseMs, 0);
    return a.drain(10);
  });
});

describe('nodes that disagree about where an app runs', () => {
  test('B routing the app on to another node refuses a peer request (503 / 1013) instead of forwarding it: no loop', async () => {
    const app = await startApp();
    const c = await startCluster(app);
    try {
      // B now believes the app runs on A (and A that it runs on B).
      const aPeer = await c.a.listenPeer({ host: '127.0.0.1', port: 0, secret: () => SECRET });
      c.b.reload(c.b.config, { peers: new Map([['web', { node: 'a', url: aPeer.url, secret: SECRET }]]) });
      const r = await request(`${c.aUrl}/web/hdr`, { headers: { Accept: 'application/json' } });
      assert.equal(r.status, 503);
      assert.equal(r.headers['x-porthole-error'], 'PH_ERR_APP_STOPPED');
      assert.match(r.text, /not on this node \(it routes it on to node a\)/);
      const ws = await wsCloseOf(`${c.aUrl.replace('http:', 'ws:')}/web/`);
      assert.equal(ws.code, 1013);
      assert.match(ws.reason, /not on this node/);
      assert.equal(app.seen.length, 0);
    } finally {
      await c.close();
      await app.close();
    }
  });
});

describe('routes to a peer', () => {
  let gw: Gateway;
  before(() => {
    gw = createGateway({ apps: [{ name: 'web', cmd: 'true' }] });
  });
  after(() => gw.drain(50));

  test('an error_page that exists only on the node running the app does not make the route invalid on the edge', () => {
    const cfg = { apps: [{ name: 'web', cmd: 'true', error_page: '/nonexistent/only-on-b.html' }] };
    gw.reload(cfg, { peers: new Map([['web', { node: 'b', url: 'http://127.0.0.1:1', secret: SECRET }]]) });
    assert.equal(gw.routes[0].peer?.node, 'b');
    assert.equal(gw.routes[0].errorPage, undefined);
  });

  test('a bad peer URL or secret is a ConfigError naming the app, and the routes in force stay', () => {
    const cfg = { apps: [{ name: 'web', cmd: 'true' }] };
    gw.reload(cfg, { peers: new Map([['web', { node: 'good', url: 'http://127.0.0.1:1', secret: SECRET }]]) });
    for (const [target, msg] of [
      [{ node: 'b', url: 'ftp://127.0.0.1:1', secret: SECRET }, /peers\.web: url .* must be http/],
      [{ node: 'b', url: 'http://127.0.0.1:1/path', secret: SECRET }, /peers\.web: url .* scheme:\/\/host:port only/],
      [{ node: 'b', url: 'http://127.0.0.1:1', secret: '' }, /peers\.web: secret must be/],
      [{ node: 'b', url: 'http://127.0.0.1:1', secret: 'a\r\nX-Evil: 1' }, /peers\.web: secret must be/],
    ] as const) {
      assert.throws(() => gw.reload(cfg, { peers: new Map([['web', target]]) }), (err: Error & { code?: string }) => err.code === 'PH_ERR_CONFIG' && msg.test(err.message));
      assert.throws(() => gw.validate(cfg, { peers: new Map([['web', target]]) }), (err: Error & { code?: string }) => err.code === 'PH_ERR_CONFIG');
      assert.equal(gw.routes[0].peer?.node, 'good');
    }
  });

  test('a peer for an app the config does not have is ignored', () => {
    gw.reload({ apps: [{ name: 'web', cmd: 'true' }] }, { peers: new Map([['gone', { node: 'b', url: 'http://127.0.0.1:1', secret: SECRET }]]) });
    assert.equal(gw.routes.length, 0);
  });

  test('a reload without the second argument keeps the peers in force; one with it replaces them', () => {
    const cfg = { apps: [{ name: 'web', cmd: 'true' }] };
    gw.reload(cfg, { peers: new Map([['web', { node: 'b', url: 'http://127.0.0.1:1', secret: SECRET }]]) });
    gw.reload(cfg);
    assert.equal(gw.routes[0]?.peer?.node, 'b');
    gw.reload(cfg, {});
    assert.equal(gw.routes.length, 0);
  });
});

describe('listenPeer', () => {
  test('a port in use rejects with EADDRINUSE and leaves no listener behind; a second call on a free port then works, a third throws', async () => {
    const blocker = http.createServer();
    await new Promise<void>((ok) => blocker.listen(0, '127.0.0.1', ok));
    const port = (blocker.address() as AddressInfo).port;
    const gw = createGateway({ apps: [] });
    try {
      await assert.rejects(gw.listenPeer({ host: '127.0.0.1', port, secret: () => SECRET }), (err: NodeJS.ErrnoException) => err.code === 'EADDRINUSE');
      const addr = await gw.listenPeer({ host: '127.0.0.1', port: 0, secret: () => SECRET });
      assert.match(addr.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      await assert.rejects(gw.listenPeer({ host: '127.0.0.1', port: 0, secret: () => SECRET }), /open already/);
      const r = await request(`${addr.url}/nothing`, { headers: { 'X-Porthole-Peer': SECRET, Accept: 'application/json' } });
      assert.equal(r.status, 404);
      assert.equal(r.headers['x-porthole-error'], 'PH_ERR_NOT_FOUND');
    } finally {
      await gw.drain(50);
      await new Promise((ok) => blocker.close(ok));
    }
  });
});
