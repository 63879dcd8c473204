/**
 * The upstream side of a WebSocket upgrade without Node's HTTP client.
 *
 * A ClientRequest, its parser and its socket bookkeeping were most of the
 * CPU an upgrade cost. Here the request head is written on a plain socket
 * and the answer's head is read by hand. A clean 101 — one status line, one
 * `name: value` per line, the upgrade headers once each, no body framing,
 * at most 16 KiB — goes straight to the tunnel. Anything else (a refusal, a
 * redirect, an odd or broken head, a hang-up) is replayed into Node's own
 * ClientRequest, so those cases are decided exactly as before: relayed
 * answers, parse errors, "socket hang up".
 */
import { EventEmitter } from 'node:events';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { UpstreamConnectTimeoutError, UpstreamTimeoutError } from '../errors.js';
import { hasToken } from './handshake.js';
import type { Target } from './router.js';
import { connectTo } from './upstream-request.js';

/** The largest answer head read by hand; a longer one goes to Node's parser. */
const MAX_HEAD = 16 * 1024;

/** The status line of a 101, up to its reason phrase. */
const STATUS = 'HTTP/1.1 101';

export interface UpgradeAnswer {
  statusCode: number;
  statusMessage: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
}

export interface UpgradeRequestOptions {
  target: Target;
  app: string;
  path: string;
  headers: string[];
  connectMs: number;
  responseMs: number;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values as Node's client accepts them: no control characters but tab.
const VALUE_OK = /^[\t\x20-\x7e\x80-\xff]*$/;
const PATH_OK = /^[\x21-\xff]+$/;

/**
 * Whether a request can be written by hand exactly as Node's client would
 * write it. Node throws on anything else; those requests keep its client.
 */
export function writableByHand(o: Pick<UpgradeRequestOptions, 'target' | 'path' | 'headers'>): boolean {
  if (o.target.kind === 'tls' || !PATH_OK.test(o.path)) return false;
  const h = o.headers;
  for (let i = 0; i < h.length; i += 2) if (!TOKEN.test(h[i]) || !VALUE_OK.test(h[i + 1])) return false;
  return true;
}

// The same classes by char code, for parse101's scan of a head in place (no slice per check):
// tchar (RFC 9110 §5.6.2)…
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1;

/** Whether `s[from, to)` is a token (TOKEN): at least one tchar, nothing else. */
export function isToken(s: string, from: number, to: number): boolean {
  if (from >= to) return false;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f || TCHAR[c] === 0) return false;
  }
  return true;
}

/** Whether `s[from, to)` is a field value as VALUE_OK takes it: tab, \x20-\x7e, \x80-\xff. */
export function isValue(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 ? c !== 0x09 : c === 0x7f || c > 0xff) return false;
  }
  return true;
}

/** A request head as written by hand (`extra`: header lines of our own, each ending in CRLF); check writableByHand() first. */
export function requestHeadText(method: string, path: string, headers: string[], extra = ''): string {
  let head = `${method} ${path} HTTP/1.1\r\n`;
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return `${head}${extra}\r\n`;
}

export function connectTimeoutError(o: UpgradeRequestOptions): UpstreamConnectTimeoutError {
  return new UpstreamConnectTimeoutError(`${o.app}: connecting to ${o.target.label} timed out after ${o.connectMs / 1000} s`, { app: o.app });
}

export function responseTimeoutError(o: UpgradeRequestOptions): UpstreamTimeoutError {
  return new UpstreamTimeoutError(`${o.app}: upstream ${o.target.label} sent no response in ${o.responseMs / 1000} s`, { app: o.app });
}

/**
 * One upgrade request to an upstream. Emits what ClientRequest would:
 * 'upgrade' (answer, socket, head) for a 101, 'response' (IncomingMessage)
 * for any other answer, 'error' when there is none. `destroy()` abandons it.
 */
export class UpgradeRequest extends EventEmitter {
  private readonly socket: Socket;
  private readonly o: UpgradeRequestOptions;
  /** One timer for both waits: connecting, then the response (see onConnect). */
  private timer: NodeJS.Timeout | null = null;
  /** When the connection opened (performance.now()), -1 until then: the response time counts from it. */
  private connectedAt = -1;
  private received: Buffer[] = [];
  private size = 0;
  private done = false;
  private fallback: http.ClientRequest | null = null;

