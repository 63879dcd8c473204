/**
 * Client frames written by hand (RFC 6455 §5.2), because the conformance cases
 * must send what no WebSocket library will: reserved bits, reserved opcodes,
 * fragmented control frames, oversized control payloads, bad close payloads.
 * Every frame is masked, as a client's must be (§5.3).
 */
import { randomBytes } from 'node:crypto';

export const OP_CONTINUATION = 0x0;
export const OP_TEXT = 0x1;
export const OP_BINARY = 0x2;
export const OP_CLOSE = 0x8;
export const OP_PING = 0x9;
export const OP_PONG = 0xa;

/** One frame as the case wants it on the wire; nothing is checked or corrected. */
export interface FrameSpec {
  opcode: number;
  /** Default true. */
  fin?: boolean;
  /** RSV1..RSV3 as a number 0–7 (RSV1 is 4). */
  rsv?: number;
  payload?: Buffer | string;
}

export function payloadOf(frame: FrameSpec): Buffer {
  const p = frame.payload ?? Buffer.alloc(0);
  return typeof p === 'string' ? Buffer.from(p, 'utf8') : p;
}

/** The bytes of one masked frame. */
export function encodeFrame(frame: FrameSpec, maskKey: Buffer = randomBytes(4)): Buffer {
  const payload = payloadOf(frame);
  const len = payload.length;
  const headerLen = 2 + (len < 126 ? 0 : len < 65536 ? 2 : 8) + 4;
  const out = Buffer.allocUnsafe(headerLen + len);
  out[0] = ((frame.fin ?? true) ? 0x80 : 0) | (((frame.rsv ?? 0) & 7) << 4) | (frame.opcode & 0x0f);
  let at = 2;
  if (len < 126) {
    out[1] = 0x80 | len;
  } else if (len < 65536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(len, 2);
    at = 4;
  } else {
    out[1] = 0x80 | 127;
    out.writeBigUInt64BE(BigInt(len), 2);
    at = 10;
  }
  maskKey.copy(out, at, 0, 4);
  at += 4;
  for (let i = 0; i < len; i++) out[at + i] = payload[i] ^ maskKey[i & 3];
  return out;
}

/** A close frame's payload: the code (2 bytes, any value 0–65535) and the reason bytes. */
export function closePayload(code?: number, reason: Buffer | string = ''): Buffer {
  if (code === undefined) return Buffer.alloc(0);
  const r = typeof reason === 'string' ? Buffer.from(reason, 'utf8') : reason;
  const out = Buffer.alloc(2 + r.length);
  out.writeUInt16BE(code & 0xffff, 0);
  r.copy(out, 2);
  return out;
}

/** `text` repeated to exactly `length` bytes (Autobahn's payloads for its big messages). */
export function repeatTo(text: string, length: number): Buffer {
  const unit = Buffer.from(text, 'utf8');
  const out = Buffer.allocUnsafe(length);
  for (let at = 0; at < length; at += unit.length) unit.copy(out, at, 0, Math.min(unit.length, length - at));
  return out;
}
