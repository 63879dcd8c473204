/**
 * Issue 8, new-user items 1 and 2, in Chromium with the real apps:
 *
 * - Debian's noVNC (`vnc.html`, served with the WebSocket by Debian's
 *   websockify) connects with no `path` parameter at
 *   `http://vnc.localhost:PORT/vnc.html` and draws the remote xterm
 *   (Xvfb + x11vnc); under `/vnc/` the same page dials `/websockify` at the
 *   root, and the close code 1008 and its reason reach the page instead of
 *   a bare 1006.
 * - Debian's Jupyter Notebook, without base_url, runs a cell through
 *   `http://jup.localhost:PORT/` (the output is seen on the page and in the
 *   kernel WebSocket's frames).
 * - What Chromium sends on a WebSocket handshake: Origin, and no Referer.
 *
 * Chromium resolves `*.localhost` to loopback by itself. Screenshots are
 * written to the temp dir (named in the diagnostics).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { canvasPixels, launchChromium } from '../helpers/browser.js';
import { startGateway, wsUpstream, type TestGateway, type WsUpstream } from '../helpers/net.js';
import { deadPort } from '../fixtures/bridge/tcp-peers.js';
import { startDesktop, type Desktop } from '../fixtures/bridge/x-desktop.js';

const NOVNC = '/usr/share/novnc';
const WEBSOCKIFY = '/usr/bin/websockify';
const PYTHON = '/usr/bin/python3';
const WORD = 'PORTHOLE-HOSTNAME-OK';
const JUP_VALUE = 'PORTHOLE-JUP 42';

/** The pixels of noVNC's canvas (see canvasPixels). */
const CANVAS_PIXELS = canvasPixels('#noVNC_container');

/** Opens a WebSocket in the page and resolves with how it ended (a string: tsx would wrap a function). */
const closeInPage = (url: string) => `new Promise((ok) => {
  const ws = new WebSocket(${JSON.stringify(url)});
  let opened = false;
  ws.onopen = () => { opened = true; };
  ws.onclose = (e) => ok({ code: e.code, reason: e.reason, opened, wasClean: e.wasClean });
})`;

interface Peer {
  child: ChildProcess;
  log: () => string;
}

