/**
 * permessage-deflate for the conformance client, checked against a real `ws`
 * server: the client writes the upgrade and every frame by hand over a TCP
 * socket, so what is proved is our offer, our reading of the answer, our
 * compressed bytes (the server must inflate them) and our inflating of the
 * server's (the echo must match), across several messages in a row.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import zlib from 'node:zlib';
import { WebSocketServer, type PerMessageDeflateOptions } from 'ws';
import { InflateError, InflateLimitError } from '../../src/errors.js';
import { startPython } from '../helpers/python.js';
import {
  deflateOfferHeader,
  parseDeflateResponse,
  PerMessageDeflate,
  type DeflateOffer,
  type DeflateParams,
} from '../../src/toolkit/conformance/deflate.js';

const DEADLINE_MS = 15_000;

/** A `ws` echo server with compression on for every message (threshold 0). */
async function echoServer(t: TestContext, options: PerMessageDeflateOptions): Promise<{ port: number; received: Buffer[] }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: { threshold: 0, ...options } });
  await once(wss, 'listening');
  const received: Buffer[] = [];
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => {
      received.push(data as Buffer);
      ws.send(data, { binary: isBinary, compress: true });
    });
  });
  t.after(() => new Promise<void>((resolve) => {
    for (const c of wss.clients) c.terminate();
    wss.close(() => resolve());
  }));
  return { port: (wss.address() as AddressInfo).port, received };
}

interface Frame {
  fin: boolean;
  rsv: number;
  opcode: number;
  payload: Buffer;
}

/** A raw client: one TCP socket, frames parsed from the server's bytes as they come. */
class RawClient {
  #buf = Buffer.alloc(0);
  #frames: Frame[] = [];
  #wake: (() => void) | undefined;
  #ended = false;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, d]);
      this.#wake?.();
    });
    socket.on('close', () => {
      this.#ended = true;
      this.#wake?.();
    });
  }

  async #until<T>(take: () => T | undefined, what: string): Promise<T> {
    const deadline = Date.now() + DEADLINE_MS;
    for (;;) {
      const v = take();
      if (v !== undefined) return v;
      if (this.#ended) throw new Error(`connection closed while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${DEADLINE_MS} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** The response head of the opening handshake, as name → values. */
  async head(): Promise<{ status: string; headers: Map<string, string[]> }> {
    const end = await this.#until(() => {
      const i = this.#buf.indexOf('\r\n\r\n');
      return i < 0 ? undefined : i;
    }, 'handshake response');
    const lines = this.#buf.subarray(0, end).toString('latin1').split('\r\n');
    this.#buf = this.#buf.subarray(end + 4);
    const headers = new Map<string, string[]>();
    for (const line of lines.slice(1)) {
      const c = line.indexOf(':');
      const name = line.slice(0, c).trim().toLowerCase();
      headers.set(name, [...(headers.get(name) ?? []), line.slice(c + 1).trim()]);
    }
    return { status: lines[0]!, headers };
  }

  #parse(): Frame | undefined {
    const b = this.#buf;
    if (b.length < 2) return undefined;
    let len = b[1]! & 0x7f;
    let off = 2;
    if (len === 126) {
      if (b.length < 4) return undefined;
      len = b.readUInt16BE(2);
      off = 4;
    } else if (len === 127) {
      if (b.length < 10) return undefined;
      len = Number(b.readBigUInt64BE(2));
      off = 10;
    }
    assert.equal(b[1]! & 0x80, 0, 'a server never masks its frames');
    if (b.length < off + len) return undefined;
    const frame = { fin: (b[0]! & 0x80) !== 0, rsv: (b[0]! >> 4) & 7, opcode: b[0]! & 0x0f, payload: Buffer.from(b.subarray(off, off + len)) };
    this.#buf = b.subarray(off + len);
    return frame;
  }

  frame(): Promise<Frame> {
    return this.#until(() => this.#frames.shift() ?? this.#parse(), 'frame');
  }

  /** A whole message: its first frame's RSV bits, opcode and the joined payload. */
  async message(): Promise<{ rsv: number; opcode: number; payload: Buffer }> {
    const first = await this.frame();
    const parts = [first.payload];
    let last = first;
    for (let i = 0; !last.fin && i < 10_000; i++) {
      last = await this.frame();
      assert.equal(last.opcode, 0, 'continuation frame');
      parts.push(last.payload);
    }
    return { rsv: first.rsv, opcode: first.opcode, payload: Buffer.concat(parts) };
  }

  send(opcode: number, payload: Buffer, rsv = 0): void {
    const mask = randomBytes(4);
    const len = payload.length;
    const head = len < 126 ? Buffer.alloc(2) : len < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
    head[0] = 0x80 | (rsv << 4) | opcode;
    if (len < 126) head[1] = 0x80 | len;
    else if (len < 65536) {
      head[1] = 0x80 | 126;
      head.writeUInt16BE(len, 2);
    } else {
      head[1] = 0x80 | 127;
      head.writeBigUInt64BE(BigInt(len), 2);
    }
    const body = Buffer.alloc(len);
    for (let i = 0; i < len; i++) body[i] = payload[i]! ^ mask[i & 3]!;
    this.socket.write(Buffer.concat([head, mask, body]));
  }
}

