/**
 * Issue 9, section 2, as a user lives it in Chromium: a real `porthole serve`
 * child, its printed login link, then the dashboard's every view —
 * register an app through the form (a bad port is named beside the port
 * field), start it by keyboard and by mouse, open it in a new tab, watch its
 * WebSocket in the live table with growing byte counts and its close code and
 * reason in the history, read its stdout and stderr as it prints them, stop
 * it, log out and be refused. No console error (a CSP violation would be
 * one), and no request leaves the gateway.
 *
 * Screenshots of every view go to a temp dir, removed afterwards unless
 * PORTHOLE_SCREENSHOTS=DIR names a folder to keep them in; with
 * PORTHOLE_DOCS_SCREENSHOTS=1 the three the README shows are written to
 * docs/images/ as well.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startAdmin, type AdminGateway } from '../helpers/admin.js';
import { launchChromium } from '../helpers/browser.js';

const CHATTY = fileURLToPath(new URL('../fixtures/dashboard/browser-app.mjs', import.meta.url));
const DOCS_IMAGES = fileURLToPath(new URL('../../docs/images/', import.meta.url));
const LOGIN_LINE = /porthole: dashboard \(this link logs in once\): (http:\/\/\S+)/;

/** A port nothing listens on now (the app will). */
function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = net.createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => ok(port));
    });
  });
}

