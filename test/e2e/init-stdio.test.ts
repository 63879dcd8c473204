/**
 * `porthole init stdio`: a line-based program behind a `stdio:` app and a
 * page to talk to it. The two printed `porthole apps add … --file
 * porthole.yaml` commands register both apps with a real `porthole serve`;
 * Chromium's page at /tools/ sends lines and shows the program's answers;
 * closing the page ends its process; `bye` makes the program exit 0, which
 * the page sees as close 1000. A plain WebSocket client (no page) reaches
 * the program at the stdio app's own host name too.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import WebSocket from 'ws';
import { startAdmin, type AdminGateway } from '../helpers/admin.js';
import { launchChromium } from '../helpers/browser.js';
import { followSteps, init, processesIn, screenshot, until, waitRunning, watchPage } from '../helpers/init-app.js';

let tmp: string;
let gw: AdminGateway;
let browser: Browser;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'porthole-init-stdio-'));
  [gw, browser] = await Promise.all([startAdmin(), launchChromium()]);
});
after(async () => {
  await browser?.close();
  await gw?.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

/** The program's node processes (the stdio app runs it through /bin/sh -c, whose sh is in the same group). */
const programs = (dir: string) => processesIn(dir).filter((p) => p.cmdline.startsWith('node ./program.mjs'));

async function send(page: Page, line: string, answer: string): Promise<void> {
  await page.fill('#line', line);
  await page.press('#line', 'Enter');
  await page.waitForFunction((a) => [...document.querySelectorAll('#out div:not(.sent)')].some((d) => d.textContent === a), answer, { timeout: 10_000 });
}

test('porthole init stdio: the page sends lines to its own process and shows the answers; the process ends with the socket', { timeout: 90_000 }, async (t) => {
  const app = await init(tmp, ['stdio', 'tools']);
  assert.deepEqual(app.steps, ['cd tools', 'porthole apps add tools-program --file porthole.yaml', 'porthole apps add tools --file porthole.yaml --start'], 'no npm install: the template has no dependencies');
  assert.equal(statSync(join(app.dir, 'program.mjs')).mode & 0o777, 0o755, 'the program is executable (the stdio app runs ./program.mjs)');
  await followSteps(app, gw);
  await waitRunning(gw, 'tools', 20_000);
  assert.deepEqual(programs(app.dir), [], 'no program runs before a connection');

  const page = await browser.newPage();
  const problems = watchPage(page);
  const sockets: string[] = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));
  await page.goto(`${gw.url}/tools/`);
  await page.waitForSelector('#status.open', { timeout: 10_000 });
  await page.waitForFunction(() => /^hello, this is process \d+/.test(document.querySelector('#out div')?.textContent ?? ''), undefined, { timeout: 10_000 });
  await send(page, 'upper hello porthole', 'HELLO PORTHOLE');
  await send(page, 'sum 1 2 39', '42');
  await send(page, 'reverse stressed', 'desserts');
  assert.deepEqual(sockets, [`ws://127.0.0.1:${gw.port}/tools/ws/`]);
  const running = programs(app.dir);
  assert.equal(running.length, 1, `one process for the page: ${JSON.stringify(running)}`);
  const greeting = await page.textContent('#out div');
  assert.equal(greeting?.match(/process (\d+)/)?.[1], String(running[0].pid), 'the page talks to that process');
  t.diagnostic(`screenshot: ${await screenshot(page, tmp, 'stdio')}`);

  // The page goes: its process goes.
  await page.close();
  await until('the page\'s process to end', 10_000, () => programs(app.dir).length === 0);

  // A plain WebSocket client, at the stdio app's host name: the program's exit 0 (bye) is close 1000.
  const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/`, { headers: { Host: `tools-program.localhost:${gw.port}` } });
  const lines: string[] = [];
  ws.on('message', (d) => lines.push(String(d)));
  await new Promise((ok, fail) => ws.once('open', ok).once('error', fail));
  await until('the greeting', 10_000, () => lines.length === 1);
  ws.send('count');
  await until('the answer to count', 10_000, () => lines.includes('1 line so far'));
  ws.send('bye');
  const [code] = (await new Promise((ok) => ws.once('close', (c, r) => ok([c, String(r)])))) as [number, string];
  assert.equal(code, 1000);
  assert.equal(lines.at(-1), 'bye');
  await until('the client\'s process to end', 10_000, () => programs(app.dir).length === 0);

  // A second page, closed by the program: the page shows the close code.
  const again = await browser.newPage();
  problems.push(...watchPage(again));
  await again.goto(`${gw.url}/tools/`);
  await again.waitForSelector('#status.open', { timeout: 10_000 });
  await send(again, 'bye', 'bye');
  await again.waitForSelector('#status.closed', { timeout: 10_000 });
  assert.equal(await again.textContent('#status'), 'closed 1000');
  await again.close();
  assert.deepEqual(problems, []);

  // At the page app's host name its ws/ is its own (a stdio app has no pages): the page says where to go.
  const byName = await browser.newPage();
  await byName.goto(`http://tools.localhost:${gw.port}/`);
  await byName.waitForSelector('#status.closed', { timeout: 10_000 });
  assert.match((await byName.textContent('#out')) ?? '', /no program at this address: open this page under \/tools\/ of the gateway/);
  await byName.close();

  await gw.api('POST', '/_porthole/api/apps/tools/stop');
  await until('no process of the app', 10_000, () => processesIn(app.dir).length === 0);
});
