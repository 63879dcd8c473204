/**
 * `porthole bridge` as a browser meets it (issue 8, items 10 and 11, for the
 * standalone bridge). Chromium's resolver maps evil.example, novnc.example
 * and desk.tunnel.test to 127.0.0.1, and its own Local Network Access
 * blocking is off (other browsers have none), so the bridge's checks are
 * what is tested:
 *  - a page of another site opens ws://127.0.0.1:PORT/ (cross-site
 *    WebSocket hijacking): close 1008 naming --allowed-origin; the TCP
 *    target sees no connection;
 *  - a page on a rebound name, same-origin with the bridge's port (DNS
 *    rebinding): its fetch reads 421 and its WebSocket closes 1008 naming
 *    --server-name;
 *  - an origin given with --allowed-origin gets through;
 *  - noVNC's own page served by --web still connects, under 127.0.0.1 and
 *    under a --server-name.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchChromium, NO_LOCAL_NETWORK_CHECKS } from '../helpers/browser.js';
import { logEvents, startBridgeCli, type BridgeCli } from '../fixtures/bridge/bridge-cli.js';
import { tcpPeer, type TcpPeer } from '../fixtures/bridge/tcp-peers.js';
import { startDesktop, type Desktop } from '../fixtures/bridge/x-desktop.js';

const NOVNC = '/usr/share/novnc';
const BANNER = 'RFB 003.008\n';

interface Attack {
  status?: number;
  error?: string | null;
  body?: string;
  ws: { opened: boolean; code?: number; reason?: string; received?: string };
}

/** The attacker's script: optionally read a page of the bridge, then open `wsUrl` and report how it ended. */
const attackScript = (wsUrl: string, fetchPath?: string) => `(async () => {
  const out = {};
  if (${JSON.stringify(fetchPath ?? null)}) {
    const page = await fetch(${JSON.stringify(fetchPath ?? '')});
    Object.assign(out, { status: page.status, error: page.headers.get('x-porthole-error'), body: await page.text() });
  }
  out.ws = await new Promise((ok) => {
    const s = new WebSocket(${JSON.stringify(wsUrl)}, ['binary']);
    s.binaryType = 'arraybuffer';
    let opened = false;
    s.onopen = () => { opened = true; };
    s.onmessage = (m) => { s.close(1000); ok({ opened, received: new TextDecoder().decode(m.data) }); };
    s.onclose = (e) => ok({ opened, code: e.code, reason: e.reason });
  });
  return out;
})()`;

