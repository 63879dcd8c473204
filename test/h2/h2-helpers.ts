/**
 * An HTTP/2 client for the gateway's TLS port (Node's http2), and the few
 * WebSocket frames a test needs to speak over an extended CONNECT stream
 * (RFC 8441): masked client frames out, server frames parsed back.
 */
import http2 from 'node:http2';
import { randomBytes } from 'node:crypto';
import tls from 'node:tls';

export interface H2Reply {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

/** Opens an HTTP/2 session to 127.0.0.1:port, verifying the certificate against `ca` for `servername`. */
export async function h2Connect(port: number, ca: string | string[], servername = 'localhost'): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(`https://${servername}:${port}`, {
    createConnection: () => tls.connect({ host: '127.0.0.1', port, servername, ca, ALPNProtocols: ['h2'] }),
  });
  await new Promise<void>((ok, fail) => {
    session.once('remoteSettings', () => ok());
    session.once('error', fail);
  });
  return session;
}

/** One request over the session; the body is collected whole. */
export function h2Request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer | string): Promise<H2Reply> {
  return new Promise((ok, fail) => {
    const stream = session.request(headers, { endStream: body === undefined });
    const chunks: Buffer[] = [];
    let head: http2.IncomingHttpHeaders = {};
    stream.on('response', (h) => (head = h));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const buf = Buffer.concat(chunks);
      ok({ status: Number(head[':status']), headers: head, body: buf, text: buf.toString() });
    });
    stream.on('error', fail);
    if (body !== undefined) stream.end(body);
  });
}

/** A masked client frame (RFC 6455 §5.2). */
export function clientFrame(opcode: number, payload: Buffer | string, fin = true): Buffer {
  const data = Buffer.from(payload);
  const mask = randomBytes(4);
  const len = data.length;
  const head = len < 126 ? Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | len]) : len < 65536 ? Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | 126, len >> 8, len & 0xff]) : null;
  if (!head) throw new RangeError('test frames stay below 64 KiB');
  const masked = Buffer.alloc(len);
  for (let i = 0; i < len; i++) masked[i] = data[i] ^ mask[i % 4];
  return Buffer.concat([head, mask, masked]);
}

export interface ServerFrame {
  opcode: number;
  payload: Buffer;
}

/** Reads the unmasked frames a server sends on a stream, as they complete. */
export class FrameReader {
  readonly frames: ServerFrame[] = [];
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  ended = false;

  constructor(stream: NodeJS.ReadableStream) {
    stream.on('data', (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      this.parse();
    });
    stream.on('end', () => {
      this.ended = true;
      this.wake();
    });
    stream.on('close', () => {
      this.ended = true;
      this.wake();
    });
  }

  /** The next frame, or null when the stream ended first. */
  async next(timeoutMs = 10_000): Promise<ServerFrame | null> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length === 0) {
      if (this.ended) return null;
      if (Date.now() > deadline) throw new Error('no frame in time');
      await new Promise<void>((ok) => {
        const t = setTimeout(ok, 100);
        this.waiters.push(() => {
          clearTimeout(t);
          ok();
        });
      });
    }
    return this.frames.shift()!;
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private parse(): void {
    for (;;) {
      if (this.buf.length < 2) return;
      let len = this.buf[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        len = Number(this.buf.readBigUInt64BE(2));
        off = 10;
      }
      if (this.buf.length < off + len) return;
      this.frames.push({ opcode: this.buf[0] & 0x0f, payload: this.buf.subarray(off, off + len) });
      this.buf = this.buf.subarray(off + len);
      this.wake();
    }
  }
}

/** The code and reason of a close frame's payload. */
export function closeOf(frame: ServerFrame | null): { code: number; reason: string } {
  if (!frame || frame.opcode !== 0x8) throw new Error(`expected a close frame, got ${frame ? `opcode ${frame.opcode}` : 'the end of the stream'}`);
  return { code: frame.payload.readUInt16BE(0), reason: frame.payload.subarray(2).toString() };
}

/** Opens a WebSocket over HTTP/2 (an extended CONNECT); resolves when the response head arrives. */
export function h2WebSocket(session: http2.ClientHttp2Session, path: string, headers: http2.OutgoingHttpHeaders = {}): Promise<{ stream: http2.ClientHttp2Stream; status: number; headers: http2.IncomingHttpHeaders; frames: FrameReader }> {
  return new Promise((ok, fail) => {
    const stream = session.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':path': path, ':scheme': 'https', 'sec-websocket-version': '13', ...headers }, { endStream: false });
    const frames = new FrameReader(stream);
    stream.once('response', (h) => ok({ stream, status: Number(h[':status']), headers: h, frames }));
    stream.once('error', fail);
  });
}
