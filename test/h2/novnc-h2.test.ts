/**
 * Issue 10, section 2, the whole way: Debian's noVNC in Chromium, its page
 * served over HTTP/2 by the gateway (`tls: internal`, CA trusted through a
 * fresh NSS database), draws the remote screen (x11vnc on Xvfb showing an
 * xterm) through a WebSocket that Chromium opens over that HTTP/2
 * connection (RFC 8441): once bridged by the gateway itself (`ws_bridge`),
 * once proxied to a websockify-style upstream (`porthole bridge`). The
 * upgrade events say `h2`.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { ensureTools } from '../../scripts/ensure-tools.mjs';
import { startBridgeCli, type BridgeCli } from '../fixtures/bridge/bridge-cli.js';
import { startDesktop, type Desktop } from '../fixtures/bridge/x-desktop.js';
import { canvasPixels, launchChromium } from '../helpers/browser.js';
import { runCli } from '../helpers/cli.js';
import { collect, startGateway, type TestGateway } from '../helpers/net.js';
import { tempDir } from '../tls/tls-helpers.js';

ensureTools([
  { check: '/usr/bin/chromium', pkg: 'chromium' },
  { check: '/usr/bin/certutil', pkg: 'libnss3-tools' },
  { check: '/usr/bin/Xvfb', pkg: 'xvfb' },
  { check: '/usr/bin/x11vnc', pkg: 'x11vnc' },
  { check: '/usr/bin/xterm', pkg: 'xterm' },
  { check: '/usr/share/novnc/core/rfb.js', pkg: 'novnc' },
]);

const NOVNC = '/usr/share/novnc';
const WORD = 'PORTHOLE-H2-OK';

/** The pixels of noVNC's canvas (see canvasPixels). */
const CANVAS_PIXELS = canvasPixels('#noVNC_container');

async function remoteScreen(page: Page, url: string): Promise<{ nonBlack: number; white: number; protocol: string }> {
  await page.goto(url);
  await page.waitForFunction(`document.documentElement.classList.contains('noVNC_connected')`, undefined, { timeout: 20_000 });
  const handle = await page.waitForFunction(`(() => { const p = ${CANVAS_PIXELS}; return p && p.white > 20000 ? p : null; })()`, undefined, { timeout: 20_000, polling: 200 });
  const pixels = (await handle.jsonValue()) as { nonBlack: number; white: number };
  return { ...pixels, protocol: (await page.evaluate(`performance.getEntriesByType('navigation')[0].nextHopProtocol`)) as string };
}

describe('noVNC over HTTP/2 through the gateway', { timeout: 120_000 }, () => {
  const tmp = tempDir('porthole-novnc-h2-');
  const home = join(tmp.dir, 'home');
  const data = join(tmp.dir, 'data');
  let desktop: Desktop;
  let cli: BridgeCli;
  let gw: TestGateway;
  let browser: Browser;

  before(async () => {
    desktop = await startDesktop(WORD);
    // Pages from /usr/share/novnc and a websockify-style WebSocket endpoint, both HTTP/1.1.
    cli = await startBridgeCli(['127.0.0.1:0', `127.0.0.1:${desktop.vncPort}`, '--web', NOVNC]);
    gw = await startGateway(
      {
        tls: 'internal',
        server_names: ['porthole.test'],
        apps: [
          // The bridge CLI answers only its own names and origins (a loopback server's DNS-rebinding defence).
          { name: 'vnc', port: cli.port, ws_bridge: `127.0.0.1:${desktop.vncPort}`, upstream_host: 'upstream' },
          { name: 'ws', port: cli.port, upstream_host: 'upstream', upstream_origin: 'upstream' },
        ],
      },
      { dataDir: data },
    );
    mkdirSync(home, { recursive: true });
    const trust = runCli(['trust', '--data', data, '--no-system', '--nssdb', join(home, '.pki', 'nssdb')]);
    assert.equal(await trust.exited, 0, trust.stdout() + trust.stderr());
    browser = await launchChromium([`--host-resolver-rules=MAP porthole.test 127.0.0.1`], {
      env: { ...process.env, HOME: home, XDG_CONFIG_HOME: join(home, '.config'), XDG_CACHE_HOME: join(home, '.cache') },
    });
  });
  after(async () => {
    await browser?.close().catch(() => undefined);
    await gw?.close();
    await cli?.stop();
    await desktop?.stop();
    tmp.remove();
  });

  for (const [app, how] of [
    ['vnc', 'bridged by the gateway (ws_bridge)'],
    ['ws', 'proxied to a websockify-style upstream'],
  ] as const) {
    test(`noVNC draws the remote screen over an HTTP/2 WebSocket ${how}`, async () => {
      const upgrades = collect('upgrade', gw.gw.id);
      const page = await browser.newPage({ viewport: { width: 1100, height: 700 } });
      try {
        const shown = await remoteScreen(page, `https://porthole.test:${gw.port}/${app}/vnc.html?autoconnect=1&path=${app}/websockify&resize=off`);
        assert.equal(shown.protocol, 'h2', 'the page came over HTTP/2');
        assert.ok(shown.nonBlack > 20_000, `non-black pixels: ${shown.nonBlack}`);
        const accepted = upgrades.events.filter((e) => e.accepted && e.app === app);
        assert.equal(accepted.length, 1, JSON.stringify(upgrades.events));
        assert.equal(accepted[0].protocol, 'h2');
        if (app === 'vnc') assert.equal(gw.gw.bridges.size, 1, 'the gateway bridged the connection itself');
        else assert.equal(gw.gw.tunnels.size, 1, 'the gateway spliced a tunnel');
      } finally {
        upgrades.stop();
        await page.close();
      }
    });
  }
});
