/**
 * Issue 10, section 1, proven in Chromium (seed 001: an https:// page whose
 * ws:// socket failed as mixed content, code 1006). The gateway's own CA
 * (`tls: internal`) is installed with `porthole trust` into a fresh NSS
 * database in the browser's own HOME — no --ignore-certificate-errors:
 *
 * - the page over https:// opens wss:// through the gateway and exchanges
 *   messages; the app's `Secure` cookie is kept and rides the handshake;
 * - the same https:// page dialling ws:// on another origin is refused by
 *   Chromium itself (mixed content: nothing reaches that server), while
 *   the same page over http:// reaches it — so it is the scheme that fails;
 * - http:// on the TLS port lands on https://, and a ws:// socket to it
 *   gets a close 1008 whose reason says to use wss://.
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
import { listen, closeServer, startGateway, type TestGateway } from '../helpers/net.js';
import { tempDir } from './tls-helpers.js';

ensureTools([
  { check: '/usr/bin/chromium', pkg: 'chromium' },
  { check: '/usr/bin/certutil', pkg: 'libnss3-tools' },
]);

const PAGE = '<!doctype html><title>chat</title><p>chat</p>';

/** Opens a WebSocket in the page: how it went (a string: tsx would wrap a function). */
const dial = (url: string, send?: string) => `new Promise((ok) => {
  let ws;
  try { ws = new WebSocket(${JSON.stringify(url)}); } catch (e) { return ok({ thrown: e.name + ': ' + e.message }); }
  const r = { opened: false, messages: [] };
  ws.onopen = () => { r.opened = true; ${send ? `ws.send(${JSON.stringify(send)});` : 'ws.close(1000);'} };
  ws.onmessage = (m) => { r.messages.push(String(m.data)); if (r.messages.length === 2) ws.close(1000); };
  ws.onclose = (e) => { r.code = e.code; r.reason = e.reason; ok(r); };
  setTimeout(() => ok({ ...r, timeout: true }), 8000);
})`;

