/**
 * `porthole init chat`, followed as printed (npm install, `porthole apps
 * add … --file porthole.yaml --start` against a real `porthole serve`), then
 * three Chromium pages: two in room "team" exchange messages both ways and
 * each sees both names in the room, a third in room "other" (joined through
 * the page's form) sees neither their messages nor their names; markup stays
 * text; after a restart of the app both pages join again by themselves; when
 * one of the two leaves, the other's list shows it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
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
  tmp = mkdtempSync(join(tmpdir(), 'porthole-init-chat-'));
  [gw, browser] = await Promise.all([startAdmin(), launchChromium()]);
});
after(async () => {
  await browser?.close();
  await gw?.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

const texts = (page: Page, selector: string) => page.$$eval(selector, (els) => els.map((e) => e.textContent ?? ''));
const messages = (page: Page) => page.$$eval('#messages li:not(.note)', (els) => els.map((li) => `${li.querySelector('.from')?.textContent}: ${li.querySelector('.text')?.textContent}`));

async function say(page: Page, text: string): Promise<void> {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
}

async function sees(page: Page, line: string): Promise<void> {
  await page.waitForFunction(
    (l) => [...document.querySelectorAll('#messages li:not(.note)')].some((li) => `${li.querySelector('.from')?.textContent}: ${li.querySelector('.text')?.textContent}` === l),
    line,
    { timeout: 10_000 },
  );
}

async function people(page: Page, expected: string[]): Promise<void> {
  await page.waitForFunction((want) => JSON.stringify([...document.querySelectorAll('#people li')].map((li) => li.textContent)) === JSON.stringify(want), expected, { timeout: 10_000 });
}

test('porthole init chat: two pages in one room talk both ways and see each other, a page in another room sees neither', { timeout: 90_000 }, async (t) => {
  const app = await init(tmp, ['chat', 'talk']);
  assert.equal(app.dir, join(tmp, 'talk'));
  assert.deepEqual(app.steps, ['cd talk', 'npm install', 'porthole apps add talk --file porthole.yaml --start'], 'the app is named after DIR');
  await followSteps(app, gw);
  await waitRunning(gw, 'talk', 20_000);

  const context = await browser.newContext();
  const [alice, bob, carol] = await Promise.all([context.newPage(), context.newPage(), context.newPage()]);
  const problems = [alice, bob, carol].flatMap(watchPage);
  const sockets: string[] = [];
  for (const p of [alice, bob, carol]) p.on('websocket', (ws) => sockets.push(ws.url()));

  await alice.goto(`${gw.url}/talk/?room=team&name=alice`);
  await alice.waitForSelector('#status.open');
  await people(alice, ['alice (you)']);
  await bob.goto(`${gw.url}/talk/?room=team&name=bob`);
  await bob.waitForSelector('#status.open');
  await people(bob, ['alice', 'bob (you)']);
  await people(alice, ['alice (you)', 'bob']);

  // carol joins through the form, in another room.
  await carol.goto(`${gw.url}/talk/`);
  await carol.fill('#name', 'carol');
  await carol.fill('#roomName', 'other');
  await carol.click('#join button');
  await carol.waitForSelector('#status.open');
  await people(carol, ['carol (you)']);
  assert.equal(new URL(carol.url()).search, '?room=other&name=carol', 'the page keeps its room in its URL');

  await say(alice, 'hi bob');
  await sees(bob, 'alice: hi bob');
  await sees(alice, 'alice: hi bob');
  await say(bob, 'hi alice');
  await sees(alice, 'bob: hi alice');
  await sees(bob, 'bob: hi alice');
  // Markup in a message or a name is text, never HTML.
  await say(alice, '<img src=x onerror="document.title=1">');
  await sees(bob, 'alice: <img src=x onerror="document.title=1">');
  assert.equal(await bob.$$eval('#messages img', (e) => e.length), 0);
  await say(carol, 'anyone here?');
  await sees(carol, 'carol: anyone here?');

  const team = ['alice: hi bob', 'bob: hi alice', 'alice: <img src=x onerror="document.title=1">'];
  assert.deepEqual(await messages(alice), team);
  assert.deepEqual(await messages(bob), team);
  assert.deepEqual(await messages(carol), ['carol: anyone here?'], 'room "other" got nothing of room "team"');
  assert.deepEqual(await texts(carol, '#people li'), ['carol (you)']);
  assert.equal(await alice.textContent('#room'), '#team');
  t.diagnostic(`screenshot: ${await screenshot(alice, tmp, 'chat')}`);

  // Every socket went through the gateway under the app's prefix, to the app's ws.
  assert.deepEqual(
    sockets.map((u) => u.replace(/\?.*/, '')),
    [1, 2, 3].map(() => `ws://127.0.0.1:${gw.port}/talk/ws`),
  );

  // The app restarts: both pages join again by themselves, see each other, and talk on.
  assert.equal((await gw.api('POST', '/_porthole/api/apps/talk/restart')).status, 200);
  await alice.waitForFunction(() => [...document.querySelectorAll('#messages li.note')].some((li) => li.textContent === 'reconnected'), undefined, { timeout: 20_000 });
  await bob.waitForFunction(() => [...document.querySelectorAll('#messages li.note')].some((li) => li.textContent === 'reconnected'), undefined, { timeout: 20_000 });
  await people(alice, ['alice (you)', 'bob']);
  await say(bob, 'back again');
  await sees(alice, 'bob: back again');
  assert.deepEqual(await messages(alice), [...team, 'bob: back again'], 'the page keeps what it showed (the restarted app has no history)');
  t.diagnostic(`screenshot: ${await screenshot(alice, tmp, 'chat-reconnected')}`);

  // A newcomer to "team" gets the room's history; when bob leaves, alice's list shows it.
  const dave = await context.newPage();
  await dave.goto(`${gw.url}/talk/?room=team&name=alice`);
  await dave.waitForSelector('#status.open');
  assert.equal(await dave.textContent('#status'), 'you are alice 2', 'a name taken in the room gets a number');
  await sees(dave, 'bob: back again');
  await people(alice, ['alice (you)', 'alice 2', 'bob']);
  await Promise.all([bob.close(), dave.close()]);
  await people(alice, ['alice (you)']);
  assert.deepEqual(problems, []);
  await context.close();

  await gw.api('POST', '/_porthole/api/apps/talk/stop');
  await until('no process of the app', 10_000, () => processesIn(app.dir).length === 0);
});
