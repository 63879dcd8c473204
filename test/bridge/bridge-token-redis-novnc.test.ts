/**
 * The real thing with tokens in Redis: Debian's noVNC in headless Chromium,
 * `porthole bridge --web /usr/share/novnc --token-redis`, x11vnc on Xvfb.
 * The token in the page's WebSocket path is looked up in a real
 * redis-server at connect time: the canvas shows the remote screen; with
 * the key deleted noVNC never connects, and the bridge says why.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import type { Browser, Page } from 'playwright-core';
import { canvasPixels, launchChromium } from '../helpers/browser.js';
import { startRedis, type RedisHandle } from '../helpers/redis.js';
import { logEvents, startBridgeCli, type BridgeCli } from '../fixtures/bridge/bridge-cli.js';
import { startDesktop, type Desktop } from '../fixtures/bridge/x-desktop.js';

const NOVNC = '/usr/share/novnc';

/** The pixels of noVNC's canvas (see canvasPixels). */
const CANVAS_PIXELS = canvasPixels('#noVNC_container');

function vncUrl(cli: BridgeCli, token: string): string {
  // noVNC's `path` is the WebSocket path, query included: encoded once for the page's own query.
  return `${cli.url}/vnc.html?autoconnect=1&host=127.0.0.1&port=${cli.port}&resize=off&path=${encodeURIComponent(`websockify?token=${token}`)}`;
}

describe('noVNC through porthole bridge --token-redis', { timeout: 120_000 }, () => {
  let desktop: Desktop;
  let browser: Browser;
  let redis: RedisHandle;
  let admin: Redis;
  let cli: BridgeCli;

  before(async () => {
    assert.ok(existsSync(`${NOVNC}/core/rfb.js`), 'noVNC is installed (apt-get install novnc; npm test installs it when run as root)');
    redis = await startRedis();
    admin = new Redis(redis.url, { lazyConnect: true, retryStrategy: () => null });
    admin.on('error', () => {});
    await admin.connect();
    [desktop, browser] = await Promise.all([startDesktop('PORTHOLE-REDIS-OK'), launchChromium()]);
    cli = await startBridgeCli(['127.0.0.1:0', '--web', NOVNC, '--token-redis', `${redis.url}/0`, '--token-namespace', 'desk']);
  });
  after(async () => {
    await browser?.close().catch(() => undefined);
    await cli?.stop();
    await desktop?.stop();
    admin?.disconnect();
    await redis?.close();
  });

  test('a token in Redis connects noVNC to the desktop and draws it; deleted, noVNC is refused with the reason', async (t) => {
    await admin.set('desk:alice', JSON.stringify({ host: '127.0.0.1', port: desktop.vncPort }));
    const page: Page = await browser.newPage({ viewport: { width: 1100, height: 700 } });
    try {
      await page.goto(vncUrl(cli, 'alice'));
      await page.waitForFunction(`document.documentElement.classList.contains('noVNC_connected')`, undefined, { timeout: 20_000 });
      const handle = await page.waitForFunction(`(() => { const p = ${CANVAS_PIXELS}; return p && p.white > 20000 ? p : null; })()`, undefined, { timeout: 20_000, polling: 200 });
      const pixels = (await handle.jsonValue()) as { width: number; height: number; nonBlack: number; white: number };
      assert.equal(pixels.width, 1024);
      assert.ok(pixels.nonBlack > 20_000, `non-black pixels: ${pixels.nonBlack}`);
      t.diagnostic(`canvas ${pixels.width}x${pixels.height}: ${pixels.nonBlack} non-black, ${pixels.white} white pixels`);

      await admin.del('desk:alice');
      await page.goto(vncUrl(cli, 'alice'));
      // noVNC shows a failed connection; the bridge logged the refusal with the token hidden.
      await page.waitForFunction(`document.getElementById('noVNC_status').classList.contains('noVNC_status_error')`, undefined, { timeout: 20_000 });
      const connected = await page.evaluate(`document.documentElement.classList.contains('noVNC_connected')`);
      assert.equal(connected, false);
      const refused = logEvents(cli).filter((e) => e.event === 'upgrade' && e.accepted === false);
      assert.ok(refused.some((e) => e.closeCode === 1008 && /unknown token "alice"/.test(String(e.reason))), JSON.stringify(refused));
      for (const e of refused) assert.doesNotMatch(String(e.path), /alice/);
    } finally {
      await page.close();
    }
  });
});
