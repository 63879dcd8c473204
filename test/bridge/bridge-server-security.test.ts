/**
 * The library's bridge (`startBridgeServer` from the package root) refuses
 * a cross-origin upgrade and a foreign Host by default, as `porthole
 * bridge` does, and takes `allowedOrigins` and `serverNames` as the CLI
 * takes its flags; wrong values fail loudly.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { networkInterfaces } from 'node:os';
import { HostPolicy } from '../../src/gateway/host-policy.js';
import { startBridgeServer, type BridgeServer } from '../../src/index.js';
import { collect, waitFor } from '../helpers/net.js';
import { tcpPeer, type TcpPeer } from '../fixtures/bridge/tcp-peers.js';
import { tryBridge } from '../fixtures/bridge/try-bridge.js';


/** A plain GET with this Host: the status and X-Porthole-Error. */
async function statusFor(port: number, host: string): Promise<[number, string | undefined]> {
  const res = await new Promise<http.IncomingMessage>((ok, fail) => http.get({ host: '127.0.0.1', port, path: '/', headers: { Host: host } }, ok).on('error', fail));
  res.resume();
  return [res.statusCode ?? 0, res.headers['x-porthole-error'] as string | undefined];
}

describe('startBridgeServer: Origin and Host', { timeout: 30_000 }, () => {
  let target: TcpPeer;
  const servers: BridgeServer[] = [];
  const start = async (opts: Parameters<typeof startBridgeServer>[0]) => {
    const s = await startBridgeServer(opts);
    servers.push(s);
    return s;
  };

  before(async () => {
    target = await tcpPeer();
  });
  after(async () => {
    for (const s of servers) await s.close();
    await target?.close();
  });

  test('by default a cross-origin upgrade and a rebound Host close 1008 and never reach the target; the refusals are upgrade events', async () => {
    const bridge = await start({ target: { host: '127.0.0.1', port: target.port }, name: 'desk' });
    const upgrades = collect('upgrade', bridge.id);
    try {
      const n = target.sockets.length;
      const cross = await tryBridge(bridge.port, { origin: 'https://evil.example' });
      assert.deepEqual(cross, { opened: true, code: 1008, reason: 'PH_ERR_ORIGIN_REFUSED: desk: cross-origin WebSocket refused: pass --allowed-origin https://evil.example' });
      const rebound = await tryBridge(bridge.port, { host: `evil.example:${bridge.port}`, origin: `http://evil.example:${bridge.port}` });
      assert.equal(rebound.code, 1008);
      assert.match(rebound.reason ?? '', /^PH_ERR_HOST_REFUSED: .*--server-name/);
      assert.deepEqual(await tryBridge(bridge.port, { origin: `http://127.0.0.1:${bridge.port}` }), { opened: true, echoed: 'hello' });
      assert.equal(target.sockets.length, n + 1, 'only the same-origin upgrade reached the target');
      await waitFor(() => upgrades.events.length >= 2);
      assert.deepEqual(
        upgrades.events.filter((e) => !e.accepted).map((e) => [e.app, e.code, e.closeCode, e.status]),
        [
          ['desk', 'PH_ERR_ORIGIN_REFUSED', 1008, 101],
          ['desk', 'PH_ERR_HOST_REFUSED', 1008, 101],
        ],
      );
    } finally {
      upgrades.stop();
    }
  });

  test('allowedOrigins and serverNames open what they name', async () => {
    const bridge = await start({ target: { host: '127.0.0.1', port: target.port }, allowedOrigins: ['http://novnc.example'], serverNames: ['desk.tunnel.test'] });
    assert.deepEqual(await tryBridge(bridge.port, { origin: 'http://novnc.example' }), { opened: true, echoed: 'hello' });
    assert.deepEqual(await tryBridge(bridge.port, { host: 'desk.tunnel.test', origin: 'http://novnc.example' }), { opened: true, echoed: 'hello' });
    assert.equal((await tryBridge(bridge.port, { origin: 'http://other.example' })).code, 1008);
    assert.deepEqual(await statusFor(bridge.port, 'evil.example'), [421, 'PH_ERR_HOST_REFUSED']);
    assert.deepEqual(await statusFor(bridge.port, 'desk.tunnel.test'), [426, undefined], 'a named Host gets the bridge\'s own answer');
  });

  test('on a non-loopback address any Host passes without serverNames, and only loopback names and the listed ones with them', () => {
    // Tests listen only on loopback: the bridge's policy (HostPolicy.forNames) is asked with the local address a LAN listener would see.
    const lan =
      Object.values(networkInterfaces())
        .flatMap((l) => l ?? [])
        .find((a) => !a.internal && a.family === 'IPv4')?.address ?? '192.0.2.2';
    const open = HostPolicy.forNames([]);
    const listed = HostPolicy.forNames(['desk.example.com', '*.tunnel.test']);
    assert.equal(open.check('whatever.example', lan), null);
    assert.equal(open.check('whatever.example', '127.0.0.1')?.code, 'PH_ERR_HOST_REFUSED');
    assert.equal(listed.check('whatever.example', lan)?.code, 'PH_ERR_HOST_REFUSED');
    for (const ok of ['desk.example.com:6080', 'a.tunnel.test', 'localhost', '127.0.0.1:6080']) assert.equal(listed.check(ok, lan), null, ok);
    assert.equal(listed.check('x@desk.example.com', lan)?.code, 'PH_ERR_BAD_HOST');
  });

  test('an allowedOrigins entry that is not an origin, or a serverNames entry that is not a host name, is a TypeError', async () => {
    const to = { host: '127.0.0.1', port: target.port };
    await assert.rejects(startBridgeServer({ target: to, allowedOrigins: ['evil.example'] }), { name: 'TypeError', message: /allowedOrigins: "evil\.example" is not an origin/ });
    await assert.rejects(startBridgeServer({ target: to, serverNames: ['a b'] }), { name: 'TypeError', message: /serverNames: "a b" is not a host name/ });
  });
});
