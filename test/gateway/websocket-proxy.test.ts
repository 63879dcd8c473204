import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { closed, collect, httpUpstream, nextMessage, openWs, startGateway, waitFor, wsUpstream, type TestGateway, type WsUpstream } from '../helpers/net.js';

describe('WebSocket through the prefix', () => {
  let up: WsUpstream;
  let split: WsUpstream;
  let pages: Awaited<ReturnType<typeof httpUpstream>>;
  let gw: TestGateway;

  before(async () => {
    up = await wsUpstream({ perMessageDeflate: true, handleProtocols: (p) => (p.has('chat.v2') ? 'chat.v2' : false) });
    split = await wsUpstream();
    pages = await httpUpstream((req, res) => res.end(`page ${req.url}`));
    gw = await startGateway({
      apps: [
        { name: 'same', port: up.port },
        { name: 'split', port: pages.port, ws_port: split.port },
      ],
    });
  });
  after(async () => {
    await gw.close();
    await Promise.all([up.close(), split.close(), pages.close()]);
  });

  test('HTTP and WebSocket reach the same app through /{app}/', async () => {
    const res = await fetch(`${gw.url}/same/hello?x=1`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'http-ok /hello?x=1');
    const ws = await openWs(`${gw.wsUrl}/same/socket`);
    ws.send('ping-1');
    const m = await nextMessage(ws);
    assert.equal(m.data.toString(), 'ping-1');
    assert.equal(up.handshakes.at(-1)?.url, '/socket');
    ws.close(1000);
    await closed(ws);
  });

  test('split port/ws_port: pages from port, upgrades to ws_port (seed 000)', async () => {
    const res = await fetch(`${gw.url}/split/index.html`);
    assert.equal(await res.text(), 'page /index.html');
    const ws = await openWs(`${gw.wsUrl}/split/websockify`);
    ws.send(Buffer.from([1, 2, 3]));
    const m = await nextMessage(ws);
    assert.equal(m.isBinary, true);
    assert.deepEqual([...m.data], [1, 2, 3]);
    assert.equal(split.handshakes.at(-1)?.url, '/websockify');
    ws.close();
    await closed(ws);
  });

  test('subprotocol and permessage-deflate are negotiated end to end', async () => {
    const ws = await openWs(`${gw.wsUrl}/same/`, ['chat.v1', 'chat.v2'], { perMessageDeflate: true });
    assert.equal(ws.protocol, 'chat.v2');
    assert.match(ws.extensions, /permessage-deflate/);
    const text = 'compressible '.repeat(1000);
    ws.send(text);
    assert.equal((await nextMessage(ws)).data.toString(), text);
    // The upstream saw the client's offer untouched.
    const hs = up.handshakes.at(-1)!;
    assert.equal(hs.headers['sec-websocket-protocol'], 'chat.v1,chat.v2'); // as the client wrote it
    assert.match(String(hs.headers['sec-websocket-extensions']), /permessage-deflate/);
    ws.close();
    await closed(ws);
  });

  test('a 64 MiB binary message arrives intact', async () => {
    const ws = await openWs(`${gw.wsUrl}/same/`, undefined, { maxPayload: 128 * 1024 * 1024, perMessageDeflate: false });
    const big = randomBytes(64 * 1024 * 1024);
    const want = createHash('sha256').update(big).digest('hex');
    ws.send(big);
    const m = await nextMessage(ws);
    assert.equal(m.data.length, big.length);
    assert.equal(createHash('sha256').update(m.data).digest('hex'), want);
    ws.close();
    await closed(ws);
  });

  test('10,000 small messages arrive intact and in order', async () => {
    const ws = await openWs(`${gw.wsUrl}/same/`);
    const sent = createHash('sha256');
    const got = createHash('sha256');
    let n = 0;
    const done = new Promise<void>((ok) =>
      ws.on('message', (d) => {
        got.update(d as Buffer);
        if (++n === 10_000) ok();
      }),
    );
    for (let i = 0; i < 10_000; i++) {
      const msg = `message ${i} ${'x'.repeat(i % 50)}`;
      sent.update(msg);
      ws.send(msg);
    }
    await done;
    assert.equal(got.digest('hex'), sent.digest('hex'));
    ws.close();
    await closed(ws);
  });

  test('the tunnel close is logged with bytes, frames, close code and who closed', async () => {
    const log = collect('tunnel.close', gw.gw.id);
    try {
      const ws = await openWs(`${gw.wsUrl}/same/counted`);
      for (let i = 0; i < 3; i++) {
        ws.send(`m${i}`);
        await nextMessage(ws);
      }
      ws.close(4001, 'bye');
      await closed(ws);
      const e = await waitFor(() => log.events.find((x) => x.path === '/same/counted'));
      assert.equal(e.app, 'same');
      assert.equal(e.closeCode, 4001);
      assert.equal(e.closedBy, 'client');
      assert.equal(e.framesIn, 4); // three messages and the close
      assert.equal(e.framesOut, 4); // three echoes and the close reply
      assert.ok(e.bytesIn > 0 && e.bytesOut > 0);
    } finally {
      log.stop();
    }
  });

  test('an upstream close is reported as closed by upstream', async () => {
    const closer = await wsUpstream({}, (ws) => ws.on('message', () => ws.close(4002, 'server says bye')));
    const g = await startGateway({ apps: [{ name: 'c', port: closer.port }] });
    const log = collect('tunnel.close', g.gw.id);
    try {
      const ws = await openWs(`${g.wsUrl}/c/`);
      ws.send('x');
      const c = await closed(ws);
      assert.equal(c.code, 4002);
      assert.equal(c.reason, 'server says bye');
      const e = await waitFor(() => log.events[0]);
      assert.equal(e.closedBy, 'upstream');
      assert.equal(e.closeCode, 4002);
    } finally {
      log.stop();
      await g.close();
      await closer.close();
    }
  });
});

