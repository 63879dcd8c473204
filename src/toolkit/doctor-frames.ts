/**
 * The little RFC 6455 framing `porthole doctor` needs after its hand-made
 * handshake: masked client frames out (a ping, a text message, a close), and
 * server frames in, kept exactly as they arrived.
 *
 * Why not `ws`: the doctor is a probe. It has to report what is on the wire —
 * a server frame that is masked, RSV bits nobody negotiated, a close frame
 * with one byte of payload — and when the stream ended and how (close frame,
 * FIN, RST). `ws` would turn those into a generic error or hide them, and its
 * `new WebSocket(null)` + `setSocket()` path is server-side only (it would not
 * mask what it sends). A few frames do not need more than this.
 */
import { randomBytes } from 'node:crypto';

export const OP_CONTINUATION = 0x0;
export const OP_TEXT = 0x1;
export const OP_BINARY = 0x2;
export const OP_CLOSE = 0x8;
export const OP_PING = 0x9;
export const OP_PONG = 0xa;

/** A server frame larger than this is not read (the doctor sends a few bytes; it expects a few back). */
export const MAX_FRAME_PAYLOAD = 16 * 1024 * 1024;

export interface Frame {
  fin: boolean;
  /** RSV1–3 as a 3-bit number (0 unless an extension was negotiated, and the doctor negotiates none). */
  rsv: number;
  opcode: number;
  masked: boolean;
  /** Unmasked payload. */
  payload: Buffer;
}

/** One masked client frame (RFC 6455 §5.2, §5.3: every client frame is masked with a fresh key). */
export function encodeClientFrame(opcode: number, payload: Buffer | string = Buffer.alloc(0), fin = true): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const len = data.length;
  const extra = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + extra + 4);
  head[0] = (fin ? 0x80 : 0) | opcode;
  if (extra === 0) head[1] = 0x80 | len;
  else if (extra === 2) {
    head[1] = 0x80 | 126;
    head.writeUInt16BE(len, 2);
  } else {
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  const key = randomBytes(4);
  key.copy(head, 2 + extra);
  const masked = Buffer.alloc(len);
  for (let i = 0; i < len; i++) masked[i] = data[i] ^ key[i & 3];
  return Buffer.concat([head, masked]);
}

/** A close frame payload: 2-byte code, then the UTF-8 reason (§5.5.1). */
export function closePayload(code: number, reason = ''): Buffer {
  const out = Buffer.alloc(2 + Buffer.byteLength(reason));
  out.writeUInt16BE(code, 0);
  out.write(reason, 2, 'utf8');
  return out;
}

/** Reads a close frame payload; `problem` is set when it breaks §5.5.1 (1 byte, invalid UTF-8). */
export function parseClosePayload(payload: Buffer): { code: number; reason: string; problem?: string } {
  if (payload.length === 0) return { code: 1005, reason: '' };
  if (payload.length === 1) return { code: 1005, reason: '', problem: 'a close frame with a 1-byte payload (a code needs 2 bytes)' };
  const reason = payload.subarray(2).toString('utf8');
  return {
    code: payload.readUInt16BE(0),
    reason,
    problem: reason.includes('\uFFFD') ? 'a close reason that is not valid UTF-8' : undefined,
  };
}

/**
 * Splits the bytes a server sends into frames. Frames are returned whole,
 * as they came (no reassembly, no unmasking checks beyond reporting them).
 * After a framing error (`error` set) nothing more is read: the stream has
 * lost its boundaries.
 */
export class FrameDecoder {
  error: string | undefined;
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Frame[] {
    if (this.error) return [];
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const frames: Frame[] = [];
    for (;;) {
      const frame = this.next();
      if (!frame) return frames;
      frames.push(frame);
    }
  }

  private next(): Frame | undefined {
    const b = this.buf;
    if (b.length < 2) return undefined;
    const len7 = b[1] & 0x7f;
    const masked = (b[1] & 0x80) !== 0;
    let off = 2;
    let len: number;
    if (len7 === 126) {
      if (b.length < 4) return undefined;
      len = b.readUInt16BE(2);
      off = 4;
    } else if (len7 === 127) {
      if (b.length < 10) return undefined;
      const big = b.readBigUInt64BE(2);
      if (big > BigInt(MAX_FRAME_PAYLOAD)) {
        this.error = `a frame announcing ${big} bytes (more than the doctor reads)`;
        return undefined;
      }
      len = Number(big);
      off = 10;
    } else {
      len = len7;
    }
    if (len > MAX_FRAME_PAYLOAD) {
      this.error = `a frame announcing ${len} bytes (more than the doctor reads)`;
      return undefined;
    }
    const keyOff = off;
    if (masked) off += 4;
    if (b.length < off + len) return undefined;
    const payload = Buffer.from(b.subarray(off, off + len));
    if (masked) for (let i = 0; i < len; i++) payload[i] ^= b[keyOff + (i & 3)];
    this.buf = b.subarray(off + len);
    return { fin: (b[0] & 0x80) !== 0, rsv: (b[0] >> 4) & 0x7, opcode: b[0] & 0x0f, masked, payload };
  }
}

/**
 * What is wrong with a server frame, per RFC 6455 §5.1–§5.5, or undefined.
 * A browser fails the connection on any of these (the page sees 1006 or 1002).
 */
export function frameProblem(f: Frame): string | undefined {
  if (f.masked) return 'the server masked a frame (RFC 6455 §5.1: a server must not mask what it sends)';
  if (f.rsv !== 0) return `the server set RSV bits (${f.rsv.toString(2).padStart(3, '0')}) although no extension was negotiated (§5.2)`;
  if (![OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG].includes(f.opcode))
    return `the server sent a frame with the reserved opcode 0x${f.opcode.toString(16)} (§5.2)`;
  if (f.opcode >= 0x8 && (!f.fin || f.payload.length > 125)) return 'the server sent a fragmented or oversized control frame (§5.5)';
  return undefined;
}
