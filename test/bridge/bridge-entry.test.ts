/**
 * BridgeEntry, the bridge's one public entry (src/gateway/bridge-entry.ts):
 * given a policy, it runs a standalone bridge's edge checks and bridges, in
 * any http.Server, with refusals worded by the policy it was given; a
 * policy that cannot work throws before anything listens.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { DrainingError } from '../../src/errors.js';
import { BridgeEntry } from '../../src/gateway/bridge-entry.js';
import { closeServer, collect, listen, waitFor } from '../helpers/net.js';
import { tcpPeer, type TcpPeer } from '../fixtures/bridge/tcp-peers.js';
import { tryBridge } from '../fixtures/bridge/try-bridge.js';



describe('BridgeEntry in a plain http.Server', { timeout: 30_000 }, () => {
  let target: TcpPeer;
  let server: http.Server;
  let port: number;
  let entry: BridgeEntry;

  before(async () => {
    target = await tcpPeer();
    entry = new BridgeEntry({
      app: 'desk',
      gateway: 'entry-test',
      target: { host: '127.0.0.1', port: target.port },
      allowedOrigins: ['https://ok.example'],
      originFlag: '--let-in',
      hostWording: { whose: "this desk's", fix: 'add it with --name' },
    });
    server = http.createServer((req, res) => {
      if (entry.refuseRequest(req, res)) return;
      res.end(`bridge to ${entry.label}\n`);
    });
    server.on('upgrade', (req, socket, head) => entry.handleUpgrade(req, socket, head));
    port = await listen(server);
  });
  after(async () => {
    entry?.destroyAll();
    if (server) await closeServer(server);
    await target?.close();
  });

  test('bridges an allowed origin to its target, and tracks the connection until it ends', async () => {
    assert.deepEqual(await tryBridge(port, { origin: 'https://ok.example' }), { opened: true, echoed: 'hello' });
    await waitFor(() => entry.connections.size === 0, 5000, 'the connection to end');
  });

  test('refuses another origin with close 1008, PH_ERR_ORIGIN_REFUSED and the flag it was given; the target sees no connection', async () => {
    const before = target.sockets.length;
    const upgrades = collect('upgrade', 'entry-test');
    try {
      const r = await tryBridge(port, { origin: 'https://evil.example' });
      assert.deepEqual(r, { opened: true, code: 1008, reason: 'PH_ERR_ORIGIN_REFUSED: desk: origin not allowed: pass --let-in https://evil.example' });
      assert.equal(target.sockets.length, before);
      const e = await waitFor(() => upgrades.events.find((x) => !x.accepted), 5000, 'the refusal event');
      assert.deepEqual([e.app, e.code, e.closeCode, e.status], ['desk', 'PH_ERR_ORIGIN_REFUSED', 1008, 101]);
    } finally {
      upgrades.stop();
    }
  });

  test('refuses a foreign Host with its own wording: close 1008 for an upgrade, 421 for a page', async () => {
    const r = await tryBridge(port, { host: 'evil.example' });
    assert.deepEqual(r, { opened: true, code: 1008, reason: "PH_ERR_HOST_REFUSED: Host evil.example is not this desk's: add it with --name" });
    const res = await new Promise<http.IncomingMessage>((ok, fail) => http.get({ host: '127.0.0.1', port, path: '/', headers: { Host: 'evil.example' } }, ok).on('error', fail));
    res.resume();
    assert.equal(res.statusCode, 421);
    assert.equal(res.headers['x-porthole-error'], 'PH_ERR_HOST_REFUSED');
    assert.equal(res.headers.connection, 'close');
  });

  test('drain closes open connections with 1001 and its reason, then refuses new upgrades with PH_ERR_DRAINING', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, ['binary'], { origin: 'https://ok.example' });
    await new Promise((ok, fail) => ws.once('open', ok).once('error', fail));
    await waitFor(() => entry.connections.size === 1, 5000, 'the connection to be tracked');
    const closedWith = new Promise<[number, string]>((ok) => ws.once('close', (code, reason) => ok([code, reason.toString()])));
    entry.drain('desk: going away');
    assert.deepEqual(await closedWith, [1001, 'desk: going away']);
    const later = await tryBridge(port, { origin: 'https://ok.example' });
    assert.equal(later.code, new DrainingError('x').closeCode);
    assert.equal(later.reason, 'desk: shutting down; reconnect in a moment');
  });
});

describe('BridgeEntry: a policy that cannot work throws before anything listens', () => {
  test('no target and no token file', () => {
    assert.throws(() => new BridgeEntry({ app: 'a', gateway: 'g' }), { name: 'TypeError', message: /needs a target or a token file/ });
  });
  test('a target and a token source at once', () => {
    const redis = { host: '127.0.0.1', port: 6379, db: 0, tls: false };
    assert.throws(() => new BridgeEntry({ app: 'a', gateway: 'g', target: { host: '127.0.0.1', port: 1 }, tokenRedis: redis }), { name: 'TypeError', message: /takes one of a target, a token file and a token Redis/ });
    assert.throws(() => new BridgeEntry({ app: 'a', gateway: 'g', tokens: '/etc/tokens', tokenRedis: redis }), { name: 'TypeError', message: /takes one of/ });
  });
  test('a server name that is not a host name', () => {
    assert.throws(() => new BridgeEntry({ app: 'a', gateway: 'g', target: { host: '127.0.0.1', port: 1 }, serverNames: ['http://x'] }), { name: 'TypeError', message: /^serverNames: / });
  });
  test('an origin that is not an origin', () => {
    assert.throws(() => new BridgeEntry({ app: 'a', gateway: 'g', target: { host: '127.0.0.1', port: 1 }, allowedOrigins: ['evil.example'] }), { name: 'TypeError', message: /^allowedOrigins: / });
  });
});
