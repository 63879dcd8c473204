/**
 * Attacks on the dashboard session from a hostile app's page in the admin's
 * Chromium, beyond those of dashboard-same-origin-app.test.ts: each test
 * pins a hole that was open, or a defence that a reviewer tried to get round.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { Browser, BrowserContext } from 'playwright-core';
import { createServer, type PortholeServer, type ServerStarted } from 'porthole';
import { launchChromium } from '../helpers/browser.js';
import { collect, httpUpstream } from '../helpers/net.js';

interface Rig {
  server: PortholeServer;
  start: ServerStarted;
  browser: Browser;
  context: BrowserContext;
  /** The dashboard's CSRF secret, as its own page holds it. */
  secret: string;
}

/** A server with the app `evil` (answered by `handler`), a Chromium logged in to the dashboard. */
async function rig(t: TestContext, handler: (req: IncomingMessage, res: ServerResponse) => void, app: Record<string, unknown> = {}): Promise<Rig> {
  const evil = await httpUpstream(handler);
  t.after(() => evil.close());
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-dashboard-attack-'));
  const server = createServer({ listen: { port: 0 }, dataDir, config: { apps: [{ name: 'evil', port: evil.port, ...app }] } });
  t.after(async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const start = await server.listen();
  const browser = await launchChromium();
  t.after(() => browser.close());
  const context = await browser.newContext();
  const dash = await context.newPage();
  await dash.goto(server.loginUrl());
  const secret = await dash.locator('meta[name=porthole-csrf]').getAttribute('content');
  assert.ok(secret && secret.length > 30);
  return { server, start, browser, context, secret };
}

/** Opens the app's page and returns what its script left in `window.result`. */
async function runEvil(r: Rig, path = '/evil/'): Promise<unknown> {
  const page = await r.context.newPage();
  await page.goto(`${r.start.url}${path}`);
  await page.waitForFunction(() => (window as unknown as { result?: unknown }).result !== undefined, undefined, { timeout: 20_000 });
  return page.evaluate(() => (window as unknown as { result: unknown }).result);
}

/** Opens the dashboard in a popup and reads the secret out of it if it can. */
const POPUP_SCRIPT = `<script>
const w = window.open('/_porthole/', '_blank');
let n = 0;
const look = () => {
  try {
    const secret = w && !w.closed ? w.document.querySelector('meta[name=porthole-csrf]')?.content : undefined;
    if (secret) return (window.result = secret);
  } catch (e) { return (window.result = 'blocked: ' + e.name); }
  if (++n > 40) return (window.result = w === null ? 'no handle' : w.closed ? 'closed handle' : 'nothing readable');
  setTimeout(look, 100);
};
look();
</script>`;

test('an app page that sends Cross-Origin-Opener-Policy: same-origin cannot open the dashboard and read its secret', async (t) => {
  const r = await rig(t, (_req, res) => {
    // Same origin and the same COOP as the dashboard: without the gateway's rule the
    // popup would stay in the app's browsing context group, scriptable by it.
    res.writeHead(200, { 'Content-Type': 'text/html', 'Cross-Origin-Opener-Policy': 'same-origin' });
    res.end(`<!doctype html><title>evil</title>${POPUP_SCRIPT}`);
  });
  const result = await runEvil(r);
  assert.notEqual(result, r.secret, 'the app read the dashboard\'s CSRF secret');
  assert.doesNotMatch(String(result), /^[\w-]{40,}$/, `popup: ${result}`);
});

test('an app under a prefix that asks for cross-origin isolation keeps it, and still cannot read the dashboard it opens', async (t) => {
  const r = await rig(t, (_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html', 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' });
    res.end(`<!doctype html><title>evil</title><script>window.isolated = self.crossOriginIsolated;</script>${POPUP_SCRIPT}`);
  });
  const page = await r.context.newPage();
  await page.goto(`${r.start.url}/evil/`);
  await page.waitForFunction(() => (window as unknown as { result?: unknown }).result !== undefined, undefined, { timeout: 20_000 });
  const { isolated, result } = await page.evaluate(() => {
    const w = window as unknown as { isolated: boolean; result: unknown };
    return { isolated: w.isolated, result: w.result };
  });
  assert.equal(isolated, true, 'the app is cross-origin isolated (COOP and COEP passed through)');
  assert.doesNotMatch(String(result), /^[\w-]{40,}$/, `popup: ${result}`);
});

