/**
 * The bridge at the edges an attacker (or an unusual client) reaches: close
 * handshakes the server starts and the client answers, client closes without
 * a reason, pipelined frames before the 101. Real `porthole bridge` child
 * processes, real TCP targets and hand-written frames on raw sockets; every
 * test must pass on both engines (native, and JavaScript with PORTHOLE_TUNNEL=js).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { describe, test } from 'node:test';
import { logEvents, startBridgeCli, type BridgeCli } from '../fixtures/bridge/bridge-cli.js';
import { closeServer, listen, sleep, waitFor } from '../helpers/net.js';
import { acceptOf, handshakeText } from '../reliability/peers.js';

// ---------------------------------------------------------------- frames

/** A masked client frame. */
function cf(opcode: number, payload: Buffer = Buffer.alloc(0), fin = true): Buffer {
  const n = payload.length;
  const ext = n < 126 ? 0 : n < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + ext + 4);
  head[0] = (fin ? 0x80 : 0) | opcode;
  head[1] = 0x80 | (ext === 0 ? n : ext === 2 ? 126 : 127);
  if (ext === 2) head.writeUInt16BE(n, 2);
  if (ext === 8) head.writeBigUInt64BE(BigInt(n), 2);
  const key = randomBytes(4);
  key.copy(head, 2 + ext);
  const out = Buffer.concat([head, payload]);
  for (let i = 0; i < n; i++) out[head.length + i] ^= key[i & 3];
  return out;
}

function closeBody(code: number, reason = ''): Buffer {
  const b = Buffer.alloc(2 + Buffer.byteLength(reason));
  b.writeUInt16BE(code, 0);
  b.write(reason, 2);
  return b;
}

interface Frame {
  opcode: number;
  payload: Buffer;
}

/** A WebSocket client on a raw socket: parses server frames; answers nothing unless told. */
class Raw {
  readonly frames: Frame[] = [];
  data = Buffer.alloc(0);
  ended = false;
  endedAt = 0;
  autoPong = false;
  private buf = Buffer.alloc(0);
  constructor(readonly socket: net.Socket) {
    socket.on('error', () => undefined);
    socket.once('close', () => {
      this.ended = true;
      this.endedAt = performance.now();
    });
  }
  feed(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    for (;;) {
      const b = this.buf;
      if (b.length < 2) return;
      let len = b[1] & 0x7f;
      let h = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        h = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        len = Number(b.readBigUInt64BE(2));
        h = 10;
      }
      if (b.length < h + len) return;
      const f = { opcode: b[0] & 0x0f, payload: Buffer.from(b.subarray(h, h + len)) };
      this.buf = b.subarray(h + len);
      this.frames.push(f);
      if (f.opcode === 9 && this.autoPong && !this.close()) this.socket.write(cf(10, f.payload));
      if (f.opcode === 2) this.data = Buffer.concat([this.data, f.payload]);
    }
  }
  close(): Frame | undefined {
    return this.frames.find((f) => f.opcode === 8);
  }
  closeCode(): number | null {
    const f = this.close();
    return !f ? null : f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005;
  }
  send(b: Buffer): Promise<void> {
    return new Promise((ok) => (this.socket.destroyed ? ok() : this.socket.write(b, () => ok())));
  }
}

/** Opens a WebSocket by hand; `early` is written right after the request, before the 101 can arrive. */
function connect(port: number, early?: Buffer): Promise<Raw> {
  return new Promise((ok, fail) => {
    const key = randomBytes(16).toString('base64');
    const socket = net.connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    const raw = new Raw(socket);
    let head = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      const text = head.subarray(0, end).toString('latin1');
      if (!text.startsWith('HTTP/1.1 101') || !text.includes(acceptOf(key))) return fail(new Error(`handshake refused: ${text}`));
      socket.on('data', (x: Buffer) => raw.feed(x));
      if (head.length > end + 4) raw.feed(head.subarray(end + 4));
      ok(raw);
    };
    socket.on('data', onData);
    socket.once('close', () => fail(new Error('closed before the 101')));
    const req = Buffer.from(handshakeText('/', `127.0.0.1:${port}`, key), 'latin1');
    socket.write(early ? Buffer.concat([req, early]) : req);
  });
}

// ---------------------------------------------------------------- the bridge and its target

