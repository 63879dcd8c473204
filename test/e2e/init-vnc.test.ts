/**
 * `porthole init vnc`: seed 000's VNC desktop with Porthole's bridge in place
 * of websockify. The real CLI writes the app, `npm install` installs
 * @novnc/novnc 1.7.0 from the registry, the printed `porthole apps add …
 * --start` registers it with a real `porthole serve`, and Chromium opens
 * /desk/: noVNC (ES modules from the app's node_modules) dials
 * /desk/websockify, the gateway bridges it to x11vnc, and the canvas shows
 * the remote screen (the xterm's white window on the black root), under the
 * prefix and at desk.localhost. x11vnc
 * listens on loopback only; after the stop no process of the app's group,
 * and none in its directory, is left.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { startAdmin, type AdminGateway } from '../helpers/admin.js';
import { canvasPixels, launchChromium } from '../helpers/browser.js';
import { followSteps, groupMembers, init, processesIn, screenshot, until, waitRunning, watchPage } from '../helpers/init-app.js';

const TOOLS = ['/usr/bin/Xvfb', '/usr/bin/x11vnc', '/usr/bin/xterm'];

let tmp: string;
let gw: AdminGateway;
let browser: Browser;

before(async () => {
  for (const t of TOOLS) assert.ok(existsSync(t), `${t} is missing: apt-get install xvfb x11vnc xterm (scripts/ensure-tools.mjs installs them as root)`);
  tmp = mkdtempSync(join(tmpdir(), 'porthole-init-vnc-'));
  [gw, browser] = await Promise.all([startAdmin(), launchChromium()]);
});
after(async () => {
  await browser?.close();
  await gw?.cleanup();
  // A failed run must not leave its X server: end what runs in the app's directory (and nothing else).
  if (tmp) for (const p of processesIn(join(tmp, 'desk'))) process.kill(p.pid, 'SIGKILL');
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** The pixels of noVNC's canvas (see canvasPixels). */
const CANVAS = canvasPixels('#screen');

/** Local addresses of the TCP sockets `pid` listens on, from /proc (IPv4 and IPv6). */
function listeningAddresses(pid: number): string[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {
      // closed meanwhile
    }
  }
  const found: string[] = [];
  for (const [file, v6] of [['/proc/net/tcp', false], ['/proc/net/tcp6', true]] as const) {
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A' || !inodes.has(f[9])) continue; // 0A: LISTEN
      const [hex, port] = f[1].split(':');
      found.push(`${v6 ? ipv6(hex) : ipv4(hex)}:${parseInt(port, 16)}`);
    }
  }
  return found;
}
const ipv4 = (hex: string) => [3, 2, 1, 0].map((i) => parseInt(hex.slice(i * 2, i * 2 + 2), 16)).join('.');
/** /proc/net/tcp6 writes each 32-bit word in host (little-endian) order. */
function ipv6(hex: string): string {
  const words = [0, 1, 2, 3].map((w) => hex.slice(w * 8, w * 8 + 8).match(/../g)!.reverse().join(''));
  const all = words.join('');
  if (/^0{31}1$/.test(all)) return '[::1]';
  if (/^0{32}$/.test(all)) return '[::]';
  return `[${all}]`;
}

