/**
 * The upstream side of a WebSocket upgrade written and read by hand
 * (src/gateway/upstream-upgrade.ts): what the upstream receives, a clean 101
 * taken straight to the tunnel however it is split, and every other answer
 * replayed into Node's HTTP client and decided as that client decides.
 *
 * Upstreams are raw `net` servers, so each byte they send or receive is the
 * test's. Whether an answer took the fallback is read from Node's own
 * `http.client.request.start` diagnostics channel: the fast path creates no
 * ClientRequest, the fallback creates one for the upstream path.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import diagnostics from 'node:diagnostics_channel';
import type { ClientRequest } from 'node:http';
import net from 'node:net';
import { after, describe, test as nodeTest } from 'node:test';
import WebSocket from 'ws';
import { tempDir } from '../helpers/http.js';
import { closed, closeServer, collect, listen, nextMessage, openWs, rawRequest, sleep, startGateway, waitFor, wsCloseOf } from '../helpers/net.js';
import { frame, rawWsClient } from '../helpers/raw-ws.js';

// A hang is a failure, not a stuck run.
const test = (name: string, fn: () => Promise<void>) => nodeTest(name, { timeout: 20_000 }, fn);

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const accept = (key: string) => createHash('sha1').update(key + GUID).digest('base64');
const keyOf = (head: string) => /\r\nsec-websocket-key: *(\S+)/i.exec(head)?.[1] ?? '';

/** Paths of the ClientRequests Node created in this process: the fallback's carry the upstream path. */
const clientRequests: string[] = [];
const onRequest = (m: unknown) => clientRequests.push((m as { request: ClientRequest }).request.path);
diagnostics.subscribe('http.client.request.start', onRequest);
after(() => diagnostics.unsubscribe('http.client.request.start', onRequest));
const tookFallback = (upstreamPath: string) => clientRequests.includes(upstreamPath);

interface Conn {
  socket: net.Socket;
  /** Every byte received, in order. */
  bytes: Buffer[];
  ended: boolean;
  closed: boolean;
}

interface RawUpstream {
  conns: Conn[];
  /** `{ port }` or `{ socket }` for the app's config. */
  target: { port: number } | { socket: string };
  close(): Promise<void>;
}

/**
 * A raw upstream: `onHead(socket, head, conn)` once the request head (up to its
 * blank line) is in; every byte is kept in `conn.bytes`.
 */
async function rawUpstream(onHead: (s: net.Socket, head: string, c: Conn) => void, unixPath?: string): Promise<RawUpstream> {
  const conns: Conn[] = [];
  const server = net.createServer((s) => {
    const c: Conn = { socket: s, bytes: [], ended: false, closed: false };
    conns.push(c);
    s.on('error', () => {});
    s.on('end', () => (c.ended = true));
    s.on('close', () => (c.closed = true));
    let seen = false;
    s.on('data', (d: Buffer) => {
      c.bytes.push(d);
      if (seen) return;
      const all = Buffer.concat(c.bytes).toString('latin1');
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) return;
      seen = true;
      onHead(s, all.slice(0, end + 4), c);
    });
  });
  let target: RawUpstream['target'];
  if (unixPath) {
    await new Promise<void>((ok) => server.listen(unixPath, ok));
    target = { socket: unixPath };
  } else target = { port: await listen(server) };
  return {
    conns,
    target,
    close: async () => {
      for (const c of conns) c.socket.destroy();
      await closeServer(server);
    },
  };
}

const switching = (key: string, extra = '') => `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept(key)}\r\n${extra}\r\n`;

/** The payload of one masked client frame (small payloads). */
function unmask(buf: Buffer): { opcode: number; payload: Buffer } {
  const len = buf[1] & 0x7f;
  assert.ok(buf[1] & 0x80, 'a client frame is masked');
  assert.ok(len < 126);
  const key = buf.subarray(2, 6);
  const payload = Buffer.from(buf.subarray(6, 6 + len));
  for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3];
  return { opcode: buf[0] & 0x0f, payload };
}