  /** An upgrade request the front wrote (front.ts) on `socket`, whose answer so far (`bytes`) is not a clean 101: Node's client decides. */
  static replaying(o: UpgradeRequestOptions, socket: Socket, bytes: Buffer, ended: boolean): UpgradeRequest {
    const r = new UpgradeRequest(o, socket);
    if (bytes.length) {
      r.received = [bytes];
      r.size = bytes.length;
    }
    r.replay(ended);
    return r;
  }

  constructor(o: UpgradeRequestOptions, connected?: Socket) {
    super();
    this.o = o;
    if (connected) {
      // Connected and written already (replaying): the response has its whole time from now.
      this.socket = connected;
      this.connectedAt = performance.now();
      if (o.responseMs > 0) this.timer = setTimeout(this.timedOut, o.responseMs);
      return;
    }
    const socket = connectTo(o.target);
    this.socket = socket;
    // The head leaves in one segment at once; Nagle would hold it behind nothing.
    socket.setNoDelay(true);
    socket.write(requestHeadText('GET', o.path, o.headers), 'latin1');
    socket.on('connect', this.onConnect);
    socket.on('data', this.onData);
    socket.on('end', this.onEnded);
    socket.on('error', this.onError);
    socket.on('close', this.onEnded);
    // 0 means no limit, as for the other timeouts.
    if (o.connectMs > 0) this.timer = setTimeout(this.timedOut, o.connectMs);
  }

  /** Nothing to send after the head: the request has no body. Kept for ClientRequest's shape. */
  end(): void {}

  destroy(err?: Error): void {
    if (this.fallback) {
      this.fallback.destroy(err);
      return;
    }
    if (this.done) return;
    this.finish();
    this.socket.destroy();
    if (err) this.emit('error', err);
  }

  /** Done by hand: no timer, no listener of ours left on the socket. */
  private finish(): void {
    this.stopTimer();
    this.release();
  }

  /** Takes this object's listeners off the socket, for the tunnel or for Node's client to read it. */
  private release(): void {
    this.done = true;
    const s = this.socket;
    s.off('connect', this.onConnect);
    s.off('data', this.onData);
    s.off('end', this.onEnded);
    s.off('error', this.onError);
    s.off('close', this.onEnded);
  }

  private readonly onConnect = (): void => {
    const { connectMs, responseMs } = this.o;
    this.connectedAt = performance.now();
    // The connect timer, still armed, fires no later than the response would time out (the
    // usual case: 5 s and 60 s): it is kept, and then re-armed for the rest of the response
    // time. An answer comes long before, and the upgrade costs one timer instead of two.
    if (this.timer !== null && responseMs >= connectMs) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = responseMs > 0 ? setTimeout(this.timedOut, responseMs) : null;
  };

  private readonly timedOut = (): void => {
    const { o } = this;
    if (this.connectedAt < 0) {
      this.destroy(connectTimeoutError(o));
      return;
    }
    // The connect timer's turn came while connected: the response has the rest of its time.
    const left = this.connectedAt + o.responseMs - performance.now();
    if (left >= 1) {
      this.timer = setTimeout(this.timedOut, Math.ceil(left));
      return;
    }
    this.destroy(responseTimeoutError(o));
  };

  private readonly onData = (chunk: Buffer): void => {
    this.received.push(chunk);
    this.size += chunk.length;
    const all = this.received.length === 1 ? chunk : Buffer.concat(this.received, this.size);
    this.received = [all];
    // The end of the head may straddle chunks: search from a little before the new bytes.
    const end = all.indexOf('\r\n\r\n', Math.max(0, this.size - chunk.length - 3), 'latin1');
    if (end < 0) {
      // Bytes that can no longer become a clean 101 (not HTTP, bare LFs, a broken line) go to
      // Node's parser now, which refuses them at once: no waiting for a blank line that may never come.
      if (this.size > MAX_HEAD || !mayBe101(all.toString('latin1'))) this.replay(false);
      return;
    }
    const answer = end + 4 <= MAX_HEAD ? parse101(all.toString('latin1', 0, end)) : null;
    if (!answer) return this.replay(false);
    this.finish();
    const s = this.socket;
    // As Node leaves an upgraded socket: no reader, not flowing, so the tunnel's listeners start it.
    notFlowing(s);
    this.emit('upgrade', answer, s, all.subarray(end + 4));
  };

