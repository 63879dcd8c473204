/**
 * Reads the server's frames from the byte stream, incrementally, without
 * judging them: the connection decides what is a violation (a masked frame, a
 * reserved bit, a reserved opcode) so it can be recorded before failing.
 */

export interface ReadFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

/** Frames larger than this are refused: the tool's own memory bound (family 9 sends 16 MiB). */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;

export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  /** Adds bytes; returns the complete frames now available, or throws on an impossible length. */
  push(data: Buffer): ReadFrame[] {
    this.chunks.push(data);
    this.buffered += data.length;
    const frames: ReadFrame[] = [];
    for (;;) {
      const frame = this.next();
      if (!frame) return frames;
      frames.push(frame);
    }
  }

  private peek(n: number): Buffer {
    if (this.chunks[0].length >= n) return this.chunks[0];
    const all = Buffer.concat(this.chunks);
    this.chunks = [all];
    return all;
  }

  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const head = this.peek(n);
    const out = head.subarray(0, n);
    const rest = head.subarray(n);
    this.chunks[0] = rest;
    if (rest.length === 0) this.chunks.shift();
    this.buffered -= n;
    return out;
  }

  private next(): ReadFrame | undefined {
    if (this.buffered < 2) return undefined;
    const h = this.peek(2);
    const b0 = h[0];
    const b1 = h[1];
    const masked = (b1 & 0x80) !== 0;
    let len = b1 & 0x7f;
    let headerLen = 2;
    if (len === 126) headerLen = 4;
    else if (len === 127) headerLen = 10;
    if (masked) headerLen += 4;
    if (this.buffered < headerLen) return undefined;
    const header = this.peek(headerLen);
    if (len === 126) len = header.readUInt16BE(2);
    else if (len === 127) {
      const big = header.readBigUInt64BE(2);
      if (big > BigInt(MAX_FRAME_BYTES)) throw new RangeError(`the server announced a frame of ${big} bytes`);
      len = Number(big);
    }
    if (len > MAX_FRAME_BYTES) throw new RangeError(`the server announced a frame of ${len} bytes`);
    if (this.buffered < headerLen + len) return undefined;
    const head = Buffer.from(this.take(headerLen));
    const payload = Buffer.from(this.take(len));
    if (masked) {
      const key = head.subarray(headerLen - 4, headerLen);
      for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3];
    }
    return { fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0x0f, masked, payload };
  }
}
