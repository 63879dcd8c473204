/**
 * WebSocket frame boundaries, read from frame headers only (RFC 6455 §5.2).
 *
 * A tunnel never re-frames or unmasks data: it forwards the bytes as they
 * come and feeds them here to learn where each frame ends. Knowing the
 * boundaries lets the gateway count frames and inject a control frame (a real
 * close on drain or idle timeout, a ping) without corrupting the stream.
 * Only close frames' payloads (at most 125 bytes) are looked at, to learn the
 * close code.
 */
import { randomFillSync } from 'node:crypto';

export const OP_CLOSE = 0x8;
export const OP_PING = 0x9;
export const OP_PONG = 0xa;

export class FrameTracker {
  /** Frames whose header has been read. */
  frames = 0;
  /** Data messages completed (a data frame with FIN set: unfragmented, or the last fragment). */
  messages = 0;
  /** Close code of the first close frame seen in this direction (1005 if it had none). */
  closeCode: number | null = null;
  closeReason = '';

  /** Payload bytes left in the current frame. */
  private remaining = 0;
  /** Bytes of a header split across chunks (at most 14). */
  private partial: Buffer | null = null;
  /** Collects a close frame's payload. */
  private capture: { mask: Buffer | null; data: Buffer; filled: number } | null = null;

  /** True when the bytes fed so far end exactly at a frame boundary. */
  get atBoundary(): boolean {
    return this.remaining === 0 && this.partial === null;
  }

  /** Reads every byte of `chunk`. */
  feed(chunk: Buffer): void {
    this.consume(chunk, false);
  }

  /**
   * Reads `chunk` up to the first frame boundary after which nothing more is
   * needed; returns how many bytes belong to the frame in progress (0 if the
   * tracker was already at a boundary). Used to cut a stream cleanly.
   */
  feedToBoundary(chunk: Buffer): number {
    if (this.atBoundary) return 0;
    return this.consume(chunk, true);
  }

  private consume(chunk: Buffer, stopAtBoundary: boolean): number {
    let off = 0;
    const len = chunk.length;
    while (off < len) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, len - off);
        if (this.capture) this.collect(chunk, off, take);
        this.remaining -= take;
        off += take;
        if (this.remaining === 0 && this.capture) this.finishCapture();
        if (stopAtBoundary && this.remaining === 0) return off;
        continue;
      }
      // Header: 2 bytes, +2/+8 extended length, +4 mask key; it may span chunks.
      const prev = this.partial ? this.partial.length : 0;
      const hbuf = this.partial ? Buffer.concat([this.partial, chunk.subarray(off, off + 14 - prev)]) : chunk;
      const h = this.partial ? 0 : off;
      const avail = this.partial ? hbuf.length : len - off;
      const headerLen = avail < 2 ? 14 : 2 + extendedLength(hbuf[h + 1]) + (hbuf[h + 1] & 0x80 ? 4 : 0);
      if (avail < headerLen) {
        // Everything left in the chunk is header: keep it for the next chunk.
        this.partial = this.partial ? Buffer.concat([this.partial, chunk.subarray(off)]) : Buffer.from(chunk.subarray(off));
        return len;
      }
      const opcode = hbuf[h] & 0x0f;
      const masked = (hbuf[h + 1] & 0x80) !== 0;
      const len7 = hbuf[h + 1] & 0x7f;
      let payload: number;
      if (len7 === 126) payload = hbuf.readUInt16BE(h + 2);
      else if (len7 === 127) payload = hbuf.readUInt32BE(h + 2) * 2 ** 32 + hbuf.readUInt32BE(h + 6);
      else payload = len7;
      this.frames++;
      if (opcode < 8 && hbuf[h] & 0x80) this.messages++;
      this.partial = null;
      off += headerLen - prev;
      if (opcode === OP_CLOSE && this.closeCode === null) {
        const mask = masked ? Buffer.from(hbuf.subarray(h + headerLen - 4, h + headerLen)) : null;
        this.capture = { mask, data: Buffer.alloc(Math.min(payload, 125)), filled: 0 };
      }
      this.remaining = payload;
      if (payload === 0 && this.capture) this.finishCapture();
      if (stopAtBoundary && this.remaining === 0) return off;
    }
    return off;
  }

  private collect(chunk: Buffer, off: number, take: number): void {
    const c = this.capture!;
    const n = Math.min(take, c.data.length - c.filled);
    chunk.copy(c.data, c.filled, off, off + n);
    c.filled += n;
  }

  private finishCapture(): void {
    const c = this.capture!;
    this.capture = null;
    const data = c.data.subarray(0, c.filled);
    if (c.mask) for (let i = 0; i < data.length; i++) data[i] ^= c.mask[i & 3];
    this.closeCode = data.length >= 2 ? data.readUInt16BE(0) : 1005;
    this.closeReason = data.length > 2 ? data.subarray(2).toString('utf8') : '';
  }
}

function extendedLength(b1: number): number {
  const len7 = b1 & 0x7f;
  return len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
}

/** Builds one control frame. Frames to a server must be masked (RFC 6455 §5.3). */
export function controlFrame(opcode: number, payload: Buffer, masked: boolean): Buffer {
  const body = payload.subarray(0, 125);
  const frame = Buffer.alloc(2 + (masked ? 4 : 0) + body.length);
  frame[0] = 0x80 | opcode;
  frame[1] = (masked ? 0x80 : 0) | body.length;
  if (masked) {
    const key = frame.subarray(2, 6);
    randomFillSync(key);
    for (let i = 0; i < body.length; i++) frame[6 + i] = body[i] ^ key[i & 3];
  } else {
    body.copy(frame, 2);
  }
  return frame;
}

/** A close frame with a code and a reason cut to fit the 125-byte control payload. */
export function closeFrame(code: number, reason: string, masked: boolean): Buffer {
  return controlFrame(OP_CLOSE, closePayload(code, reason), masked);
}

export function closePayload(code: number, reason: string): Buffer {
  let text = Buffer.from(reason, 'utf8');
  if (text.length > 123) {
    // Cut on a character boundary so the reason stays valid UTF-8 (§5.5.1 requires it).
    let end = 120;
    while (end > 0 && (text[end] & 0xc0) === 0x80) end--;
    text = Buffer.concat([text.subarray(0, end), Buffer.from('...')]);
  }
  const payload = Buffer.alloc(2 + text.length);
  payload.writeUInt16BE(code, 0);
  text.copy(payload, 2);
  return payload;
}
