/**
 * WebSockets over HTTP/2 (RFC 8441). An extended CONNECT with
 * `:protocol: websocket` is turned into the HTTP/1.1 handshake it stands
 * for — a GET with `Upgrade: websocket` and a fresh `Sec-WebSocket-Key`
 * (RFC 8441 §5: the key and the accept hash do not exist over HTTP/2) — and
 * handed to the gateway's own upgrade listener, so every check an HTTP/1.1
 * handshake gets (Host, Origin, `ws_paths`, app state, access control) and
 * every way on (a proxied tunnel, the built-in bridge) apply unchanged.
 *
 * The "socket" the upgrade machinery writes to is the HTTP/2 stream, behind
 * an adapter that reads the HTTP/1.1 response head written first and answers
 * the stream with its HTTP/2 equivalent: `101 Switching Protocols` becomes
 * `:status 200` with the chosen subprotocol and extensions (RFC 8441 §5),
 * any other status is sent as it is, with its body. After the head, bytes
 * pass through both ways untouched: WebSocket frames are the same over an
 * HTTP/2 stream as over TCP (RFC 8441 §5), so the tunnel's frame tracking,
 * idle close and drain close frames work as they do for HTTP/1.1.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import type net from 'node:net';
import { Duplex } from 'node:stream';

/** Response headers of a 101 that have no meaning on an HTTP/2 stream (RFC 8441 §5, RFC 9113 §8.2.2). */
const NOT_OVER_H2 = new Set(['connection', 'upgrade', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'http2-settings', 'sec-websocket-accept', 'content-length']);

/** The longest response head the adapter waits for (the gateway writes its own, or relays an app's). */
const MAX_HEAD = 64 * 1024;

/**
 * The HTTP/1.1 upgrade request an extended CONNECT stands for: `GET :path`,
 * `Host` from `:authority`, the client's headers, `Connection: Upgrade`,
 * `Upgrade: websocket` and a key of our own. Its version says 2.0: the
 * upgrade event's `protocol` reads it.
 */
export function upgradeRequestOf(req: http2.Http2ServerRequest): http.IncomingMessage {
  const out = new http.IncomingMessage(req.stream.session!.socket as net.Socket);
  const raw: string[] = [];
  const headers: http.IncomingHttpHeaders = {};
  const add = (name: string, value: string) => {
    raw.push(name, value);
    const prior = headers[name] as string | undefined;
    headers[name] = prior === undefined ? value : `${prior}, ${value}`;
  };
  let authority: string | undefined;
  const cookies: string[] = [];
  const given = req.rawHeaders;
  for (let i = 0; i < given.length; i += 2) {
    const name = given[i];
    if (name === ':authority') authority = given[i + 1];
    else if (name === 'host') authority ??= given[i + 1];
    else if (name.startsWith(':')) continue;
    // A key or an upgrade token of the client's own would be the wrong one: ours are added below.
    else if (name === 'sec-websocket-key' || name === 'connection' || name === 'upgrade') continue;
    else if (name === 'cookie') cookies.push(given[i + 1]);
    else add(name, given[i + 1]);
  }
  if (authority !== undefined) {
    raw.unshift('host', authority);
    headers.host = authority;
  }
  if (cookies.length > 0) add('cookie', cookies.join('; '));
  add('connection', 'Upgrade');
  add('upgrade', 'websocket');
  add('sec-websocket-key', randomBytes(16).toString('base64'));
  out.method = 'GET';
  out.url = req.url;
  out.httpVersionMajor = 2;
  out.httpVersionMinor = 0;
  out.httpVersion = '2.0';
  out.headers = headers;
  out.rawHeaders = raw;
  out.complete = true;
  out.push(null);
  return out;
}

/**
 * An HTTP/2 stream as the byte stream an HTTP/1.1 upgrade writes to (see the
 * file's comment). `remoteAddress`, `encrypted` and the like are the TLS
 * connection's; timeouts and Nagle are the connection's business, not a
 * stream's, so those calls do nothing.
 */
export class H2UpgradeSocket extends Duplex {
  private head: Buffer | null = Buffer.alloc(0);
  private readonly conn: net.Socket;

  constructor(private readonly stream: http2.ServerHttp2Stream) {
    super({ allowHalfOpen: true });
    this.conn = stream.session!.socket as net.Socket;
    stream.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) stream.pause();
    });
    stream.once('end', () => this.push(null));
    stream.once('error', (err) => this.destroy(err));
    stream.once('close', () => this.destroy());
  }

  get remoteAddress(): string | undefined {
    return this.conn.remoteAddress;
  }
  get remotePort(): number | undefined {
    return this.conn.remotePort;
  }
  get localAddress(): string | undefined {
    return this.conn.localAddress;
  }
  get localPort(): number | undefined {
    return this.conn.localPort;
  }
  get encrypted(): boolean {
    return true;
  }
  setTimeout(): this {
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }

  override _read(): void {
    this.stream.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    if (this.head === null) {
      this.stream.write(chunk, done);
      return;
    }
    const head = Buffer.concat([this.head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end === -1) {
      if (head.length > MAX_HEAD) return done(new Error('the upgrade answer has no end of head'));
      this.head = head;
      return done();
    }
    this.head = null;
    try {
      this.stream.respond(h2Headers(head.subarray(0, end).toString('latin1')), { endStream: false });
    } catch (err) {
      return done(err as Error);
    }
    const rest = head.subarray(end + 4);
    if (rest.length > 0) this.stream.write(rest, done);
    else done();
  }

  override _final(done: (err?: Error | null) => void): void {
    if (this.head !== null) {
      // Nothing was ever answered: the stream is reset rather than left open.
      this.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      return done();
    }
    this.stream.end(done);
  }

  override _destroy(err: Error | null, done: (err: Error | null) => void): void {
    if (!this.stream.destroyed) this.stream.close(err ? http2.constants.NGHTTP2_CANCEL : http2.constants.NGHTTP2_NO_ERROR);
    done(err);
  }
}

/** An HTTP/1.1 response head as HTTP/2 response headers (101 → 200, RFC 8441 §5). */
function h2Headers(head: string): http2.OutgoingHttpHeaders {
  const lines = head.split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0])?.[1] ?? 502);
  const out: http2.OutgoingHttpHeaders = { ':status': status === 101 ? 200 : status };
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (NOT_OVER_H2.has(name)) continue;
    const value = line.slice(colon + 1).trim();
    const prior = out[name];
    out[name] = prior === undefined ? value : Array.isArray(prior) ? [...prior, value] : [String(prior), value];
  }
  return out;
}
