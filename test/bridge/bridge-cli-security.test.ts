/**
 * `porthole bridge` refuses what the gateway refuses (issue 8, items 10 and
 * 11, for the standalone bridge): a page of another site opening the bridge
 * (cross-site WebSocket hijacking of a password-less VNC server), and a
 * page on a rebound name (DNS rebinding: its Host and Origin agree, so only
 * Host gives it away). Real `porthole bridge` children in front of a TCP
 * echo server that counts its connections: a refused upgrade must never
 * reach it.
 */
import assert from 'node:assert/strict';
import { hostname, networkInterfaces } from 'node:os';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { formatReport } from '../../src/toolkit/doctor-report.js';
import { runDoctor } from '../../src/toolkit/doctor.js';
import { runCli } from '../helpers/cli.js';
import { rawRequest, waitFor } from '../helpers/net.js';
import { logEvents, startBridgeCli, type BridgeCli } from '../fixtures/bridge/bridge-cli.js';
import { tcpPeer, type TcpPeer } from '../fixtures/bridge/tcp-peers.js';
import { tryBridge as tryBridgeAt } from '../fixtures/bridge/try-bridge.js';

const WEB = fileURLToPath(new URL('../fixtures/bridge/web', import.meta.url));


/** The bridge as noVNC dials it: at /websockify unless the test says otherwise. */
const tryBridge = (port: number, opts: { host?: string; origin?: string; path?: string } = {}) => tryBridgeAt(port, { path: '/websockify', ...opts });

/** A plain GET with a given Host (raw: fetch() will not send a Host of our choosing). */
async function getWithHost(port: number, host: string, path = '/', extra = ''): Promise<{ status: number; error: string | undefined; body: string }> {
  const res = await rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}Connection: close\r\n\r\n`);
  const m = /^HTTP\/1\.1 (\d{3}) /.exec(res);
  assert.ok(m, `an HTTP response, got ${JSON.stringify(res.slice(0, 200))}`);
  return { status: Number(m[1]), error: /\r\nX-Porthole-Error: (\S+)\r\n/i.exec(res)?.[1], body: res.slice(res.indexOf('\r\n\r\n') + 4) };
}

/** A raw upgrade with a given Host: the whole answer as text. */
function upgradeWithHost(port: number, host: string): Promise<string> {
  return rawRequest(
    port,
    `GET /websockify HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1\r\n\r\n',
    1000,
  );
}

