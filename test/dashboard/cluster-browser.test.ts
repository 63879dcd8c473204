/**
 * Issue 11, "the dashboard works against any node and shows the whole
 * cluster", as a user lives it in Chromium: two nodes in this process
 * sharing a real redis-server, node a's dashboard. The cluster panel lists
 * both nodes; an app registered for node b through a's form (by keyboard)
 * shows with node b and runs there; stopped through a, b stops it; node b
 * stopping shows it down (in words, not colour alone) within the heartbeat
 * TTL, and its app "node down" with the reason; Redis stopping shows the
 * store down and the refusal. At 390 px nothing scrolls sideways. No console
 * error, nothing loaded from outside the gateway.
 *
 * Screenshots go to a temp dir (removed) unless PORTHOLE_SCREENSHOTS=DIR;
 * with PORTHOLE_DOCS_SCREENSHOTS=1 the ones docs/dashboard.md shows are
 * written to docs/images/ as well.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import type { Page } from 'playwright-core';
import { Redis } from 'ioredis';
import { launchChromium } from '../helpers/browser.js';
import { startRedis } from '../helpers/redis.js';
import { startNode } from '../cluster/helpers.js';

const APP = fileURLToPath(new URL('../fixtures/cluster/echo-app.mjs', import.meta.url));
const DOCS_IMAGES = fileURLToPath(new URL('../../docs/images/', import.meta.url));
/** test/cluster/helpers.ts gives every node `heartbeat_ttl: '2s'`. */
const TTL_MS = 2_000;
/** Added to the TTL in the waits: a loaded machine delays the nodes' Redis reads (the time taken is reported). */
const SLACK_MS = 3_000;

