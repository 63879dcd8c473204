import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { closeFrame, closePayload, controlFrame, FrameTracker, OP_CLOSE, OP_PING } from '../../src/gateway/frames.js';

const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CONT = 0x0;

/** The header of one frame (RFC 6455 §5.2), with the smallest length encoding unless `force` says otherwise. */
function header(opcode: number, length: number, opts: { mask?: Buffer; fin?: boolean; force?: 7 | 16 | 64 } = {}): Buffer {
  const width = opts.force ?? (length < 126 ? 7 : length <= 0xffff ? 16 : 64);
  const ext = width === 7 ? 0 : width === 16 ? 2 : 8;
  const h = Buffer.alloc(2 + ext + (opts.mask ? 4 : 0));
  h[0] = (opts.fin === false ? 0 : 0x80) | opcode;
  h[1] = (opts.mask ? 0x80 : 0) | (width === 7 ? length : width === 16 ? 126 : 127);
  if (width === 16) h.writeUInt16BE(length, 2);
  if (width === 64) {
    h.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    h.writeUInt32BE(length >>> 0, 6);
  }
  opts.mask?.copy(h, 2 + ext);
  return h;
}

/** A whole frame; with a mask the payload is masked as a client would. */
function frame(opcode: number, payload: Buffer, opts: { mask?: Buffer; fin?: boolean; force?: 7 | 16 | 64 } = {}): Buffer {
  const body = Buffer.from(payload);
  if (opts.mask) for (let i = 0; i < body.length; i++) body[i] ^= opts.mask[i & 3];
  return Buffer.concat([header(opcode, payload.length, opts), body]);
}

function closeBody(code: number, reason = ''): Buffer {
  const b = Buffer.alloc(2 + Buffer.byteLength(reason));
  b.writeUInt16BE(code, 0);
  b.write(reason, 2);
  return b;
}

/** Unmasks and decodes a frame built by `controlFrame`. */
function decodeControl(f: Buffer): { fin: boolean; opcode: number; masked: boolean; payload: Buffer } {
  const masked = (f[1] & 0x80) !== 0;
  const len = f[1] & 0x7f;
  assert.ok(len <= 125, 'a control frame payload is at most 125 bytes (§5.5)');
  const key = masked ? f.subarray(2, 6) : null;
  const payload = Buffer.from(f.subarray(masked ? 6 : 2));
  assert.equal(payload.length, len);
  if (key) for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3];
  return { fin: (f[0] & 0x80) !== 0, opcode: f[0] & 0x0f, masked, payload };
}

