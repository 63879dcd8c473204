/**
 * An app behind a prefix route shares the dashboard's origin
 * (`http://127.0.0.1:PORT/evil/` and `http://127.0.0.1:PORT/_porthole/`).
 * With the dashboard logged in, in the same Chromium, the app's script tries
 * every way to use the session: call the API with the cookie, scrape the page
 * for the CSRF secret, frame it, open it and read it, register a service
 * worker over the whole origin, log the user out. Every one must fail, while
 * the dashboard's own page keeps working.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createServer } from 'porthole';
import { launchChromium } from '../helpers/browser.js';
import { httpUpstream } from '../helpers/net.js';

/** The app's page: each attack's outcome lands in window.results. */
const EVIL_PAGE = `<!doctype html><title>evil</title><script type="module">
const results = {};
const tryIt = async (name, fn) => { try { results[name] = await fn(); } catch (e) { results[name] = 'threw: ' + (e && e.message || e); } };
await tryIt('apiWithCookie', async () => (await fetch('/_porthole/api/apps', { credentials: 'include' })).status);
await tryIt('pageScrape', async () => /porthole-csrf" content="([^"]+)/.exec(await (await fetch('/_porthole/', { credentials: 'include' })).text())?.[1] ?? 'no secret');
await tryIt('putWithCookie', async () => (await fetch('/_porthole/api/apps/owned', { method: 'PUT', credentials: 'include', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ cmd: 'id', port: 9 }) })).status);
await tryIt('logout', async () => (await fetch('/_porthole/logout', { method: 'POST', credentials: 'include' })).status);
await tryIt('frame', () => new Promise((ok) => {
  const f = document.createElement('iframe');
  f.src = '/_porthole/';
  f.onload = () => { try { ok(f.contentDocument?.querySelector('meta[name=porthole-csrf]')?.content ?? 'no secret'); } catch (e) { ok('blocked: ' + e.name); } };
  document.body.append(f);
  setTimeout(() => ok('no load'), 4000);
}));
await tryIt('popup', () => new Promise((ok) => {
  const w = window.open('/_porthole/', '_blank');
  let n = 0;
  const look = () => {
    try {
      const secret = w && !w.closed ? w.document.querySelector('meta[name=porthole-csrf]')?.content : undefined;
      if (secret) return ok(secret);
    } catch (e) { return ok('blocked: ' + e.name); }
    if (++n > 40) return ok(w === null ? 'no handle' : w.closed ? 'closed handle' : 'nothing readable');
    setTimeout(look, 100);
  };
  look();
}));
await tryIt('serviceWorker', async () => { const r = await navigator.serviceWorker.register('/evil/sw.js', { scope: '/' }); return 'registered ' + r.scope; });
window.results = results;
</script><p>evil app</p>`;

test('a prefixed app\'s script cannot use the dashboard session of the same browser', async (t) => {
  const evil = await httpUpstream((req, res) => {
    if (req.url?.startsWith('/sw.js')) {
      res.writeHead(200, { 'Content-Type': 'text/javascript', 'Service-Worker-Allowed': '/' });
      return res.end("self.addEventListener('fetch', () => {});");
    }
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(EVIL_PAGE);
  });
  t.after(() => evil.close());
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-dashboard-evil-'));
  const server = createServer({ listen: { port: 0 }, dataDir, config: { apps: [{ name: 'evil', port: evil.port }] } });
  t.after(async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const start = await server.listen();
  const browser = await launchChromium();
  t.after(() => browser.close());
  const context = await browser.newContext();
  const dash = await context.newPage();
  // Logged in: the dashboard page holds the secret and can call the API with it.
  await dash.goto(server.loginUrl());
  assert.equal(new URL(dash.url()).pathname, '/_porthole/');
  const secret = await dash.locator('meta[name=porthole-csrf]').getAttribute('content');
  assert.ok(secret && secret.length > 30);
  const own = await dash.evaluate(async (s) => (await fetch('/_porthole/api/apps', { headers: { 'X-Porthole-CSRF': s } })).status, secret);
  assert.equal(own, 200);

  const page = await context.newPage();
  await page.goto(`${start.url}/evil/`);
  await page.waitForFunction(() => (window as unknown as { results?: unknown }).results !== undefined, undefined, { timeout: 20_000 });
  const results = (await page.evaluate(() => (window as unknown as { results: Record<string, unknown> }).results)) as Record<string, unknown>;
  t.diagnostic(JSON.stringify(results));
  assert.equal(results.apiWithCookie, 403, JSON.stringify(results));
  assert.equal(results.pageScrape, 'no secret');
  assert.equal(results.putWithCookie, 403);
  assert.equal(results.logout, 403);
  assert.notEqual(results.frame, secret);
  assert.doesNotMatch(String(results.frame), /^[\w-]{40,}$/, `frame: ${results.frame}`);
  assert.doesNotMatch(String(results.popup), /^[\w-]{40,}$/, `popup: ${results.popup}`);
  assert.match(String(results.serviceWorker), /^threw: /, `service worker: ${results.serviceWorker}`);
  // Nothing was registered, and the session still works for the dashboard itself.
  const after = await dash.evaluate(async (s) => (await (await fetch('/_porthole/api/apps', { headers: { 'X-Porthole-CSRF': s } })).json()) as { apps: { name: string }[] }, secret);
  assert.deepEqual(
    after.apps.map((a) => a.name),
    ['evil'],
  );
});