test('the dashboard of node a shows the whole cluster, live, in Chromium', { timeout: 180_000 }, async (t) => {
  const shots = process.env.PORTHOLE_SCREENSHOTS || mkdtempSync(join(tmpdir(), 'porthole-cluster-shots-'));
  mkdirSync(shots, { recursive: true });
  t.after(() => {
    if (!process.env.PORTHOLE_SCREENSHOTS) rmSync(shots, { recursive: true, force: true });
  });
  const redis = await startRedis();
  t.after(() => redis.close());
  const a = await startNode(t, 'a', redis.url);
  const b = await startNode(t, 'b', redis.url);
  const browser = await launchChromium();
  t.after(() => browser.close().catch(() => undefined));
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
  const page = await context.newPage();
  const origin = new URL(a.url).origin;
  const problems: string[] = [];
  const foreign: string[] = [];
  page.on('console', (m) => {
    if ((m.type() === 'error' || m.type() === 'warning') && !m.text().startsWith('Failed to load resource')) problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => {
    if (new URL(r.url()).origin !== origin) foreign.push(r.url());
  });

  /** The page from the top down to the end of the apps panel (the register form below is in the other pictures). */
  const shot = async (p: Page, name: string, docs?: string) => {
    await p.evaluate(() => {
      (document.activeElement as HTMLElement | null)?.blur();
      window.scrollTo(0, 0);
    });
    await p.mouse.move(0, 0);
    const apps = await p.locator('section[aria-labelledby="apps-title"]').boundingBox();
    const width = p.viewportSize()!.width;
    const clip = apps ? { x: 0, y: 0, width, height: Math.ceil(apps.y + apps.height + 16) } : undefined;
    await p.screenshot({ path: join(shots, `${name}.png`), fullPage: true, clip });
    if (docs && process.env.PORTHOLE_DOCS_SCREENSHOTS === '1') {
      mkdirSync(DOCS_IMAGES, { recursive: true });
      await p.screenshot({ path: join(DOCS_IMAGES, `${docs}.png`), fullPage: true, clip });
    }
  };
  const nodeRow = (name: string) => page.locator(`tr.node-row[data-node="${name}"]`);
  const appRow = (name: string) => page.locator(`tr.app-row[data-app="${name}"]`);

  await t.test('logs in to node a and sees both nodes up, a as this node, one leader, the store up', async () => {
    const link = await a.api('POST', '/login-link');
    assert.equal(link.status, 200, JSON.stringify(link.body));
    await page.goto(`${origin}${link.body.path}`);
    await page.getByRole('heading', { name: /^Cluster/ }).waitFor();
    await page.locator('.live-status.open').waitFor();
    await nodeRow('b').waitFor({ timeout: 10_000 });
    for (const name of ['a', 'b']) {
      assert.equal(await nodeRow(name).getAttribute('data-up'), 'true');
      assert.equal((await nodeRow(name).locator('td[data-label="Health"] .health').innerText()).replace(/\W+/g, ' ').trim(), 'up', `node ${name} says "up" in words`);
      assert.match(await nodeRow(name).locator('td[data-label="Address"]').innerText(), /^127\.0\.0\.1:\d+$/);
      assert.match(await nodeRow(name).locator('td[data-label="Version"]').innerText(), /^\d+$/);
    }
    assert.equal(await nodeRow('a').locator('.tag.self').innerText(), 'this node');
    assert.equal(await nodeRow('b').locator('.tag.self').count(), 0);
    await page.waitForFunction(() => document.querySelectorAll('tr.node-row .tag.leader').length === 1, undefined, { timeout: 10_000 });
    assert.equal(await page.locator('.store').getAttribute('data-store'), 'up');
    assert.match(await page.locator('.store').innerText(), /redis:\/\/127\.0\.0\.1:\d+/);
    assert.match(await page.locator('#cluster-summary').innerText(), /2 of 2 nodes up · this is node a/);
  });

  await t.test('registers an app for node b through node a\u2019s form, by keyboard: it shows with node b and runs there', async () => {
    const select = page.locator('#reg-node');
    assert.equal(await select.inputValue(), 'a', 'this node by default');
    assert.deepEqual(await select.locator('option').allInnerTexts(), ['a (this node)', 'b', 'any (a live node the cluster picks)']);
    await page.locator('#reg-name').focus();
    await page.keyboard.type('echo');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'reg-node', 'Tab goes from the name to the node');
    assert.notEqual(await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle), 'none', 'the focus is visible');
    await page.keyboard.press('ArrowDown');
    assert.equal(await select.inputValue(), 'b');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'reg-cmd');
    await page.keyboard.type(`${process.execPath} ${APP}`);
    await page.locator('#reg-autostart').focus();
    await page.keyboard.press('Space');
    assert.equal(await page.locator('#reg-autostart').isChecked(), true);
    await page.locator('#reg-name').focus();
    await page.keyboard.press('Enter');
    await page.getByText('Registered echo').waitFor();
    assert.equal(await select.inputValue(), 'a', 'the form is back to this node');
    await appRow('echo').waitFor();
    assert.equal(await appRow('echo').getAttribute('data-node'), 'b');
    assert.equal((await appRow('echo').locator('td[data-label="Node"]').innerText()).trim(), 'b');
    // It runs on b (autostart); a learns its state from b's heartbeat, and the table follows without a reload.
    await page.locator('tr.app-row[data-app="echo"][data-state="running"]').waitFor({ timeout: 15_000 });
    assert.ok(b.server.supervisor.status('echo')?.pid, 'node b runs it');
    assert.equal(a.server.supervisor.status('echo'), undefined, 'node a does not');
    assert.equal(String(b.server.supervisor.status('echo')?.pid), (await appRow('echo').locator('td[data-label="PID"]').innerText()).trim(), 'the PID is b\u2019s process');
    await nodeRow('b').locator('.node-apps code', { hasText: 'echo' }).waitFor();
    await page.getByRole('button', { name: 'Clear' }).click();

    // A stateless app for any node: the leader places it on the node with the fewest apps (a), and the table says so.
    assert.equal((await a.api('PUT', '/apps/board', { cmd: `${process.execPath} ${APP}`, node: 'any', autostart: true, description: 'stateless: node any' })).status, 200);
    await page.locator('tr.app-row[data-app="board"][data-state="running"][data-node="a"]').waitFor({ timeout: 15_000 });
    assert.match(await appRow('board').locator('td[data-label="Node"]').innerText(), /a\s+this node/);
    await nodeRow('a').locator('.node-apps code', { hasText: 'board' }).waitFor();
    await shot(page, 'cluster-light', 'dashboard-cluster');
    const dark = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'dark' });
    t.after(() => dark.close().catch(() => undefined));
    const darkPage = await dark.newPage();
    const link = await a.api('POST', '/login-link');
    await darkPage.goto(`${origin}${link.body.path}`);
    await darkPage.locator('tr.app-row[data-app="board"][data-state="running"]').waitFor({ timeout: 15_000 });
    await shot(darkPage, 'cluster-dark');
    await dark.close();
  });

  await t.test('a node that is not in the cluster is named beside the node field', async () => {
    // A node forgotten between the page's last update and the click: the server's 400 names the field.
    await page.locator('#reg-node').evaluate((el) => el.insertAdjacentHTML('beforeend', '<option value="ghost">ghost</option>'));
    await page.fill('#reg-name', 'lost');
    await page.selectOption('#reg-node', 'ghost');
    await page.fill('#reg-url', 'http://127.0.0.1:9');
    await page.getByRole('button', { name: 'Register', exact: true }).click();
    const error = page.locator('#reg-node-error');
    await error.waitFor();
    assert.match(await error.innerText(), /no node named "ghost" in this cluster/);
    assert.equal(await page.getAttribute('#reg-node', 'aria-invalid'), 'true');
    assert.match((await page.getAttribute('#reg-node', 'aria-describedby')) ?? '', /\breg-node-error\b/);
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'reg-node', 'focus goes to the field to fix');
    assert.match(await page.locator('#register-general').innerText(), /fix the field marked below/);
    assert.equal((await a.api('GET', '/apps/lost')).status, 404);
    await page.getByRole('button', { name: 'Clear' }).click();
  });

  await t.test('stops and starts node b\u2019s app through node a by keyboard: node b carries it out', async () => {
    const stop = appRow('echo').getByRole('button', { name: 'Stop echo', exact: true });
    await stop.focus();
    await page.keyboard.press('Enter');
    await page.locator('tr.app-row[data-app="echo"][data-state="stopped"]').waitFor({ timeout: 15_000 });
    assert.equal(b.server.supervisor.status('echo')?.state, 'stopped');
    await appRow('echo').getByRole('button', { name: 'Start echo', exact: true }).focus();
    await page.keyboard.press('Enter');
    await page.locator('tr.app-row[data-app="echo"][data-state="running"]').waitFor({ timeout: 15_000 });
  });

  await t.test('follows the log of node b’s app through node a, as it prints', async () => {
    await appRow('echo').getByRole('link', { name: 'Logs of echo' }).click();
    const log = page.getByRole('log', { name: 'Output of echo' });
    // The start just above: node b's supervisor line and the app's own, relayed by node a.
    await log.locator('.line', { hasText: /listening on \d+/ }).first().waitFor({ timeout: 10_000 });
    await log.locator('.line.porthole', { hasText: 'started pid' }).first().waitFor();
    await page.locator('.log-status', { hasText: 'following' }).waitFor();
    // A restart through a prints again on b; the followed stream brings it.
    const before = await log.locator('.line', { hasText: /listening on/ }).count();
    assert.equal((await a.api('POST', '/apps/echo/restart')).status, 200);
    await page.waitForFunction((n) => [...document.querySelectorAll('[role="log"] .line')].filter((l) => /listening on/.test(l.textContent ?? '')).length > n, before, { timeout: 15_000 });
    // The restarted app is running on b, and node a has heard so from b's heartbeat (not the state from before the restart).
    const deadline = Date.now() + 15_000;
    const heard = async () => {
      const [onA, onB] = await Promise.all([a.api('GET', '/apps/echo'), b.api('GET', '/apps/echo')]);
      return onB.body.app?.state === 'running' && onA.body.app?.state === 'running' && onA.body.app?.pid === onB.body.app?.pid;
    };
    while (!(await heard())) {
      assert.ok(Date.now() < deadline, 'echo is running again on b, as a sees it');
      await new Promise((r) => setTimeout(r, 50));
    }
    await page.getByRole('navigation', { name: 'Views' }).getByRole('link', { name: /^Apps/ }).click();
    await page.locator('tr.app-row[data-app="echo"][data-state="running"]').waitFor({ timeout: 15_000 });
  });

  await t.test('node b stopping shows it down (bounded by the heartbeat TTL plus a margin for a loaded machine), and its app "node down" with the reason', async () => {
    // A second tab follows the first tab's stream (shared-live.js): it is told too.
    const tab = await context.newPage();
    t.after(() => tab.close().catch(() => undefined));
    await tab.goto(`${origin}/_porthole/#apps`);
    await tab.locator('tr.node-row[data-node="b"][data-up="true"]').waitFor();
    const stopping = Date.now();
    await b.close();
    await page.locator('tr.node-row[data-node="b"][data-up="false"]').waitFor({ timeout: TTL_MS + SLACK_MS });
    t.diagnostic(`node b shown down ${Date.now() - stopping} ms after it began to stop (heartbeat TTL ${TTL_MS} ms)`);
    assert.equal((await nodeRow('b').locator('td[data-label="Health"] .health').innerText()).replace(/\W+/g, ' ').trim(), 'down', 'said in words');
    assert.match(await nodeRow('b').locator('td[data-label="Last seen"]').innerText(), /ago$/);
    assert.match(await page.locator('#cluster-summary').innerText(), /1 of 2 nodes up/);
    await tab.locator('tr.node-row[data-node="b"][data-up="false"]').waitFor({ timeout: SLACK_MS });
    await tab.close();
    await page.locator('tr.app-row[data-app="echo"][data-node-down="true"]').waitFor({ timeout: 5_000 });
    assert.match(await appRow('echo').locator('td[data-label="Node"]').innerText(), /b\s+✕?\s*node down/);
    const state = await appRow('echo').locator('td[data-label="State"]').innerText();
    assert.match(state, /unknown/);
    assert.match(state, /last known: running/);
    assert.match(state, /node b, which is down/);
    const start = appRow('echo').getByRole('button', { name: 'Restart echo', exact: true });
    assert.equal(await start.isDisabled(), true, 'nothing can restart it while its node is down');
    assert.match((await start.getAttribute('title')) ?? '', /node b/);
    assert.equal(await appRow('echo').locator('td[data-label="PID"]').innerText(), '—', 'a pid on a node that is down is not known');
    // The app on a live node goes on.
    assert.equal(await appRow('board').getAttribute('data-state'), 'running');
    assert.equal(await appRow('board').getAttribute('data-node-down'), null);
    assert.equal(await nodeRow('a').getByRole('button', { name: /^Forget/ }).count(), 0, 'a node that is up is not forgotten');
    // The "echo is starting." notice of the step before, dismissed (it would go by itself) for a clean picture.
    await page.getByRole('button', { name: 'Dismiss' }).click({ timeout: 2000 }).catch(() => undefined);
    await shot(page, 'cluster-node-down', 'dashboard-cluster-node-down');
  });

  await t.test('forgetting node b by keyboard is asked first, and refused while an app still names it', async () => {
    const forget = nodeRow('b').getByRole('button', { name: 'Forget node b', exact: true });
    await forget.focus();
    await page.keyboard.press('Enter');
    const ask = nodeRow('b').getByRole('group', { name: 'Forget node b?' });
    await ask.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Yes, forget', 'focus on the confirm button');
    await page.keyboard.press('Escape');
    await ask.waitFor({ state: 'detached' });
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Forget node b', 'Escape gives focus back');
    await page.keyboard.press('Enter');
    await ask.waitFor();
    await page.keyboard.press('Enter');
    const refused = page.locator('section.cluster .notice.error');
    await refused.waitFor({ timeout: 10_000 }).catch(async (err) => {
      throw new Error(`${(err as Error).message}\nthe panel says: ${await page.locator('section.cluster').innerText()}`);
    });
    assert.match(await refused.innerText(), /Forgetting node b failed: .*echo.*\(PH_ERR_CONFLICT\)/);
    assert.equal(await nodeRow('b').count(), 1, 'still listed');
    await refused.getByRole('button', { name: 'Dismiss' }).click();
  });

  await t.test('Redis stopping shows the store down, since when, and that changes are refused', async () => {
    await redis.stop();
    const store = page.locator('.store[data-store="down"]');
    await store.waitFor({ timeout: 10_000 });
    assert.match(await store.innerText(), /down\s+since \d\d:\d\d:\d\d: serving the last registry \(version \d+\); changes are refused\./);
    assert.match(await store.locator('.health').innerText(), /down/);
    await page.fill('#reg-name', 'refused');
    await page.fill('#reg-url', 'http://127.0.0.1:9');
    await page.getByRole('button', { name: 'Register', exact: true }).click();
    await page.locator('#register-general', { hasText: /Not registered/ }).waitFor();
    assert.match(await page.locator('#register-general').innerText(), /PH_ERR_STORE_UNAVAILABLE|store/i);
    await shot(page, 'cluster-store-down');
    await redis.restart();
    await page.locator('.store[data-store="up"]').waitFor({ timeout: 15_000 });
    await page.getByRole('button', { name: 'Clear' }).click();
  });

  await t.test('reads at phone width: no sideways scrolling, nodes as cards', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(150);
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(wide <= 390, `the page is ${wide} px wide`);
    assert.equal(await nodeRow('a').evaluate((el) => getComputedStyle(el).display), 'flex', 'a node row is a card');
    assert.ok(await page.locator('#reg-node').isVisible());
    await shot(page, 'cluster-phone');
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  await t.test('a heartbeat written into Redis with markup in its name is not listed, and a javascript: URL gives no link', async () => {
    // Whoever can write to Redis can do worse; the nodes still refuse what no node could have written.
    const redisClient = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redisClient.connect();
    const prefix = `t${process.pid}:`;
    const markup = '<img src=x onerror="window.__xss=1">';
    const name = 'rogue';
    const beat = (n: string) => ({ name: n, instance: 'rogue', advertise: '10.213.0.9:1', url: 'javascript:window.__xss=2', started_at: new Date().toISOString(), version: 1, apps: {} });
    await redisClient
      .multi()
      .set(`${prefix}node:${markup}`, JSON.stringify(beat(markup)), 'PX', 60_000)
      .hset(`${prefix}nodes`, markup, JSON.stringify({ advertise: '10.213.0.9:1' }))
      .set(`${prefix}node:${name}`, JSON.stringify(beat(name)), 'PX', 60_000)
      .hset(`${prefix}nodes`, name, JSON.stringify({ advertise: '10.213.0.9:1' }))
      .exec();
    try {
      const row = page.locator('tr.node-row').filter({ hasText: name });
      await row.waitFor({ timeout: 5_000 });
      assert.equal(await row.locator('a').count(), 0, 'no link from a URL that is not http(s)');
      assert.equal(await page.locator('a[href^="javascript:"]').count(), 0);
      assert.equal(await page.locator('tr.node-row').filter({ hasText: markup }).count(), 0, 'a name no node could have is not listed');
      assert.equal(await page.locator('tr.node-row img').count(), 0);
      assert.ok(!(await page.locator('#reg-node option').allInnerTexts()).includes(markup));
      assert.equal(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss), undefined);
    } finally {
      await redisClient.del(`${prefix}node:${name}`, `${prefix}node:${markup}`);
      await redisClient.hdel(`${prefix}nodes`, markup);
      redisClient.disconnect();
    }
    // Its heartbeat gone, it is down; forgotten through the page, it goes.
    const row = page.locator('tr.node-row[data-up="false"]').filter({ hasText: name });
    await row.waitFor({ timeout: 5_000 });
    await row.getByRole('button', { name: `Forget node ${name}`, exact: true }).click();
    await row.getByRole('button', { name: 'Yes, forget' }).click();
    await page.locator('section.cluster .notice.ok', { hasText: `Forgot node ${name}.` }).waitFor();
    await page.locator('tr.node-row').filter({ hasText: name }).waitFor({ state: 'detached', timeout: 5_000 });
    // The panel moves focus once the row has gone (an effect after the render): wait for it, briefly.
    await page.waitForFunction(() => document.activeElement?.id === 'cluster-title', undefined, { timeout: 2_000 }).catch(() => undefined);
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'cluster-title', 'focus stays in the panel when the row goes');
  });

  await t.test('no console errors (CSP included) and nothing loaded from outside the gateway', () => {
    assert.deepEqual(problems, []);
    assert.deepEqual(foreign, []);
  });
});
