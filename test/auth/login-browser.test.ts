/**
 * `auth: login` in Chromium: an unauthenticated page goes to the login page
 * and comes back to the app; its WebSocket is refused before login with
 * close 1008 and a reason the page can read (never 1006), and accepted
 * after; logout ends both — under a prefix on 127.0.0.1, and at an app's
 * own host name (`app.localhost`), whose login hands its cookie over from
 * `localhost` (CSP form-action lets that redirect through).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { startGateway, wsUpstream, type TestGateway, type WsUpstream } from '../helpers/net.js';
import { users } from './helpers.js';

const APP_TEXT = 'PORTHOLE-AUTH-APP';

/** Opens a WebSocket in the page and resolves with how it ended, or with the echo when it opened. */
const wsInPage = (url: string) => `new Promise((ok) => {
  const ws = new WebSocket(${JSON.stringify(url)});
  let opened = false;
  ws.onopen = () => { opened = true; ws.send('ping'); };
  ws.onmessage = (e) => { window.liveWs = ws; ws.onclose = (c) => { window.liveClose = { code: c.code, reason: c.reason }; }; ok({ opened, echo: e.data }); };
  ws.onclose = (e) => ok({ code: e.code, reason: e.reason, opened, wasClean: e.wasClean });
  setTimeout(() => ok({ timeout: true }), 10000);
})`;

const waitLiveClose = `new Promise((ok) => { const t = setInterval(() => { if (window.liveClose) { clearInterval(t); ok(window.liveClose); } }, 20); })`;

describe('auth: login in Chromium', () => {
  let browser: Browser;
  let up: WsUpstream;
  let gw: TestGateway;

  before(async () => {
    up = await wsUpstream();
    up.server.removeAllListeners('request');
    up.server.on('request', (_req: http.IncomingMessage, res: http.ServerResponse) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(`<!doctype html><title>app</title><h1>${APP_TEXT}</h1>`);
    });
    gw = await startGateway({ auth: 'login', users: await users(), apps: [{ name: 'app', port: up.port }] });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await gw?.close();
    await up?.close();
  });

  async function logIn(page: Page): Promise<void> {
    await page.fill('#user', 'alice');
    await page.fill('#password', 'correct horse');
    await Promise.all([page.waitForURL((u) => !u.pathname.startsWith('/_porthole/auth/')), page.click('button[type=submit]')]);
  }

  test('under a prefix: login page, back to the app, WebSocket 1008 before and open after, logout ends both', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      await page.goto(`${gw.url}/app/some/page?x=1`);
      const loginUrl = page.url();
      assert.equal(new URL(page.url()).pathname, '/_porthole/auth/login');
      assert.equal(new URL(page.url()).searchParams.get('next'), '/app/some/page?x=1');
      // The login page's CSP allows no connection at all: the refused socket is opened from
      // another page of the same origin (the gateway's 404 page), as an app's page would.
      await page.goto(`${gw.url}/no-app-here`);
      const refused = (await page.evaluate(wsInPage(`${gw.wsUrl}/app/ws`))) as { code: number; reason: string; opened: boolean };
      assert.equal(refused.code, 1008, JSON.stringify(refused));
      assert.match(refused.reason, /^PH_ERR_AUTH_REQUIRED: login required/);
      assert.equal(refused.opened, true, 'a completed handshake, not a failed one');
      await page.goto(loginUrl);

      await logIn(page);
      assert.equal(page.url(), `${gw.url}/app/some/page?x=1`);
      assert.match(await page.textContent('h1') ?? '', new RegExp(APP_TEXT));
      const [cookie] = await context.cookies(gw.url);
      assert.equal(cookie.name, 'porthole_auth');
      assert.equal(cookie.httpOnly, true);
      assert.equal(cookie.sameSite, 'Lax');
      assert.equal(cookie.path, '/');
      assert.equal(await page.evaluate('document.cookie'), '', 'HttpOnly: the app\'s scripts cannot read it');

      const open = (await page.evaluate(wsInPage(`${gw.wsUrl}/app/ws`))) as { opened: boolean; echo: string };
      assert.deepEqual(open, { opened: true, echo: 'ping' });

      const status = await page.evaluate(`fetch('/_porthole/auth/logout', { method: 'POST' }).then((r) => r.status)`);
      assert.equal(status, 200);
      const ended = (await page.evaluate(waitLiveClose)) as { code: number; reason: string };
      assert.equal(ended.code, 1008);
      assert.match(ended.reason, /logged out/);
      await page.goto(`${gw.url}/app/`);
      assert.equal(new URL(page.url()).pathname, '/_porthole/auth/login');
      await page.goto(`${gw.url}/no-app-here`);
      const after = (await page.evaluate(wsInPage(`${gw.wsUrl}/app/ws`))) as { code: number; reason: string };
      assert.equal(after.code, 1008);
    } finally {
      await context.close();
    }
  });

  test("at the app's own host name: login on localhost, handoff, the app, then the logout form", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const appOrigin = `http://app.localhost:${gw.port}`;
    try {
      await page.goto(`${appOrigin}/here`);
      const login = new URL(page.url());
      assert.equal(login.origin, `http://localhost:${gw.port}`);
      assert.equal(login.searchParams.get('host'), `app.localhost:${gw.port}`);
      await logIn(page);
      assert.equal(page.url(), `${appOrigin}/here`);
      assert.match(await page.textContent('h1') ?? '', new RegExp(APP_TEXT));
      const open = (await page.evaluate(wsInPage(`ws://app.localhost:${gw.port}/ws`))) as { opened: boolean; echo: string };
      assert.deepEqual(open, { opened: true, echo: 'ping' });
      assert.ok(!page.url().includes('code='), 'the handoff code left the address bar');

      // The logout form, in a second tab: the first one's WebSocket is closed with a reason.
      const other = await context.newPage();
      await other.goto(`${appOrigin}/_porthole/auth/logout`);
      await Promise.all([other.waitForURL(`${appOrigin}/_porthole/auth/logout`), other.click('button[type=submit]')]);
      await other.waitForSelector('text=Logged out');
      const ended = (await page.evaluate(waitLiveClose)) as { code: number; reason: string };
      assert.equal(ended.code, 1008);
      assert.match(ended.reason, /logged out/);
      await page.goto(`${appOrigin}/here`);
      assert.equal(new URL(page.url()).origin, `http://localhost:${gw.port}`);
      assert.equal(new URL(page.url()).pathname, '/_porthole/auth/login');
    } finally {
      await context.close();
    }
  });
});