  // The answer ended ('end', or 'close') before its head did: Node's parser says how (a hang-up, a parse error).
  private readonly onEnded = (): void => this.replay(true);

  private readonly onError = (err: Error): void => {
    if (this.done) return;
    this.finish();
    this.socket.destroy();
    this.emit('error', err);
  };

  /** Hands what was received, and the rest of the connection, to Node's client. */
  private replay(ended: boolean): void {
    if (this.done) return;
    const bytes = this.received.length ? this.received[0] : null;
    // The timer keeps running: an answer still incomplete is still waited for.
    this.release();
    const source = new Replay(this.socket, bytes, ended);
    const o = this.o;
    const req = http.request({ method: 'GET', path: o.path, headers: o.headers as unknown as http.OutgoingHttpHeaders, setHost: false, createConnection: () => source as unknown as Socket });
    this.fallback = req;
    req.on('response', (res) => {
      this.stopTimer();
      this.emit('response', res);
    });
    req.on('upgrade', (res, _replay, head: Buffer) => {
      this.stopTimer();
      const [socket, rest] = source.detach(head);
      this.emit('upgrade', res, socket, rest);
    });
    req.on('error', (err) => {
      this.stopTimer();
      this.emit('error', err);
    });
    req.on('close', () => this.stopTimer());
    req.end();
  }

