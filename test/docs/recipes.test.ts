/**
 * Every recipe in docs/recipes.md, run as written: the YAML block is the
 * config file of a real `porthole serve` child (only `--listen 127.0.0.1:0`
 * and a temp `--data` are added), the files the recipe names are written
 * next to it from the page's own blocks, and Chromium uses the app the way
 * the recipe says to open it. A recipe that stops working fails here.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { startAdmin, type AdminGateway } from '../helpers/admin.js';
import { launchChromium } from '../helpers/browser.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The fenced block that follows `<!-- recipe: NAME -->` (or `<!-- recipe-file: PATH -->`) in a doc. */
export function block(marker: string, doc = 'docs/recipes.md'): string {
  const text = readFileSync(join(ROOT, doc), 'utf8');
  const at = text.indexOf(`<!-- ${marker} -->`);
  assert.ok(at !== -1, `${doc} has <!-- ${marker} -->`);
  const m = /```[a-z]*\n([\s\S]*?)```/.exec(text.slice(at));
  assert.ok(m, `a fenced block follows <!-- ${marker} -->`);
  return m[1];
}

let browser: Browser;
before(async () => {
  browser = await launchChromium();
});
after(() => browser?.close());

/** Starts the recipe's config with its files in a temp data dir; stopped after the test. */
async function serveRecipe(t: TestContext, name: string, files: string[] = [], doc?: string, dirs: string[] = []): Promise<AdminGateway> {
  const dataDir = mkdtempSync(join(tmpdir(), `porthole-recipe-${name}-`));
  for (const f of files) {
    mkdirSync(join(dataDir, dirname(f)), { recursive: true });
    writeFileSync(join(dataDir, f), block(`recipe-file: ${f}`, doc));
  }
  for (const d of dirs) mkdirSync(join(dataDir, d), { recursive: true });
  const gw = await startAdmin({ config: block(`recipe: ${name}`, doc), dataDir });
  t.after(async () => {
    await gw.cleanup();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return gw;
}

/** Waits until the app is running (ready), failing with its state and log when it is not. */
async function running(gw: AdminGateway, app: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: Record<string, unknown> = {};
  while (Date.now() < deadline) {
    const r = await gw.api('GET', `/_porthole/api/apps/${app}`);
    last = r.body.app ?? r.body;
    if (last.state === 'running') return;
    if (last.state === 'failed') break;
    await new Promise((ok) => setTimeout(ok, 250));
  }
  const logs = await gw.api('GET', `/_porthole/api/apps/${app}/logs?lines=40`);
  assert.fail(`${app} is not running: ${JSON.stringify(last)}\n${(logs.body.lines ?? []).join('\n')}`);
}

/** Recipes with fixed ports (as a reader would write them) need those ports free here. */
async function assertFree(ports: number[]): Promise<void> {
  for (const port of ports) {
    await new Promise<void>((ok, fail) => {
      const s = net.createServer().once('error', () => fail(new Error(`port ${port}, which the recipe uses, is taken on this machine`)));
      s.listen(port, '127.0.0.1', () => s.close(() => ok()));
    });
  }
}

/** Every response the page got with a status of 400 or more. */
function failures(page: Page): string[] {
  const bad: string[] = [];
  page.on('response', (r) => {
    if (r.status() >= 400) bad.push(`${r.status()} ${r.url()}`);
  });
  page.on('requestfailed', (r) => bad.push(`failed ${r.url()}`));
  return bad;
}

describe('docs/recipes.md', { concurrency: false }, () => {
  test('Jupyter Notebook under /notebook/: the page loads whole (styled) and a kernel runs code over its WebSocket', async (t) => {
    const gw = await serveRecipe(t, 'jupyter');
    await running(gw, 'notebook', 90_000);
    const token = /JUPYTER_TOKEN: ([\w-]+)/.exec(block('recipe: jupyter'))![1];
    const page = await browser.newPage();
    t.after(() => page.close());
    const bad = failures(page);
    await page.goto(`${gw.url}/notebook/?token=${token}`, { waitUntil: 'networkidle' });
    assert.match(new URL(page.url()).pathname, /^\/notebook\/tree/, 'the token logs in and lands on the file tree');
    assert.deepEqual(bad, [], 'no request of the page failed (an unstyled page would show 404s for /static/…)');
    const sheets = await page.evaluate(() => [...document.styleSheets].filter((s) => s.href).map((s) => new URL(s.href!).pathname));
    assert.ok(sheets.some((p) => p.startsWith('/notebook/static/')), `styles come from under the prefix: ${sheets.join(', ')}`);

    // The kernel protocol over the kernel's WebSocket, from the page (so with the browser's Origin,
    // which Jupyter compares with the Host it receives).
    const output = await page.evaluate(async (tok) => {
      const auth = { Authorization: `token ${tok}` };
      const kernel = await (await fetch('/notebook/api/kernels', { method: 'POST', headers: auth, body: '{}' })).json();
      try {
        return await new Promise<string>((resolve, reject) => {
          const ws = new WebSocket(`${location.origin.replace(/^http/, 'ws')}/notebook/api/kernels/${kernel.id}/channels?token=${tok}`);
          const timer = setTimeout(() => reject(new Error('no output in 30 s')), 30_000);
          ws.onerror = () => reject(new Error('kernel WebSocket failed'));
          ws.onclose = (e) => reject(new Error(`kernel WebSocket closed ${e.code} ${e.reason}`));
          ws.onopen = () =>
            ws.send(
              JSON.stringify({
                header: { msg_id: crypto.randomUUID(), username: 'recipe', session: crypto.randomUUID(), msg_type: 'execute_request', version: '5.3', date: new Date().toISOString() },
                parent_header: {},
                metadata: {},
                content: { code: 'print(6 * 7)', silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true },
                channel: 'shell',
                buffers: [],
              }),
            );
          ws.onmessage = (e) => {
            const msg = JSON.parse(e.data);
            if (msg.msg_type === 'stream') {
              clearTimeout(timer);
              ws.onclose = null;
              ws.close();
              resolve(msg.content.text);
            }
          };
        });
      } finally {
        await fetch(`/notebook/api/kernels/${kernel.id}`, { method: 'DELETE', headers: auth });
      }
    }, token);
    assert.equal(output, '42\n');
  });

  test('noVNC through the built-in bridge: under the prefix with path=vnc/websockify, and at vnc.localhost with no options', async (t) => {
    await assertFree([5999, 6099 /* display :99's X port, in case it listens on TCP */]);
    const gw = await serveRecipe(t, 'novnc');
    await running(gw, 'vnc', 30_000);
    const urls = [`${gw.url}/vnc/vnc.html?path=vnc/websockify&autoconnect=1`, `http://vnc.localhost:${gw.port}/vnc.html?autoconnect=1`];
    for (const url of urls) {
      const page = await browser.newPage();
      try {
        const bad = failures(page);
        await page.goto(url);
        await page.waitForFunction(`document.documentElement.classList.contains('noVNC_connected')`, undefined, { timeout: 20_000 });
        const size = await page.evaluate(() => {
          const c = document.querySelector('#noVNC_container canvas') as HTMLCanvasElement | null;
          return c ? [c.width, c.height] : null;
        });
        // noVNC asks the server to fit the remote screen to the window (Xvfb follows), so the
        // canvas has the page's size: 1280×800 from the recipe, or the window's 1280×720.
        assert.ok(size && size[0] === 1280 && size[1] >= 700, `${url}: the canvas shows the remote screen (${size})`);
        // vnc.html asks for package.json to show a version; Debian's novnc ships none.
        assert.deepEqual(bad.filter((b) => !b.endsWith('/package.json')), [], `${url}: no request failed`);
      } finally {
        await page.close();
      }
    }
  });

  test('the ttyd-style terminal: the page dials its own URL, ws_path takes the upgrade to /ws, a command runs', async (t) => {
    await assertFree([9003, 7681]);
    const gw = await serveRecipe(t, 'terminal', ['terminal/index.html']);
    await running(gw, 'terminal', 30_000);
    const page = await browser.newPage();
    t.after(() => page.close());
    await page.goto(`${gw.url}/terminal/`);
    await page.waitForFunction(`document.getElementById('cmd') !== null`);
    // The socket opens asynchronously: send once it is open.
    await page.waitForFunction(`typeof ws !== 'undefined' && ws.readyState === 1`, undefined, { timeout: 10_000 });
    await page.fill('#cmd', 'echo $((6*7))');
    await page.press('#cmd', 'Enter');
    await page.waitForFunction(`document.getElementById('out').textContent.includes('42')`, undefined, { timeout: 10_000 });
    const upgrades = gw.stdout().split('\n').filter((l) => l.includes('"upgrade"') && l.includes('"terminal"'));
    assert.ok(upgrades.some((l) => l.includes('"accepted":true')), `the gateway logged the accepted upgrade: ${upgrades.join('\n')}`);
  });

  test('docs/apps.md: the supervised notebook example becomes ready and answers under its prefix', async (t) => {
    const gw = await serveRecipe(t, 'apps-notebook', [], 'docs/apps.md', ['notebooks']);
    await running(gw, 'notebook', 90_000);
    const r = await fetch(`${gw.url}/notebook/api`);
    assert.equal(r.status, 200);
    assert.match(((await r.json()) as { version: string }).version, /^\d+\./);
  });

  test('docs/apps.md: the CLI lines, as written, register and start a notebook that answers at lab.localhost', async (t) => {
    const gw = await startAdmin();
    t.after(() => gw.cleanup());
    const env = { ...process.env, PORTHOLE_URL: gw.url, PORTHOLE_TOKEN: gw.token };
    const lines = block('recipe: apps-cli', 'docs/apps.md').trim().split('\n');
    const sh = (line: string) => {
      const r = spawnSync('/bin/sh', ['-c', line], { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 0, `${line}\n${r.stdout}\n${r.stderr}`);
      return r.stdout;
    };
    sh(lines[0]); // apps add … --start
    await running(gw, 'lab', 90_000);
    // At its own host name the notebook is served at its root: its page's styles load from /static/.
    const page = await browser.newPage();
    t.after(() => page.close());
    const bad = failures(page);
    await page.goto(`http://lab.localhost:${gw.port}/?token=change-this-token`, { waitUntil: 'networkidle' });
    assert.match(new URL(page.url()).pathname, /^\/tree/);
    assert.deepEqual(bad, []);
    const sheets = await page.evaluate(() => [...document.styleSheets].filter((s) => s.href).length);
    assert.ok(sheets > 0, 'the page is styled');
    assert.match(sh(lines[1]), /lab/); // apps ls
    sh(lines[2]); // apps logs
    sh(lines[3]); // apps stop
    const after = await gw.api('GET', '/_porthole/api/apps/lab');
    assert.equal(after.body.app.state, 'stopped');
  });
});