/** Opens a raw connection with `offer` and returns the client and the server's answer, checked by our parser. */
async function handshake(t: TestContext, port: number, offer: DeflateOffer | DeflateOffer[]) {
  const socket = net.connect(port, '127.0.0.1');
  t.after(() => socket.destroy());
  await once(socket, 'connect');
  const client = new RawClient(socket);
  const key = randomBytes(16).toString('base64');
  socket.write(
    `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: ${deflateOfferHeader(offer)}\r\n\r\n`,
  );
  const { status, headers } = await client.head();
  assert.match(status, /^HTTP\/1\.1 101 /);
  const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  assert.deepEqual(headers.get('sec-websocket-accept'), [accept]);
  const answer = headers.get('sec-websocket-extensions');
  return { client, answer, negotiation: parseDeflateResponse(answer, offer) };
}

/**
 * Messages built so that context matters: each repeats the previous one with a
 * small change, and the repeats lie beyond 256 and 512 bytes back, so a wrong
 * window or a lost context corrupts them instead of passing by luck.
 */
function messages(): Buffer[] {
  const base = Array.from({ length: 40 }, (_, i) => `line ${i}: the quick brown fox ${(i * 7919) % 1000} jumps\n`).join('');
  return [0, 1, 2, 3].map((k) => Buffer.from(`${k}:${base}${'x'.repeat(300 * k)}${base.slice(0, 200)}`));
}

/** Sends every message compressed and checks the server got it intact and its compressed echo inflates back to it. */
async function exchange(client: RawClient, pmd: PerMessageDeflate, received: Buffer[], msgs: Buffer[]) {
  const sentSizes: number[] = [];
  const echoSizes: number[] = [];
  for (const [i, msg] of msgs.entries()) {
    const compressed = pmd.compress(msg);
    sentSizes.push(compressed.length);
    client.send(0x1, compressed, 0b100);
    const echo = await client.message();
    assert.equal(echo.rsv, 0b100, `echo ${i} is compressed (RSV1)`);
    assert.equal(echo.opcode, 0x1);
    echoSizes.push(echo.payload.length);
    assert.deepEqual(pmd.decompress(echo.payload, 1 << 20), msg, `echo ${i} inflates to the message`);
    assert.deepEqual(received[i], msg, `the server inflated message ${i} to what was sent`);
  }
  return { sentSizes, echoSizes };
}

test('the offer header names each parameter as RFC 7692 §7.1 spells it', () => {
  assert.equal(deflateOfferHeader(), 'permessage-deflate');
  assert.equal(deflateOfferHeader({ clientMaxWindowBits: true }), 'permessage-deflate; client_max_window_bits');
  assert.equal(
    deflateOfferHeader({ clientNoContextTakeover: true, serverNoContextTakeover: true, clientMaxWindowBits: 10, serverMaxWindowBits: 9 }),
    'permessage-deflate; client_no_context_takeover; server_no_context_takeover; client_max_window_bits=10; server_max_window_bits=9',
  );
  assert.throws(() => deflateOfferHeader({ serverMaxWindowBits: 7 }), RangeError);
  assert.throws(() => deflateOfferHeader({ clientMaxWindowBits: 16 }), RangeError);
});

