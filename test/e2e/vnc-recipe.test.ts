/**
 * Issue 3's end-to-end proof: seed 000's "VNC Browser Viewer: Full Recipe"
 * (Xvfb → x11vnc → websockify --web, a Flask page serving noVNC) registered
 * with the seed's own JSON through `POST /webapp` on a real `porthole serve`
 * child, opened in headless Chromium at `/browser-vnc/`: noVNC's WebSocket
 * goes through the gateway to `ws_port` (websockify), the RFB handshake comes
 * back from x11vnc, and the remote screen — an xterm showing a known word —
 * is drawn on noVNC's canvas. Then `stop` must leave no process of the app.
 *
 * test/fixtures/vnc/ holds the seed's files. app.py and requirements.txt are
 * verbatim; start.sh and the registration deviate from the seed only here:
 *
 * 1. Display and ports come from the environment, so the test cannot collide
 *    with anything else on the machine: `Xvfb "$DISPLAY"` and
 *    `x11vnc -display "$DISPLAY"` instead of `:99` (DISPLAY is passed in the
 *    app's `env` exactly like the seed's `"DISPLAY": ":99"`, but the number is
 *    a free one ≥ 50); `-rfbport "$VNC_PORT"` instead of 5900 (an extra env
 *    entry, a free port); websockify listens on `"$WS_PORT"` (set by Porthole
 *    from `ws_port`) instead of 6080; `port` and `ws_port` come from
 *    `alloc_port` instead of 9002 and 6080. app.py already reads PORT.
 * 2. Step 3 starts `xterm … -e sh -c 'echo PORTHOLE-VNC-OK; sleep 600'`
 *    instead of Chromium on "$STARTUP_URL": a known word to look for on the
 *    remote screen, without a second browser. STARTUP_URL is still passed.
 * 3. `python app.py` → `/usr/bin/python3 app.py`: `python` on PATH here is a
 *    pyenv interpreter without Flask; Debian's python3-flask is for
 *    /usr/bin/python3.
 * 4. noVNC is Debian's `novnc` package (1.3.0, /usr/share/novnc) symlinked as
 *    `static/novnc` instead of `git clone` of noVNC's default branch. Its
 *    `core/rfb.js` is a plain ES module (vendored pako included), so the
 *    seed's `import RFB from '/browser-vnc/static/novnc/core/rfb.js'` works.
 * 5. `cwd` is a temp copy of the fixture dir (nothing is written to the repo),
 *    not /a0/apps/browser-vnc.
 * 6. The app's `env` also carries PORTHOLE_TEST_MARK=<uuid>: after the stop,
 *    /proc is scanned for any live process whose environment has it.
 * 7. requirements.txt (`flask>=3.0`) is not installed: Debian bookworm's
 *    Flask is 2.2.2, which runs app.py unchanged (the pin is stricter than
 *    the app needs).
 * 8. The seed's `requests.post` calls carry no credentials; Porthole's admin
 *    API needs `Authorization: Bearer <token>` (startAdmin's `webapp()` adds
 *    it). The JSON bodies are the seed's.
 *
 * Kept exactly as the seed has them, though questionable: the fixed
 * `sleep 1`s in start.sh (the test waits on readiness with deadlines, not
 * sleeps); Flask on 0.0.0.0 and websockify on all interfaces; x11vnc's
 * `-listen 127.0.0.1`, which in x11vnc 0.9.16 still opens `[::]:<rfbport>`
 * and `[::]:5900` (x11vnc's own IPv6 listener ignores -listen; `-localhost`
 * would keep it on loopback). The seed's troubleshooting claim that noVNC
 * "negotiates `binary`" and websockify needs `--web` for it is checked
 * below: noVNC 1.3.0 asks for no subprotocol at all, and websockify accepts.
 *
 * The page's inline module keeps the RFB object to itself, so "connected" is
 * seen from outside: the WebSocket Chromium opened (URL, 101, the first
 * frame being x11vnc's `RFB 003.008` greeting), the gateway's `upgrade` log
 * line, and the canvas pixels.
 *
 * Set PORTHOLE_VNC_SCREENSHOT=/some/file.png to keep a screenshot of the page;
 * one is also written to the temp dir (and named in the error) when the
 * canvas check fails.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { startAdmin, type AdminGateway } from '../helpers/admin.js';
import { launchChromium } from '../helpers/browser.js';
import { jsonLines } from '../helpers/cli.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/vnc/', import.meta.url));
const NOVNC = '/usr/share/novnc';
const APP = 'browser-vnc';
const WORD = 'PORTHOLE-VNC-OK';
const MARK = `PORTHOLE_TEST_MARK=${randomUUID()}`;

let gw: AdminGateway | undefined;
let browser: Browser | undefined;
let appDir: string;

/** A display number ≥ 50 with no socket, lock file or abstract socket of a running X server. */
function freeDisplay(): number {
  let abstract = '';
  try {
    abstract = readFileSync('/proc/net/unix', 'utf8');
  } catch {
    // no /proc/net/unix: the file checks have to do
  }
  for (let n = 50; n < 500; n++) {
    if (existsSync(`/tmp/.X11-unix/X${n}`) || existsSync(`/tmp/.X${n}-lock`)) continue;
    if (new RegExp(`@/tmp/\\.X11-unix/X${n}$`, 'm').test(abstract)) continue;
    return n;
  }
  throw new Error('no free X display number in 50..499');
}