/** Reads from a raw socket until `n` bytes are in (or fails after 5 s). */
function readBytes(s: net.Socket, n: number, first: Buffer = Buffer.alloc(0)): Promise<Buffer> {
  return new Promise((ok, fail) => {
    let buf: Buffer = first;
    if (buf.length >= n) return ok(buf);
    const timer = setTimeout(() => done(new Error(`only ${buf.length} of ${n} bytes: ${buf.toString('latin1')}`)), 5000);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= n) done();
    };
    const done = (err?: Error) => {
      clearTimeout(timer);
      s.off('data', onData);
      if (err) fail(err);
      else ok(buf);
    };
    s.on('data', onData);
  });
}

/** The client's raw handshake through the gateway; resolves with the answer head and what followed it. */
function rawHandshake(port: number, path: string): Promise<{ socket: net.Socket; head: Buffer; rest: Buffer }> {
  return new Promise((ok, fail) => {
    const socket = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      ok({ socket, head: buf.subarray(0, end + 4), rest: buf.subarray(end + 4) });
    };
    socket.on('data', onData);
    socket.once('error', fail);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  });
}

/** Opens a WebSocket, listening for its first message from the start (it may come with the 101). */
async function openWithFirst(url: string): Promise<{ ws: WebSocket; first: Promise<{ data: Buffer; isBinary: boolean }> }> {
  const ws = new WebSocket(url);
  const first = nextMessage(ws);
  first.catch(() => undefined);
  await new Promise((ok, fail) => {
    ws.once('open', ok);
    ws.once('error', fail);
  });
  return { ws, first };
}

describe('the request head the upstream receives', () => {
  test('exactly one head: request line with the path and query, the handshake headers, one blank line; nothing more until the 101', async () => {
    let snapshot = '';
    const up = await rawUpstream((s, _head, c) => {
      // Anything the gateway would send before the answer would show up here.
      setTimeout(() => {
        snapshot = Buffer.concat(c.bytes).toString('latin1');
        s.write(switching(keyOf(snapshot)) + frame(0x1, Buffer.from('ready'), false).toString('latin1'), 'latin1');
      }, 150);
    });
    const g = await startGateway({ apps: [{ name: 'h', ...up.target }] });
    try {
      const { ws, first } = await openWithFirst(`${g.wsUrl}/h/path?q`);
      assert.equal((await first).data.toString(), 'ready');
      assert.ok(snapshot.startsWith('GET /path?q HTTP/1.1\r\n'), snapshot);
      assert.equal(snapshot.indexOf('\r\n\r\n'), snapshot.length - 4, `one head, ending with one blank line, nothing after it:\n${JSON.stringify(snapshot)}`);
      const lines = snapshot.slice(0, -4).split('\r\n').slice(1);
      for (const line of lines) assert.match(line, /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+: [^\r\n]*$/, `a header line: ${JSON.stringify(line)}`);
      const names = lines.map((l) => l.slice(0, l.indexOf(':')).toLowerCase());
      const value = (n: string) => lines.find((l) => l.toLowerCase().startsWith(`${n}:`))?.slice(n.length + 1).trim();
      assert.equal(value('host'), `127.0.0.1:${g.port}`);
      assert.equal(value('upgrade')?.toLowerCase(), 'websocket');
      assert.equal(value('connection')?.toLowerCase(), 'upgrade');
      assert.match(value('sec-websocket-key') ?? '', /^[A-Za-z0-9+/]{22}==$/);
      assert.equal(value('sec-websocket-version'), '13');
      for (const n of ['host', 'upgrade', 'connection', 'sec-websocket-key']) assert.equal(names.filter((x) => x === n).length, 1, `${n} once`);
      // No body framing on a handshake.
      assert.ok(!names.includes('content-length') && !names.includes('transfer-encoding'), names.join(','));
      // Then a frame from the client crosses as it is.
      const before = Buffer.concat(up.conns[0].bytes).length;
      ws.send('from client');
      const got = await waitFor(() => {
        const all = Buffer.concat(up.conns[0].bytes);
        return all.length > before && all.subarray(before);
      }, 5000, 'the client frame at the upstream');
      const f = unmask(got);
      assert.deepEqual([f.opcode, f.payload.toString()], [0x1, 'from client']);
      assert.ok(!tookFallback('/path?q'), 'a clean 101 creates no ClientRequest');
      ws.terminate();
    } finally {
      await g.close();
      await up.close();
    }
  });
});