describe('FrameTracker', () => {
  test('counts whole frames fed in one chunk and ends at a boundary', () => {
    const t = new FrameTracker();
    assert.equal(t.atBoundary, true);
    t.feed(Buffer.concat([frame(OP_TEXT, Buffer.from('hello')), frame(OP_BINARY, Buffer.alloc(0)), frame(OP_PING, Buffer.from('p'))]));
    assert.equal(t.frames, 3);
    assert.equal(t.atBoundary, true);
    assert.equal(t.closeCode, null);
  });

  test('16-bit lengths: 126, 300 and 65535-byte payloads', () => {
    for (const n of [126, 300, 65535]) {
      const t = new FrameTracker();
      const f = frame(OP_BINARY, randomBytes(n));
      assert.equal(f[1] & 0x7f, 126);
      t.feed(f.subarray(0, f.length - 1));
      assert.equal(t.atBoundary, false, `${n}: at a boundary one byte early`);
      t.feed(f.subarray(f.length - 1));
      assert.equal(t.atBoundary, true, `${n}: not at the boundary at the end`);
      assert.equal(t.frames, 1);
    }
  });

  test('64-bit lengths: a 65536-byte and a 70000-byte payload', () => {
    const t = new FrameTracker();
    const a = frame(OP_BINARY, randomBytes(65536));
    const b = frame(OP_BINARY, randomBytes(70000), { mask: randomBytes(4) });
    assert.equal(a[1] & 0x7f, 127);
    t.feed(Buffer.concat([a, b.subarray(0, 20)])); // b's header is 14 bytes
    assert.equal(t.frames, 2);
    assert.equal(t.atBoundary, false);
    t.feed(b.subarray(20));
    assert.equal(t.atBoundary, true);
  });

  test('a 64-bit length above 2^32 uses the high word too', () => {
    // 2^32 + 5: if the high 32 bits were dropped the frame would end after 5 bytes.
    const t = new FrameTracker();
    t.feed(header(OP_BINARY, 2 ** 32 + 5));
    const chunk = Buffer.alloc(1024 * 1024);
    assert.equal(t.feedToBoundary(chunk), chunk.length, 'the frame ended early');
    assert.equal(t.atBoundary, false);
    assert.equal(t.frames, 1);
  });

  test('a non-minimal length encoding (a 5-byte payload in 16 or 64 bits) is still framed right', () => {
    const t = new FrameTracker();
    t.feed(Buffer.concat([frame(OP_TEXT, Buffer.from('abcde'), { force: 16 }), frame(OP_TEXT, Buffer.from('fghij'), { force: 64 })]));
    assert.equal(t.frames, 2);
    assert.equal(t.atBoundary, true);
  });

  test('headers split across chunks byte by byte: frames and boundaries are exact', () => {
    const frames = [
      frame(OP_TEXT, Buffer.from('a')),
      frame(OP_TEXT, Buffer.from('frag-1 '), { fin: false, mask: randomBytes(4) }),
      frame(OP_PING, Buffer.alloc(0), { mask: randomBytes(4) }),
      frame(OP_CONT, Buffer.from('frag-2'), { mask: randomBytes(4) }),
      frame(OP_BINARY, randomBytes(300), { mask: randomBytes(4) }),
      frame(OP_BINARY, randomBytes(65536 + 3)),
      frame(OP_BINARY, Buffer.alloc(0)),
      frame(OP_CLOSE, closeBody(1000, 'done'), { mask: randomBytes(4) }),
    ];
    const stream = Buffer.concat(frames);
    const ends = new Set<number>();
    let at = 0;
    for (const f of frames) ends.add((at += f.length));
    const t = new FrameTracker();
    const boundaries: number[] = [];
    for (let i = 0; i < stream.length; i++) {
      t.feed(stream.subarray(i, i + 1));
      if (t.atBoundary) boundaries.push(i + 1);
    }
    assert.deepEqual(boundaries, [...ends]);
    assert.equal(t.frames, frames.length);
    assert.equal(t.closeCode, 1000);
    assert.equal(t.closeReason, 'done');
  });

  test('any split of a 14-byte header (64-bit length, masked) across two chunks gives the same result', () => {
    const f = frame(OP_BINARY, randomBytes(70000), { mask: randomBytes(4) });
    const next = frame(OP_TEXT, Buffer.from('next'));
    const stream = Buffer.concat([f, next]);
    for (let cut = 1; cut < 14; cut++) {
      const t = new FrameTracker();
      t.feed(stream.subarray(0, cut));
      assert.equal(t.atBoundary, false, `cut ${cut}`);
      assert.equal(t.frames, 0, `cut ${cut}: a header was counted before it was whole`);
      t.feed(stream.subarray(cut, f.length));
      assert.equal(t.atBoundary, true, `cut ${cut}`);
      t.feed(stream.subarray(f.length));
      assert.equal(t.frames, 2, `cut ${cut}`);
      assert.equal(t.atBoundary, true);
    }
  });

  test('a masked close frame: the code and reason are unmasked', () => {
    const t = new FrameTracker();
    t.feed(frame(OP_CLOSE, closeBody(4001, 'client says bye'), { mask: Buffer.from([0x37, 0xfa, 0x21, 0x3d]) }));
    assert.equal(t.closeCode, 4001);
    assert.equal(t.closeReason, 'client says bye');
  });

  test('a masked close frame fed byte by byte, after data frames, gives its code', () => {
    const t = new FrameTracker();
    const stream = Buffer.concat([frame(OP_TEXT, Buffer.from('hi'), { mask: randomBytes(4) }), frame(OP_CLOSE, closeBody(1001, 'going away ünïcode'), { mask: randomBytes(4) })]);
    for (let i = 0; i < stream.length; i++) t.feed(stream.subarray(i, i + 1));
    assert.equal(t.closeCode, 1001);
    assert.equal(t.closeReason, 'going away ünïcode');
  });

  test('an unmasked close frame (server to client) gives its code', () => {
    const t = new FrameTracker();
    t.feed(frame(OP_CLOSE, closeBody(1011, 'oops')));
    assert.equal(t.closeCode, 1011);
    assert.equal(t.closeReason, 'oops');
  });

  test('a close frame without a payload reads as 1005; only the first close counts', () => {
    const t = new FrameTracker();
    t.feed(frame(OP_CLOSE, Buffer.alloc(0), { mask: randomBytes(4) }));
    assert.equal(t.closeCode, 1005);
    assert.equal(t.closeReason, '');
    t.feed(frame(OP_CLOSE, closeBody(4000, 'later')));
    assert.equal(t.closeCode, 1005);
    assert.equal(t.frames, 2);
  });
});