test('context takeover both ways: later messages shrink, and both sides still read each other', async (t) => {
  const { port, received } = await echoServer(t, {});
  const offer = { clientMaxWindowBits: true } as const;
  const { client, negotiation } = await handshake(t, port, offer);
  assert.equal(negotiation.status, 'accepted');
  assert.ok(negotiation.status === 'accepted');
  assert.deepEqual(negotiation.params, { clientNoContextTakeover: false, serverNoContextTakeover: false, clientMaxWindowBits: 15, serverMaxWindowBits: 15 });
  const same = Buffer.from('a message that is sent twice, word for word, to see the context at work. '.repeat(4));
  const pmd = new PerMessageDeflate(negotiation.params);
  const { sentSizes, echoSizes } = await exchange(client, pmd, received, [same, same, ...messages()]);
  // The second copy is a back-reference into the first: only with the context kept on each side.
  assert.ok(sentSizes[1]! < sentSizes[0]! / 3, `our second copy is small (${sentSizes.join(',')})`);
  assert.ok(echoSizes[1]! < echoSizes[0]! / 3, `the server's second echo is small (${echoSizes.join(',')})`);
});

test('no context takeover on either side: identical messages compress to identical sizes', async (t) => {
  const { port, received } = await echoServer(t, { serverNoContextTakeover: true, clientNoContextTakeover: true });
  const offer = { clientMaxWindowBits: true } as const;
  const { client, negotiation, answer } = await handshake(t, port, offer);
  assert.ok(negotiation.status === 'accepted', `accepted: ${JSON.stringify(answer)}`);
  assert.equal(negotiation.params.serverNoContextTakeover, true);
  assert.equal(negotiation.params.clientNoContextTakeover, true, 'the server may ask for client_no_context_takeover without an offer');
  const same = Buffer.from('a message that is sent twice, word for word. '.repeat(8));
  const pmd = new PerMessageDeflate(negotiation.params);
  const { sentSizes, echoSizes } = await exchange(client, pmd, received, [same, same, same, ...messages()]);
  assert.equal(sentSizes[1], sentSizes[0]);
  assert.equal(sentSizes[2], sentSizes[0]);
  assert.equal(echoSizes[1], echoSizes[0]);
  assert.equal(echoSizes[2], echoSizes[0]);
});

test('client_no_context_takeover offered by the client is kept by our compressor', async (t) => {
  const { port, received } = await echoServer(t, {});
  const offer = { clientNoContextTakeover: true, serverNoContextTakeover: true } as const;
  const { client, negotiation } = await handshake(t, port, offer);
  assert.ok(negotiation.status === 'accepted');
  assert.equal(negotiation.params.clientNoContextTakeover, true);
  assert.equal(negotiation.params.serverNoContextTakeover, true);
  const pmd = new PerMessageDeflate(negotiation.params);
  const same = Buffer.from('context reset every message. '.repeat(10));
  const { sentSizes } = await exchange(client, pmd, received, [same, same]);
  assert.equal(sentSizes[0], sentSizes[1]);
});

for (const bits of [9, 10, 11, 12, 13, 14, 15]) {
  test(`server_max_window_bits=${bits}: the server's window is honoured across messages`, async (t) => {
    const { port, received } = await echoServer(t, { serverMaxWindowBits: bits });
    const offer = { serverMaxWindowBits: bits, clientMaxWindowBits: true } as const;
    const { client, negotiation, answer } = await handshake(t, port, offer);
    assert.ok(negotiation.status === 'accepted', JSON.stringify(answer));
    assert.equal(negotiation.params.serverMaxWindowBits, bits);
    const pmd = new PerMessageDeflate(negotiation.params);
    await exchange(client, pmd, received, messages());
  });
}

test('a server that announces a smaller window without being asked is honoured (§7.1.2.1)', async (t) => {
  const { port, received } = await echoServer(t, { serverMaxWindowBits: 10 });
  const { client, negotiation } = await handshake(t, port, {});
  assert.ok(negotiation.status === 'accepted');
  assert.equal(negotiation.params.serverMaxWindowBits, 10);
  await exchange(client, new PerMessageDeflate(negotiation.params), received, messages());
});