test('porthole init vnc: noVNC from npm draws the desktop through the bridge; x11vnc on loopback only; the stop leaves nothing', { timeout: 90_000 }, async (t) => {
  const app = await init(tmp, ['vnc', '--name', 'desk']);
  assert.equal(app.dir, join(tmp, 'desk'));
  assert.match(app.stdout, /It needs Xvfb, x11vnc and xterm/);
  assert.deepEqual(app.steps, ['cd desk', 'npm install', 'porthole apps add desk --file porthole.yaml --start']);
  await followSteps(app, gw);
  const running = await waitRunning(gw, 'desk', 40_000);
  const pgid = running.pid as number;

  // What runs: the script's programs, all in the app's process group (the script exec'd node).
  const procs = processesIn(app.dir);
  for (const name of ['Xvfb', 'x11vnc', 'xterm', 'node server.js']) assert.ok(procs.some((p) => p.cmdline.startsWith(name) && p.pgid === pgid), `${name} runs in the app's group:\n${JSON.stringify(procs, null, 1)}`);
  const x11vnc = procs.find((p) => p.cmdline.startsWith('x11vnc'))!;
  const vncPort = Number(/-rfbport (\d+)/.exec(x11vnc.cmdline)![1]);
  assert.equal(running.ws_bridge, `127.0.0.1:${vncPort}`, 'the bridge goes to the port x11vnc listens on');
  const addresses = listeningAddresses(x11vnc.pid);
  assert.ok(addresses.length > 0, 'x11vnc listens');
  for (const a of addresses) assert.match(a, /^(127\.0\.0\.1|\[::1\]):\d+$/, `x11vnc listens on loopback only: ${addresses.join(', ')}`);

  // The page server hands out noVNC's modules and nothing else of the disk, whatever the path says.
  const direct = `http://127.0.0.1:${running.port}`;
  assert.equal((await fetch(`${direct}/novnc/core/rfb.js`)).status, 200);
  for (const path of ['/novnc/core/%2e%2e/%2e%2e/package.json', '/novnc/core/..%2f..%2f..%2fpackage.json', '/novnc/vendor/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd.js', '/novnc/core/rfb.js%00', '/novnc/core/%E0%A4%A.js', '/server.js', '/start.sh']) {
    assert.equal((await fetch(`${direct}${path}`)).status, 404, path);
  }

  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const problems = watchPage(page);
  const sockets: { url: string; first?: string }[] = [];
  page.on('websocket', (ws) => {
    const rec: (typeof sockets)[number] = { url: ws.url() };
    sockets.push(rec);
    ws.on('framereceived', (f) => (rec.first ??= Buffer.from(f.payload).toString('latin1')));
  });
  await page.goto(`${gw.url}/desk/`);
  await page.waitForSelector('#status.open', { timeout: 20_000 });
  // The first framebuffer update follows the connection: the xterm's white window on the black root window.
  let stats: { width: number; height: number; total: number; nonBlack: number; white: number } | null = null;
  await until('noVNC to draw the desktop', 20_000, async () => {
    stats = (await page.evaluate(CANVAS)) as typeof stats;
    return stats && stats.white > 100_000 && stats.nonBlack < stats.total;
  });
  t.diagnostic(`canvas ${JSON.stringify(stats)}`);
  assert.deepEqual([stats!.width, stats!.height], [1280, 800], "the remote screen is Xvfb's 1280x800");
  assert.deepEqual(sockets.map((s) => s.url), [`ws://127.0.0.1:${gw.port}/desk/websockify`]);
  assert.equal(sockets[0].first, 'RFB 003.008\n', "the first frame is x11vnc's RFB greeting, through Porthole's bridge");
  assert.deepEqual(problems, []);
  t.diagnostic(`screenshot: ${await screenshot(page, tmp, 'vnc')}`);

  // At its host name the same page dials /websockify there, and draws the same desktop (x11vnc -shared).
  const byName = await browser.newPage({ viewport: { width: 800, height: 600 } });
  const nameSockets: string[] = [];
  byName.on('websocket', (ws) => nameSockets.push(ws.url()));
  await byName.goto(`http://desk.localhost:${gw.port}/`);
  await byName.waitForSelector('#status.open', { timeout: 20_000 });
  await until('the desktop at desk.localhost', 20_000, async () => (((await byName.evaluate(CANVAS)) as { white: number } | null)?.white ?? 0) > 100_000);
  assert.deepEqual(nameSockets, [`ws://desk.localhost:${gw.port}/websockify`]);
  await byName.close();
  const display = /-display :(\d+)/.exec(x11vnc.cmdline)![1];
  // With -displayfd Xvfb writes no lock file; its socket is there while it runs.
  assert.ok(existsSync(`/tmp/.X11-unix/X${display}`), 'Xvfb listens on its display');

  // Stopped: the whole process group goes, and nothing of the app is left in its directory.
  const stop = await gw.api('POST', '/_porthole/api/apps/desk/stop');
  assert.equal(stop.body.app.state, 'stopped', JSON.stringify(stop.body));
  await until('the app group to be gone', 10_000, () => groupMembers(pgid).length === 0);
  await until('no process in the app directory', 10_000, () => processesIn(app.dir).length === 0);
  assert.ok(!existsSync(`/tmp/.X11-unix/X${display}`), 'Xvfb ended cleanly (it removes its socket on SIGTERM)');
  await page.waitForSelector('#status.closed', { timeout: 10_000 });
  await page.close();
});