describe('FrameTracker.feedToBoundary', () => {
  test('returns 0 at a boundary and reads nothing', () => {
    const t = new FrameTracker();
    assert.equal(t.feedToBoundary(frame(OP_TEXT, Buffer.from('x'))), 0);
    assert.equal(t.frames, 0);
  });

  test('returns the bytes that finish the frame in progress and stops there', () => {
    const t = new FrameTracker();
    const a = frame(OP_BINARY, randomBytes(1000));
    const b = frame(OP_TEXT, Buffer.from('second'));
    t.feed(a.subarray(0, 100));
    const chunk = Buffer.concat([a.subarray(100), b]);
    assert.equal(t.feedToBoundary(chunk), a.length - 100);
    assert.equal(t.atBoundary, true);
    assert.equal(t.frames, 1, 'the next frame was read');
  });

  test('returns the whole chunk when the frame goes on past it', () => {
    const t = new FrameTracker();
    const a = frame(OP_BINARY, randomBytes(1000));
    t.feed(a.subarray(0, 10));
    assert.equal(t.feedToBoundary(a.subarray(10, 500)), 490);
    assert.equal(t.atBoundary, false);
    assert.equal(t.feedToBoundary(Buffer.concat([a.subarray(500), frame(OP_TEXT, Buffer.from('x'))])), a.length - 500);
    assert.equal(t.atBoundary, true);
  });

  test('finishes a split header, then its payload, and stops at that frame’s end', () => {
    const t = new FrameTracker();
    const a = frame(OP_BINARY, randomBytes(300), { mask: randomBytes(4) }); // 2 + 2 + 4 header bytes
    const b = frame(OP_TEXT, Buffer.from('after'));
    t.feed(a.subarray(0, 3));
    assert.equal(t.atBoundary, false);
    assert.equal(t.feedToBoundary(Buffer.concat([a.subarray(3), b])), a.length - 3);
    assert.equal(t.atBoundary, true);
    assert.equal(t.frames, 1);
  });

  test('a split header of an empty frame ends at the header', () => {
    const t = new FrameTracker();
    const empty = frame(OP_PING, Buffer.alloc(0), { mask: randomBytes(4) }); // 6 bytes, no payload
    t.feed(empty.subarray(0, 1));
    assert.equal(t.feedToBoundary(Buffer.concat([empty.subarray(1), frame(OP_TEXT, Buffer.from('z'))])), empty.length - 1);
    assert.equal(t.atBoundary, true);
  });

  test('a close frame finished by feedToBoundary still yields its code', () => {
    const t = new FrameTracker();
    const c = frame(OP_CLOSE, closeBody(4002, 'cut'), { mask: randomBytes(4) });
    t.feed(c.subarray(0, 7));
    assert.equal(t.feedToBoundary(c.subarray(7)), c.length - 7);
    assert.equal(t.closeCode, 4002);
    assert.equal(t.closeReason, 'cut');
  });
});

describe('closeFrame and controlFrame', () => {
  test('an unmasked close frame (gateway to client) carries the code and reason', () => {
    const f = closeFrame(1014, 'app x: upstream refused', false);
    const d = decodeControl(f);
    assert.equal(d.fin, true);
    assert.equal(d.opcode, OP_CLOSE);
    assert.equal(d.masked, false);
    assert.equal(d.payload.readUInt16BE(0), 1014);
    assert.equal(d.payload.subarray(2).toString(), 'app x: upstream refused');
  });

  test('a masked close frame (gateway to server) is masked with a key and decodes back', () => {
    const f = closeFrame(1001, 'gateway shutting down', true);
    const d = decodeControl(f);
    assert.equal(d.masked, true);
    assert.equal(d.payload.readUInt16BE(0), 1001);
    assert.equal(d.payload.subarray(2).toString(), 'gateway shutting down');
    // The tracker on the far side reads the same code.
    const t = new FrameTracker();
    t.feed(f);
    assert.equal(t.closeCode, 1001);
    assert.equal(t.closeReason, 'gateway shutting down');
  });

  test('a long reason is cut to fit 125 bytes, on a UTF-8 character boundary', () => {
    const reason = `app ${'é'.repeat(80)} ${'🙂'.repeat(20)}`;
    const payload = closePayload(1014, reason);
    assert.ok(payload.length <= 125, `payload is ${payload.length} bytes`);
    const text = payload.subarray(2);
    const decoded = new TextDecoder('utf-8', { fatal: true }).decode(text); // throws on a cut character
    assert.ok(decoded.endsWith('...'));
    assert.ok(reason.startsWith(decoded.slice(0, -3)));
    for (let n = 118; n <= 130; n++) {
      const p = closePayload(4000, 'ü'.repeat(n));
      assert.ok(p.length <= 125);
      new TextDecoder('utf-8', { fatal: true }).decode(p.subarray(2));
    }
    assert.equal(decodeControl(closeFrame(1014, reason, true)).payload.length, payload.length);
  });

  test('a 123-byte reason is kept whole', () => {
    const reason = 'r'.repeat(123);
    assert.equal(closePayload(1000, reason).subarray(2).toString(), reason);
  });

  test('a ping control frame with an empty payload is two bytes unmasked, six masked', () => {
    assert.deepEqual([...controlFrame(OP_PING, Buffer.alloc(0), false)], [0x89, 0x00]);
    const masked = controlFrame(OP_PING, Buffer.alloc(0), true);
    assert.equal(masked.length, 6);
    assert.equal(masked[1], 0x80);
  });
});
