/**
 * Keep-alive connection pools for the gateway's most frequent exchange: a
 * GET, HEAD or OPTIONS without a body to a plain-HTTP or unix-socket upstream.
 * A pooled connection is a bare socket read by Node's own HTTP parser (the
 * llhttp binding http.request uses, so both paths read a response alike):
 * the request head is one write, the response's head and body go straight
 * to the exchange (http-forward.ts). Measured side by side in a bare proxy,
 * that costs about 25 µs of CPU per request, against 33 µs for undici's
 * dispatcher and 54 µs for http.request with a keep-alive agent.
 *
 * Requests with a body, upgrades and TLS targets keep http.request
 * (upstream-request.ts).
 *
 * One pool per target and connect timeout, held on the target's http.Agent:
 * a route snapshot that stops using the agent forgets its pools with it. As
 * the agent: up to 256 connections per pool (further requests wait their
 * turn), idle ones closed after 4 s, before the usual 5 s keep-alive timeout
 * of servers, so a request rarely picks a connection being closed.
 */
import type http from 'node:http';
import { createRequire } from 'node:module';
import type net from 'node:net';
import type { Target } from './router.js';
import { connectTo } from './upstream-request.js';

/** Node's HTTP parser binding, as `_http_common` exports it (the parser of http.request and of Node's server). */
interface Parser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | Error;
  finish(): undefined | Error;
  close(): void;
  [kConn]?: Conn;
  [slot: number]: unknown;
}
interface ParserClass {
  new (): Parser;
  RESPONSE: number;
  kOnMessageBegin: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
}
const { HTTPParser } = createRequire(import.meta.url)('_http_common') as { HTTPParser: ParserClass };

const MAX_CONNECTIONS = 256;
const IDLE_MS = 4_000;

/** What a pooled request is told; its `conn` is set while a connection carries it. */
export interface Exchange {
  conn: Conn | null;
  /** The request head is written (on `conn`); `reused`: the connection carried a request before. */
  sent(reused: boolean): void;
  /**
   * The final response head (interim 1xx answers are not passed on). Returns true when no body
   * follows, whatever the head says (the answer to a HEAD).
   */
  head(status: number, reason: string, headers: string[], upgrade: boolean): boolean;
  /** A piece of the body; false: the exchange cannot take more now (the connection pauses until `conn.resume()`). */
  data(chunk: Buffer): boolean;
  /** The response is whole. */
  complete(): void;
  /** The exchange failed: `err.code` says how (pooledErrorKind()); `answered`: its head had come. */
  failed(err: Error, answered: boolean): void;
}

/** The upstream closed the connection before the response was whole. */
export const CLOSED = 'PH_UPSTREAM_CLOSED';
/** No connection within the connect timeout. */
export const CONNECT_TIMEOUT = 'PH_UPSTREAM_CONNECT_TIMEOUT';
/** The pool was closed (the gateway is closing): not the upstream's doing, and never retried. */
export const POOL_CLOSED = 'PH_UPSTREAM_POOL_CLOSED';

function poolClosedError(): Error {
  return Object.assign(new Error('the gateway closed its connections to the upstream'), { code: POOL_CLOSED });
}

function closedError(answered: boolean): Error {
  return Object.assign(new Error(answered ? 'the upstream closed the connection in the middle of the body' : 'the upstream closed the connection before answering'), { code: CLOSED });
}

const kConn = Symbol('porthole.conn');

/** One keep-alive connection to the upstream. */
export class Conn {
  readonly socket: net.Socket;
  readonly parser: Parser;
  ex: Exchange | null = null;
  /** Requests written on this connection. */
  uses = 0;
  /** The current request's head is written (a connection still connecting holds it back). */
  written = false;
  answered = false;
  /** An interim 1xx answer is being read: its end is not the response's. */
  interim = false;
  keepAlive = false;
  dead = false;
  /** When it became idle (performance.now()); 0 while it carries a request or connects. */
  idleSince = 0;
  /** Headers the parser passed on before the head was complete (more than 32 of them). */
  partial: string[] | null = null;
  connectTimer: NodeJS.Timeout | null = null;
  head = '';