test('another site cannot log the admin out by posting a form to /_porthole/logout', async (t) => {
  const r = await rig(t, (_req, res) => res.end('evil'));
  // Another site: `localhost` on another port is another site than 127.0.0.1.
  const site = await httpUpstream((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(`<!doctype html><form method="post" action="${r.start.url}/_porthole/logout"></form><script>document.forms[0].submit()</script>`);
  });
  t.after(() => site.close());
  const page = await r.context.newPage();
  const answered = page.waitForResponse((res) => res.url().endsWith('/_porthole/logout'));
  await page.goto(`http://localhost:${site.port}/`, { waitUntil: 'commit' });
  const res = await answered;
  t.diagnostic(`logout answered ${res.status()}`);
  // Still logged in: a new page load gets the dashboard with the same secret.
  const dash = await r.context.newPage();
  await dash.goto(`${r.start.url}/_porthole/`);
  const secrets = await dash.locator('meta[name=porthole-csrf]').evaluateAll((els) => els.map((e) => e.getAttribute('content')));
  assert.deepEqual(secrets, [r.secret], 'the session survived the other site\'s post');
  assert.equal(res.status(), 403, 'the post itself is refused');
});

/**
 * Every way a page can get a window on the dashboard: open it, open a blank
 * window and send it there, open a page of the app that then goes there itself,
 * a link and a form with a target. The opener looks for the secret for 3 s.
 */
const OPENERS_SCRIPT = `<script type="module">
const watch = (w) => new Promise((ok) => {
  let n = 0;
  let blocked = '';
  const look = () => {
    if (w === null) return ok('no handle');
    if (w.closed) return ok('closed handle');
    try {
      const secret = w.document.querySelector('meta[name=porthole-csrf]')?.content;
      if (secret) return ok(secret);
    } catch (e) { blocked = 'blocked: ' + e.name; }
    // A refusal while the window is still on its way may not be the last word: keep looking.
    if (++n > 30) return ok(blocked || 'nothing readable');
    setTimeout(look, 100);
  };
  look();
});
const results = {};
results.open = await watch(window.open('/_porthole/', '_blank'));
const blank = window.open('', '_blank');
blank.location.href = '/_porthole/';
results.blankThenNavigate = await watch(blank);
results.appPageNavigates = await watch(window.open(location.pathname + 'child' + location.search, '_blank'));
const a = Object.assign(document.createElement('a'), { href: '/_porthole/', target: 'dash-a', rel: 'opener' });
document.body.append(a);
a.click();
results.linkWithOpener = await watch(window.open('', 'dash-a'));
const f = Object.assign(document.createElement('form'), { action: '/_porthole/', method: 'get', target: 'dash-f' });
document.body.append(f);
f.submit();
results.formTarget = await watch(window.open('', 'dash-f'));
window.result = results;
</script>`;

test('no opener policy an app can send gives it a readable window on the dashboard, whichever way it opens it', async (t) => {
  const r = await rig(t, (req, res) => {
    const url = new URL(req.url!, 'http://x');
    const coop = url.searchParams.get('coop');
    res.writeHead(200, { 'Content-Type': 'text/html', ...(coop ? { 'Cross-Origin-Opener-Policy': coop } : {}) });
    if (url.pathname.endsWith('/child')) return res.end(`<!doctype html><script>location.href = '/_porthole/';</script>`);
    res.end(`<!doctype html><title>evil</title>${OPENERS_SCRIPT}`);
  });
  for (const coop of ['', 'same-origin', 'same-origin-allow-popups', 'noopener-allow-popups']) {
    const results = (await runEvil(r, `/evil/?coop=${coop}`)) as Record<string, string>;
    t.diagnostic(`COOP ${coop || '(none)'}: ${JSON.stringify(results)}`);
    assert.equal(Object.keys(results).length, 5);
    for (const [how, got] of Object.entries(results)) assert.doesNotMatch(got, /^[\w-]{40,}$/, `COOP ${coop || '(none)'}, ${how}: the app read the secret`);
  }
});

