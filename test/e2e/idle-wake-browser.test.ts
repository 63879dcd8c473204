/**
 * wake_on_request in Chromium (issue 12, section 3): a page of a sleeping app
 * first shows the waiting page (the app's name and state, 503, no script, no
 * CSP violation), which reloads itself and lands on the app's real page once
 * the app is ready; then the app's page opens a WebSocket through the gateway.
 * The waiting page's screenshot is written to the temp dir, or to
 * $IDLE_SCREENSHOT when set (to look at it).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { launchChromium } from '../helpers/browser.js';
import { request } from '../helpers/http.js';
import { freePort, sleepAppCmd, startSleepGateway } from '../helpers/sleep-app.js';

test('Chromium gets the waiting page for a sleeping app, and lands on the real page once the app is ready', async (t) => {
  const gw = await startSleepGateway();
  t.after(() => gw.cleanup());
  const dir = mkdtempSync(join(tmpdir(), 'porthole-wake-browser-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // Ready 5 s after it is spawned: longer than the 1 s a browser's GET is held before the waiting page.
  const reg = await gw.webapp({ action: 'register', name: 'notes', port: await freePort(), cmd: sleepAppCmd({ DELAY_MS: 5000 }), wake_on_request: true, idle_stop: '30s' });
  assert.equal(reg.status, 200, JSON.stringify(reg.body));
  assert.equal((await gw.state('notes')).state, 'stopped');

  const browser = await launchChromium();
  t.after(() => browser.close());
  const page = await browser.newPage();
  // Chromium logs every non-2xx navigation as a console error: only CSP refusals and script errors count here.
  const problems: string[] = [];
  page.on('console', (m) => /Content Security Policy|Refused to/i.test(m.text()) && problems.push(m.text()));
  page.on('pageerror', (e) => problems.push(e.message));
  const navigations: { status: number; headers: Record<string, string> }[] = [];
  page.on('response', (r) => r.request().isNavigationRequest() && navigations.push({ status: r.status(), headers: r.headers() }));
  const statuses = () => navigations.map((n) => n.status).join(', ');

  const url = `${gw.url}/notes/`;
  const real = page.waitForResponse((r) => r.url() === url && r.status() === 200, { timeout: 30_000 });
  await page.goto(url);
  const first = navigations[0];
  assert.equal(first?.status, 503, `navigations: ${statuses()}`);
  assert.equal(first.headers['x-porthole-error'], 'PH_ERR_APP_WAKING');
  assert.equal(first.headers['retry-after'], '1');
  assert.match(first.headers['content-security-policy'] ?? '', /default-src 'none'/);
  assert.equal(await page.title(), 'notes is starting');
  assert.equal(await page.textContent('h1'), 'notes is starting');
  assert.equal(await page.textContent('#state'), 'starting');
  assert.equal(await page.locator('script').count(), 0, 'no script: the reload is a meta refresh');
  const shot = process.env.IDLE_SCREENSHOT ?? join(dir, 'waiting-page.png');
  await page.screenshot({ path: shot });
  assert.ok(existsSync(shot) && statSync(shot).size > 1000, 'the waiting page was drawn');

  // No script: the page reloads by itself until the app answers.
  await real;
  await page.waitForSelector('#real', { timeout: 30_000 });
  const app = await gw.state('notes');
  assert.equal(app.state, 'running');
  assert.equal(await page.textContent('#real'), `app notes pid ${app.pid}`);
  assert.equal(page.url(), url, 'the same URL: the app was woken where it was asked for');
  assert.ok(navigations.length >= 2 && navigations.at(-1)?.status === 200, `navigations: ${statuses()}`);
  assert.ok(navigations.slice(0, -1).every((n) => n.status === 503), `waiting pages, then the real one: ${statuses()}`);
  assert.deepEqual(problems, [], 'no CSP violation or error on the way');

  // The real page's WebSocket goes through the gateway like any other.
  const echoed = await page.evaluate(`new Promise((ok, fail) => {
    const ws = new WebSocket(location.href.replace('http', 'ws'));
    ws.onopen = () => ws.send('from the page');
    ws.onmessage = (e) => ok(e.data);
    ws.onerror = () => fail(new Error('websocket failed'));
  })`);
  assert.equal(echoed, 'from the page');
});

test('a browser request for an app that wakes within a second gets the real page at once, never the waiting page', async (t) => {
  const gw = await startSleepGateway();
  t.after(() => gw.cleanup());
  await gw.webapp({ action: 'register', name: 'quick', port: await freePort(), cmd: sleepAppCmd(), wake_on_request: true });
  const r = await request(`${gw.url}/quick/`, { headers: { Accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' } });
  assert.equal(r.status, 200);
  assert.match(r.text, /id="real"/);
});