describe('porthole bridge: Origin and Host', { timeout: 60_000 }, () => {
  let target: TcpPeer;
  let cli: BridgeCli;
  let opened: BridgeCli;
  let named: BridgeCli;
  let any: BridgeCli;

  before(async () => {
    target = await tcpPeer();
    const to = `127.0.0.1:${target.port}`;
    [cli, opened, named, any] = await Promise.all([
      startBridgeCli(['127.0.0.1:0', to, '--web', WEB]),
      startBridgeCli(['127.0.0.1:0', to, '--allowed-origin', 'https://novnc.example:8443']),
      startBridgeCli(['127.0.0.1:0', to, '--web', WEB, '--server-name', 'vnc.tunnel.test', '--server-name', '*.wild.test']),
      startBridgeCli(['127.0.0.1:0', to, '--allowed-origin', '*']),
    ]);
  });
  after(async () => {
    for (const c of [cli, opened, named, any]) if (c) assert.equal(await c.stop(), 0);
    await target?.close();
  });

  /** The target's connection count must not move while `fn` runs (a refused upgrade never reaches TCP). */
  async function untouched<T>(fn: () => Promise<T>): Promise<T> {
    const n = target.sockets.length;
    const out = await fn();
    // Any connection the bridge opened would precede its 101 (it connects first): prove nothing is pending by a round trip.
    assert.equal((await tryBridge(cli.port)).echoed, 'hello');
    await waitFor(() => target.sockets.length >= n + 1, 5000, 'the round trip after the refusal');
    assert.equal(target.sockets.length, n + 1, 'the refused upgrade never reached the target');
    return out;
  }

  test('a cross-origin upgrade is refused with a completed handshake and close 1008 naming --allowed-origin; the target sees no connection', async () => {
    const r = await untouched(() => tryBridge(cli.port, { origin: 'http://evil.example' }));
    assert.equal(r.opened, true, 'the handshake is completed so a page can read why');
    assert.equal(r.echoed, undefined, 'no byte came back from the target');
    assert.equal(r.code, 1008);
    assert.match(r.reason ?? '', /^PH_ERR_ORIGIN_REFUSED: bridge: cross-origin WebSocket refused: pass --allowed-origin http:\/\/evil\.example$/);
    const line = await waitFor(() => logEvents(cli).find((e) => e.event === 'upgrade' && e.code === 'PH_ERR_ORIGIN_REFUSED'), 5000, 'the refusal log line');
    assert.equal(line.accepted, false);
    assert.equal(line.closeCode, 1008);
  });

  test('an upgrade from the same site on another port or scheme is cross-origin too', async () => {
    for (const origin of [`http://127.0.0.1:${cli.port + 1}`, `http://localhost:${cli.port}`, 'null']) {
      const r = await untouched(() => tryBridge(cli.port, { origin }));
      assert.equal(r.code, 1008, origin);
      assert.match(r.reason ?? '', /^PH_ERR_ORIGIN_REFUSED: /, origin);
    }
  });

  test('an opaque Origin (null: a sandboxed frame, a file:// page) is refused, and only * would admit it', async () => {
    const r = await untouched(() => tryBridge(cli.port, { origin: 'null' }));
    assert.equal(r.code, 1008);
    assert.equal(r.reason, `PH_ERR_ORIGIN_REFUSED: bridge: WebSocket from Origin "null" refused: only --allowed-origin '*' admits it`);
  });

  test('a very long Origin still gets a close reason of at most 123 bytes that starts with the code and names the flag', async () => {
    const origin = `http://${'a'.repeat(60)}.${'b'.repeat(60)}.example`;
    const r = await untouched(() => tryBridge(cli.port, { origin }));
    assert.equal(r.code, 1008);
    assert.ok(Buffer.byteLength(r.reason ?? '') <= 123, `${Buffer.byteLength(r.reason ?? '')} bytes`);
    assert.match(r.reason ?? '', /^PH_ERR_ORIGIN_REFUSED: bridge: cross-origin WebSocket refused: pass --allowed-origin http:\/\/a+/);
  });

  test('same-origin upgrades (127.0.0.1, localhost, [::1]) and upgrades without Origin (not a browser) reach the target', async () => {
    assert.deepEqual(await tryBridge(cli.port, { origin: `http://127.0.0.1:${cli.port}` }), { opened: true, echoed: 'hello' });
    assert.deepEqual(await tryBridge(cli.port, { host: `localhost:${cli.port}`, origin: `http://localhost:${cli.port}` }), { opened: true, echoed: 'hello' });
    assert.deepEqual(await tryBridge(cli.port, { host: `[::1]:${cli.port}`, origin: `http://[::1]:${cli.port}` }), { opened: true, echoed: 'hello' });
    assert.deepEqual(await tryBridge(cli.port), { opened: true, echoed: 'hello' });
  });

  test('--allowed-origin admits that origin and no other; * admits any', async () => {
    assert.deepEqual(await tryBridge(opened.port, { origin: 'https://novnc.example:8443' }), { opened: true, echoed: 'hello' });
    const other = await tryBridge(opened.port, { origin: 'https://novnc.example' });
    assert.equal(other.code, 1008);
    assert.match(other.reason ?? '', /^PH_ERR_ORIGIN_REFUSED: bridge: origin not allowed: pass --allowed-origin https:\/\/novnc\.example$/);
    // A list replaces same-origin: the bridge's own origin must be listed too.
    assert.equal((await tryBridge(opened.port, { origin: `http://127.0.0.1:${opened.port}` })).code, 1008);
    assert.deepEqual(await tryBridge(any.port, { origin: 'http://evil.example' }), { opened: true, echoed: 'hello' });
  });

  test('--web pages need no Origin check: a cross-origin GET is served', async () => {
    const r = await getWithHost(cli.port, `127.0.0.1:${cli.port}`, '/', 'Origin: http://evil.example\r\n');
    assert.equal(r.status, 200);
    assert.match(r.body, /bridge web fixture/);
  });

  test('a rebound Host gets 421 PH_ERR_HOST_REFUSED naming --server-name for --web pages, and none of the page', async () => {
    for (const path of ['/', '/index.html', '/app.js']) {
      const r = await getWithHost(cli.port, `evil.example:${cli.port}`, path);
      assert.equal(r.status, 421, path);
      assert.equal(r.error, 'PH_ERR_HOST_REFUSED', path);
      assert.match(r.body, /--server-name/, path);
      assert.doesNotMatch(r.body, /bridge web fixture/, path);
    }
    const line = await waitFor(() => logEvents(cli).find((e) => e.event === 'request' && e.status === 421), 5000, 'the 421 log line');
    assert.equal(line.code, 'PH_ERR_HOST_REFUSED');
  });

  test('a pipelined request under a rebound name after an allowed one is refused, and the connection closed', async () => {
    const raw = await rawRequest(cli.port, `GET /app.js HTTP/1.1\r\nHost: localhost\r\n\r\nGET / HTTP/1.1\r\nHost: evil.example\r\n\r\nGET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n`);
    const statuses = [...raw.matchAll(/^HTTP\/1\.1 (\d+)/gm)].map((m) => Number(m[1]));
    assert.deepEqual(statuses, [200, 421]);
    assert.ok(!raw.includes('bridge web fixture'), 'nothing after the refusal is served');
  });

  test('a bridge without --web answers a rebound Host 421 too, not its 426 page', async () => {
    const r = await getWithHost(opened.port, `evil.example:${opened.port}`);
    assert.equal(r.status, 421);
    assert.equal(r.error, 'PH_ERR_HOST_REFUSED');
  });

  test('a rebound upgrade (Host and Origin both evil.example) closes 1008 with PH_ERR_HOST_REFUSED naming --server-name; the target sees no connection', async () => {
    const r = await untouched(() => tryBridge(cli.port, { host: `evil.example:${cli.port}`, origin: `http://evil.example:${cli.port}` }));
    assert.equal(r.opened, true);
    assert.equal(r.code, 1008);
    assert.match(r.reason ?? '', /^PH_ERR_HOST_REFUSED: Host evil\.example:\d+ is not this bridge's: pass --server-name NAME$/);
    // --allowed-origin * opens Origin, never Host.
    const star = await untouched(() => tryBridge(any.port, { host: `evil.example:${any.port}`, origin: 'http://evil.example' }));
    assert.equal(star.code, 1008);
    assert.match(star.reason ?? '', /^PH_ERR_HOST_REFUSED: /);
    // Without Origin (not a browser) a foreign Host is refused all the same.
    const bare = await untouched(() => tryBridge(cli.port, { host: 'evil.example' }));
    assert.equal(bare.code, 1008);
  });

  test('loopback Hosts and the machine\'s own name and addresses pass: 127.0.0.1:PORT, localhost:PORT, a *.localhost name, [::1]:PORT', async () => {
    // A browser on this machine may open the bridge by the machine's name or one of its addresses.
    const own = Object.values(networkInterfaces())
      .flatMap((l) => l ?? [])
      .filter((a) => !a.internal)
      .map((a) => (a.family === 'IPv6' ? `[${a.address.replace(/%.*$/, '')}]` : a.address));
    const hosts = [`127.0.0.1:${cli.port}`, `localhost:${cli.port}`, `desk.localhost:${cli.port}`, `[::1]:${cli.port}`, `LOCALHOST.:${cli.port}`, '127.0.0.1', `${hostname()}:${cli.port}`];
    for (const host of [...hosts, ...own.map((a) => `${a}:${cli.port}`)]) {
      const r = await getWithHost(cli.port, host);
      assert.equal(r.status, 200, host);
    }
  });

  test('a malformed Host gets 400 PH_ERR_BAD_HOST, page and upgrade alike', async () => {
    for (const host of [`127.0.0.1:${cli.port}@evil.example`, 'evil.example/path', '[::1']) {
      const r = await getWithHost(cli.port, host);
      assert.equal(r.status, 400, host);
      assert.equal(r.error, 'PH_ERR_BAD_HOST', host);
      const u = await untouched(() => upgradeWithHost(cli.port, host));
      assert.match(u, /^HTTP\/1\.1 400 /, host);
      assert.match(u, /X-Porthole-Error: PH_ERR_BAD_HOST/i, host);
    }
  });

  test('--server-name admits a name (and *.suffix names), page and upgrade; other names are still refused', async () => {
    for (const name of ['vnc.tunnel.test', 'a.wild.test']) {
      const page = await getWithHost(named.port, `${name}:${named.port}`);
      assert.equal(page.status, 200, name);
      assert.deepEqual(await tryBridge(named.port, { host: `${name}:${named.port}`, origin: `http://${name}:${named.port}` }), { opened: true, echoed: 'hello' }, name);
    }
    assert.equal((await getWithHost(named.port, `evil.example:${named.port}`)).status, 421);
    assert.equal((await getWithHost(named.port, `wild.test:${named.port}`)).status, 421, '*.wild.test is the names under wild.test, not wild.test');
    assert.equal((await tryBridge(named.port, { host: `evil.example:${named.port}`, origin: `http://evil.example:${named.port}` })).code, 1008);
  });

  test('porthole doctor recognises the bridge\'s Host refusal and names --server-name, not porthole.yaml', async () => {
    const r = await runDoctor({ url: `${cli.wsUrl}/websockify`, headers: [['Host', 'desk.tunnel.test']], timeoutMs: 5000 });
    const text = formatReport(r, true);
    assert.equal(r.exitCode, 1, text);
    const rt = r.steps.find((s) => s.step === 'roundtrip');
    assert.equal(rt?.data?.cause, 'host-refused', text);
    assert.match(rt?.explanation ?? '', /porthole bridge refused the Host desk\.tunnel\.test/);
    assert.equal(rt?.fix, "if desk.tunnel.test is the bridge's name (a tunnel, a DNS name, a proxy's), restart it with --server-name desk.tunnel.test");
    assert.doesNotMatch(text, /server_names/);
  });

  test('usage errors exit 2: an --allowed-origin that is not an origin, a --server-name that is not a host name', async () => {
    const cases: [string[], RegExp][] = [
      [['--allowed-origin', 'evil.example'], /--allowed-origin.*"evil\.example" is not an origin/],
      [['--allowed-origin', 'https://a.example/path'], /is not an origin/],
      [['--server-name', 'a b'], /--server-name.*expected a host name/],
      [['--server-name', 'http://a.example'], /--server-name.*expected a host name/],
    ];
    await Promise.all(
      cases.map(async ([args, message]) => {
        const run = runCli(['bridge', '127.0.0.1:0', `127.0.0.1:${target.port}`, ...args]);
        assert.equal(await run.exited, 2, args.join(' '));
        assert.match(run.stderr(), message);
      }),
    );
  });

  test('--help documents both flags, what a refused client sees, and the example of noVNC served by another origin', async () => {
    const run = runCli(['bridge', '--help']);
    assert.equal(await run.exited, 0);
    const help = run.stdout();
    assert.match(help, /--allowed-origin <origin>/);
    assert.match(help, /--server-name <name>/);
    assert.match(help, /close 1008, PH_ERR_ORIGIN_REFUSED/);
    assert.match(help, /421 for pages, close 1008 for WebSockets, PH_ERR_HOST_REFUSED/);
    assert.match(help, /porthole bridge 6080 localhost:5900 --allowed-origin https:\/\/novnc\.example\.com\n\s+noVNC's pages served by https:\/\/novnc\.example\.com/);
    assert.match(help, /DNS rebinding/);
  });

  test('the token stays out of the log line of a refused upgrade', async () => {
    const r = await tryBridge(cli.port, { origin: 'http://evil.example', path: '/websockify?token=s3cret-desk' });
    assert.equal(r.code, 1008);
    await waitFor(() => logEvents(cli).some((e) => e.event === 'upgrade' && String(e.path).includes('token=')), 5000, 'the refusal log line');
    assert.ok(!cli.stderr().includes('s3cret-desk'), 'the token is not logged');
  });
});