/** Loads of the dashboard that are not a window the app can open: each gets the login form, or nothing readable. */
const LOADS_SCRIPT = `<script type="module">
const secretIn = (text) => /porthole-csrf" content="([^"]+)/.exec(text ?? '')?.[1] ?? 'no secret';
const results = {};
const tryIt = async (name, fn) => { try { results[name] = await fn(); } catch (e) { results[name] = 'threw: ' + (e && e.name); } };
const frameLike = (tag, attr) => new Promise((ok) => {
  const el = document.createElement(tag);
  el[attr] = '/_porthole/';
  if (tag === 'object' || tag === 'embed') el.type = 'text/html';
  el.onload = () => { try { ok(secretIn(el.contentDocument?.documentElement?.outerHTML ?? el.getSVGDocument?.()?.documentElement?.outerHTML)); } catch (e) { ok('blocked: ' + e.name); } };
  document.body.append(el);
  setTimeout(() => ok('no load'), 3000);
});
// Chromium's speculation rules prefetch and prerender the page as a page load (Sec-Fetch-Dest: document).
const rules = Object.assign(document.createElement('script'), { type: 'speculationrules', textContent: JSON.stringify({ prefetch: [{ source: 'list', urls: ['/_porthole/?prefetch'] }], prerender: [{ source: 'list', urls: ['/_porthole/'] }] }) });
document.head.append(rules);
document.head.append(Object.assign(document.createElement('link'), { rel: 'prefetch', href: '/_porthole/?linkprefetch' }));
await new Promise((r) => setTimeout(r, 1500));
await tryIt('fetchAfterPrefetch', async () => secretIn(await (await fetch('/_porthole/?prefetch', { cache: 'force-cache' })).text()));
await tryIt('fetchAfterLinkPrefetch', async () => secretIn(await (await fetch('/_porthole/?linkprefetch', { cache: 'force-cache' })).text()));
await tryIt('fetchAfterPrerender', async () => secretIn(await (await fetch('/_porthole/', { cache: 'only-if-cached', mode: 'same-origin' })).text()));
await tryIt('navigateMode', async () => secretIn(await (await fetch(new Request('/_porthole/', { mode: 'navigate' }))).text()));
await tryIt('xhrDocument', () => new Promise((ok) => {
  const x = new XMLHttpRequest();
  x.open('GET', '/_porthole/');
  x.responseType = 'document';
  x.onload = () => ok(x.responseXML?.querySelector('meta[name=porthole-csrf]')?.content ?? 'no secret');
  x.onerror = () => ok('error');
  x.send();
}));
await tryIt('object', () => frameLike('object', 'data'));
await tryIt('embed', () => frameLike('embed', 'src'));
await tryIt('iframeSandboxed', () => new Promise((ok) => {
  const f = Object.assign(document.createElement('iframe'), { src: '/_porthole/' });
  f.setAttribute('sandbox', 'allow-same-origin allow-scripts');
  f.onload = () => { try { ok(secretIn(f.contentDocument?.documentElement?.outerHTML)); } catch (e) { ok('blocked: ' + e.name); } };
  document.body.append(f);
  setTimeout(() => ok('no load'), 3000);
}));
window.result = results;
</script>`;

test('prefetch, prerender, object, embed, XHR documents and sandboxed frames of the dashboard give an app\'s script no secret', async (t) => {
  const r = await rig(t, (_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(`<!doctype html><title>evil</title>${LOADS_SCRIPT}`);
  });
  const requests = collect('request', r.server.gateway.id);
  t.after(requests.stop);
  const results = (await runEvil(r)) as Record<string, string>;
  t.diagnostic(JSON.stringify(results));
  t.diagnostic(JSON.stringify(requests.events.filter((e) => e.path.startsWith('/_porthole/?') || e.path === '/_porthole/').map((e) => `${e.method} ${e.path} ${e.status}`)));
  assert.equal(Object.keys(results).length, 8);
  for (const [how, got] of Object.entries(results)) assert.doesNotMatch(String(got), /^[\w-]{40,}$/, `${how}: the app read the secret`);
});
