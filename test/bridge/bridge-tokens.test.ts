/**
 * Targets picked by token, in websockify's TokenFile format: standalone
 * (`--token-file`) and as an app (`bridge_token_file`). The file is read
 * again when it changes, without a restart.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { parseTokenFile } from '../../src/gateway/bridge-tokens.js';
import { httpUpstream, startGateway, waitFor, wsCloseOf } from '../helpers/net.js';
import { logEvents, startBridgeCli, type BridgeCli } from '../fixtures/bridge/bridge-cli.js';
import { tcpPeer, type TcpPeer } from '../fixtures/bridge/tcp-peers.js';
import { receiveBytes } from '../fixtures/bridge/ws-bytes.js';

/** Connects and returns the target's banner (each peer says its own name first). */
async function bannerVia(url: string, headers: Record<string, string> = {}): Promise<string> {
  const ws = new WebSocket(url, ['binary'], { headers });
  const banner = receiveBytes(ws, 2);
  await once(ws, 'open');
  const text = (await banner).toString();
  ws.close();
  return text;
}

describe('token targets', { timeout: 30_000 }, () => {
  let dir: string;
  let a: TcpPeer;
  let b: TcpPeer;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'porthole-tokens-'));
    a = await tcpPeer({ banner: 'A\n' });
    b = await tcpPeer({ banner: 'B\n' });
  });
  after(async () => {
    await a.close();
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('porthole bridge --token-file', () => {
    let cli: BridgeCli;
    let file: string;

    before(async () => {
      file = join(dir, 'tokens.cfg');
      writeFileSync(file, `# desktops\n\ndesk-a: 127.0.0.1:${a.port}\ndesk-b: 127.0.0.1:${b.port}\n`);
      cli = await startBridgeCli(['127.0.0.1:0', '--token-file', file]);
    });
    after(async () => {
      assert.equal(await cli.stop(), 0);
    });

    test('a known token routes to its target, from the query or from a cookie', async () => {
      assert.equal(await bannerVia(`${cli.wsUrl}/websockify?token=desk-a`), 'A\n');
      assert.equal(await bannerVia(`${cli.wsUrl}/websockify?token=desk-b`), 'B\n');
      assert.equal(await bannerVia(`${cli.wsUrl}/websockify`, { Cookie: 'theme=dark; token=desk-b' }), 'B\n');
    });

    test('an unknown or missing token: handshake completed, then close 1008 with the reason', async () => {
      const unknown = await wsCloseOf(`${cli.wsUrl}/websockify?token=nope`, ['binary']);
      assert.ok(unknown.opened);
      assert.equal(unknown.code, 1008);
      assert.equal(unknown.reason, 'bridge: unknown token "nope"');
      const missing = await wsCloseOf(`${cli.wsUrl}/websockify`, ['binary']);
      assert.equal(missing.code, 1008);
      assert.match(missing.reason, /no token: add \?token=NAME/);
    });

    test('a changed file is picked up without a restart', async () => {
      assert.equal(await bannerVia(`${cli.wsUrl}/?token=desk-a`), 'A\n');
      writeFileSync(file, `desk-a: 127.0.0.1:${b.port}\n# desk-b is gone\nnew-desk: 127.0.0.1:${a.port}\n`);
      assert.equal(await bannerVia(`${cli.wsUrl}/?token=desk-a`), 'B\n', 'desk-a now points at B');
      assert.equal(await bannerVia(`${cli.wsUrl}/?token=new-desk`), 'A\n', 'a new token works');
      assert.equal((await wsCloseOf(`${cli.wsUrl}/?token=desk-b`)).code, 1008, 'a removed token is refused');
    });

    test('the log does not show token values', async () => {
      await waitFor(() => logEvents(cli).some((e) => e.event === 'tunnel.close'));
      const paths = logEvents(cli)
        .filter((e) => e.event === 'upgrade' || e.event === 'tunnel.close')
        .map((e) => String(e.path));
      assert.ok(paths.length > 0);
      for (const p of paths) assert.doesNotMatch(p, /desk|nope/, p);
    });
  });

  test('an app with bridge_token_file (relative to the config directory), alone or next to a port for pages', async () => {
    const appDir = join(dir, 'app');
    mkdirSync(appDir);
    writeFileSync(join(appDir, 'tokens'), `one: 127.0.0.1:${a.port}\n`);
    const pages = await httpUpstream((req, res) => res.end(`page ${req.url}`));
    const g = await startGateway(
      {
        apps: [
          { name: 'desks', bridge_token_file: 'tokens' },
          { name: 'novnc', port: pages.port, bridge_token_file: 'tokens', bridge_text: 'binary' },
        ],
      },
      { baseDir: appDir },
    );
    try {
      assert.equal(await bannerVia(`${g.wsUrl}/desks/websockify?token=one`), 'A\n');
      assert.equal((await fetch(`${g.url}/desks/`)).status, 426, 'a token-only bridge app has no pages');
      assert.equal(await (await fetch(`${g.url}/novnc/vnc.html`)).text(), 'page /vnc.html');
      assert.equal(await bannerVia(`${g.wsUrl}/novnc/websockify?token=one`), 'A\n');
      const c = await wsCloseOf(`${g.wsUrl}/desks/websockify?token=two`);
      assert.equal(c.code, 1008);
      assert.equal(c.reason, 'desks: unknown token "two"');
    } finally {
      await g.close();
      await pages.close();
    }
  });

  test('a directory of token files works like one file', async () => {
    const tokensDir = join(dir, 'tokens.d');
    mkdirSync(tokensDir);
    writeFileSync(join(tokensDir, 'a.cfg'), `x: 127.0.0.1:${a.port}\n`);
    writeFileSync(join(tokensDir, 'b.cfg'), `y: 127.0.0.1:${b.port}\n`);
    const cli = await startBridgeCli(['127.0.0.1:0', '--token-file', tokensDir]);
    try {
      assert.equal(await bannerVia(`${cli.wsUrl}/?token=x`), 'A\n');
      assert.equal(await bannerVia(`${cli.wsUrl}/?token=y`), 'B\n');
      writeFileSync(join(tokensDir, 'c.cfg'), `z: 127.0.0.1:${b.port}\n`);
      assert.equal(await bannerVia(`${cli.wsUrl}/?token=z`), 'B\n', 'a new file in the directory is read');
    } finally {
      await cli.stop();
    }
  });
});

test('the token file parser: websockify lines, comments, blank lines, IPv6, and a warning per bad line', () => {
  const warnings: string[] = [];
  const tokens = parseTokenFile(
    ['# comment', '', 'a: 127.0.0.1:5900', 'b:localhost:5901', 'c: [::1]:5902', 'd: ::1:5903', 'broken line', 'e: host:99999', '  a: 10.0.0.1:5904  '].join('\n'),
    'tokens.cfg',
    new Map(),
    (w) => warnings.push(w),
  );
  assert.deepEqual(Object.fromEntries(tokens), {
    a: { host: '10.0.0.1', port: 5904 },
    b: { host: 'localhost', port: 5901 },
    c: { host: '::1', port: 5902 },
    d: { host: '::1', port: 5903 },
  });
  assert.equal(warnings.length, 2);
  assert.match(warnings[0], /^tokens\.cfg:7: expected "token: host:port"/);
  assert.match(warnings[1], /^tokens\.cfg:8: .*port must be from 1 to 65535/);
});
