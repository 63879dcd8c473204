/**
 * `porthole bridge` as a real child process (built dist/): websockify's job
 * with close codes and reasons, and static files for noVNC with `--web`.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { runCli } from '../helpers/cli.js';
import { closed, openWs, rawRequest, waitFor, wsCloseOf } from '../helpers/net.js';
import { logEvents, startBridgeCli, type BridgeCli } from '../fixtures/bridge/bridge-cli.js';
import { deadPort, tcpPeer, type TcpPeer } from '../fixtures/bridge/tcp-peers.js';
import { receiveBytes } from '../fixtures/bridge/ws-bytes.js';

const WEB = fileURLToPath(new URL('../fixtures/bridge/web', import.meta.url));

describe('porthole bridge', { timeout: 30_000 }, () => {
  let target: TcpPeer;
  let cli: BridgeCli;

  before(async () => {
    // Echoes; "QUIT" makes it say "bye" and close its side, like a VNC server that logs the user out.
    target = await tcpPeer({
      onSocket: (s) =>
        s.on('data', (d) => {
          if (d.toString() === 'QUIT') s.end('bye');
          else s.write(d);
        }),
    });
    cli = await startBridgeCli(['127.0.0.1:0', `127.0.0.1:${target.port}`, '--web', WEB]);
  });
  after(async () => {
    assert.equal(await cli.stop(), 0);
    await target.close();
  });

  test('the first stdout line is the URL it listens on', () => {
    assert.match(cli.stdout().split('\n')[0], /^listening on http:\/\/127\.0\.0\.1:\d+$/);
  });

  test('binary messages round-trip byte-exact, with the binary subprotocol selected when offered', async () => {
    const ws = await openWs(`${cli.wsUrl}/websockify`, ['binary'], { perMessageDeflate: false });
    assert.equal(ws.protocol, 'binary');
    const data = randomBytes(1_000_000);
    const back = receiveBytes(ws, data.length);
    for (let off = 0; off < data.length; off += 100_000) ws.send(data.subarray(off, off + 100_000));
    assert.ok((await back).equals(data));
    ws.close();
    await closed(ws);
  });

  test('closing the WebSocket ends the TCP connection: the target sees EOF; the log line says who closed', async () => {
    const n = target.sockets.length;
    const ws = await openWs(`${cli.wsUrl}/`, ['binary']);
    const back = receiveBytes(ws, 5);
    ws.send(Buffer.from('hello'));
    await back;
    ws.close(1000, 'bye');
    await waitFor(() => target.ended.length > n);
    assert.equal((await target.ended[n]).toString(), 'hello', 'EOF after every byte');
    const line = await waitFor(() => logEvents(cli).filter((e) => e.event === 'tunnel.close' && e.bytesIn === 5).pop(), 5000, 'the tunnel.close log line');
    assert.equal(line.app, 'bridge');
    assert.equal(line.closedBy, 'client');
    assert.equal(line.closeCode, 1000);
    assert.equal(line.bytesOut, 5);
    assert.equal(line.framesIn, 1);
  });

  test('the target closing TCP reaches the client as close 1000, after its last bytes', async () => {
    const ws = await openWs(`${cli.wsUrl}/`, ['binary']);
    const bye = receiveBytes(ws, 3);
    const c = closed(ws);
    ws.send(Buffer.from('QUIT'));
    assert.equal((await bye).toString(), 'bye');
    const { code, reason } = await c;
    assert.equal(code, 1000);
    assert.match(reason, /closed the connection/);
  });

  test('a text message is refused with 1003 by default', async () => {
    const ws = await openWs(`${cli.wsUrl}/`);
    ws.send('not bytes');
    const c = await closed(ws);
    assert.equal(c.code, 1003);
    assert.match(c.reason, /text messages are refused/);
  });

  test('--web serves files with their content types, index.html for /, vnc.html for a folder without index.html', async () => {
    const types: Record<string, RegExp> = {
      '/': /^text\/html/,
      '/index.html': /^text\/html/,
      '/app.js': /^text\/javascript/,
      '/style.css': /^text\/css/,
      '/logo.svg': /^image\/svg\+xml$/,
      '/pixel.png': /^image\/png$/,
      '/data.json': /^application\/json$/,
    };
    for (const [path, type] of Object.entries(types)) {
      const res = await fetch(`${cli.url}${path}`);
      assert.equal(res.status, 200, path);
      assert.match(res.headers.get('content-type') ?? '', type, path);
      await res.arrayBuffer();
    }
    assert.match(await (await fetch(`${cli.url}/`)).text(), /bridge web fixture/);
    assert.match(await (await fetch(`${cli.url}/sub/`)).text(), /<title>sub<\/title>/);
    const redirect = await fetch(`${cli.url}/sub`, { redirect: 'manual' });
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.get('location'), '/sub/');
    assert.equal((await fetch(`${cli.url}/missing.js`)).status, 404);
    assert.equal((await fetch(`${cli.url}/index.html`, { method: 'POST', body: 'x' })).status, 405);
  });

  test('--web refuses paths that leave the directory: /../etc/passwd, encoded dots, backslashes', async () => {
    for (const path of ['/../etc/passwd', '/../../../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/sub/..%2f..%2fetc/passwd', '/..\\..\\etc\\passwd']) {
      // A raw request: fetch() would normalize the dots away before sending.
      const res = await rawRequest(cli.port, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
      assert.match(res, /^HTTP\/1\.1 403 /, path);
      assert.doesNotMatch(res, /root:/, path);
    }
  });

  test('SIGTERM closes open connections with 1001 and exits 0', async () => {
    const own = await startBridgeCli(['127.0.0.1:0', `127.0.0.1:${target.port}`]);
    const ws = await openWs(`${own.wsUrl}/`, ['binary']);
    const c = closed(ws);
    assert.equal(await own.stop(), 0);
    assert.equal((await c).code, 1001);
  });
});

describe('porthole bridge, other options', { timeout: 30_000 }, () => {
  test('a target that is down: handshake completed, then close 1014 with a reason naming the target; plain GET without --web is 426', async () => {
    const port = await deadPort();
    const cli = await startBridgeCli([`127.0.0.1:0`, `127.0.0.1:${port}`]);
    try {
      const c = await wsCloseOf(`${cli.wsUrl}/websockify`, ['binary']);
      assert.ok(c.opened);
      assert.equal(c.code, 1014);
      assert.equal(c.reason, `bridge: upstream 127.0.0.1:${port} refused the connection`);
      const res = await fetch(`${cli.url}/`);
      assert.equal(res.status, 426);
      assert.match(await res.text(), new RegExp(`WebSocket bridge to 127\\.0\\.0\\.1:${port}`));
      const refused = await waitFor(() => logEvents(cli).find((e) => e.event === 'upgrade' && e.accepted === false));
      assert.equal(refused.code, 'PH_ERR_UPSTREAM_REFUSED');
    } finally {
      assert.equal(await cli.stop(), 0);
    }
  });

  test('--text-as-binary passes the bytes of text messages to TCP', async () => {
    const echo = await tcpPeer();
    const cli = await startBridgeCli(['127.0.0.1:0', `127.0.0.1:${echo.port}`, '--text-as-binary']);
    try {
      const ws = new WebSocket(`${cli.wsUrl}/`);
      await once(ws, 'open');
      const back = receiveBytes(ws, Buffer.byteLength('ünï'));
      ws.send('ünï');
      assert.ok((await back).equals(Buffer.from('ünï')));
      ws.close();
    } finally {
      await cli.stop();
      await echo.close();
    }
  });

  test('usage errors exit 2 with a message: no target, a malformed target, a port out of range, a missing --web directory', async () => {
    const cases: [string[], RegExp][] = [
      [['127.0.0.1:0'], /give a TARGET_HOST:PORT or --token-file/],
      [['127.0.0.1:0', 'nope'], /is not HOST:PORT/],
      [['127.0.0.1:0', '127.0.0.1:70000'], /port must be from 1 to 65535/],
      [['127.0.0.1:0', '127.0.0.1:5900', '--web', '/nonexistent/dir'], /--web \/nonexistent\/dir: no such directory/],
    ];
    await Promise.all(
      cases.map(async ([args, message]) => {
        const run = runCli(['bridge', ...args]);
        assert.equal(await run.exited, 2, args.join(' '));
        assert.match(run.stderr(), message);
      }),
    );
  });
});
