/**
 * The messages `porthole bench` sends: a 16-byte header carrying a sequence
 * number and the (intended) send time, then a body pattern that depends on the
 * connection, so an echo can be checked and timed without keeping anything per
 * message. A connection rewrites only the header of one preallocated buffer.
 *
 * Binary layout (little-endian):
 *   0–3   sequence number (uint32, per connection, from 0)
 *   4–7   connection id (uint32): an echo that comes back on another connection is caught
 *   8–15  send time, `performance.now()` milliseconds (float64)
 *   16–   body: bytes of a xorshift stream seeded by the connection id
 *
 * Text layout (every byte ASCII, so the message is valid UTF-8, RFC 6455 §5.6):
 *   0–15  base64url of 12 bytes: sequence number (uint32 LE) and send time (float64 LE)
 *   16–   body: printable ASCII in a pattern shifted by the connection id
 */

export const HEADER_BYTES = 16;

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const ENCODE = Uint8Array.from(ALPHABET, (c) => c.charCodeAt(0));
const DECODE = new Int16Array(256).fill(-1);
for (let i = 0; i < ENCODE.length; i++) DECODE[ENCODE[i]] = i;

/** Holds the 12 raw bytes of a text header while it is encoded or decoded; one run is single-threaded. */
const scratch = Buffer.alloc(12);

/** Writes and reads the header of one connection's messages, and checks their bodies. */
export class BenchPayload {
  /** The message, reused for every send: only the first 16 bytes change. */
  readonly buffer: Buffer;

  constructor(
    readonly connectionId: number,
    readonly size: number,
    readonly binary: boolean,
  ) {
    if (!Number.isSafeInteger(size) || size < HEADER_BYTES) throw new RangeError(`size must be at least ${HEADER_BYTES} bytes, got ${size}`);
    this.buffer = Buffer.allocUnsafe(size);
    if (binary) {
      // xorshift32 (Marsaglia 2003); the seed must not be 0.
      let x = (connectionId + 1) * 0x9e3779b1 || 1;
      for (let i = HEADER_BYTES; i < size; i++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        this.buffer[i] = x & 0xff;
      }
    } else {
      for (let i = HEADER_BYTES; i < size; i++) this.buffer[i] = 0x21 + ((i * 7 + connectionId) % 94);
    }
    this.writeHeader(0, 0);
  }

  /** Stamps the header of `buffer` before a send. */
  writeHeader(seq: number, timeMs: number): void {
    const b = this.buffer;
    if (this.binary) {
      b.writeUInt32LE(seq >>> 0, 0);
      b.writeUInt32LE(this.connectionId >>> 0, 4);
      b.writeDoubleLE(timeMs, 8);
      return;
    }
    scratch.writeUInt32LE(seq >>> 0, 0);
    scratch.writeDoubleLE(timeMs, 4);
    for (let g = 0; g < 4; g++) {
      const n = (scratch[g * 3] << 16) | (scratch[g * 3 + 1] << 8) | scratch[g * 3 + 2];
      b[g * 4] = ENCODE[(n >>> 18) & 63];
      b[g * 4 + 1] = ENCODE[(n >>> 12) & 63];
      b[g * 4 + 2] = ENCODE[(n >>> 6) & 63];
      b[g * 4 + 3] = ENCODE[n & 63];
    }
  }

  /**
   * Checks an echo: its length, its type (text/binary), that the header is one of
   * ours and the body is intact. Returns the sequence number, or -1 when the
   * echo does not match; after a match, `echoTimeMs` holds its send time.
   */
  check(data: Buffer, isBinary: boolean): number {
    const size = this.size;
    if (data.length !== size || isBinary !== this.binary) return -1;
    // Buffer#compare is a memcmp in C++: every byte of every echo is checked.
    if (size > HEADER_BYTES && data.compare(this.buffer, HEADER_BYTES, size, HEADER_BYTES, size) !== 0) return -1;
    if (this.binary) {
      if (data.readUInt32LE(4) !== this.connectionId >>> 0) return -1;
      this.echoTimeMs = data.readDoubleLE(8);
      return data.readUInt32LE(0);
    }
    for (let g = 0; g < 4; g++) {
      const a = DECODE[data[g * 4]];
      const b = DECODE[data[g * 4 + 1]];
      const c = DECODE[data[g * 4 + 2]];
      const d = DECODE[data[g * 4 + 3]];
      if ((a | b | c | d) < 0) return -1;
      const n = (a << 18) | (b << 12) | (c << 6) | d;
      scratch[g * 3] = n >>> 16;
      scratch[g * 3 + 1] = (n >>> 8) & 0xff;
      scratch[g * 3 + 2] = n & 0xff;
    }
    this.echoTimeMs = scratch.readDoubleLE(4);
    return scratch.readUInt32LE(0);
  }

  /** Send time of the last echo `check` accepted. */
  echoTimeMs = 0;
}
