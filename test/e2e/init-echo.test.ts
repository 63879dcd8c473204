/**
 * `porthole init echo`, followed as printed: the real CLI writes ./echo,
 * `npm install` installs its pinned `ws` from the registry, the printed
 * `porthole apps add echo --file porthole.yaml --start` registers it
 * with a real `porthole serve`, and Chromium uses the page: under /echo/, at
 * echo.localhost, registered with a separate ws_port (WS_PORT) or with
 * strip_prefix: false (BASE_PATH in every request), and with the
 * printed porthole.yaml as the config of a gateway serving HTTPS (wss:).
 * Stopping the apps leaves none of their processes.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { startAdmin, type AdminGateway } from '../helpers/admin.js';
import { launchChromium } from '../helpers/browser.js';
import { followSteps, init, processesIn, screenshot, until, waitRunning, watchPage } from '../helpers/init-app.js';

let tmp: string;
let gw: AdminGateway;
let browser: Browser;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'porthole-init-echo-'));
  [gw, browser] = await Promise.all([startAdmin(), launchChromium()]);
});
after(async () => {
  await browser?.close();
  await gw?.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

/** Sends `text` with the page's form and waits for its echo in the list. */
async function echoes(page: Page, text: string): Promise<void> {
  await page.waitForSelector('#status.open', { timeout: 15_000 });
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
  await page.waitForFunction((t) => [...document.querySelectorAll('#log li.in .text')].some((e) => e.textContent === t), text, { timeout: 10_000 });
}

async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await new Promise((ok) => s.once('listening', ok));
  const { port } = s.address() as net.AddressInfo;
  await new Promise((ok) => s.close(ok));
  return port;
}

test('porthole init echo: npm install, registered as printed, the page echoes under /echo/, at echo.localhost, with a ws_port, without prefix stripping and over https from the porthole.yaml', { timeout: 90_000 }, async (t) => {
  const app = await init(tmp, ['echo']);
  assert.equal(app.dir, join(tmp, 'echo'));
  assert.deepEqual(app.steps, ['cd echo', 'npm install', 'porthole apps add echo --file porthole.yaml --start']);
  await followSteps(app, gw);
  const running = await waitRunning(gw, 'echo', 20_000);
  const logs = async () => ((await gw.api('GET', '/_porthole/api/apps/echo/logs?lines=20')).body.lines as string[]).join('\n');
  // It was told where it is mounted.
  await until('the app to log its start', 5000, async () => (await logs()).includes('mounted at /echo/'));

  // Under the gateway's prefix: the socket is /echo/ws on the gateway's own host.
  const page = await browser.newPage();
  const problems = watchPage(page);
  const sockets: string[] = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));
  await page.goto(`${gw.url}/echo/`);
  await echoes(page, 'hello through the prefix');
  assert.deepEqual(sockets, [`ws://127.0.0.1:${gw.port}/echo/ws`]);
  assert.equal(await page.textContent('#url'), `ws://127.0.0.1:${gw.port}/echo/ws`);
  t.diagnostic(`screenshot: ${await screenshot(page, tmp, 'echo')}`);

  // At its own host name, served at the root: the same page dials /ws there.
  const byName = await browser.newPage();
  problems.push(...watchPage(byName));
  const nameSockets: string[] = [];
  byName.on('websocket', (ws) => nameSockets.push(ws.url()));
  await byName.goto(`http://echo.localhost:${gw.port}/`);
  await echoes(byName, 'hello at echo.localhost');
  assert.deepEqual(nameSockets, [`ws://echo.localhost:${gw.port}/ws`]);
  assert.deepEqual(problems, []);
  await Promise.all([page.close(), byName.close()]);

  // Registered with a ws_port, the same server takes upgrades on WS_PORT (and its pages on PORT).
  const wsPort = await freePort();
  const split = await gw.api('PUT', '/_porthole/api/apps/echo-split', { name: 'echo-split', cmd: 'node server.js', cwd: app.dir, ws_port: wsPort });
  assert.equal(split.status, 200, JSON.stringify(split.body));
  assert.equal((await gw.api('POST', '/_porthole/api/apps/echo-split/start')).status, 200);
  await waitRunning(gw, 'echo-split', 20_000);
  const splitPage = await browser.newPage();
  await splitPage.goto(`${gw.url}/echo-split/`);
  await echoes(splitPage, 'hello through WS_PORT');
  await splitPage.close();

  // With strip_prefix: false the requests carry /echo-full/: the server takes BASE_PATH off them.
  const full = await gw.api('PUT', '/_porthole/api/apps/echo-full', { name: 'echo-full', cmd: 'node server.js', cwd: app.dir, strip_prefix: false });
  assert.equal(full.status, 200, JSON.stringify(full.body));
  assert.equal((await gw.api('POST', '/_porthole/api/apps/echo-full/start')).status, 200);
  await waitRunning(gw, 'echo-full', 20_000);
  const fullPage = await browser.newPage();
  await fullPage.goto(`${gw.url}/echo-full/`);
  await echoes(fullPage, 'hello with the prefix kept');
  await fullPage.close();

  // The printed porthole.yaml as the config of a gateway that serves HTTPS (tls: internal):
  // the page came over https:, so it dials wss: on the same host, and the echo comes back.
  const tlsGw = await startAdmin({ config: `tls: internal\n${readFileSync(join(app.dir, 'porthole.yaml'), 'utf8')}` });
  try {
    assert.match(tlsGw.url, /^https:\/\//);
    const context = await browser.newContext({ ignoreHTTPSErrors: true }); // the local CA is not installed in this browser
    const secure = await context.newPage();
    const secureProblems = watchPage(secure);
    const secureSockets: string[] = [];
    secure.on('websocket', (ws) => secureSockets.push(ws.url()));
    await secure.goto(`${tlsGw.url}/echo/`);
    await echoes(secure, 'hello over https');
    assert.deepEqual(secureSockets, [`wss://127.0.0.1:${tlsGw.port}/echo/ws`]);
    assert.deepEqual(secureProblems, []);
    await context.close();
  } finally {
    await tlsGw.cleanup();
  }

  // Stopped, nothing of the apps is left.
  assert.ok(processesIn(app.dir).some((p) => p.pid === running.pid), 'the app runs in its directory');
  for (const name of ['echo', 'echo-split', 'echo-full']) assert.equal((await gw.api('POST', `/_porthole/api/apps/${name}/stop`)).body.app.state, 'stopped');
  await until('no process of the app', 10_000, () => processesIn(app.dir).length === 0);
});