describe('the dashboard in Chromium', { timeout: 180_000 }, () => {
  let gw: AdminGateway;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let appPage: Page | undefined;
  let shots: string;
  let chattyPort: number;
  const problems: string[] = [];
  const foreign: string[] = [];

  const shot = async (name: string, docs?: string) => {
    const file = join(shots, `${name}.png`);
    await page.screenshot({ path: file });
    if (docs && process.env.PORTHOLE_DOCS_SCREENSHOTS === '1') {
      mkdirSync(DOCS_IMAGES, { recursive: true });
      await page.screenshot({ path: join(DOCS_IMAGES, `dashboard-${docs}.png`) });
    }
  };
  const row = (app: string) => page.locator(`tr.app-row[data-app="${app}"]`);
  const view = async (label: 'Apps' | 'Live tunnels' | 'Logs') => {
    await page.bringToFront();
    await page.getByRole('navigation', { name: 'Views' }).getByRole('link', { name: new RegExp(`^${label}`) }).click();
    await page.locator(`nav a[aria-current="page"]`, { hasText: label }).waitFor();
  };

  before(async () => {
    shots = process.env.PORTHOLE_SCREENSHOTS || mkdtempSync(join(tmpdir(), 'porthole-dashboard-shots-'));
    mkdirSync(shots, { recursive: true });
    // One app from the config file (first in the table), one registered through the page.
    // Fixed free ports: apps of other gateways on this machine draw from the same default range.
    const helloPort = await freePort();
    gw = await startAdmin({
      config: `apps:\n  - name: hello\n    description: Python's http.server, from the config file\n    port: ${helloPort}\n    cmd: exec /usr/bin/python3 -m http.server --bind 127.0.0.1 $PORT\n`,
    });
    chattyPort = await freePort();
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'light' });
    page = await context.newPage();
    const origin = new URL(gw.url).origin;
    // A CSP violation is a console error. Failed loads are not counted here: the test
    // provokes 400s and 401s on purpose, and Chromium asks for /favicon.ico.
    page.on('console', (m) => {
      if ((m.type() === 'error' || m.type() === 'warning') && !m.text().startsWith('Failed to load resource')) problems.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('request', (r) => {
      if (new URL(r.url()).origin !== origin) foreign.push(r.url());
    });
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await gw?.cleanup();
    if (!process.env.PORTHOLE_SCREENSHOTS) rmSync(shots, { recursive: true, force: true });
  });

  test('logs in with the login link porthole serve printed', async () => {
    const m = LOGIN_LINE.exec(gw.stderr());
    assert.ok(m, `serve prints a login link:\n${gw.stderr()}`);
    await page.goto(m[1]);
    assert.equal(new URL(page.url()).pathname, '/_porthole/', 'the link leaves the address bar');
    assert.equal(new URL(page.url()).search, '');
    await page.getByRole('heading', { name: /^Apps/ }).waitFor();
    await row('hello').waitFor();
    await page.locator('.live-status.open').waitFor();
    // The config file's app is marked, and cannot be removed from here.
    await row('hello').locator('.tag', { hasText: 'config' }).waitFor();
    const remove = row('hello').getByRole('button', { name: 'Remove hello', exact: true });
    assert.equal(await remove.isDisabled(), true);
    assert.match((await remove.getAttribute('title')) ?? '', /config file/);
    // Not a node of a cluster: no cluster panel, no node column, no node field.
    assert.equal(await page.getByRole('heading', { name: /^Cluster/ }).count(), 0);
    assert.equal(await page.locator('table.apps thead th', { hasText: /^Node$/ }).count(), 0);
    assert.equal(await page.locator('#reg-node').count(), 0);
  });

  test('registers an app through the form: a bad port is named beside the port field, then a good one registers', async () => {
    const register = page.getByRole('button', { name: 'Register', exact: true });
    // A problem with the app as a whole names no field: it shows above the form.
    await page.fill('#reg-name', 'chatty');
    await register.click();
    await page.locator('#register-general', { hasText: /needs one of port, url or socket/ }).waitFor();
    assert.equal(await page.locator('.field-error').count(), 0);
    assert.equal(await page.locator('[aria-invalid="true"]').count(), 0);
    await page.locator('#register-title').scrollIntoViewIfNeeded();
    await shot('register-whole-app');

    // Two wrong fields: each message beside its own field, focus on the first.
    await page.fill('#reg-cmd', `exec ${process.execPath} ${CHATTY}`);
    await page.fill('#reg-hosts', 'bad!host');
    await page.fill('#reg-port', '70000');
    await page.fill('#reg-env', 'GREETING=hi\n# a comment line\n');
    await register.click();
    const error = page.locator('#reg-port-error');
    await error.waitFor();
    assert.match(await error.innerText(), /65535|port/i);
    const port = page.locator('#reg-port');
    assert.equal(await port.getAttribute('aria-invalid'), 'true');
    assert.match((await port.getAttribute('aria-describedby')) ?? '', /\breg-port-error\b/);
    assert.match(await page.locator('#reg-hosts-error').innerText(), /bad!host/);
    assert.equal(await page.getAttribute('#reg-hosts', 'aria-invalid'), 'true');
    assert.equal(await page.locator('.field-error').count(), 2, 'the port and the hosts, nothing else');
    // Beside the field: right under the input, in the same column.
    const [inBox, errBox] = [await port.boundingBox(), await error.boundingBox()];
    assert.ok(inBox && errBox);
    assert.ok(errBox.y >= inBox.y + inBox.height - 1 && errBox.y - (inBox.y + inBox.height) < 24, `error under the field (${JSON.stringify({ inBox, errBox })})`);
    assert.ok(Math.abs(errBox.x - inBox.x) < 4, 'same column');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'reg-port', 'focus goes to the field to fix');
    await page.locator('#register-general').waitFor();
    await page.locator('#register-title').scrollIntoViewIfNeeded();
    await shot('register-bad-port');

    await page.fill('#reg-port', String(chattyPort));
    assert.equal(await page.locator('#reg-port-error').count(), 0, 'a field being fixed is no longer marked');
    assert.equal(await page.getAttribute('#reg-hosts', 'aria-invalid'), 'true', 'the others still are');
    await page.fill('#reg-hosts', '');
    await register.click();
    await page.getByText('Registered chatty').waitFor();
    assert.equal(await page.locator('.field-error').count(), 0);
    await row('chatty').waitFor();
    assert.equal(await row('chatty').getAttribute('data-state'), 'stopped');
    const { body } = await gw.api('GET', '/_porthole/api/apps/chatty');
    assert.equal(body.app.port, chattyPort);
    assert.deepEqual(body.app.env, { GREETING: 'hi' });
  });

  test('keyboard: Tab reaches the first app\u2019s Start button, Enter starts it, and it reaches running', async () => {
    await page.reload();
    await row('hello').waitFor();
    let reached = false;
    for (let i = 0; i < 30 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate(() => document.activeElement?.getAttribute('aria-label') === 'Start hello');
    }
    assert.ok(reached, 'Tab reaches Start hello');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle);
    assert.notEqual(outline, 'none', 'the focus is visible');
    await page.keyboard.press('Enter');
    await page.locator('tr.app-row[data-app="hello"][data-state="running"]').waitFor({ timeout: 30_000 });
    assert.match(await row('hello').locator('td[data-label="PID"]').innerText(), /^\d+$/);
  });

  test('starts the registered app and sees it reach running', async () => {
    await row('chatty').getByRole('button', { name: 'Start chatty', exact: true }).click();
    await page.locator('tr.app-row[data-app="chatty"][data-state="running"]').waitFor({ timeout: 30_000 });
    // The uptime counts up, in seconds.
    const uptime = row('chatty').locator('td[data-label="Uptime"]');
    assert.match(await uptime.innerText(), /^\d+ s$/);
    await page.waitForFunction((el) => /^[1-9]\d* s$/.test(el!.textContent!.trim()), await uptime.elementHandle(), { timeout: 5000 });
    // The "chatty is starting." notice, dismissed (it would go by itself) for a clean picture.
    await page
      .getByRole('button', { name: 'Dismiss' })
      .click({ timeout: 2000 })
      .catch(() => undefined);
    await page.locator('.notice').waitFor({ state: 'detached', timeout: 10_000 });
    await shot('apps', 'apps');
  });

  test('opens the app from the table in a new tab', async () => {
    const link = row('chatty').getByRole('link', { name: /^\/chatty\// });
    assert.equal(await link.getAttribute('target'), '_blank');
    assert.match((await link.getAttribute('rel')) ?? '', /noopener/);
    const [tab] = await Promise.all([context.waitForEvent('page'), link.click()]);
    appPage = tab;
    await appPage.waitForLoadState();
    assert.equal(new URL(appPage.url()).pathname, '/chatty/');
    assert.equal(await appPage.title(), 'chatty app');
    assert.equal(await appPage.locator('h1').innerText(), 'chatty app chatty');
    assert.equal(await appPage.evaluate(() => window.opener), null, 'the app gets no handle on the dashboard');
  });

  test('a WebSocket to the app shows in the live table with growing byte counts, and its close code and reason in the history', async () => {
    assert.ok(appPage);
    await view('Live tunnels');
    await page.getByText(/No open tunnels/).waitFor();
    // Through the gateway, from the app's own page.
    await appPage.evaluate(`new Promise((ok, fail) => {
      const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/chatty/chat');
      window.__ws = ws;
      ws.onopen = () => { ws.send('hello through porthole'); ok(); };
      ws.onerror = () => fail(new Error('websocket failed'));
    })`);
    const tunnel = page.locator('tr.tunnel-row[data-app="chatty"]');
    await tunnel.waitFor({ timeout: 10_000 });
    assert.equal(await tunnel.locator('td[data-label="Path"]').innerText(), '/chatty/chat');
    assert.match(await tunnel.locator('td[data-label="Client"]').innerText(), /127\.0\.0\.1/);
    const bytes = async () => ({
      in: Number(await tunnel.locator('td.bytes-in .bytes').getAttribute('data-bytes')),
      out: Number(await tunnel.locator('td.bytes-out .bytes').getAttribute('data-bytes')),
    });
    const waitBytes = async (atLeast: { in: number; out: number }) => {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const b = await bytes();
        if (b.in >= atLeast.in && b.out >= atLeast.out) return b;
        assert.ok(Date.now() < deadline, `bytes reach ${JSON.stringify(atLeast)}; last ${JSON.stringify(b)}`);
        await page.waitForTimeout(200);
      }
    };
    const first = await waitBytes({ in: 1, out: 1 });
    await appPage.evaluate(`(() => { for (let i = 0; i < 20; i++) window.__ws.send('x'.repeat(1000)); })()`);
    const second = await waitBytes({ in: first.in + 20_000, out: first.out + 20_000 });
    assert.ok(second.in > first.in && second.out > first.out, `growing: ${JSON.stringify({ first, second })}`);
    assert.match(await tunnel.locator('td.bytes-in').innerText(), /KiB/);


    await shot('live-open');

    // A second one stays open while the first closes with a code and a reason.
    await appPage.evaluate(`new Promise((ok) => {
      const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/chatty/feed');
      window.__ws2 = ws;
      ws.onopen = () => { ws.send('second'); ok(); };
    })`);
    await page.locator('tr.tunnel-row[data-app="chatty"]').nth(1).waitFor();
    await appPage.evaluate(`window.__ws.close(4001, 'bye')`);
    const closed = page.locator('tr.close-row[data-app="chatty"][data-code="4001"]');
    await closed.waitFor({ timeout: 10_000 });
    assert.equal(await closed.locator('td.close-reason').innerText(), 'bye');
    assert.equal(await closed.locator('td[data-label="Closed by"]').innerText(), 'client');
    assert.match(await closed.locator('td.close-code').innerText(), /4001\s+application-defined/);
    await page.waitForFunction(() => document.querySelectorAll('tr.tunnel-row').length === 1);
    assert.equal(await page.locator('tr.tunnel-row td[data-label="Path"]').innerText(), '/chatty/feed');
    await shot('live', 'live');
    await appPage.evaluate(`window.__ws2.close(1000)`);
    await page.getByText(/No open tunnels/).waitFor();
  });

  test('a refused upgrade shows in the gateway events with its code', async () => {
    assert.ok(appPage);
    const refused = await appPage.evaluate(`new Promise((ok) => {
      const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/no-such-app/ws');
      ws.onclose = (e) => ok({ code: e.code });
    })`);
    assert.ok(refused);
    await view('Logs');
    const event = page.locator('.events .event.level-warn, .events .event.level-error').filter({ has: page.locator('code.code') });
    await event.first().waitFor({ timeout: 10_000 });
    assert.match(await event.first().locator('code.code').innerText(), /^PH_ERR_[A-Z_]+$/);
    assert.match(await event.first().innerText(), /upgrade/);
  });

  test('reads the app\u2019s log lines as it prints them, stderr marked', async () => {
    assert.ok(appPage);
    await view('Logs');
    await page.selectOption('#log-app', 'chatty');
    const log = page.getByRole('log', { name: 'Output of chatty' });
    await log.locator('.line', { hasText: 'chatty app listening on' }).waitFor();
    // Lines printed now, with the page open (one of them markup, shown as text).
    const stamp = Date.now().toString(36);
    await appPage.evaluate(`fetch('/chatty/say?out=' + encodeURIComponent('<b id="bold-${stamp}">not bold</b>'))`);
    await log.locator('.line', { hasText: `<b id="bold-${stamp}">not bold</b>` }).waitFor();
    assert.equal(await page.locator(`#bold-${stamp}`).count(), 0);
    await appPage.evaluate(`fetch('/chatty/say?out=OUT-${stamp}').then(() => fetch('/chatty/say?err=ERR-${stamp}'))`);
    const out = log.locator('.line', { hasText: `OUT-${stamp}` });
    const err = log.locator('.line', { hasText: `ERR-${stamp}` });
    await out.waitFor();
    await err.waitFor();
    assert.match((await err.getAttribute('class')) ?? '', /\bstderr\b/);
    assert.equal(await err.locator('.stream').innerText(), 'err', 'stderr has a visible marker, not colour alone');
    assert.match((await out.getAttribute('class')) ?? '', /\bstdout\b/);
    assert.equal(await out.locator('.stream').innerText(), '');
    // The supervisor's own line about the start is marked as Porthole's.
    const started = log.locator('.line', { hasText: '[porthole] started pid' }).first();
    assert.match((await started.getAttribute('class')) ?? '', /\bporthole\b/);
    assert.equal(await started.locator('.stream').innerText(), 'ph');
    // The gateway's own events, in their panel: the apps' state changes at least.
    await page.locator('.events .event').first().waitFor();
    await shot('logs', 'logs');
  });

  test('follows the newest log lines unless the user scrolled up', async () => {
    assert.ok(appPage);
    const log = page.getByRole('log', { name: 'Output of chatty' });
    const atBottom = () => log.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight < 30);
    const say = (n: number, tag: string) => appPage!.evaluate(`Promise.all(Array.from({ length: ${n} }, (_, i) => fetch('/chatty/say?out=${tag}-' + i)))`);
    await say(60, 'fill');
    await log.locator('.line', { hasText: 'fill-59' }).waitFor();
    await page.waitForTimeout(200);
    assert.ok(await atBottom(), 'at the bottom while following');
    await log.evaluate((el) => el.scrollTo({ top: 0 }));
    await say(5, 'later');
    await log.locator('.line', { hasText: 'later-4' }).waitFor();
    await page.waitForTimeout(200);
    assert.equal(await log.evaluate((el) => el.scrollTop), 0, 'stays where the user scrolled');
    const jump = page.getByRole('button', { name: /Follow the latest/ });
    await jump.click();
    assert.ok(await atBottom());
  });

  test('a hidden tab lets its log follow go, and follows again when shown', async () => {
    assert.ok(appPage);
    const follows = (r: { url(): string }) => /\/apps\/chatty\/logs\?.*follow=1/.test(r.url());
    // As the browser does when the tab goes to the background (a string: tsx would wrap a function).
    const setHidden = (hidden: boolean) =>
      page.evaluate(`Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => '${hidden ? 'hidden' : 'visible'}' });
        document.dispatchEvent(new Event('visibilitychange'))`);
    const ended = page.waitForEvent('requestfailed', { predicate: follows, timeout: 5000 });
    await setHidden(true);
    await ended;
    await page.getByText('paused while the tab is hidden').waitFor();
    const again = page.waitForEvent('request', { predicate: follows, timeout: 5000 });
    await setHidden(false);
    await again;
    await page.locator('.log-status', { hasText: 'following' }).waitFor();
    const stamp = Date.now().toString(36);
    await appPage.evaluate(`fetch('/chatty/say?out=SHOWN-${stamp}')`);
    await page.getByRole('log', { name: 'Output of chatty' }).locator('.line', { hasText: `SHOWN-${stamp}` }).waitFor();
  });

  test('keeps the last 2000 log lines, and says so', async () => {
    assert.ok(appPage);
    const log = page.getByRole('log', { name: 'Output of chatty' });
    await appPage.evaluate(`fetch('/chatty/say?out=bulk&n=2100')`);
    await log.locator('.line', { hasText: 'bulk-2099' }).waitFor();
    assert.equal(await log.locator('.line').count(), 2000);
    assert.match(await log.locator('.line').first().innerText(), /bulk-100$/);
    await page.getByText('2000 lines (the last 2000)').waitFor();
  });

  test('the live feed comes back after it drops, retrying with growing delays and saying so meanwhile', async () => {
    const tries: number[] = [];
    await page.route('**/_porthole/api/live', async (route) => {
      tries.push(Date.now());
      if (tries.length <= 3) await route.fulfill({ status: 503, contentType: 'text/plain', body: 'down for a moment' });
      else await route.continue();
    });
    try {
      await page.reload();
      await page.locator('.live-status.retrying').waitFor();
      await page.locator('.live-status.open').waitFor({ timeout: 15_000 });
      assert.equal(tries.length, 4);
      const gaps = tries.slice(1).map((t, i) => t - tries[i]);
      // 0.5 s, 1 s, 2 s at least (a loaded machine only adds to each).
      assert.ok(gaps[0] >= 450 && gaps[1] >= 950 && gaps[2] >= 1950, `backoff: ${gaps.join(', ')} ms`);
      // Live again: an app change reaches the table without a reload.
      await view('Apps');
      assert.equal(await row('hello').getAttribute('data-state'), 'running');
      await gw.api('POST', '/_porthole/api/apps/hello/stop');
      await page.locator('tr.app-row[data-app="hello"][data-state="stopped"]').waitFor({ timeout: 15_000 });
    } finally {
      await page.unroute('**/_porthole/api/live');
    }
  });

  test('a log follow that drops starts over when it comes back, without repeating the tail', async () => {
    let first = true;
    await page.route('**/_porthole/api/apps/chatty/logs?**', async (route) => {
      if (!first) return route.continue();
      first = false;
      // One message from a stream that then ends (a restarted gateway, a proxy's timeout).
      await route.fulfill({ status: 200, contentType: 'text/event-stream', body: 'data: {"stream":"stdout","text":"from the stream that dropped","at":1}\n\n' });
    });
    try {
      await view('Logs');
      await page.selectOption('#log-app', '');
      await page.selectOption('#log-app', 'chatty');
      const log = page.getByRole('log', { name: 'Output of chatty' });
      // The tail (the last 200 lines) ends with the bulk printed above.
      await log.locator('.line', { hasText: 'bulk-2099' }).waitFor();
      assert.equal(first, false, 'the first follow was the one that dropped');
      assert.equal(await log.locator('.line', { hasText: 'from the stream that dropped' }).count(), 0, 'the new tail replaces the old lines');
      assert.equal(await log.locator('.line', { hasText: 'bulk-2099' }).count(), 1);
      assert.equal(await log.locator('.line').count(), 200);
      await view('Apps');
      assert.equal(await page.getByRole('link', { name: 'Logs', exact: true }).getAttribute('href'), '#logs/chatty', 'the Logs tab remembers the app');
    } finally {
      await page.unroute('**/_porthole/api/apps/chatty/logs?**');
    }
  });

  test('seven dashboard tabs share one live stream, so apps on the same origin still load; another tab takes over when the leading one goes', async () => {
    const origin = new URL(gw.url).origin;
    const lives: string[] = [];
    const onRequest = (r: { url(): string }) => {
      if (new URL(r.url()).pathname === '/_porthole/api/live') lives.push(r.url());
    };
    context.on('request', onRequest);
    const tabs: Page[] = [];
    try {
      for (let i = 0; i < 7; i++) {
        const tab = await context.newPage();
        await tab.goto(`${origin}/_porthole/#apps`);
        await tab.locator('tr.app-row[data-app="hello"]').waitFor();
        tabs.push(tab);
      }
      for (const tab of tabs) await tab.locator('.live-status.open').waitFor();
      assert.equal(lives.length, 0, 'the first tab already holds the stream');
      // Every tab sees a change.
      await gw.api('POST', '/_porthole/api/apps/hello/start');
      for (const tab of tabs) await tab.locator('tr.app-row[data-app="hello"][data-state="running"]').waitFor({ timeout: 30_000 });
      // Chromium keeps 6 connections to a host: a stream per tab would leave an app's page none.
      const app = await context.newPage();
      await app.goto(`${origin}/hello/`, { timeout: 10_000 });
      assert.match(await app.content(), /Directory listing/);
      await app.close();
      // The leading tab goes: one of the others opens the stream and they all go on.
      await page.goto('about:blank');
      const deadline = Date.now() + 10_000;
      while (lives.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.equal(lives.length, 1, 'one tab takes over');
      await gw.api('POST', '/_porthole/api/apps/hello/stop');
      for (const tab of tabs) await tab.locator('tr.app-row[data-app="hello"][data-state="stopped"]').waitFor({ timeout: 15_000 });
    } finally {
      context.off('request', onRequest);
      for (const tab of tabs) await tab.close();
    }
    // Back to one tab, which leads again.
    await page.goto(`${origin}/_porthole/#apps`);
    await page.locator('.live-status.open').waitFor();
  });

  test('stops the app', async () => {
    await view('Apps');
    await row('chatty').getByRole('button', { name: 'Stop chatty', exact: true }).click();
    await page.locator('tr.app-row[data-app="chatty"][data-state="stopped"]').waitFor({ timeout: 15_000 });
    assert.equal(await row('chatty').locator('td[data-label="PID"]').innerText(), '—');
  });

  test('removes an app by keyboard, after asking in place (Escape cancels)', async () => {
    // Its description is markup: the page shows it as text.
    const markup = '<img src=x onerror="window.__xss = 1">';
    const put = await gw.api('PUT', '/_porthole/api/apps/scratch', { url: 'http://127.0.0.1:9', description: markup });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    await row('scratch').getByText(markup).waitFor();
    assert.equal(await row('scratch').locator('img').count(), 0);
    assert.equal(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss), undefined);
    const remove = row('scratch').getByRole('button', { name: 'Remove scratch', exact: true });
    await remove.focus();
    await page.keyboard.press('Enter');
    const ask = row('scratch').getByRole('group', { name: 'Remove scratch?' });
    await ask.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Yes, remove', 'focus on the confirm button');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Cancel', 'Tab moves on to Cancel');
    await page.waitForTimeout(1100); // the table re-renders every second: focus must stay where the user put it
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Cancel', 'focus stays on Cancel');
    await page.keyboard.press('Escape');
    await ask.waitFor({ state: 'detached' });
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Remove scratch', 'Escape gives focus back');
    await page.keyboard.press('Enter');
    await ask.waitFor();
    await page.keyboard.press('Enter');
    await row('scratch').waitFor({ state: 'detached' });
    await page.getByText('Removed scratch.').waitFor();
    assert.equal((await gw.api('GET', '/_porthole/api/apps/scratch')).status, 404);
  });

  test('reads at phone width: no sideways scrolling, tables as cards', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const v of ['Apps', 'Live tunnels', 'Logs'] as const) {
      await view(v);
      await page.waitForTimeout(150);
      const wide = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(wide <= 390, `${v}: the page is ${wide} px wide`);
      await shot(`phone-${v.replace(' ', '-').toLowerCase()}`);
    }
    await view('Apps');
    assert.equal(await row('chatty').evaluate((el) => getComputedStyle(el).display), 'flex', 'a row is a card');
    await shot('apps-phone');
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  test('logs out and is refused: the API answers 401 and the page shows the login form; another tab says the session ended', async () => {
    const other = await context.newPage();
    await other.goto(`${new URL(gw.url).origin}/_porthole/#apps`);
    await other.locator('tr.app-row[data-app="chatty"]').waitFor();

    await page.getByRole('button', { name: 'Log out' }).click();
    await page.locator('form.login input#token').waitFor();
    assert.equal(new URL(page.url()).pathname, '/_porthole/');
    const status = await page.evaluate(`fetch('/_porthole/api/apps').then((r) => r.status)`);
    assert.equal(status, 401);
    await shot('login');

    // The other tab held the same session: its next call is refused and it says so.
    await other.getByRole('button', { name: 'Start chatty', exact: true }).click();
    await other.getByRole('alert').filter({ hasText: /session ended/i }).waitFor();
    assert.equal(await other.getByRole('link', { name: 'log in again' }).getAttribute('href'), '/_porthole/');
    const replay = await other.evaluate(`fetch('/_porthole/api/apps', { headers: { 'X-Porthole-CSRF': document.querySelector('meta[name=porthole-csrf]').content } }).then((r) => r.status)`);
    assert.equal(replay, 401, 'the CSRF secret alone opens nothing');
    // Its live stream stopped with it: the header no longer claims to be live.
    await other.locator('.live-status.ended').waitFor();
    await other.close();
  });

  test('logs in again by pasting the token into the login form (a wrong one is refused with the reason)', async () => {
    await page.fill('#token', 'not-the-token');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.locator('form.login p.error', { hasText: /not the admin token/ }).waitFor();
    await shot('login-error');
    await page.fill('#token', gw.token);
    await page.getByRole('button', { name: 'Log in' }).click();
    await row('chatty').waitFor();
    assert.equal(new URL(page.url()).pathname, '/_porthole/');
    await page.locator('.live-status.open').waitFor();
  });

  test('no console errors (CSP included) and nothing loaded from outside the gateway', () => {
    assert.deepEqual(problems, []);
    assert.deepEqual(foreign, []);
  });
});