for (const bits of [8, 9, 12]) {
  test(`client_max_window_bits=${bits} chosen by the server: the server inflates what we compress`, async (t) => {
    const { port, received } = await echoServer(t, { clientMaxWindowBits: bits });
    const { client, negotiation } = await handshake(t, port, { clientMaxWindowBits: true });
    assert.ok(negotiation.status === 'accepted');
    assert.equal(negotiation.params.clientMaxWindowBits, bits);
    // For 8, zlib compresses with a 512-byte window: the repeats 300 bytes back prove it stays inside 256.
    await exchange(client, new PerMessageDeflate(negotiation.params), received, messages());
  });
}

test('several offers: the server picks one, and the answer is matched to it', async (t) => {
  // This server refuses to drop its context, so it skips the first offer.
  const { port, received } = await echoServer(t, { serverNoContextTakeover: false });
  const offers: DeflateOffer[] = [{ serverNoContextTakeover: true, serverMaxWindowBits: 9 }, { clientMaxWindowBits: true }];
  assert.equal(deflateOfferHeader(offers), 'permessage-deflate; server_no_context_takeover; server_max_window_bits=9, permessage-deflate; client_max_window_bits');
  const { client, negotiation } = await handshake(t, port, offers);
  assert.ok(negotiation.status === 'accepted');
  assert.equal(negotiation.offerIndex, 1);
  assert.deepEqual(negotiation.params, { clientNoContextTakeover: false, serverNoContextTakeover: false, clientMaxWindowBits: 15, serverMaxWindowBits: 15 });
  await exchange(client, new PerMessageDeflate(negotiation.params), received, messages());
  // An answer that fits neither offer says why for each.
  const r = parseDeflateResponse('permessage-deflate; client_max_window_bits=10', [{ serverMaxWindowBits: 9 }, { clientMaxWindowBits: 8 }]);
  assert.ok(r.status === 'invalid');
  assert.match(r.reason, /fits none of the 2 offers: offer 1: client_max_window_bits answered but not offered .*; offer 2: client_max_window_bits=10 is larger than the 8 offered/);
  // Without server_no_context_takeover the answer cannot be to the first offer; it fits the second.
  const second = parseDeflateResponse('permessage-deflate; server_max_window_bits=9', offers);
  assert.ok(second.status === 'accepted' && second.offerIndex === 1);
  const both = parseDeflateResponse('permessage-deflate; server_no_context_takeover; server_max_window_bits=9', offers);
  assert.ok(both.status === 'accepted' && both.offerIndex === 0);
});

/** Python's `websockets` (Debian's python3-websockets): another zlib user, with its own defaults (12-bit windows). */
const PY_ECHO = `
import asyncio, websockets
async def echo(ws, path=None):
    async for m in ws:
        await ws.send(m)
async def main():
    async with websockets.serve(echo, "127.0.0.1", 0) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()
asyncio.run(main())
`;

test('Python websockets: its 12-bit windows are read from the answer and both directions round-trip', async (t) => {
  const py = await startPython('-c', [PY_ECHO]);
  t.after(() => py.stop());
  const { client, negotiation, answer } = await handshake(t, py.port, { clientMaxWindowBits: true });
  assert.ok(negotiation.status === 'accepted', JSON.stringify(answer));
  t.diagnostic(`websockets answered ${JSON.stringify(answer)}`);
  const serverBits = /server_max_window_bits=(\d+)/.exec(answer!.join())?.[1];
  const clientBits = /client_max_window_bits=(\d+)/.exec(answer!.join())?.[1];
  assert.ok(serverBits && clientBits, 'websockets limits both windows');
  assert.equal(negotiation.params.serverMaxWindowBits, Number(serverBits));
  assert.equal(negotiation.params.clientMaxWindowBits, Number(clientBits));
  const pmd = new PerMessageDeflate(negotiation.params);
  const same = Buffer.from('python echoes this twice, to show both contexts. '.repeat(6));
  const sizes: number[] = [];
  for (const [i, msg] of [same, same, ...messages()].entries()) {
    client.send(0x1, pmd.compress(msg), 0b100);
    const echo = await client.message();
    assert.equal(echo.rsv, 0b100, `echo ${i} is compressed`);
    sizes.push(echo.payload.length);
    assert.deepEqual(pmd.decompress(echo.payload, 1 << 20), msg, `echo ${i}`);
  }
  assert.ok(sizes[1]! < sizes[0]! / 3, `the server kept its context (${sizes.join(',')})`);
});