describe('Chromium trusts the internal CA from its NSS database: https:// page, wss:// through the gateway', () => {
  const tmp = tempDir('porthole-browser-tls-');
  const home = join(tmp.dir, 'home');
  const data = join(tmp.dir, 'data');
  let app: http.Server;
  let appPort: number;
  let foreign: http.Server;
  let foreignPort: number;
  let foreignConnections = 0;
  let gw: TestGateway;
  let plain: TestGateway;
  let browser: Browser;

  before(async () => {
    // The app: a page that sets a Secure cookie, and a WebSocket that says which cookie it got, then echoes.
    app = http.createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html', 'Set-Cookie': 'sid=s3cret; Path=/; Secure; SameSite=Lax' });
      res.end(PAGE);
    });
    new WebSocketServer({ server: app }).on('connection', (ws, req) => {
      ws.send(`cookie=${req.headers.cookie ?? ''}`);
      ws.on('message', (d) => ws.send(`echo:${d}`));
    });
    appPort = await listen(app);
    // Another origin's ws:// server (the app of seed 001, dialled directly).
    foreign = http.createServer((_req, res) => res.end('foreign'));
    new WebSocketServer({ server: foreign }).on('connection', (ws) => {
      foreignConnections++;
      ws.send('foreign-hello');
      ws.on('message', (d) => ws.send(`foreign:${d}`));
    });
    foreignPort = await listen(foreign);

    const apps = [{ name: 'chat', port: appPort }];
    gw = await startGateway({ tls: 'internal', server_names: ['porthole.test'], apps }, { dataDir: data });
    plain = await startGateway({ server_names: ['porthole.test'], apps });

    // `porthole trust` into the browser's own fresh NSS database.
    mkdirSync(home, { recursive: true });
    const trust = runCli(['trust', '--data', data, '--no-system', '--nssdb', join(home, '.pki', 'nssdb')]);
    assert.equal(await trust.exited, 0, trust.stdout() + trust.stderr());

    browser = await launchChromium([`--host-resolver-rules=MAP porthole.test 127.0.0.1, MAP foreign.test 127.0.0.1`], {
      env: { ...process.env, HOME: home, XDG_CONFIG_HOME: join(home, '.config'), XDG_CACHE_HOME: join(home, '.cache') },
    });
  });
  after(async () => {
    await browser?.close();
    await gw?.close();
    await plain?.close();
    await closeServer(app);
    await closeServer(foreign);
    tmp.remove();
  });

  test('the https:// page loads with a certificate from the local CA, and wss:// through the gateway exchanges messages with the Secure cookie', async () => {
    const page = await browser.newPage();
    try {
      const res = await page.goto(`https://porthole.test:${gw.port}/chat/`);
      assert.equal(res?.status(), 200);
      const security = await res!.securityDetails();
      assert.match(security?.issuer ?? '', /^Porthole Local CA/);
      assert.match(await page.evaluate('document.cookie') as string, /sid=s3cret/);
      const r = (await page.evaluate(dial(`wss://porthole.test:${gw.port}/chat/`, 'hi'))) as { opened: boolean; messages: string[]; code: number };
      assert.equal(r.opened, true, JSON.stringify(r));
      assert.deepEqual(r.messages, ['cookie=sid=s3cret', 'echo:hi']);
      assert.equal(r.code, 1000);
    } finally {
      await page.close();
    }
  });

  test('without the CA in its NSS database, Chromium refuses the certificate (the trust above is what makes it work)', async () => {
    const bare = join(tmp.dir, 'bare-home');
    mkdirSync(bare, { recursive: true });
    const other = await launchChromium([`--host-resolver-rules=MAP porthole.test 127.0.0.1`], { env: { ...process.env, HOME: bare } });
    try {
      const page = await other.newPage();
      await assert.rejects(page.goto(`https://porthole.test:${gw.port}/chat/`), /ERR_CERT_AUTHORITY_INVALID/);
    } finally {
      await other.close();
    }
  });

  test('the same https:// page dialling ws:// on another origin fails in Chromium (mixed content), while the page over http:// reaches it', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`https://porthole.test:${gw.port}/chat/`);
      const before = foreignConnections;
      const blocked = (await page.evaluate(dial(`ws://foreign.test:${foreignPort}/`, 'x'))) as { thrown?: string; opened?: boolean; code?: number };
      // Chromium refuses in the constructor (older versions let it fail with 1006): never a socket.
      assert.match(blocked.thrown ?? JSON.stringify(blocked), /^SecurityError: .*insecure WebSocket connection may not be initiated from a page loaded over HTTPS/);
      assert.equal(foreignConnections, before, 'nothing reached the ws:// server');

      await page.goto(`http://porthole.test:${plain.port}/chat/`);
      const reached = (await page.evaluate(dial(`ws://foreign.test:${foreignPort}/`, 'x'))) as { opened: boolean; messages: string[] };
      assert.equal(reached.opened, true, JSON.stringify(reached));
      assert.deepEqual(reached.messages, ['foreign-hello', 'foreign:x']);
    } finally {
      await page.close();
    }
  });

  test('a ws:// socket to the TLS port (from an http:// page elsewhere) gets close 1008 naming wss://, which the page reads: not a bare 1006', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`http://porthole.test:${plain.port}/chat/`);
      const r = (await page.evaluate(dial(`ws://porthole.test:${gw.port}/chat/`))) as { opened: boolean; code: number; reason: string };
      assert.equal(r.code, 1008, JSON.stringify(r));
      assert.equal(r.reason, 'PH_ERR_TLS_REQUIRED: use wss:// (this port takes WebSockets over TLS only)');
    } finally {
      await page.close();
    }
  });

  test('http:// on the TLS port lands on the https:// page (308)', async () => {
    const page = await browser.newPage();
    try {
      const res = await page.goto(`http://porthole.test:${gw.port}/chat/`);
      assert.equal(page.url(), `https://porthole.test:${gw.port}/chat/`);
      assert.equal(res?.status(), 200);
    } finally {
      await page.close();
    }
  });
});