interface Target {
  port: number;
  conns: net.Socket[];
  received: Buffer[];
  close(): Promise<void>;
}

async function startTarget(onConn: (s: net.Socket, i: number) => void): Promise<Target> {
  const conns: net.Socket[] = [];
  const received: Buffer[] = [];
  const server = net.createServer((s) => {
    s.on('error', () => undefined);
    const i = conns.push(s) - 1;
    received[i] = Buffer.alloc(0);
    s.on('data', (d: Buffer) => (received[i] = Buffer.concat([received[i], d])));
    onConn(s, i);
  });
  const port = await listen(server);
  return { port, conns, received, close: () => closeServer(server) };
}

function fdsOf(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

interface Bridge {
  cli: BridgeCli;
  closes(): Record<string, unknown>[];
  nthClose(n: number): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

async function startBridge(target: Target, args: string[] = []): Promise<Bridge> {
  const cli = await startBridgeCli(['127.0.0.1:0', `127.0.0.1:${target.port}`, ...args], { ...process.env });
  const closes = () => logEvents(cli).filter((e) => e.event === 'tunnel.close');
  return {
    cli,
    closes,
    nthClose: (n) => waitFor(() => closes()[n - 1], 10_000, `tunnel.close #${n}`),
    async stop() {
      const code = await cli.stop();
      assert.equal(code, 0, `porthole bridge exited ${code}:\n${cli.stderr()}`);
    },
  };
}

async function until(fn: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

// ================================================================= the tests

describe('bridge attack: the close handshake the server starts', () => {
  /**
   * RFC 6455 7.1.1: once both close frames have passed, the server closes TCP
   * first, and a browser fires `close` only then. A client that answers our
   * close frame after it arrived must see the FIN at once, not after the grace
   * period (3 s) that is there for clients that never answer.
   */
  test('the target closes: the client answers close 1000, and its TCP connection ends at once', async () => {
    const target = await startTarget((s) => s.end('bye from the target'));
    const b = await startBridge(target);
    try {
      const ws = await connect(b.cli.port);
      await until(() => ws.close() !== undefined, 5000, 'the close frame');
      assert.equal(ws.closeCode(), 1000);
      assert.equal(ws.data.toString(), 'bye from the target');
      await sleep(50);
      assert.equal(ws.ended, false, 'the bridge waits for the close reply');
      const answered = performance.now();
      await ws.send(cf(8, closeBody(1000)));
      await until(() => ws.ended, 5000, 'the end of the client connection');
      const took = ws.endedAt - answered;
      assert.ok(took < 1000, `the client's TCP connection ended ${Math.round(took)} ms after its close reply`);
      const ev = await b.nthClose(1);
      assert.equal(ev.closedBy, 'upstream');
      assert.equal(ev.closeCode, 1000);
    } finally {
      await b.stop();
      await target.close();
    }
  });

  test('an idle timeout: the client answers close 1001, and its TCP connection ends at once', async () => {
    const target = await startTarget(() => undefined);
    const b = await startBridge(target, ['--idle-timeout', '1']);
    try {
      const ws = await connect(b.cli.port);
      await until(() => ws.close() !== undefined, 5000, 'the close frame');
      assert.equal(ws.closeCode(), 1001);
      const answered = performance.now();
      await ws.send(cf(8, closeBody(1001)));
      await until(() => ws.ended, 5000, 'the end of the client connection');
      const took = ws.endedAt - answered;
      assert.ok(took < 1000, `the client's TCP connection ended ${Math.round(took)} ms after its close reply`);
      const ev = await b.nthClose(1);
      assert.equal(ev.closedBy, 'gateway');
      assert.equal(ev.closeCode, 1001);
    } finally {
      await b.stop();
      await target.close();
    }
  });
});

describe('bridge attack: what the client sends', () => {
  test('a client close 1000 without a reason is logged without a reason, as one with a reason is logged with it', async () => {
    const target = await startTarget(() => undefined);
    const b = await startBridge(target);
    try {
      for (const [i, body] of [closeBody(1000), Buffer.alloc(0), closeBody(4000, 'a\u0000b')].entries()) {
        const ws = await connect(b.cli.port);
        await ws.send(cf(8, body));
        await until(() => ws.ended, 5000, 'the end of the client connection');
        const ev = await b.nthClose(i + 1);
        assert.equal(ev.closedBy, 'client');
        if (i === 2) {
          assert.equal(ev.closeCode, 4000);
          assert.equal(ev.reason, 'a\u0000b', 'the whole reason, past a U+0000');
          assert.deepEqual(ws.close()?.payload, body, 'the reply carries the same code and reason');
        } else {
          assert.equal(ev.closeCode, i === 0 ? 1000 : 1005);
          assert.equal(ev.reason, undefined, `close #${i + 1}: no reason logged`);
        }
      }
    } finally {
      await b.stop();
      await target.close();
    }
  });

  test('frames pipelined right behind the handshake request (before the 101): data reaches the target, the close is answered', async () => {
    const target = await startTarget(() => undefined);
    const b = await startBridge(target, ['--text-as-binary']);
    try {
      // A text message in two fragments, a character cut between them, a ping between, then binary and close.
      const euro = Buffer.from('x€y', 'utf8');
      const early = Buffer.concat([
        cf(1, euro.subarray(0, 2), false),
        cf(9, Buffer.from('p')),
        cf(0, euro.subarray(2), true),
        cf(2, Buffer.alloc(0)),
        cf(2, Buffer.alloc(125, 1)),
        cf(2, Buffer.alloc(126, 2)),
        cf(2, Buffer.alloc(65535, 3)),
        cf(2, Buffer.alloc(65536, 4)),
        cf(8, closeBody(1000, 'done')),
        cf(2, Buffer.from('after the close')),
      ]);
      const ws = await connect(b.cli.port, early);
      await until(() => ws.ended, 5000, 'the end of the client connection');
      assert.equal(ws.closeCode(), 1000);
      const pong = ws.frames.find((f) => f.opcode === 10);
      assert.equal(pong?.payload.toString(), 'p');
      const expected = Buffer.concat([euro, Buffer.alloc(125, 1), Buffer.alloc(126, 2), Buffer.alloc(65535, 3), Buffer.alloc(65536, 4)]);
      await until(() => target.received[0]?.length >= expected.length, 5000, 'the bytes at the target');
      assert.ok(target.received[0].equals(expected), 'the target got the payloads exactly, nothing after the close');
      const ev = await b.nthClose(1);
      assert.equal(ev.closedBy, 'client');
      assert.equal(ev.closeCode, 1000);
      assert.equal(ev.reason, 'done');
      assert.equal(ev.bytesIn, expected.length);
      assert.equal(ev.messagesIn, 6);
    } finally {
      await b.stop();
      await target.close();
    }
  });
});

describe('bridge attack: a target that half-closes, then resets', () => {
  /**
   * The target sends its FIN while the bridge still has the client's bytes to
   * write to it (it does not read), then resets. The write that fails after
   * the FIN must end the connection like any reset, not be retried forever
   * (which would stop every other connection the bridge carries).
   */
  test('the client gets its close, the connection ends, and the bridge still serves a new connection', async () => {
    let first = true;
    const target = await startTarget((s) => {
      if (!first) return void s.on('data', (d: Buffer) => s.write(d));
      first = false;
      // Not reading: the bridge's writes back up. Then the FIN, then a reset (closed with unread bytes).
      s.pause();
      setTimeout(() => s.end(), 500).unref();
      setTimeout(() => s.destroy(), 800).unref();
    });
    const b = await startBridge(target);
    try {
      const ws = await connect(b.cli.port);
      const chunk = cf(2, Buffer.alloc(64 * 1024, 7));
      for (let i = 0; i < 512 && !ws.ended && !ws.close(); i++) {
        if (!ws.socket.write(chunk)) await Promise.race([new Promise((ok) => ws.socket.once('drain', ok)), sleep(200)]);
      }
      await until(() => ws.close() !== undefined, 5000, 'the close frame');
      await ws.send(cf(8, closeBody(1000)));
      await until(() => ws.ended, 8000, 'the end of the client connection');
      await b.nthClose(1);
      const next = await connect(b.cli.port);
      await next.send(cf(2, Buffer.from('still alive')));
      await until(() => next.data.toString() === 'still alive', 5000, 'the echo on a new connection');
      await next.send(cf(8, closeBody(1000)));
      await until(() => next.ended, 5000, 'the end of the new connection');
    } finally {
      await b.stop();
      await target.close();
    }
  });
});

describe('bridge attack: counts', () => {
  test('messages sent after the target closed (before the client answers our close) are neither passed on nor counted', async () => {
    const target = await startTarget((s) => s.end());
    const b = await startBridge(target);
    try {
      const ws = await connect(b.cli.port);
      await until(() => ws.close() !== undefined, 5000, 'the close frame');
      assert.equal(ws.closeCode(), 1000);
      for (let i = 0; i < 3; i++) await ws.send(cf(2, Buffer.from('too late')));
      await sleep(100);
      await ws.send(cf(8, closeBody(1000)));
      await until(() => ws.ended, 5000, 'the end of the client connection');
      const ev = await b.nthClose(1);
      assert.equal(ev.closedBy, 'upstream');
      assert.equal(target.received[0].length, 0, 'nothing reached the target');
      assert.equal(ev.bytesIn, 0);
      assert.equal(ev.messagesIn, 0, 'messages dropped are not counted as passed on');
    } finally {
      await b.stop();
      await target.close();
    }
  });
});

describe('bridge attack: every byte its own TCP write', () => {
  test('headers, mask keys, 16-bit lengths, a character split across fragments, a ping and a close with a reason, one byte at a time', async () => {
    const target = await startTarget(() => undefined);
    const b = await startBridge(target, ['--text-as-binary']);
    try {
      const ws = await connect(b.cli.port);
      ws.socket.setNoDelay(true);
      const text = Buffer.from('a€😀', 'utf8');
      const stream = Buffer.concat([
        cf(2, Buffer.alloc(126, 9)),
        cf(1, text.subarray(0, 3), false),
        cf(9, Buffer.from('ping!')),
        cf(0, text.subarray(3, 6), false),
        cf(0, Buffer.alloc(0), false),
        cf(0, text.subarray(6), true),
        cf(2, Buffer.alloc(0)),
        cf(8, closeBody(3001, 'bye ✓')),
      ]);
      for (let i = 0; i < stream.length; i++) {
        await ws.send(stream.subarray(i, i + 1));
        await sleep(1);
      }
      await until(() => ws.ended, 5000, 'the end of the client connection');
      assert.equal(ws.frames.find((f) => f.opcode === 10)?.payload.toString(), 'ping!');
      assert.equal(ws.closeCode(), 3001);
      assert.equal(ws.close()?.payload.subarray(2).toString(), 'bye ✓');
      const expected = Buffer.concat([Buffer.alloc(126, 9), text]);
      await until(() => target.received[0]?.length >= expected.length, 5000, 'the bytes at the target');
      assert.ok(target.received[0].equals(expected));
      const ev = await b.nthClose(1);
      assert.equal(ev.closedBy, 'client');
      assert.equal(ev.closeCode, 3001);
      assert.equal(ev.reason, 'bye ✓');
      assert.equal(ev.messagesIn, 3);
      assert.equal(ev.bytesIn, expected.length);
    } finally {
      await b.stop();
      await target.close();
    }
  });
});

describe('bridge attack: timers', () => {
  /**
   * Pongs are what a browser sends by itself: counting them as traffic would
   * keep every connection of a bridge with --heartbeat open forever. The idle
   * timer counts messages either way (bridge-connection.ts), not control frames.
   */
  test('--idle-timeout with --heartbeat: a client that only answers pings (and pings) is still closed with 1001', async () => {
    const target = await startTarget(() => undefined);
    const b = await startBridge(target, ['--idle-timeout', '1', '--heartbeat', '0.2']);
    try {
      const ws = await connect(b.cli.port);
      ws.autoPong = true;
      const pinging = setInterval(() => ws.socket.write(cf(9, Buffer.from('hi'))), 100);
      try {
        await until(() => ws.close() !== undefined || ws.ended, 4000, 'the idle close');
      } finally {
        clearInterval(pinging);
      }
      assert.ok(ws.frames.filter((f) => f.opcode === 9).length >= 2, 'the bridge pinged');
      assert.equal(ws.closeCode(), 1001);
      const ev = await b.nthClose(1);
      assert.equal(ev.closedBy, 'gateway');
      assert.equal(ev.closeCode, 1001);
    } finally {
      await b.stop();
      await target.close();
    }
  });
});