test('a server without compression declines: no header in the 101', async (t) => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await once(wss, 'listening');
  t.after(() => new Promise<void>((resolve) => {
    for (const c of wss.clients) c.terminate();
    wss.close(() => resolve());
  }));
  const { negotiation } = await handshake(t, (wss.address() as AddressInfo).port, { clientMaxWindowBits: true });
  assert.deepEqual(negotiation, { status: 'declined' });
});

test('bad answers are refused with a reason that names the rule', () => {
  const cases: [string | string[], DeflateOffer, RegExp][] = [
    ['permessage-deflate; foo', {}, /unknown parameter foo/],
    ['permessage-deflate; server_no_context_takeover; server_no_context_takeover', {}, /appears twice/],
    ['permessage-deflate; SERVER_MAX_WINDOW_BITS=10; server_max_window_bits=10', {}, /appears twice/],
    ['permessage-deflate; server_max_window_bits=7', { serverMaxWindowBits: 10 }, /from 8 to 15/],
    ['permessage-deflate; server_max_window_bits=16', {}, /from 8 to 15/],
    ['permessage-deflate; server_max_window_bits=010', {}, /leading zeros/],
    ['permessage-deflate; server_max_window_bits', {}, /needs a value/],
    ['permessage-deflate; server_max_window_bits=12', { serverMaxWindowBits: 10 }, /larger than the 10 offered/],
    ['permessage-deflate', { serverMaxWindowBits: 10 }, /offered; the response accepts the offer without it/],
    ['permessage-deflate', { serverNoContextTakeover: true }, /server_no_context_takeover was offered/],
    ['permessage-deflate; client_max_window_bits=10', {}, /answered but not offered/],
    ['permessage-deflate; client_max_window_bits=12', { clientMaxWindowBits: 10 }, /larger than the 10 offered/],
    ['permessage-deflate; client_max_window_bits', { clientMaxWindowBits: true }, /needs a value/],
    ['permessage-deflate; client_no_context_takeover=1', {}, /takes no value/],
    ['permessage-deflate; server_no_context_takeover="yes"', {}, /takes no value/],
    ['permessage-deflate, permessage-deflate', {}, /2 times/],
    [['permessage-deflate', 'permessage-deflate'], {}, /2 times/],
    ['permessage-deflate, x-webkit-deflate-frame', {}, /not offered: x-webkit-deflate-frame/],
    ['permessage-deflate; server_max_window_bits="1 0"', {}, /not a token/],
    ['permessage-deflate; server_max_window_bits="10', {}, /not closed/],
    ['permessage-deflate; <script>', {}, /not a token/],
    ['permessage-deflate; server_max_window_bits=', {}, /has no value/],
    ['permessage-deflate; , ', {}, /not a token/],
  ];
  for (const [header, offer, reason] of cases) {
    const r = parseDeflateResponse(header, offer);
    assert.equal(r.status, 'invalid', `${JSON.stringify(header)} is invalid`);
    assert.ok(r.status === 'invalid');
    assert.match(r.reason, reason, JSON.stringify(header));
  }
});

test('valid answers: quoted values, case, whitespace, and defaults', () => {
  const r = parseDeflateResponse('Permessage-Deflate ;server_max_window_bits="10" ; client_max_window_bits=9', { clientMaxWindowBits: 12 });
  assert.ok(r.status === 'accepted');
  assert.deepEqual(r.params, { clientNoContextTakeover: false, serverNoContextTakeover: false, clientMaxWindowBits: 9, serverMaxWindowBits: 10 });
  const offered = parseDeflateResponse('permessage-deflate', { clientMaxWindowBits: 11 });
  assert.ok(offered.status === 'accepted');
  assert.equal(offered.params.clientMaxWindowBits, 11, 'a numeric offer binds the client even when not repeated');
  assert.deepEqual(parseDeflateResponse(undefined), { status: 'declined' });
  assert.deepEqual(parseDeflateResponse('  '), { status: 'declined' });
  assert.deepEqual(parseDeflateResponse(', ,'), { status: 'declined' }, 'empty list elements are allowed by the #rule');
  const trailing = parseDeflateResponse('permessage-deflate; server_no_context_takeover , ');
  assert.ok(trailing.status === 'accepted' && trailing.params.serverNoContextTakeover && trailing.offerIndex === 0);
});