  private stopTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

/**
 * A clean 101 as the fast path takes it, or null for anything else. Strict on
 * purpose: whatever is not plainly a 101 goes to Node's parser, which decides.
 */
export function parse101(head: string): UpgradeAnswer | null {
  // Scanned in place, line by line (CRLF-separated; a bare CR or LF fails the checks below).
  // The status line: exactly `HTTP/1.1 101`, or that, a space and a reason phrase.
  if (!head.startsWith(STATUS)) return null;
  let eol = head.indexOf('\r\n');
  const statusEnd = eol < 0 ? head.length : eol;
  let statusMessage = '';
  if (statusEnd > STATUS.length) {
    if (head.charCodeAt(STATUS.length) !== 0x20 || !isValue(head, STATUS.length + 1, statusEnd)) return null;
    statusMessage = head.slice(STATUS.length + 1, statusEnd);
  }
  const headers: IncomingHttpHeaders = {};
  const rawHeaders: string[] = [];
  let connectionUpgrade = false;
  while (eol >= 0) {
    const from = eol + 2;
    eol = head.indexOf('\r\n', from);
    const to = eol < 0 ? head.length : eol;
    const colon = head.indexOf(':', from);
    if (colon <= from || colon >= to) return null;
    if (!isToken(head, from, colon)) return null;
    // Only spaces and tabs around a value are not part of it (String#trim would also take U+00A0).
    let start = colon + 1;
    let end = to;
    while (start < end && isOws(head.charCodeAt(start))) start++;
    while (end > start && isOws(head.charCodeAt(end - 1))) end--;
    if (!isValue(head, start, end)) return null;
    const name = head.slice(from, colon);
    const value = head.slice(start, end);
    const key = usualKey(name) ?? name.toLowerCase();
    if (key === 'content-length' || key === 'transfer-encoding') return null;
    const once = key === 'upgrade' || key === 'connection' || key.startsWith('sec-websocket-');
    const had = headers[key];
    if (had !== undefined) {
      if (once) return null;
      if (key === 'set-cookie') (had as string[]).push(value);
      else headers[key] = `${had as string}, ${value}`;
    } else headers[key] = key === 'set-cookie' ? [value] : value;
    if (key === 'connection') connectionUpgrade = hasToken(value, 'upgrade');
    rawHeaders.push(name, value);
  }
  if (!connectionUpgrade || headers.upgrade === undefined) return null;
  return { statusCode: 101, statusMessage, headers, rawHeaders };
}

/**
 * The lower-case literal for the usual spellings of a 101's own headers: a key the headers
 * object is read and written with at no cost, where a new lower-cased string would be
 * looked up (hashed) for each access. Any other name is lower-cased as it comes.
 */
function usualKey(name: string): string | undefined {
  switch (name) {
    case 'Upgrade':
    case 'upgrade':
      return 'upgrade';
    case 'Connection':
    case 'connection':
      return 'connection';
    case 'Sec-WebSocket-Accept':
    case 'sec-websocket-accept':
      return 'sec-websocket-accept';
  }
  return undefined;
}

export function isOws(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

const STATUS_START = /^HTTP\/1\.1 101(?: |$)/;
const BROKEN_LINE_END = /(?:^|[^\r])\n|\r[^\n]/;
const TRAILING_CR = /\r$/;

/**
 * Whether the start of an answer, its blank line not in yet, can still become
 * a clean 101 as parse101 takes it. False hands the answer to Node's parser
 * early, which is always safe; true keeps waiting for the rest of the head.
 */
function mayBe101(start: string): boolean {
  if (!STATUS.startsWith(start.slice(0, STATUS.length))) return false;
  // Lines end with CRLF only: a bare LF, or a CR before anything but LF, is not a clean head.
  if (BROKEN_LINE_END.test(start)) return false;
  const lines = start.split('\r\n');
  // The last line may be partial (and end with the CR of its CRLF).
  const last = lines.length - 1;
  lines[last] = lines[last].replace(TRAILING_CR, '');
  if (!isValue(lines[0], 0, lines[0].length) || (last > 0 && !STATUS_START.test(lines[0]))) return false;
  for (let i = 1; i <= last; i++) {
    const line = lines[i];
    const colon = line.indexOf(':');
    if (colon < 0) {
      // A partial line may still be writing its name; a complete one needs its colon.
      if (i < last || (line !== '' && !isToken(line, 0, line.length))) return false;
    } else if (!isToken(line, 0, colon) || !isValue(line, colon + 1, line.length)) return false;
  }
  return true;
}

/**
 * The upstream connection as Node's client sees it on replay: first the bytes
 * already received, then whatever the socket still brings. Writes are dropped
 * (the request head was sent already). After an upgrade, `detach` gives the
 * real socket back with every byte not yet parsed.
 */
class Replay extends Duplex {
  private detached = false;
  constructor(
    private readonly socket: Socket,
    first: Buffer | null,
    ended: boolean,
  ) {
    super();
    if (first) this.push(first);
    if (ended || socket.readableEnded) {
      this.push(null);
      return;
    }
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', this.onError);
  }

  private readonly onData = (chunk: Buffer): void => {
    if (!this.push(chunk)) this.socket.pause();
  };
  private readonly onEnd = (): void => void this.push(null);
  private readonly onError = (err: Error): void => void this.destroy(err);

  override _read(): void {
    if (!this.detached) this.socket.resume();
  }
  override _write(_chunk: unknown, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    cb();
  }
  override _final(cb: (err?: Error | null) => void): void {
    cb();
  }
  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    if (!this.detached) this.socket.destroy();
    cb(err);
  }

  // What Node's client calls on its socket.
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
  setTimeout(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }

  detach(head: Buffer): [Socket, Buffer] {
    this.detached = true;
    const s = this.socket;
    s.off('data', this.onData);
    s.off('end', this.onEnd);
    s.off('error', this.onError);
    const parts = head.length ? [head] : [];
    for (let chunk: Buffer | null; (chunk = this.read() as Buffer | null) !== null; ) parts.push(chunk);
    s.pause();
    notFlowing(s);
    return [s, parts.length === 1 ? parts[0] : Buffer.concat(parts)];
  }
}

/** Leaves a socket neither flowing nor paused, as Node leaves an upgraded one: the next 'data' listener starts it. */
function notFlowing(s: Socket): void {
  (s as { readableFlowing: boolean | null }).readableFlowing = null;
}
