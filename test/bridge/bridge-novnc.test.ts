/**
 * The real thing: Debian's noVNC in headless Chromium, through the bridge,
 * to x11vnc on Xvfb showing an xterm. Once with `porthole bridge --web
 * /usr/share/novnc` (websockify's usage), once through the gateway with an
 * app that takes its pages from `port` and bridges its upgrades (`ws_bridge`).
 * The canvas must show the remote screen: the xterm's white window.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { canvasPixels, launchChromium } from '../helpers/browser.js';
import { startGateway, type TestGateway } from '../helpers/net.js';
import { startBridgeCli, type BridgeCli } from '../fixtures/bridge/bridge-cli.js';
import { startDesktop, type Desktop } from '../fixtures/bridge/x-desktop.js';

const NOVNC = '/usr/share/novnc';
const WORD = 'PORTHOLE-BRIDGE-OK';

/** The pixels of noVNC's canvas (see canvasPixels). */
const CANVAS_PIXELS = canvasPixels('#noVNC_container');

interface Pixels {
  width: number;
  height: number;
  nonBlack: number;
  white: number;
}

async function remoteScreen(page: Page, url: string): Promise<Pixels> {
  await page.goto(url);
  await page.waitForFunction(`document.documentElement.classList.contains('noVNC_connected')`, undefined, { timeout: 20_000 });
  // The first framebuffer update follows the connection; wait for the xterm's white window to be drawn.
  const handle = await page.waitForFunction(`(() => { const p = ${CANVAS_PIXELS}; return p && p.white > 20000 ? p : null; })()`, undefined, { timeout: 20_000, polling: 200 });
  return (await handle.jsonValue()) as Pixels;
}

describe('noVNC through the bridge', { timeout: 90_000 }, () => {
  let desktop: Desktop;
  let browser: Browser;
  let cli: BridgeCli;
  let gw: TestGateway | undefined;

  before(async () => {
    assert.ok(existsSync(`${NOVNC}/core/rfb.js`), 'noVNC is installed (apt-get install novnc; npm test installs it when run as root)');
    [desktop, browser] = await Promise.all([startDesktop(WORD), launchChromium()]);
    cli = await startBridgeCli(['127.0.0.1:0', `127.0.0.1:${desktop.vncPort}`, '--web', NOVNC]);
  });
  after(async () => {
    await browser?.close().catch(() => undefined);
    await gw?.close();
    await cli?.stop();
    await desktop?.stop();
    for (const p of desktop?.processes ?? []) assert.ok(p.exitCode !== null || p.signalCode !== null, `${p.spawnfile} has exited`);
  });

  test('porthole bridge --web /usr/share/novnc: vnc.html connects and draws the remote screen', async (t) => {
    const page = await browser.newPage({ viewport: { width: 1100, height: 700 } });
    try {
      const pixels = await remoteScreen(page, `${cli.url}/vnc.html?autoconnect=1&host=127.0.0.1&port=${cli.port}&path=websockify&resize=off`);
      assert.equal(pixels.width, 1024, 'the canvas has the remote screen size');
      assert.equal(pixels.height, 600);
      assert.ok(pixels.nonBlack > 20_000, `non-black pixels: ${pixels.nonBlack}`);
      const shot = join(tmpdir(), 'porthole-bridge-novnc.png'); // overwritten by each run
      await page.screenshot({ path: shot });
      t.diagnostic(`canvas ${pixels.width}x${pixels.height}: ${pixels.nonBlack} non-black, ${pixels.white} white pixels; screenshot ${shot}`);
      const log = cli.stderr();
      assert.match(log, /"event":"upgrade".*"accepted":true/, 'the bridge logged the accepted upgrade');
    } finally {
      await page.close();
    }
  });

  test('through the gateway: pages from port, upgrades bridged by ws_bridge, under the /vnc/ prefix', async () => {
    gw = await startGateway({ apps: [{ name: 'vnc', port: cli.port, ws_bridge: `127.0.0.1:${desktop.vncPort}` }] });
    const page = await browser.newPage({ viewport: { width: 1100, height: 700 } });
    try {
      // host and port default to the page's; path is relative to the host root.
      const pixels = await remoteScreen(page, `${gw.url}/vnc/vnc.html?autoconnect=1&path=vnc/websockify&resize=off`);
      assert.ok(pixels.nonBlack > 20_000, `non-black pixels: ${pixels.nonBlack}`);
      assert.equal(gw.gw.bridges.size, 1, 'the gateway bridged the connection itself');
    } finally {
      await page.close();
    }
  });
});
