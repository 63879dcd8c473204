/**
 * Issue 10, section 2, proven in Chromium: a page served over HTTP/2 through
 * the gateway opens wss:// to an app, and Chromium sends that WebSocket over
 * the same HTTP/2 connection as an extended CONNECT (RFC 8441) because the
 * gateway advertises SETTINGS_ENABLE_CONNECT_PROTOCOL: the gateway's
 * upgrade event records `h2`, and messages flow both ways. The CA is the
 * gateway's own (`tls: internal`), trusted through a fresh NSS database in
 * the browser's HOME (`porthole trust --nssdb`), no certificate errors
 * ignored.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { WebSocketServer } from 'ws';
import { ensureTools } from '../../scripts/ensure-tools.mjs';
import { launchChromium } from '../helpers/browser.js';
import { runCli } from '../helpers/cli.js';
import { collect, listen, closeServer, startGateway, type TestGateway } from '../helpers/net.js';
import { tempDir } from '../tls/tls-helpers.js';

ensureTools([
  { check: '/usr/bin/chromium', pkg: 'chromium' },
  { check: '/usr/bin/certutil', pkg: 'libnss3-tools' },
]);

const PAGE = '<!doctype html><title>chat</title><p>chat</p>';

/** Opens a WebSocket in the page and exchanges two messages (a string: tsx would wrap a function). */
const dial = (url: string) => `new Promise((ok) => {
  const ws = new WebSocket(${JSON.stringify(url)});
  const r = { opened: false, messages: [] };
  ws.onopen = () => { r.opened = true; r.extensions = ws.extensions; ws.send('one'); };
  ws.onmessage = (m) => { r.messages.push(String(m.data)); if (r.messages.length === 1) ws.send('two'); else ws.close(1000, 'done'); };
  ws.onclose = (e) => { r.code = e.code; r.reason = e.reason; ok(r); };
  setTimeout(() => ok({ ...r, timeout: true }), 8000);
})`;

describe('Chromium opens WebSockets over HTTP/2 through the gateway', { timeout: 90_000 }, () => {
  const tmp = tempDir('porthole-browser-h2-');
  const home = join(tmp.dir, 'home');
  const data = join(tmp.dir, 'data');
  let app: http.Server;
  const handshakes: http.IncomingMessage[] = [];
  let gw: TestGateway;
  let browser: Browser;

  before(async () => {
    app = http.createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(PAGE);
    });
    // permessage-deflate on: the extension Chromium offers must be negotiated through the HTTP/2 stream too.
    const wss = new WebSocketServer({ server: app, perMessageDeflate: true });
    wss.on('headers', (_h, req) => handshakes.push(req));
    wss.on('connection', (ws) => ws.on('message', (d) => ws.send(`echo:${d}`)));
    const appPort = await listen(app);
    gw = await startGateway({ tls: 'internal', server_names: ['porthole.test'], apps: [{ name: 'chat', port: appPort }, { name: 'term', port: appPort, ws_paths: ['/ws'] }] }, { dataDir: data });
    mkdirSync(home, { recursive: true });
    const trust = runCli(['trust', '--data', data, '--no-system', '--nssdb', join(home, '.pki', 'nssdb')]);
    assert.equal(await trust.exited, 0, trust.stdout() + trust.stderr());
    browser = await launchChromium([`--host-resolver-rules=MAP porthole.test 127.0.0.1`], {
      env: { ...process.env, HOME: home, XDG_CONFIG_HOME: join(home, '.config'), XDG_CACHE_HOME: join(home, '.cache') },
    });
  });
  after(async () => {
    await browser?.close();
    await gw?.close();
    if (app) await closeServer(app);
    tmp.remove();
  });

  test('the page comes over h2, its wss:// socket is an extended CONNECT on that connection (upgrade event: h2), messages flow both ways', async () => {
    const upgrades = collect('upgrade', gw.gw.id);
    const page = await browser.newPage();
    try {
      const res = await page.goto(`https://porthole.test:${gw.port}/chat/`);
      assert.equal(res?.status(), 200);
      assert.equal(await page.evaluate(`performance.getEntriesByType('navigation')[0].nextHopProtocol`), 'h2');
      const r = (await page.evaluate(dial(`wss://porthole.test:${gw.port}/chat/`))) as { opened: boolean; messages: string[]; code: number; reason: string; extensions: string };
      assert.equal(r.opened, true, JSON.stringify(r));
      assert.match(r.extensions, /^permessage-deflate/, 'the extension the app chose reached the page');
      assert.deepEqual(r.messages, ['echo:one', 'echo:two']);
      assert.equal(r.code, 1000);
      const accepted = upgrades.events.filter((e) => e.accepted);
      assert.equal(accepted.length, 1, JSON.stringify(upgrades.events));
      assert.equal(accepted[0].protocol, 'h2');
      // The app saw an ordinary HTTP/1.1 handshake with the page's origin.
      const hs = handshakes.at(-1)!;
      assert.equal(hs.httpVersion, '1.1');
      assert.equal(hs.headers.origin, `https://porthole.test:${gw.port}`);
      assert.equal(hs.headers['x-forwarded-proto'], 'https');
    } finally {
      upgrades.stop();
      await page.close();
    }
  });

  test('a WebSocket refused over h2 (ws_paths) reaches the page as close 1008 with the reason, never 1006', async () => {
    const upgrades = collect('upgrade', gw.gw.id);
    const page = await browser.newPage();
    try {
      await page.goto(`https://porthole.test:${gw.port}/term/`);
      const r = (await page.evaluate(dial(`wss://porthole.test:${gw.port}/term/other`))) as { opened: boolean; code: number; reason: string };
      assert.equal(r.code, 1008, JSON.stringify(r));
      assert.match(r.reason, /WebSocket path \/other is not in ws_paths/);
      const refused = upgrades.events.find((e) => !e.accepted);
      assert.equal(refused?.protocol, 'h2');
      assert.equal(refused?.code, 'PH_ERR_WS_PATH_REFUSED');
    } finally {
      upgrades.stop();
      await page.close();
    }
  });
});