  constructor(readonly pool: H1Pool) {
    const t = pool.target;
    // With TCP_NODELAY (connectTo asks for it).
    const socket = (this.socket = connectTo(t));
    const parser = (this.parser = new HTTPParser());
    // No header size of our own (Node's default, 16 KiB, as http.request), and no leniency.
    parser.initialize(HTTPParser.RESPONSE, {}, 0, 0);
    parser[kConn] = this;
    parser[HTTPParser.kOnMessageBegin] = onMessageBegin;
    parser[HTTPParser.kOnHeaders] = onHeaders;
    parser[HTTPParser.kOnHeadersComplete] = onHeadersComplete;
    parser[HTTPParser.kOnBody] = onBody;
    parser[HTTPParser.kOnMessageComplete] = onMessageComplete;
    (socket as ConnSocket)[kConn] = this;
    socket.on('connect', onConnected);
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.on('close', onClose);
    if (pool.connectMs > 0) this.connectTimer = setTimeout(connectTimedOut, pool.connectMs, this);
  }

  /** Writes `head` for `ex` (once connected). */
  take(ex: Exchange, head: string): void {
    if (this.idleSince !== 0) {
      this.idleSince = 0;
      this.socket.ref();
    }
    this.ex = ex;
    ex.conn = this;
    this.head = head;
    this.answered = false;
    if (!this.socket.connecting) this.write();
  }

  write(): void {
    const ex = this.ex!;
    this.written = true;
    const reused = this.uses++ > 0;
    this.socket.write(this.head, 'latin1');
    this.head = '';
    ex.sent(reused);
  }

  /** After a pause for a slow client. */
  resume(): void {
    if (!this.dead) this.socket.resume();
  }

  /**
   * The exchange gives up (its client left, its response timer fired): a connection that wrote
   * its request is closed (an answer is on its way); one still connecting is kept for the next.
   */
  cancel(): void {
    const ex = this.ex;
    if (ex === null) return;
    this.ex = null;
    ex.conn = null;
    if (this.written) this.destroy();
  }

  fail(err: Error): void {
    const ex = this.ex;
    this.destroy();
    if (ex === null) return;
    this.ex = null;
    ex.conn = null;
    ex.failed(err, this.answered);
  }

  destroy(): void {
    if (this.dead) return;
    this.dead = true;
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    this.pool.removed(this);
    this.socket.destroy();
  }
}

type ConnSocket = net.Socket & { [kConn]: Conn };

function onConnected(this: ConnSocket): void {
  const c = this[kConn];
  if (c.connectTimer !== null) clearTimeout(c.connectTimer);
  c.connectTimer = null;
  if (c.ex !== null) c.write();
  // Its request left while it connected: the next one takes it.
  else c.pool.release(c);
}

function connectTimedOut(c: Conn): void {
  c.connectTimer = null;
  c.fail(Object.assign(new Error(`no connection in ${c.pool.connectMs / 1000} s`), { code: CONNECT_TIMEOUT }));
}

function onData(this: ConnSocket, data: Buffer): void {
  const c = this[kConn];
  const ret = c.parser.execute(data);
  if (ret instanceof Error && !c.dead) c.fail(ret);
}

function onEnd(this: ConnSocket): void {
  const c = this[kConn];
  // Closed before the head was whole: no answer came, as Node's client says it ("socket hang
  // up", a reset, retried on a reused connection), whatever the parser makes of a head cut short.
  if (!c.dead && c.ex !== null && c.written && !c.answered) return c.fail(closedError(false));
  // A body that ends with the connection is whole now; any other response is not.
  const ret = c.parser.finish();
  if (c.dead) return;
  if (ret instanceof Error) return c.fail(ret);
  if (c.ex !== null && c.written) return c.fail(closedError(c.answered));
  c.destroy();
}

function onError(this: ConnSocket, err: Error): void {
  this[kConn].fail(err);
}

function onClose(this: ConnSocket): void {
  const c = this[kConn];
  c.parser.close();
  // Its request, if any (one still connecting included: a refused unix socket's end), fails.
  c.fail(closedError(c.answered));
}