const DEFAULTS: DeflateParams = { clientNoContextTakeover: false, serverNoContextTakeover: false, clientMaxWindowBits: 15, serverMaxWindowBits: 15 };

test('a decompression bomb is refused at the bound, with PH_ERR_INFLATE_LIMIT', () => {
  // 64 MiB of zeros compresses to ~64 KiB: inflating stops at the 1 MiB bound.
  const bomb = zlib.deflateRawSync(Buffer.alloc(64 << 20), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  assert.ok(bomb.length < 100_000);
  const pmd = new PerMessageDeflate(DEFAULTS);
  assert.throws(
    () => pmd.decompress(bomb.subarray(0, bomb.length - 4), 1 << 20),
    (e: unknown) => e instanceof InflateLimitError && e.code === 'PH_ERR_INFLATE_LIMIT' && e.closeCode === 1009 && /more than 1048576 bytes/.test(e.message),
  );
  // Exactly at the bound is allowed.
  const exact = zlib.deflateRawSync(Buffer.alloc(1000, 1), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  assert.equal(new PerMessageDeflate(DEFAULTS).decompress(exact.subarray(0, exact.length - 4), 1000).length, 1000);
  assert.throws(() => new PerMessageDeflate(DEFAULTS).decompress(exact.subarray(0, exact.length - 4), 999), InflateLimitError);
  assert.throws(() => new PerMessageDeflate(DEFAULTS).decompress(exact, Number.NaN), RangeError, 'a bound that is not a number is a bug, not a verdict');
  assert.throws(() => new PerMessageDeflate(DEFAULTS).decompress(exact, -1), RangeError);
});

test('data that is not deflate, or reaches beyond the server window, is refused with PH_ERR_INFLATE', () => {
  const pmd = new PerMessageDeflate(DEFAULTS);
  assert.throws(() => pmd.decompress(Buffer.from([0xff, 0xff, 0xff, 0xff]), 1 << 20), (e: unknown) => e instanceof InflateError && e.code === 'PH_ERR_INFLATE' && e.closeCode === 1007);
  // A server that announced 9 bits but refers 2000 bytes back into its previous
  // message: our window holds 512 bytes of it, so the reference is refused.
  // (Within one message zlib checks distances against what it has written, not
  // the window, so such an overreach inside a message is not caught.)
  const first = randomBytes(2000);
  const small = new PerMessageDeflate({ ...DEFAULTS, serverMaxWindowBits: 9 });
  const m1 = zlib.deflateRawSync(first, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  assert.deepEqual(small.decompress(m1.subarray(0, m1.length - 4), 1 << 20), first);
  const m2 = zlib.deflateRawSync(first.subarray(0, 200), { dictionary: first, finishFlush: zlib.constants.Z_SYNC_FLUSH });
  assert.ok(m2.length < 50, 'the second message is a back-reference');
  assert.throws(() => small.decompress(m2.subarray(0, m2.length - 4), 1 << 20), (e: unknown) => e instanceof InflateError && /too far back/.test(e.message));
  // The same bytes read with a 15-bit window are fine.
  const wide = new PerMessageDeflate(DEFAULTS);
  wide.decompress(m1.subarray(0, m1.length - 4), 1 << 20);
  assert.deepEqual(wide.decompress(m2.subarray(0, m2.length - 4), 1 << 20), first.subarray(0, 200));
});

test('a message ending in a final (BFINAL) block, as RFC 7692 §7.2.3.3 allows, is read, and the context carries on', () => {
  const pmd = new PerMessageDeflate(DEFAULTS);
  const a = Buffer.from('first message, final block. '.repeat(5));
  const finalBlock = zlib.deflateRawSync(a);
  assert.deepEqual(pmd.decompress(finalBlock, 1 << 20), a);
  // The server's next message refers back into the first.
  const next = zlib.deflateRawSync(a, { dictionary: a, finishFlush: zlib.constants.Z_SYNC_FLUSH });
  assert.deepEqual(pmd.decompress(next.subarray(0, next.length - 4), 1 << 20), a);
});