describe('porthole bridge in Chromium: other origins and rebound names', { timeout: 120_000 }, () => {
  let browser: Browser;
  let desktop: Desktop;
  let target: TcpPeer;
  /** Default policy, in front of the banner peer. */
  let plain: BridgeCli;
  /** --allowed-origin http://novnc.example, in front of the banner peer. */
  let opened: BridgeCli;
  /** noVNC's pages and the real desktop, --server-name desk.tunnel.test. */
  let novnc: BridgeCli;

  before(async () => {
    assert.ok(existsSync(`${NOVNC}/core/rfb.js`), 'noVNC is installed (apt-get install novnc; npm test installs it when run as root)');
    target = await tcpPeer({ banner: BANNER });
    const launching = launchChromium([
      // Only these names are mapped (a rebinding DNS server's answer); everything else fails to resolve.
      '--host-resolver-rules=MAP evil.example 127.0.0.1, MAP novnc.example 127.0.0.1, MAP desk.tunnel.test 127.0.0.1, EXCLUDE localhost',
      // So that the gateway's own defence is what is tested, not the browser's.
      NO_LOCAL_NETWORK_CHECKS,
    ]);
    [browser, desktop] = await Promise.all([launching, startDesktop('PORTHOLE-BRIDGE-SECURITY')]);
    [plain, opened, novnc] = await Promise.all([
      startBridgeCli(['127.0.0.1:0', `127.0.0.1:${target.port}`]),
      startBridgeCli(['127.0.0.1:0', `127.0.0.1:${target.port}`, '--allowed-origin', 'http://novnc.example']),
      startBridgeCli(['127.0.0.1:0', `127.0.0.1:${desktop.vncPort}`, '--web', NOVNC, '--server-name', 'desk.tunnel.test']),
    ]);
  });
  after(async () => {
    await browser?.close().catch(() => undefined);
    for (const c of [plain, opened, novnc]) if (c) assert.equal(await c.stop(), 0);
    await target?.close();
    await desktop?.stop();
  });

  /** Runs the attack from a page at `pageUrl` (served by request interception, as the attacker's own server would). */
  async function attackFrom(pageUrl: string, script: string): Promise<Attack> {
    const page = await browser.newPage();
    const consoleLines: string[] = [];
    page.on('console', (m) => consoleLines.push(m.text()));
    try {
      await page.route(pageUrl, (route) => route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>cat pictures</title>' }));
      await page.goto(pageUrl);
      return (await page.evaluate(script)) as Attack;
    } catch (err) {
      throw new Error(`${(err as Error).message}\nconsole: ${consoleLines.join('\n')}`);
    } finally {
      await page.close();
    }
  }

  test('a page of another site opening ws://127.0.0.1:PORT/ gets close 1008 naming --allowed-origin; the target sees no connection', async () => {
    const n = target.sockets.length;
    const r = await attackFrom('http://evil.example/cats', attackScript(`ws://127.0.0.1:${plain.port}/websockify`));
    assert.equal(r.ws.opened, true, 'the bridge completed the handshake so the page could read why');
    assert.equal(r.ws.received, undefined, 'not one byte of the VNC banner');
    assert.equal(r.ws.code, 1008);
    assert.equal(r.ws.reason, 'PH_ERR_ORIGIN_REFUSED: bridge: cross-origin WebSocket refused: pass --allowed-origin http://evil.example');
    assert.equal(target.sockets.length, n, 'the target saw no connection');
    assert.ok(!logEvents(plain).some((e) => e.event === 'upgrade' && e.accepted === true), 'no upgrade was accepted');
  });

  test('a page on a rebound name (evil.example:PORT → 127.0.0.1) reads 421 and its WebSocket closes 1008 naming --server-name', async () => {
    const n = target.sockets.length;
    const r = await attackFrom(`http://evil.example:${plain.port}/cats`, attackScript(`ws://evil.example:${plain.port}/websockify`, '/'));
    assert.equal(r.status, 421);
    assert.equal(r.error, 'PH_ERR_HOST_REFUSED');
    assert.match(r.body ?? '', /--server-name/);
    assert.equal(r.ws.opened, true);
    assert.equal(r.ws.received, undefined);
    assert.equal(r.ws.code, 1008);
    assert.match(r.ws.reason ?? '', /^PH_ERR_HOST_REFUSED: Host evil\.example:\d+ is not this bridge's: pass --server-name NAME$/);
    assert.equal(target.sockets.length, n, 'the target saw no connection');
  });

  test('a page of the origin given with --allowed-origin reaches the target; another origin on that bridge does not', async () => {
    const ok = await attackFrom('http://novnc.example/viewer', attackScript(`ws://127.0.0.1:${opened.port}/websockify`));
    assert.deepEqual(ok.ws, { opened: true, received: BANNER });
    const n = target.sockets.length;
    const refused = await attackFrom('http://evil.example/cats', attackScript(`ws://127.0.0.1:${opened.port}/websockify`));
    assert.equal(refused.ws.code, 1008);
    assert.equal(refused.ws.reason, 'PH_ERR_ORIGIN_REFUSED: bridge: origin not allowed: pass --allowed-origin http://evil.example');
    assert.equal(target.sockets.length, n);
  });

  for (const host of ['127.0.0.1', 'desk.tunnel.test']) {
    test(`noVNC's vnc.html served by --web from the bridge itself still connects (at ${host}, same origin)`, async () => {
      const page = await browser.newPage({ viewport: { width: 1100, height: 700 } });
      try {
        // host and port default to the page's own.
        await page.goto(`http://${host}:${novnc.port}/vnc.html?autoconnect=1&path=websockify&resize=off`);
        await page.waitForFunction(`document.documentElement.classList.contains('noVNC_connected')`, undefined, { timeout: 20_000 });
      } finally {
        await page.close();
      }
    });
  }
});