function onMessageBegin(this: Parser): void {
  const c = this[kConn]!;
  // The first byte of an answer no request waits for (past the last answer, or on an idle
  // connection): the connection is closed at once. Read on, an answer cut at the end of this read
  // would be parsed on with the next request's answer appended to it.
  if (!c.dead && (c.ex === null || !c.written)) c.destroy();
}

function onHeaders(this: Parser, headers: string[]): void {
  const c = this[kConn]!;
  c.partial = c.partial === null ? headers : c.partial.concat(headers);
}

function onHeadersComplete(this: Parser, _major: number, _minor: number, headers: string[] | undefined, _method: unknown, _url: unknown, status: number, reason: string, upgrade: boolean, keepAlive: boolean): number {
  const c = this[kConn]!;
  // Headers passed on earlier (more than 32): then all of them were, and none come here.
  if (c.partial !== null) {
    headers = headers === undefined ? c.partial : c.partial.concat(headers);
    c.partial = null;
  }
  if (c.dead) return 1;
  const ex = c.ex;
  // An answer to no request (bytes after a response, or on an idle connection): the connection
  // is not HTTP we can trust any more.
  if (ex === null || !c.written) {
    c.destroy();
    return 1;
  }
  // 1xx but 101: interim (100 Continue, 103 Early Hints), not relayed; the final answer follows.
  if (status >= 100 && status < 200 && status !== 101) {
    c.interim = true;
    return 1;
  }
  c.answered = true;
  c.keepAlive = keepAlive;
  return ex.head(status, reason ?? '', headers ?? [], upgrade || status === 101) ? 1 : 0;
}

function onBody(this: Parser, chunk: Buffer): void {
  const c = this[kConn]!;
  if (c.dead || c.ex === null) return;
  if (!c.ex.data(chunk) && !c.dead) c.socket.pause();
}

function onMessageComplete(this: Parser): void {
  const c = this[kConn]!;
  // Trailers of a chunked body come through onHeaders too: they are not relayed (nor are they on
  // the http.request path), and must not be taken for the next answer's first headers.
  c.partial = null;
  if (c.interim) {
    c.interim = false;
    return;
  }
  const ex = c.ex;
  if (c.dead || ex === null) return;
  c.ex = null;
  ex.conn = null;
  c.written = false;
  if (c.keepAlive) c.pool.release(c);
  else c.destroy();
  ex.complete();
}

/** Requests waiting for a connection (all 256 busy), first come first served. */
interface Waiting {
  ex: Exchange;
  head: string;
}

export class H1Pool {
  readonly #all = new Set<Conn>();
  /** Idle connections, the most recently used last (taken first: its peer is least likely to have closed it). */
  readonly #idle: Conn[] = [];
  readonly #queue: Waiting[] = [];
  #sweeper: NodeJS.Timeout | null = null;
  #handing: NodeJS.Immediate | null = null;
  #closed = false;

  constructor(
    readonly target: Target,
    readonly connectMs: number,
  ) {}