/** A port the kernel says is free now (outside the gateway's 9000-9999 allocation range). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((ok) => server.close(ok));
  return port;
}

interface MarkedProcess {
  pid: number;
  state: string;
  pgid: number;
  sid: number;
  cmdline: string;
}

/** Live (not zombie) processes whose environment holds {@link MARK}. */
function markedProcesses(): MarkedProcess[] {
  const found: MarkedProcess[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    try {
      if (!readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(MARK)) continue;
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // comm (field 2) may hold spaces and ')': split after the last ')'.
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const state = f[0];
      if (state === 'Z' || state === 'X') continue;
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
      found.push({ pid, state, pgid: Number(f[2]), sid: Number(f[3]), cmdline });
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

async function until<T>(what: string, ms: number, fn: () => Promise<T | undefined | false> | T | undefined | false, every = 200): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/** What the canvas shows, in framebuffer pixels (noVNC's canvas is the remote screen's size, scaled by CSS). */
interface CanvasStats {
  width: number;
  height: number;
  nonBlack: number;
  /** The xterm's first text row, where the word is: dark glyph pixels on white. */
  word: { white: number; dark: number; total: number };
  /** Further along the first row and the empty rows below: xterm's white background only. */
  blank: { white: number; total: number };
  /** Outside the xterm: Xvfb's root window (black, since Xorg 1.10 dropped the weave without -retro). */
  root: { white: number; total: number };
}

/**
 * Runs in the page (a string: tsx's esbuild wraps named functions in a
 * `__name()` helper that does not exist in the page). Geometry, measured on
 * a screenshot (xterm at +0+0, `-fa Monospace -fs 20` = DejaVu Sans Mono):
 * cells are about 17×33 px, so "PORTHOLE-VNC-OK" (15 cells) spans
 * x ≈ 2..257, y ≈ 4..33, the cursor sits in row 2 (y ≈ 35..68), and the
 * 80×10 window ends near x ≈ 1365, y ≈ 335. Around it, Xvfb's root window
 * is black.
 */
const CANVAS_STATS = `(() => {
  const canvas = document.querySelector('#screen canvas');
  if (!canvas || canvas.width < 1000 || canvas.height < 300) return null;
  const ctx = canvas.getContext('2d');
  if (!ctx) return null;
  const { width, height } = canvas;
  const all = ctx.getImageData(0, 0, width, height).data;
  let nonBlack = 0;
  for (let i = 0; i < all.length; i += 4) if (all[i] || all[i + 1] || all[i + 2]) nonBlack++;
  function region(x, y, w, h) {
    const d = ctx.getImageData(x, y, w, h).data;
    let white = 0;
    let dark = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i] > 200 && d[i + 1] > 200 && d[i + 2] > 200) white++;
      else if (d[i] + d[i + 1] + d[i + 2] < 300) dark++;
    }
    return { white, dark, total: w * h };
  }
  const word = region(2, 2, 180, 24);
  const blankRight = region(300, 2, 600, 24);
  const blankBelow = region(20, 80, 900, 140);
  const root = region(1100, 500, 600, 400);
  return {
    width,
    height,
    nonBlack,
    word,
    blank: { white: blankRight.white + blankBelow.white, total: blankRight.total + blankBelow.total },
    root: { white: root.white, total: root.total },
  };
})()`;

/** The xterm is drawn: its word row has glyphs, its empty area is white, and the root window around it is not. */
function xtermDrawn(s: CanvasStats | null): boolean {
  if (!s) return false;
  return s.nonBlack > 0 && s.word.dark > 150 && s.word.white > s.word.total * 0.4 && s.blank.white >= s.blank.total * 0.99 && s.root.white < s.root.total * 0.9;
}

before(async () => {
  appDir = mkdtempSync(join(tmpdir(), 'porthole-vnc-'));
  for (const f of ['start.sh', 'app.py', 'requirements.txt']) cpSync(join(FIXTURE, f), join(appDir, f));
  mkdirSync(join(appDir, 'static'));
  symlinkSync(NOVNC, join(appDir, 'static', 'novnc'));
  [gw, browser] = await Promise.all([startAdmin(), launchChromium()]);
});

after(async () => {
  await browser?.close().catch(() => undefined);
  await gw?.cleanup();
  // A failed run must not leave its X server behind: end what this test's app started (and nothing else).
  for (const p of markedProcesses()) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  rmSync(appDir, { recursive: true, force: true });
});

test("seed 000's VNC recipe behind porthole serve: noVNC in Chromium draws the remote xterm; stop leaves no process", { timeout: 90_000 }, async (t) => {
  const g = gw!;
  const t0 = Date.now();
  const phases: string[] = [];
  const phase = (what: string) => phases.push(`${what} +${Date.now() - t0}ms`);
  const display = freeDisplay();
  const vncPort = await freePort();
  const port = (await g.webapp({ action: 'alloc_port' })).body.port as number;
  const wsPort = (await g.webapp({ action: 'alloc_port' })).body.port as number;
  assert.equal(typeof port, 'number');
  assert.equal(typeof wsPort, 'number');
  assert.notEqual(port, wsPort);

  // The seed's registration, with the ports, display and cwd of deviations 1 and 5.
  const reg = await g.webapp({
    action: 'register',
    name: APP,
    port,
    ws_port: wsPort,
    cmd: 'bash start.sh',
    cwd: appDir,
    description: 'VNC Browser Viewer',
    autostart: true,
    env: {
      STARTUP_URL: 'https://example.com',
      DISPLAY: `:${display}`,
      VNC_PORT: String(vncPort),
      PORTHOLE_TEST_MARK: MARK.slice(MARK.indexOf('=') + 1),
    },
  });
  assert.equal(reg.status, 200, JSON.stringify(reg.body));
  assert.equal(reg.body.ok, true);
  assert.equal(reg.body.url, `/${APP}/`);
  assert.equal(reg.body.app.name, APP);
  assert.equal(reg.body.app.port, port);
  assert.equal(reg.body.app.ws_port, wsPort);
  assert.equal(reg.body.app.state, 'stopped');

  const start = await g.webapp({ action: 'start', name: APP });
  assert.equal(start.status, 200, JSON.stringify(start.body));
  assert.equal(start.body.url, `/${APP}/`);
  assert.ok(['starting', 'running'].includes(start.body.app.state), start.body.app.state);
  assert.equal(typeof start.body.app.pid, 'number');

  // `running` only once port (Flask) AND ws_port (websockify) answer; start.sh sleeps ~3 s on the way.
  const logs = async () => ((await g.webapp({ action: 'logs', name: APP, lines: 200 })).body.lines as string[] | undefined ?? []).join('\n');
  const running = await until('the app to be running', 60_000, async () => {
    const s = await g.webapp({ action: 'status', name: APP });
    assert.equal(s.status, 200);
    if (['failed', 'stopped', 'backoff'].includes(s.body.app.state)) assert.fail(`app is ${s.body.app.state} (${s.body.app.message}):\n${await logs()}`);
    return s.body.app.state === 'running' && s.body.app.ready === true ? s.body.app : undefined;
  }, 250);
  const pgid = running.pid as number;
  phase('running');

  // Every service start.sh sent to the background runs, with the mark in its environment.
  const live = markedProcesses();
  for (const name of ['Xvfb', 'x11vnc', 'xterm', 'websockify', 'app.py', 'sleep 600']) {
    assert.ok(live.some((p) => p.cmdline.includes(name)), `${name} runs:\n${live.map((p) => p.cmdline).join('\n')}\n${await logs()}`);
  }
  // xterm runs its command in a session of its own (the pty's), so `sh -c …; sleep 600` is outside the app's
  // process group that the supervisor signals: only the pty's hangup when xterm exits ends it.
  const sleeper = live.find((p) => p.cmdline === 'sleep 600');
  assert.ok(sleeper && sleeper.pgid !== pgid, `sleep 600 is in its own process group: ${JSON.stringify(live)}`);

  // The page and the noVNC module it imports come through the gateway (prefix stripped for Flask).
  const html = await (await fetch(`${g.url}/${APP}/`)).text();
  assert.match(html, new RegExp(`import RFB from '/${APP}/static/novnc/core/rfb.js'`));
  const rfbJs = await fetch(`${g.url}/${APP}/static/novnc/core/rfb.js`);
  assert.equal(rfbJs.status, 200);
  assert.match(rfbJs.headers.get('content-type') ?? '', /javascript/);
  assert.match(await rfbJs.text(), /export default class RFB/);

  const page: Page = await browser!.newPage({ viewport: { width: 1920, height: 1080 } });
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    // Chromium asks for /favicon.ico at the origin's root, where no app is mounted: the gateway's 404.
    if (m.type() === 'error' && !m.location().url.endsWith('/favicon.ico')) pageErrors.push(`${m.text()} (${m.location().url})`);
  });
  // The WebSocket as Chromium sees it: URL, handshake headers (CDP), the first frame.
  const sockets: { url: string; firstFrame?: string; closed: boolean }[] = [];
  page.on('websocket', (ws) => {
    const rec: (typeof sockets)[number] = { url: ws.url(), closed: false };
    sockets.push(rec);
    ws.on('framereceived', (f) => {
      rec.firstFrame ??= Buffer.from(f.payload).toString('latin1');
    });
    ws.on('close', () => (rec.closed = true));
  });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  const handshakes: { request?: Record<string, string>; status?: number; response?: Record<string, string> }[] = [];
  const byId = new Map<string, (typeof handshakes)[number]>();
  const hs = (id: string) => {
    let h = byId.get(id);
    if (!h) {
      h = {};
      byId.set(id, h);
      handshakes.push(h);
    }
    return h;
  };
  cdp.on('Network.webSocketWillSendHandshakeRequest', (e) => (hs(e.requestId).request = e.request.headers as Record<string, string>));
  cdp.on('Network.webSocketHandshakeResponseReceived', (e) => {
    hs(e.requestId).status = e.response.status;
    hs(e.requestId).response = e.response.headers as Record<string, string>;
  });

  const res = await page.goto(`${g.url}/${APP}/`);
  assert.equal(res?.status(), 200);

  // The canvas shows the remote screen: not all black, and the xterm with its word is there.
  let stats: CanvasStats | null = null;
  try {
    await until('noVNC to draw the xterm on its canvas', 30_000, async () => xtermDrawn((stats = (await page.evaluate(CANVAS_STATS)) as CanvasStats | null)), 300);
  } catch (err) {
    const shot = join(tmpdir(), `porthole-vnc-recipe-${process.pid}.png`);
    await page.screenshot({ path: shot }).catch(() => undefined);
    throw new Error(`${(err as Error).message}\ncanvas: ${JSON.stringify(stats)}\nscreenshot: ${shot}\nsockets: ${JSON.stringify(sockets)}\npage errors: ${pageErrors.join('\n')}\n${await logs()}`);
  }
  const s = stats!;
  phase('canvas drawn');
  t.diagnostic(`canvas ${JSON.stringify(s)}`);
  assert.equal(s.width, 1920, "the framebuffer is Xvfb's 1920x1080 screen");
  assert.equal(s.height, 1080);
  assert.ok(s.nonBlack > 0, 'the canvas is not all black');
  if (process.env.PORTHOLE_VNC_SCREENSHOT) await page.screenshot({ path: process.env.PORTHOLE_VNC_SCREENSHOT });

  // noVNC's one WebSocket went to /browser-vnc/websockify on the gateway and got x11vnc's greeting.
  const wsUrl = `ws://127.0.0.1:${g.port}/${APP}/websockify`;
  assert.deepEqual(
    sockets.map((w) => w.url),
    [wsUrl],
  );
  assert.equal(sockets[0].firstFrame, 'RFB 003.008\n', 'the first frame is the RFB version greeting of x11vnc');
  assert.equal(handshakes.length, 1);
  assert.equal(handshakes[0].status, 101);
  // The seed's troubleshooting says noVNC "negotiates `binary` automatically" and that websockify needs --web
  // for it. noVNC 1.3.0 asks for no subprotocol at all (RFB's wsProtocols default is []), and websockify
  // accepts that with or without --web.
  const header = (h: Record<string, string> | undefined, name: string) => Object.entries(h ?? {}).find(([k]) => k.toLowerCase() === name)?.[1];
  assert.equal(header(handshakes[0].request, 'sec-websocket-protocol'), undefined);
  assert.equal(header(handshakes[0].response, 'sec-websocket-protocol'), undefined);
  assert.deepEqual(pageErrors, []);

  // The gateway logged the accepted upgrade for the app.
  const upgrades = jsonLines(g.stdout()).filter((l) => l.event === 'upgrade' && l.app === APP);
  assert.equal(upgrades.length, 1, JSON.stringify(upgrades));
  assert.equal(upgrades[0].accepted, true);
  assert.equal(upgrades[0].status, 101);
  assert.equal(upgrades[0].path, `/${APP}/websockify`);

  // Stop: the whole app goes, including everything start.sh sent to the background.
  const stop = await g.webapp({ action: 'stop', name: APP });
  assert.equal(stop.status, 200, JSON.stringify(stop.body));
  assert.equal(stop.body.url, `/${APP}/`);
  assert.equal(stop.body.app.state, 'stopped');
  assert.equal(stop.body.app.pid, null);
  phase('stopped');
  const survivors = markedProcesses();
  assert.deepEqual(
    survivors.map((p) => `${p.pid} ${p.state} pgid=${p.pgid}${p.pgid === pgid ? ' (app group)' : ''} sid=${p.sid} ${p.cmdline}`),
    [],
    'no process of the app survives the stop',
  );
  assert.ok(!existsSync(`/tmp/.X${display}-lock`), "Xvfb exited cleanly (it removes its lock on SIGTERM)");

  // The tunnel ends with the app: websockify's side closed it, and the browser saw it close.
  const closeLine = await until('the tunnel.close log line', 10_000, () => jsonLines(g.stdout()).find((l) => l.event === 'tunnel.close' && l.app === APP));
  t.diagnostic(`tunnel.close ${JSON.stringify(closeLine)}`);
  await until('the page to see its WebSocket close', 10_000, () => sockets[0].closed);
  await page.close();
  // Nothing went wrong on the gateway's side (supervisor, app log, survivors of SIGKILL…).
  assert.deepEqual(
    jsonLines(g.stdout()).filter((l) => l.event === 'error'),
    [],
  );
  t.diagnostic(phases.join(', '));
});
