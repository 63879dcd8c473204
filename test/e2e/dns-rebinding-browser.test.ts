/**
 * Issue 8, item 10, as a browser lives it: Chromium's resolver maps
 * evil.example to 127.0.0.1 (what a rebinding DNS server does after the
 * attacker's page has loaded), and the attacker's page — served at
 * http://evil.example:PORT/ by the browser's request interception, so it is
 * same-origin with the gateway's port — fetches an app's page and opens its
 * WebSocket. The fetch reads 421 and the WebSocket closes with 1008 and a
 * reason naming server_names; the app sees nothing. The same page under a
 * name listed in server_names (a tunnel's) gets through.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchChromium, NO_LOCAL_NETWORK_CHECKS } from '../helpers/browser.js';
import { startGateway, wsUpstream, type TestGateway, type WsUpstream } from '../helpers/net.js';

let browser: Browser | undefined;
let up: WsUpstream | undefined;
let gw: TestGateway | undefined;
let appRequests = 0;

before(async () => {
  up = await wsUpstream();
  up.server.prependListener('request', () => appRequests++);
  gw = await startGateway({ server_names: ['agent.tunnel.test'], apps: [{ name: 'vnc', port: up.port }] });
  browser = await launchChromium([
      // Only these names are mapped (a rebinding DNS server's answer); everything else fails to resolve.
      '--host-resolver-rules=MAP evil.example 127.0.0.1, MAP agent.tunnel.test 127.0.0.1, EXCLUDE localhost',
      // So that the gateway's own defence is what is tested, not the browser's.
      NO_LOCAL_NETWORK_CHECKS,
    ]);
});

after(async () => {
  await browser?.close().catch(() => undefined);
  await gw?.close();
  await up?.close();
});

/** The attacker's script: read the app's page, then open its WebSocket and report how it ended. */
const ATTACK = `(async () => {
  const page = await fetch('/vnc/secret');
  const body = await page.text();
  const ws = await new Promise((ok) => {
    const s = new WebSocket('ws://' + location.host + '/vnc/ws');
    let opened = false;
    s.onopen = () => { opened = true; s.send('hello'); };
    s.onmessage = (m) => { s.close(1000); ok({ opened, echoed: String(m.data) }); };
    s.onclose = (e) => ok({ opened, code: e.code, reason: e.reason });
  });
  return { status: page.status, error: page.headers.get('x-porthole-error'), body, ws };
})()`;

async function attackFrom(origin: string): Promise<{ status: number; error: string | null; body: string; ws: { opened: boolean; code?: number; reason?: string; echoed?: string } }> {
  const page = await browser!.newPage();
  const consoleLines: string[] = [];
  page.on('console', (m) => consoleLines.push(m.text()));
  try {
    // The attacker's page, as its own server served it before the name was rebound.
    await page.route(`${origin}/attack`, (route) => route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>hi</title>' }));
    await page.goto(`${origin}/attack`);
    return (await page.evaluate(ATTACK)) as Awaited<ReturnType<typeof attackFrom>>;
  } catch (err) {
    throw new Error(`${(err as Error).message}\nconsole: ${consoleLines.join('\n')}`);
  } finally {
    await page.close();
  }
}

test('a page on a rebound name (evil.example → 127.0.0.1) reads 421 and its WebSocket closes 1008 naming server_names; the app sees nothing', async () => {
  const before = appRequests;
  const handshakes = up!.handshakes.length;
  const r = await attackFrom(`http://evil.example:${gw!.port}`);
  assert.equal(r.status, 421);
  assert.equal(r.error, 'PH_ERR_HOST_REFUSED');
  assert.match(r.body, /server_names/);
  assert.ok(!r.body.includes('http-ok'), 'no byte of the app page');
  assert.equal(r.ws.opened, true, 'the gateway completed the handshake so the page could read why');
  assert.equal(r.ws.code, 1008);
  assert.match(r.ws.reason ?? '', /^PH_ERR_HOST_REFUSED: Host evil\.example:\d+ is not this gateway's: add it to server_names$/);
  assert.equal(appRequests, before, 'no request reached the app');
  assert.equal(up!.handshakes.length, handshakes, 'no handshake reached the app');
});

test('the same page under a name in server_names (a tunnel\'s) reaches the app, page and WebSocket', async () => {
  const r = await attackFrom(`http://agent.tunnel.test:${gw!.port}`);
  assert.equal(r.status, 200);
  assert.equal(r.body, 'http-ok /secret');
  assert.deepEqual(r.ws, { opened: true, echoed: 'hello' });
});
