import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { closeServer, listen, startGateway, type TestGateway } from '../helpers/net.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

let browser: Browser;
let demo: ChildProcess;
let gw: TestGateway;
let demoPort: number;

async function freePort(): Promise<number> {
  const s = net.createServer();
  const p = await listen(s);
  await closeServer(s);
  return p;
}

before(async () => {
  demoPort = await freePort();
  demo = spawn(process.execPath, [fileURLToPath(new URL('../../examples/demo-app.mjs', import.meta.url))], { env: { ...process.env, PORT: String(demoPort) }, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((ok) => demo.stdout!.once('data', () => ok()));
  gw = await startGateway({ apps: [{ name: 'demo', port: demoPort }, { name: 'gone', port: await freePort() }] });
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await gw?.close();
  demo?.kill();
});

test('in Chromium, the demo page and its WebSocket work through the prefix', async () => {
  const page = await browser.newPage();
  await page.goto(`${gw.url}/demo/`);
  await page.waitForFunction(() => document.getElementById('state')?.textContent === 'connected');
  await page.fill('#msg', 'from chromium');
  await page.click('#send');
  await page.waitForFunction(() => document.getElementById('log')?.textContent?.includes('< echo: from chromium'));
  await page.close();
});

test('in Chromium, a WebSocket to a stopped app closes with 1014 and a reason, not 1006', async () => {
  const page = await browser.newPage();
  await page.goto(`${gw.url}/demo/`); // any same-origin page
  const result = await page.evaluate(
    (url) =>
      new Promise<{ code: number; reason: string }>((ok) => {
        const ws = new WebSocket(url, ['binary']);
        ws.onclose = (e) => ok({ code: e.code, reason: e.reason });
      }),
    `ws://127.0.0.1:${gw.port}/gone/websockify`,
  );
  assert.equal(result.code, 1014);
  assert.match(result.reason, /gone: upstream .* refused/);
  await page.close();
});