describe('a clean 101 goes straight to the tunnel', () => {
  test('a 101 written one byte at a time opens the tunnel; a frame in the same write as its last byte reaches the client intact', async () => {
    let writes = 0;
    const up = await rawUpstream((s, head) => {
      s.setNoDelay(true);
      const answer = Buffer.from(switching(keyOf(head)), 'latin1');
      const tail = Buffer.concat([answer.subarray(answer.length - 1), frame(0x2, Buffer.from([0, 1, 2, 0x0d, 0x0a, 0x0d, 0x0a, 255]), false)]);
      void (async () => {
        for (let i = 0; i < answer.length - 1; i++) {
          s.write(answer.subarray(i, i + 1));
          writes++;
          await sleep(2);
        }
        s.write(tail);
        writes++;
        // Then echo the client's frames' payloads back, unmasked.
        s.on('data', (d: Buffer) => {
          const f = unmask(d);
          s.write(frame(f.opcode, f.payload, false));
        });
      })();
    });
    const g = await startGateway({ apps: [{ name: 'slow', ...up.target }] });
    try {
      const { ws, first } = await openWithFirst(`${g.wsUrl}/slow/ws`);
      const m = await first;
      assert.equal(m.isBinary, true);
      assert.deepEqual([...m.data], [0, 1, 2, 0x0d, 0x0a, 0x0d, 0x0a, 255]);
      assert.ok(writes > 100, `the 101 went out in ${writes} writes`);
      ws.send('echo me');
      assert.equal((await nextMessage(ws)).data.toString(), 'echo me');
      assert.ok(!tookFallback('/ws'), 'a clean 101, however split, creates no ClientRequest');
      ws.close();
      await closed(ws);
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('a 101 with repeated, latin1 and padded headers is relayed with them as the upstream sent them', async () => {
    const extra =
      'Set-Cookie: a=1; Path=/\r\n' + //
      'Set-Cookie: b=2\r\n' +
      'X-Latin: caf\xe9\xa0\r\n' +
      'X-Padded: \t  padded value \t \r\n' +
      'X-Empty:\r\n';
    const up = await rawUpstream((s, head) => {
      s.write(switching(keyOf(head), extra), 'latin1');
    });
    const g = await startGateway({ apps: [{ name: 'hdr', ...up.target }] });
    try {
      const { socket, head } = await rawHandshake(g.port, '/hdr/');
      const lines = head.toString('latin1').split('\r\n');
      assert.equal(lines[0], 'HTTP/1.1 101 Switching Protocols');
      assert.deepEqual(
        lines.filter((l) => /^set-cookie:/i.test(l)),
        ['Set-Cookie: a=1; Path=/', 'Set-Cookie: b=2'],
      );
      assert.ok(lines.includes(`Sec-WebSocket-Accept: ${accept(KEY)}`), head.toString('latin1'));
      // Spaces and tabs around a value are not part of it; U+00A0 is.
      assert.ok(lines.includes('X-Padded: padded value'), JSON.stringify(lines));
      assert.ok(lines.includes('X-Empty: '), JSON.stringify(lines));
      const latin = head.subarray(head.indexOf('X-Latin: ') + 9, head.indexOf('\r\n', head.indexOf('X-Latin: ')));
      assert.deepEqual([...latin], [...Buffer.from('caf\xe9\xa0', 'latin1')], `X-Latin bytes as sent: ${latin.toString('hex')}`);
      assert.ok(!tookFallback('/'), 'a clean 101 creates no ClientRequest');
      socket.destroy();
    } finally {
      await g.close();
      await up.close();
    }
  });
});

describe('any other answer is decided by Node\u2019s client', () => {
  test('a 101 with Sec-WebSocket-Accept twice: Node joins them, the accept is wrong, close 1014', async () => {
    const up = await rawUpstream((s, head) => s.write(switching(keyOf(head), `Sec-WebSocket-Accept: ${accept(keyOf(head))}\r\n`)));
    const g = await startGateway({ apps: [{ name: 'twice', ...up.target }] });
    const events = collect('upgrade', g.gw.id);
    try {
      const c = await wsCloseOf(`${g.wsUrl}/twice/accept-twice`);
      assert.equal(c.code, 1014);
      assert.match(c.reason, /^twice: upstream .* answered 101 with a wrong Sec-WebSocket-Accept$/);
      assert.equal(events.events.find((e) => !e.accepted)?.code, 'PH_ERR_UPSTREAM_BAD_RESPONSE');
      assert.ok(tookFallback('/accept-twice'), 'replayed into a ClientRequest');
      await waitFor(() => up.conns[0]?.closed, 5000, 'the upstream connection closed');
    } finally {
      events.stop();
      await g.close();
      await up.close();
    }
  });

  test('a 101 head over 16 KiB (many headers) goes to Node, whose header limit refuses it: close 1014, not HTTP', async () => {
    const many = Array.from({ length: 400 }, (_, i) => `X-Filler-${i}: ${'v'.repeat(40)}\r\n`).join('');
    const up = await rawUpstream((s, head) => s.write(switching(keyOf(head), many)));
    const g = await startGateway({ apps: [{ name: 'big', ...up.target }] });
    const events = collect('upgrade', g.gw.id);
    try {
      assert.ok(switching(KEY, many).length > 16 * 1024);
      const c = await wsCloseOf(`${g.wsUrl}/big/big-head`);
      assert.equal(c.opened, true);
      assert.equal(c.code, 1014);
      assert.match(c.reason, /^big: upstream .* answered with something that is not HTTP$/);
      assert.equal(events.events.find((e) => !e.accepted)?.code, 'PH_ERR_UPSTREAM_BAD_RESPONSE');
      assert.ok(tookFallback('/big-head'), 'replayed into a ClientRequest');
    } finally {
      events.stop();
      await g.close();
      await up.close();
    }
  });

  test('a 101 head just over 16 KiB that Node still accepts opens the tunnel through the fallback, frames after it intact', async () => {
    // 16 KiB + a little as the fast path counts (head with its blank line), within Node's 16 KiB of header fields.
    const one = `X-Filler: ${'v'.repeat(60)}\r\n`;
    let extra = '';
    while (switching(KEY, extra).length <= 16 * 1024 + 8) extra += one;
    const up = await rawUpstream((s, head) => {
      s.write(Buffer.concat([Buffer.from(switching(keyOf(head), extra)), frame(0x1, Buffer.from('after a big head'), false)]));
    });
    const g = await startGateway({ apps: [{ name: 'edge', ...up.target }] });
    try {
      const ws = new WebSocket(`${g.wsUrl}/edge/edge-head`);
      const first = nextMessage(ws);
      const c = await new Promise<{ opened: boolean; code?: number; reason?: string }>((ok) => {
        ws.once('open', () => ok({ opened: true }));
        ws.once('close', (code, reason) => ok({ opened: false, code, reason: reason.toString() }));
      });
      assert.ok(tookFallback('/edge-head'), 'replayed into a ClientRequest');
      if (c.opened) {
        assert.equal((await first).data.toString(), 'after a big head');
        ws.terminate();
      } else {
        first.catch(() => undefined);
        assert.fail(`expected the tunnel, got ${c.code} ${c.reason}`);
      }
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('HTTP/1.0 101 goes to Node, and what it decides is what the client gets', async () => {
    const up = await rawUpstream((s, head) => s.write(switching(keyOf(head)).replace('HTTP/1.1', 'HTTP/1.0') + frame(0x1, Buffer.from('old'), false).toString('latin1'), 'latin1'));
    const g = await startGateway({ apps: [{ name: 'old', ...up.target }] });
    try {
      const ws = new WebSocket(`${g.wsUrl}/old/v10`);
      const first = nextMessage(ws);
      first.catch(() => undefined);
      const outcome = await new Promise<string>((ok) => {
        ws.once('open', () => ok('open'));
        ws.once('close', (code, reason) => ok(`${code} ${reason}`));
        ws.once('error', () => undefined);
      });
      assert.ok(tookFallback('/v10'), 'replayed into a ClientRequest');
      // Node's client takes a 101 with Connection: Upgrade for an upgrade, whatever the version.
      assert.equal(outcome, 'open');
      assert.equal((await first).data.toString(), 'old');
      ws.terminate();
    } finally {
      await g.close();
      await up.close();
    }
  });

  // Node's client refuses these at once (HPE_CR_EXPECTED, HPE_INVALID_CONSTANT, HPE_INVALID_HEADER_TOKEN…),
  // while the upstream keeps its connection open: the answer is no head to wait for until response_timeout.
  for (const [what, answer] of [
    ['a 101 with bare LF line ends', (key: string) => `HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Accept: ${accept(key)}\n\n`],
    ['something that is not HTTP (a banner)', () => 'SSH-2.0-OpenSSH_9.6\r\n'],
    ['a header line without a colon', () => 'HTTP/1.1 101 Switching Protocols\r\nUpgrade websocket\r\n'],
  ] as const) {
    test(`${what}, the connection left open: Node's parse error at once (close 1014, not HTTP), not a wait for response_timeout`, async () => {
      const up = await rawUpstream((s, head) => s.write(answer(keyOf(head))));
      const g = await startGateway({ apps: [{ name: 'nothttp', ...up.target, response_timeout: '5s' }] });
      const events = collect('upgrade', g.gw.id);
      try {
        const t0 = Date.now();
        const c = await wsCloseOf(`${g.wsUrl}/nothttp/not-http`);
        const ms = Date.now() - t0;
        assert.equal(c.code, 1014);
        assert.match(c.reason, /^nothttp: upstream .* answered with something that is not HTTP$/);
        assert.equal(events.events.find((e) => !e.accepted)?.code, 'PH_ERR_UPSTREAM_BAD_RESPONSE');
        assert.ok(ms < 2000, `refused after ${ms} ms`);
        assert.ok(tookFallback('/not-http'), 'replayed into a ClientRequest');
      } finally {
        events.stop();
        await g.close();
        await up.close();
      }
    });
  }

  test('a 403 with a body is relayed to the client with its body', async () => {
    const body = 'no websockets for you\n';
    const up = await rawUpstream((s) => s.end(`HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nX-App: yes\r\nX-Latin: caf\xe9\xa0\r\n\r\n${body}`, 'latin1'));
    const g = await startGateway({ apps: [{ name: 'deny', ...up.target }] });
    try {
      const res = await rawRequest(g.port, `GET /deny/forbidden HTTP/1.1\r\nHost: 127.0.0.1:${g.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      assert.match(res, /^HTTP\/1\.1 403 Forbidden\r\n/);
      assert.match(res, /\r\nX-App: yes\r\n/);
      // Header bytes as the app sent them (rawRequest reads latin1): not re-encoded as UTF-8.
      assert.match(res, /\r\nX-Latin: caf\xe9\xa0\r\n/);
      assert.match(res, /\r\nConnection: close\r\n/);
      assert.ok(res.endsWith(`\r\n\r\n${body}`), JSON.stringify(res));
      assert.ok(tookFallback('/forbidden'), 'replayed into a ClientRequest');
      // And through a WebSocket client: a refused handshake with the app's status and body.
      await assert.rejects(openWs(`${g.wsUrl}/deny/forbidden`), (e: Error & { status?: number; body?: string }) => e.status === 403 && e.body === body);
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('half a head, then the upstream closes: Node\u2019s "socket hang up" (ECONNRESET), close 1014 PH_ERR_UPSTREAM_RESET; 502 with ws_errors: http', async () => {
    const up = await rawUpstream((s) => s.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConn'));
    const g = await startGateway({
      apps: [
        { name: 'half', ...up.target },
        { name: 'halfhttp', ...up.target, ws_errors: 'http' },
      ],
    });
    const events = collect('upgrade', g.gw.id);
    try {
      const c = await wsCloseOf(`${g.wsUrl}/half/half-close`);
      assert.equal(c.code, 1014);
      assert.match(c.reason, /^half: upstream .* reset the connection$/);
      assert.ok(tookFallback('/half-close'), 'replayed into a ClientRequest');
      const res = await rawRequest(g.port, `GET /halfhttp/ HTTP/1.1\r\nHost: 127.0.0.1:${g.port}\r\nAccept: application/json\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      assert.match(res, /^HTTP\/1\.1 502 /);
      assert.match(res, /\r\nX-Porthole-Error: PH_ERR_UPSTREAM_RESET\r\n/i);
      assert.deepEqual(
        events.events.filter((e) => !e.accepted).map((e) => e.code),
        ['PH_ERR_UPSTREAM_RESET', 'PH_ERR_UPSTREAM_RESET'],
      );
    } finally {
      events.stop();
      await g.close();
      await up.close();
    }
  });

  test('half a head, then nothing: response_timeout ends it with PH_ERR_UPSTREAM_TIMEOUT (504), short heads and heads over 16 KiB alike', async () => {
    // Over 16 KiB without its blank line: replayed into Node's client, within that client's own limit.
    const long = `HTTP/1.1 101 Switching Protocols\r\n${`X-Filler: ${'v'.repeat(60)}\r\n`.repeat(Math.ceil((16 * 1024 + 8) / 72))}`;
    const up = await rawUpstream((s, head) => {
      s.write(head.includes('/long') ? long : 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConn');
    });
    const g = await startGateway({ apps: [{ name: 'stall', ...up.target, response_timeout: '300ms', ws_errors: 'http' }, { name: 'stallws', ...up.target, response_timeout: '300ms' }] });
    try {
      for (const path of ['/stall/short', '/stall/long']) {
        const t0 = Date.now();
        const res = await rawRequest(g.port, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${g.port}\r\nAccept: application/json\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`, 5000);
        const ms = Date.now() - t0;
        assert.match(res, /^HTTP\/1\.1 504 /, `${path}: ${res.slice(0, 200)}`);
        assert.match(res, /\r\nX-Porthole-Error: PH_ERR_UPSTREAM_TIMEOUT\r\n/i);
        assert.match(res, /sent no response in 0\.3 s/);
        assert.ok(ms >= 250 && ms < 3000, `${path}: answered after ${ms} ms`);
      }
      // The long head went to Node's client; the timer kept running there.
      assert.ok(long.length > 16 * 1024);
      assert.ok(tookFallback('/long'), 'a head over 16 KiB is replayed');
      const c = await wsCloseOf(`${g.wsUrl}/stallws/short`);
      assert.equal(c.code, 1014);
      assert.match(c.reason, /sent no response in 0\.3 s/);
      await waitFor(() => up.conns.length === 3 && up.conns.every((x) => x.closed), 5000, 'every stalled upstream connection closed');
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('a response_timeout longer than connect_timeout counts from the connection: no connect timeout once connected, and no answer before the response time is up', async () => {
    // Connected at once, then silent: the connect timer's turn passes, the response's comes later.
    const up = await rawUpstream(() => undefined);
    const g = await startGateway({ apps: [{ name: 'late', ...up.target, connect_timeout: '200ms', response_timeout: '700ms', ws_errors: 'http' }] });
    try {
      const t0 = Date.now();
      const res = await rawRequest(g.port, `GET /late/ HTTP/1.1\r\nHost: 127.0.0.1:${g.port}\r\nAccept: application/json\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`, 5000);
      const ms = Date.now() - t0;
      assert.match(res, /^HTTP\/1\.1 504 /, res.slice(0, 200));
      assert.match(res, /\r\nX-Porthole-Error: PH_ERR_UPSTREAM_TIMEOUT\r\n/i);
      assert.match(res, /sent no response in 0\.7 s/);
      assert.ok(ms >= 650 && ms < 3000, `answered after ${ms} ms`);
      await waitFor(() => up.conns.length === 1 && up.conns[0].closed, 5000, 'the silent upstream connection closed');
    } finally {
      await g.close();
      await up.close();
    }
  });
});

describe('a client that leaves before the upstream answers', () => {
  const LONG = `HTTP/1.1 101 Switching Protocols\r\n${`X-Filler: ${'v'.repeat(60)}\r\n`.repeat(Math.ceil((16 * 1024 + 8) / 72))}`;
  for (const [what, answer] of [
    ['never answers', ''],
    ['sends half a head', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n'],
    // Replayed into Node's client (over 16 KiB), within that client's own header limit.
    ['sends over 16 KiB of head and stalls', LONG],
  ] as const) {
    test(`an upstream that ${what}: its connection is closed as soon as the client leaves, and the gateway drains`, async () => {
      const up = await rawUpstream((s) => {
        if (answer) s.write(answer);
      });
      // A response_timeout that cannot be what closes the upstream connection here.
      const g = await startGateway({ apps: [{ name: 'gone', ...up.target, response_timeout: '10s' }] });
      let drained = false;
      try {
        const client = net.connect(g.port, '127.0.0.1');
        client.on('error', () => undefined);
        client.write(`GET /gone/ HTTP/1.1\r\nHost: 127.0.0.1:${g.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
        const conn = await waitFor(() => (up.conns[0]?.bytes.length ? up.conns[0] : null), 5000, 'the upstream connection');
        await sleep(50);
        client.destroy();
        const left = Date.now();
        await waitFor(() => conn.closed, 3000, 'the upstream connection closed by the gateway');
        assert.ok(Date.now() - left < 1000, `closed ${Date.now() - left} ms after the client left`);
        assert.equal(up.conns.length, 1, 'one upstream connection, not retried');
        const t1 = Date.now();
        await g.close();
        drained = true;
        assert.ok(Date.now() - t1 < 2000, `drained in ${Date.now() - t1} ms`);
        if (answer === LONG) assert.ok(tookFallback('/'), 'the long head was replayed into a ClientRequest');
      } finally {
        if (!drained) await g.close();
        await up.close();
      }
    });
  }
});

describe('a unix socket upstream', () => {
  test('upgrades through the fast path, frames both ways', async () => {
    const dir = tempDir();
    const up = await rawUpstream((s, head) => {
      s.write(Buffer.concat([Buffer.from(switching(keyOf(head))), frame(0x1, Buffer.from('hello over unix'), false)]));
      s.on('data', (d: Buffer) => {
        const f = unmask(d);
        if (f.opcode === 0x1) s.write(frame(0x1, Buffer.from(`echo ${f.payload}`), false));
      });
    }, dir.file('up.sock'));
    const g = await startGateway({ apps: [{ name: 'ux', ...up.target }] });
    try {
      const { socket, rest } = await rawWsClient(g.port, '/ux/unix-path');
      const hello = await readBytes(socket, 2 + 'hello over unix'.length, rest);
      assert.deepEqual(hello, frame(0x1, Buffer.from('hello over unix'), false));
      socket.write(frame(0x1, Buffer.from('ping'), true));
      const echo = await readBytes(socket, 2 + 'echo ping'.length);
      assert.deepEqual(echo, frame(0x1, Buffer.from('echo ping'), false));
      assert.ok(Buffer.concat(up.conns[0].bytes).toString('latin1').startsWith('GET /unix-path HTTP/1.1\r\n'));
      assert.ok(!tookFallback('/unix-path'), 'a clean 101 from a unix socket creates no ClientRequest');
      socket.destroy();
    } finally {
      await g.close();
      await up.close();
      dir.remove();
    }
  });
});