function startPeer(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Peer {
  const child = spawn(cmd, args, { detached: true, cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let log = '';
  child.stdout!.on('data', (d) => (log = (log + d).slice(-20_000)));
  child.stderr!.on('data', (d) => (log = (log + d).slice(-20_000)));
  child.on('error', (err) => (log += `\n${cmd}: ${err.message}`));
  return { child, log: () => log };
}

async function stopPeer(p: Peer | undefined): Promise<void> {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
  const exited = new Promise((ok) => p.child.once('exit', ok));
  const kill = (sig: NodeJS.Signals) => {
    try {
      process.kill(-p.child.pid!, sig);
    } catch {
      /* gone */
    }
  };
  kill('SIGTERM');
  const timer = setTimeout(() => kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

async function accepting(port: number, what: string, peer: Peer, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((done) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        done(true);
      });
      s.once('error', () => done(false));
    });
    if (ok) return;
    if (peer.child.exitCode !== null || Date.now() > deadline) throw new Error(`${what} is not accepting on ${port}:\n${peer.log()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('apps at their own host names, in Chromium', { timeout: 180_000 }, () => {
  let desktop: Desktop | undefined;
  let websockify: Peer | undefined;
  let jupyter: Peer | undefined;
  let echo: WsUpstream | undefined;
  let browser: Browser | undefined;
  let gw: TestGateway | undefined;
  let jupDir: string;

  before(async () => {
    for (const f of [`${NOVNC}/vnc.html`, WEBSOCKIFY, '/usr/lib/python3/dist-packages/notebook/__init__.py']) {
      assert.ok(existsSync(f), `${f} is installed (apt-get install novnc websockify jupyter-notebook; npm test installs them when run as root)`);
    }
    jupDir = mkdtempSync(join(tmpdir(), 'porthole-jup-'));
    // One cell that prints a known value; Notebook 6's classic UI runs it.
    const notebook = {
      cells: [{ cell_type: 'code', execution_count: null, metadata: {}, outputs: [], source: ["print('PORTHOLE-JUP', 6 * 7)"] }],
      metadata: { kernelspec: { display_name: 'Python 3', language: 'python', name: 'python3' } },
      nbformat: 4,
      nbformat_minor: 5,
    };
    writeFileSync(join(jupDir, 'check.ipynb'), JSON.stringify(notebook));
    const [vncWebPort, jupPort] = [await deadPort(), await deadPort()];
    [desktop, browser, echo] = await Promise.all([startDesktop(WORD), launchChromium(), wsUpstream()]);
    websockify = startPeer(WEBSOCKIFY, ['--web', NOVNC, `127.0.0.1:${vncWebPort}`, `127.0.0.1:${desktop.vncPort}`]);
    jupyter = startPeer(
      PYTHON,
      [
        '-m',
        'notebook',
        '--no-browser',
        '--allow-root',
        '--ip=127.0.0.1',
        `--port=${jupPort}`,
        '--port-retries=0',
        '--NotebookApp.token=',
        '--NotebookApp.password=',
        // Notebook refuses Hosts other than localhost and IP addresses unless told its name (its own rebinding guard).
        '--NotebookApp.local_hostnames=jup.localhost',
        `--notebook-dir=${jupDir}`,
      ],
      { HOME: jupDir, JUPYTER_RUNTIME_DIR: join(jupDir, 'runtime'), JUPYTER_CONFIG_DIR: join(jupDir, 'config'), JUPYTER_DATA_DIR: join(jupDir, 'data'), IPYTHONDIR: join(jupDir, 'ipython') },
      jupDir,
    );
    await Promise.all([accepting(vncWebPort, 'websockify', websockify), accepting(jupPort, 'jupyter notebook', jupyter, 60_000)]);
    gw = await startGateway({
      apps: [
        { name: 'vnc', port: vncWebPort },
        { name: 'jup', port: jupPort },
        { name: 'echo', port: echo.port },
      ],
    });
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await gw?.close();
    await echo?.close();
    await Promise.all([stopPeer(websockify), stopPeer(jupyter)]);
    await desktop?.stop();
    if (jupDir) rmSync(jupDir, { recursive: true, force: true });
  });

  test('noVNC vnc.html with no path parameter at http://vnc.localhost:PORT/ connects and draws the remote screen', async (t) => {
    const page: Page = await browser!.newPage({ viewport: { width: 1100, height: 700 } });
    const sockets: string[] = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    try {
      await page.goto(`http://vnc.localhost:${gw!.port}/vnc.html?autoconnect=1&resize=off`);
      await page.waitForFunction(`document.documentElement.classList.contains('noVNC_connected')`, undefined, { timeout: 30_000 });
      const handle = await page.waitForFunction(`(() => { const p = ${CANVAS_PIXELS}; return p && p.white > 20000 ? p : null; })()`, undefined, { timeout: 30_000, polling: 200 });
      const pixels = (await handle.jsonValue()) as { width: number; height: number; nonBlack: number; white: number };
      assert.equal(pixels.width, 1024, 'the canvas has the remote screen size');
      assert.equal(pixels.height, 600);
      assert.deepEqual(sockets, [`ws://vnc.localhost:${gw!.port}/websockify`], 'noVNC dialled its default path at the root of the app\'s host name');
      const shot = join(tmpdir(), 'porthole-novnc-vnc-localhost.png');
      await page.screenshot({ path: shot });
      t.diagnostic(`canvas ${JSON.stringify(pixels)}; screenshot ${shot}`);
    } finally {
      await page.close();
    }
  });

  test('the same page under /vnc/ without path: its WebSocket to /websockify gets close 1008 with a reason the page can read', async (t) => {
    const page: Page = await browser!.newPage({ viewport: { width: 1100, height: 700 } });
    const consoleLines: string[] = [];
    page.on('console', (m) => consoleLines.push(m.text()));
    try {
      const res = await page.goto(`http://127.0.0.1:${gw!.port}/vnc/vnc.html?autoconnect=1&resize=off`);
      assert.equal(res?.status(), 200);
      const close = (await page.evaluate(closeInPage(`ws://127.0.0.1:${gw!.port}/websockify`))) as { code: number; reason: string; opened: boolean };
      assert.equal(close.code, 1008, JSON.stringify(close));
      assert.equal(close.opened, true);
      assert.equal(close.reason, `no app at /websockify; page under /vnc/? open http://vnc.localhost:${gw!.port}/ or use path=vnc/websockify`);
      // noVNC's own connection failed the same way: its status line says so (it does not show close reasons).
      await page.waitForFunction(`(document.getElementById('noVNC_status') || {}).textContent`, undefined, { timeout: 15_000 });
      await page.waitForTimeout(600); // let the status panel finish sliding in, for the screenshot
      const status = await page.evaluate(`document.getElementById('noVNC_status').textContent`);
      assert.ok(
        consoleLines.some((l) => l.includes('code: 1008') && l.includes(close.reason)),
        `noVNC's own WebSocket got the code and the reason (it logs them): ${JSON.stringify(consoleLines)}`,
      );
      const shot = join(tmpdir(), 'porthole-novnc-prefix-no-path.png');
      await page.screenshot({ path: shot });
      t.diagnostic(`close ${JSON.stringify(close)}; noVNC status ${JSON.stringify(status)}; console ${JSON.stringify(consoleLines.filter((l) => /1008|close/i.test(l)))}; screenshot ${shot}`);
      // The hint works: with path=vnc/websockify the page connects under the prefix too.
      await page.goto(`http://127.0.0.1:${gw!.port}/vnc/vnc.html?autoconnect=1&resize=off&path=vnc/websockify`);
      await page.waitForFunction(`document.documentElement.classList.contains('noVNC_connected')`, undefined, { timeout: 30_000 });
    } finally {
      await page.close();
    }
  });

  test('Chromium sends Origin and no Referer with a WebSocket handshake (so the hint cannot come from the page\'s path)', async () => {
    const page: Page = await browser!.newPage();
    try {
      await page.goto(`http://127.0.0.1:${gw!.port}/vnc/vnc.html`);
      const before = echo!.handshakes.length;
      const result = await page.evaluate(`new Promise((ok) => { const ws = new WebSocket('ws://127.0.0.1:${gw!.port}/echo/x'); ws.onopen = () => { ws.close(); ok('open'); }; ws.onerror = () => ok('error'); })`);
      assert.equal(result, 'open');
      const hs = echo!.handshakes[before];
      assert.ok(hs, 'the handshake reached the echo app');
      assert.equal(hs.headers.origin, `http://127.0.0.1:${gw!.port}`);
      assert.equal(hs.headers.referer, undefined, `Referer: ${hs.headers.referer}`);
    } finally {
      await page.close();
    }
  });

  test('Jupyter Notebook without base_url runs a cell at http://jup.localhost:PORT/, through its kernel WebSocket', async (t) => {
    const page: Page = await browser!.newPage({ viewport: { width: 1200, height: 800 } });
    const frames: { url: string; text: string }[] = [];
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('websocket', (ws) => ws.on('framereceived', (f) => frames.push({ url: ws.url(), text: typeof f.payload === 'string' ? f.payload : Buffer.from(f.payload).toString('latin1') })));
    try {
      const res = await page.goto(`http://jup.localhost:${gw!.port}/notebooks/check.ipynb`);
      assert.equal(res?.status(), 200, 'no prefix: the notebook page is served at the root of jup.localhost');
      await page.waitForFunction(`!!(window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel && Jupyter.notebook.kernel.is_connected())`, undefined, { timeout: 60_000, polling: 250 });
      await page.evaluate(`Jupyter.notebook.execute_all_cells()`);
      await page.waitForFunction(`Array.from(document.querySelectorAll('.output_area pre')).some((e) => e.textContent.includes(${JSON.stringify(JUP_VALUE)}))`, undefined, { timeout: 60_000, polling: 250 });
      const kernelFrames = frames.filter((f) => new URL(f.url).pathname.startsWith('/api/kernels/') && f.text.includes(JUP_VALUE));
      assert.ok(kernelFrames.length > 0, `the printed value came over the kernel WebSocket: ${JSON.stringify(frames.map((f) => f.url))}`);
      assert.equal(new URL(kernelFrames[0].url).host, `jup.localhost:${gw!.port}`);
      const shot = join(tmpdir(), 'porthole-jupyter-jup-localhost.png');
      await page.screenshot({ path: shot });
      t.diagnostic(`kernel socket ${kernelFrames[0].url}; screenshot ${shot}`);
      assert.deepEqual(pageErrors, []);
    } catch (err) {
      throw new Error(`${(err as Error).message}\njupyter log:\n${jupyter?.log()}`);
    } finally {
      await page.close();
    }
  });
});