describe('handshake headers', () => {
  test('every end-to-end handshake header reaches the upstream untouched', async () => {
    const up = await wsUpstream();
    const g = await startGateway({ apps: [{ name: 'h', port: up.port }] });
    try {
      const ws = await openWs(`${g.wsUrl}/h/x`, ['p1'], {
        headers: { Cookie: 'a=1; b=2', Authorization: 'Bearer t0k', 'User-Agent': 'porthole-test/1', 'X-Custom': 'kept' },
        origin: `http://127.0.0.1:${g.port}`,
      });
      const hs = up.handshakes.at(-1)!;
      assert.equal(hs.headers.cookie, 'a=1; b=2');
      assert.equal(hs.headers.authorization, 'Bearer t0k');
      assert.equal(hs.headers['user-agent'], 'porthole-test/1');
      assert.equal(hs.headers['x-custom'], 'kept');
      assert.equal(hs.headers.origin, `http://127.0.0.1:${g.port}`);
      assert.equal(hs.headers['sec-websocket-protocol'], 'p1');
      assert.equal(hs.headers['sec-websocket-version'], '13');
      assert.equal(hs.headers.host, `127.0.0.1:${g.port}`);
      assert.equal(hs.headers['x-forwarded-prefix'], '/h');
      assert.equal(hs.headers['x-forwarded-for'], '127.0.0.1');
      ws.close();
      await closed(ws);
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('an upstream that answers 403 is relayed as it is', async () => {
    const up = await wsUpstream({ verifyClient: (_info, cb) => cb(false, 403, 'Go away') });
    const g = await startGateway({ apps: [{ name: 'f', port: up.port }] });
    try {
      await assert.rejects(openWs(`${g.wsUrl}/f/`), (err: { status?: number; body?: string }) => {
        assert.equal(err.status, 403);
        assert.match(err.body ?? '', /Forbidden|Go away/);
        return true;
      });
    } finally {
      await g.close();
      await up.close();
    }
  });
});

void WebSocket;