  /** Sends `head` (the whole request head) for `ex` on an idle connection, a new one, or once one is free. */
  request(ex: Exchange, head: string): void {
    if (this.#closed) return ex.failed(poolClosedError(), false);
    // Requests already waiting go first: a connection freed for them (handed on at the next
    // turn of the loop) is not taken by one that comes meanwhile.
    if (this.#queue.length > 0) return void this.#queue.push({ ex, head });
    const idle = this.#idle.pop();
    if (idle !== undefined) return idle.take(ex, head);
    if (this.#all.size < MAX_CONNECTIONS) return this.#open().take(ex, head);
    this.#queue.push({ ex, head });
  }

  /** A request that waits for a connection is given up. */
  withdraw(ex: Exchange): void {
    const at = this.#queue.findIndex((w) => w.ex === ex);
    if (at >= 0) this.#queue.splice(at, 1);
  }

  #open(): Conn {
    const c = new Conn(this);
    this.#all.add(c);
    return c;
  }

  /** A connection is free: the next waiting request takes it, or it waits idle. */
  release(c: Conn): void {
    if (c.dead) return;
    // Paused for a slow client as its last piece of body came: a connection free for the next
    // request reads again (its answer, or the upstream's close, or bytes past the last answer).
    if (c.socket.isPaused()) c.socket.resume();
    c.idleSince = performance.now();
    // An idle connection does not keep the process alive (nor does the agent's).
    c.socket.unref();
    this.#idle.push(c);
    this.#sweeper ??= setInterval(sweep, 1_000, this).unref();
    // Handed on from the next turn of the loop: bytes the upstream sent past its response (read
    // with it) close the connection first, rather than being read as the next request's answer.
    if (this.#queue.length > 0) this.#handing ??= setImmediate(handOn, this);
  }

  /** Waiting requests, first come first served, take the idle connections, then new ones up to the cap. */
  handOn(): void {
    this.#handing = null;
    if (this.#closed) return;
    while (this.#queue.length > 0 && (this.#idle.length > 0 || this.#all.size < MAX_CONNECTIONS)) {
      const w = this.#queue.shift()!;
      (this.#idle.pop() ?? this.#open()).take(w.ex, w.head);
    }
  }

  removed(c: Conn): void {
    this.#all.delete(c);
    const at = this.#idle.indexOf(c);
    if (at >= 0) this.#idle.splice(at, 1);
    // A place is free: the next waiting request connects.
    if (!this.#closed && this.#queue.length > 0) this.#handing ??= setImmediate(handOn, this);
  }

  /** Closes the connections idle for 4 s. */
  sweep(): void {
    const now = performance.now();
    while (this.#idle.length > 0 && now - this.#idle[0].idleSince >= IDLE_MS) this.#idle[0].destroy();
    if (this.#idle.length === 0 && this.#sweeper !== null) {
      clearInterval(this.#sweeper);
      this.#sweeper = null;
    }
  }

  /** Open connections (tests). */
  get size(): number {
    return this.#all.size;
  }

  /** Every connection closed, waiting requests failed; later requests fail at once. */
  destroy(): void {
    this.#closed = true;
    if (this.#sweeper !== null) clearInterval(this.#sweeper);
    if (this.#handing !== null) clearImmediate(this.#handing);
    // Failed as closed by the gateway, not by the upstream: a request on a reused connection
    // would otherwise be retried, on a new pool of the agent that nothing closes any more.
    for (const w of this.#queue.splice(0)) w.ex.failed(poolClosedError(), false);
    for (const c of [...this.#all]) c.fail(poolClosedError());
  }
}

function sweep(pool: H1Pool): void {
  pool.sweep();
}

function handOn(pool: H1Pool): void {
  pool.handOn();
}

const kPools = Symbol('porthole.h1Pools');
type PooledAgent = http.Agent & { [kPools]?: Map<number, H1Pool> };

/** Whether a target is reached through a pool here: plain TCP and unix sockets. */
export function poolable(t: Target): boolean {
  return t.kind === 'unix' || (t.kind === 'tcp' && t.port !== 0);
}

/** The pool for a target and connect timeout (0: no limit), created on first use. */
export function poolFor(t: Target, connectMs: number): H1Pool {
  const agent = t.agent as PooledAgent;
  let pools = agent[kPools];
  if (pools === undefined) pools = agent[kPools] = new Map();
  let pool = pools.get(connectMs);
  if (pool === undefined) pools.set(connectMs, (pool = new H1Pool(t, connectMs)));
  return pool;
}

/** How many pools an agent holds (tests). */
export function poolsOf(agent: http.Agent): number {
  return (agent as PooledAgent)[kPools]?.size ?? 0;
}

/** Closes an agent's pools and their connections (the gateway is closing, or a reload dropped the agent). */
export function destroyPools(agent: http.Agent): void {
  const pools = (agent as PooledAgent)[kPools];
  if (pools === undefined) return;
  (agent as PooledAgent)[kPools] = undefined;
  for (const pool of pools.values()) pool.destroy();
}
