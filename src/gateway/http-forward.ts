/**
 * Plain HTTP through the gateway: bodies stream both ways with backpressure
 * (Server-Sent Events, long downloads and uploads), nothing is buffered
 * whole, upstream connections are reused, and a failure before the response
 * head becomes a 502/503/504 page (or JSON) that says what went wrong.
 */
import { STATUS_CODES, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { relay } from './relay-body.js';
import { AppWakingError, ConfigError, PortholeError, RequestAbortedError, UpstreamBadResponseError, UpstreamConnectTimeoutError, UpstreamResetError, UpstreamTimeoutError, upstreamError } from '../errors.js';
import { emit } from '../events.js';
import type { GatewayCore } from './core.js';
import { sendHttpError } from './error-response.js';
import { downstreamResponseHeaders, duplicateHost, requestFraming, unsupportedVersion, upstreamRequestHeaders, type Framing } from './headers.js';
import type { Match, Target } from './router.js';
import { onResponseDone } from './response-done.js';
import { upstreamRequest } from './upstream-request.js';
import { requestHeadText, writableByHand } from './upstream-upgrade.js';
import { CLOSED, CONNECT_TIMEOUT, POOL_CLOSED, poolable, poolFor, type Conn, type Exchange, type H1Pool } from './upstream-pool.js';
import { sendWakingPage } from './waking-page.js';
import { peerRefusal, trustsForwarded } from './peer.js';

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS']);

export function forwardHttp(gw: GatewayCore, req: IncomingMessage, res: ServerResponse, match: Match): void {
  const started = performance.now();
  const app = match.route.app.name;
  let code: string | undefined;
  let aborted = false;
  // In flight until the response is over: idle_stop never stops an app under a long download or event stream.
  const use = gw.activity.begin(app);
  onResponseDone(res, () => {
    gw.activity.end(use);
    // Over without a head sent (its body broke off, or its client left first): nothing reached
    // the client, logged as the client's failure, not as the 200 a fresh response starts with.
    if (!res.headersSent) code = 'PH_ERR_REQUEST_ABORTED';
    const status = res.headersSent ? res.statusCode : new RequestAbortedError('').status;
    emit('request', { gateway: gw.id, app, method: req.method ?? 'GET', path: req.url ?? '/', status, ms: Math.round((performance.now() - started) * 10) / 10, code });
  });
  const fail = (err: PortholeError, extraHeaders?: Record<string, string>) => {
    if (aborted) return;
    code = err.code;
    sendHttpError(res, err, req.headers.accept, match.route.errorPage ?? gw.errorPage, extraHeaders);
  };
  // The body broke off or was malformed (Node's parser gave up on it after routing the head).
  const onAborted = () => {
    if (aborted || res.headersSent) return;
    aborted = true;
    code = 'PH_ERR_REQUEST_ABORTED';
  };
  req.once('aborted', onAborted);
  req.once('error', onAborted);

  // Checked before anything reaches the upstream: what two parsers could read differently is
  // refused, and the connection closed (the unread body must not be parsed as a next request).
  const refused = unsupportedVersion(req) ?? duplicateHost(req) ?? requestFraming(req);
  if (refused instanceof PortholeError) {
    res.shouldKeepAlive = false;
    return fail(refused, { Connection: 'close' });
  }
  const framing = refused;
  const gate = gw.appGate(app, req);
  if (gate === null) return send(gw, req, res, match, framing, fail, true);
  gate.then(
    (err) => {
      if (err instanceof AppWakingError) {
        // A browser's GET for a waking app: the page that reloads itself until the app answers.
        if (aborted) return;
        code = err.code;
        return sendWakingPage(res, err);
      }
      if (err) return fail(err);
      if (!res.destroyed) send(gw, req, res, gw.rematch(req, match, false), framing, fail, true);
    },
    (err) => fail(upstreamError(err, app, match.target.label)),
  );
}

function send(gw: GatewayCore, req: IncomingMessage, res: ServerResponse, match: Match, framing: Framing, fail: (err: PortholeError) => void, mayRetry: boolean): void {
  const method = req.method ?? 'GET';
  const headers = upstreamRequestHeaders(req, { match, proto: gw.proto(req), trustForwarded: trustsForwarded(gw, req), upgrade: false, framing });
  if (framing.kind === 'none' && (method === 'GET' || method === 'HEAD' || method === 'OPTIONS') && poolable(match.target)) {
    sendPooled(gw, req, res, match, framing, fail, mayRetry, headers);
  } else {
    sendWithRequest(gw, req, res, match, framing, fail, mayRetry, headers);
  }
}

function sendPooled(gw: GatewayCore, req: IncomingMessage, res: ServerResponse, match: Match, framing: Framing, fail: (err: PortholeError) => void, mayRetry: boolean, headers: string[]): void {
  // A path or header Node's client would refuse to write: refused there, as it was before.
  if (!writableByHand({ target: match.target, path: match.path, headers })) return sendWithRequest(gw, req, res, match, framing, fail, mayRetry, headers);
  const pool = poolFor(match.target, match.route.connectMs);
  // As http.request with a keep-alive agent: an HTTP/1.0 upstream keeps the connection only when asked.
  const head = requestHeadText(req.method ?? 'GET', match.path, headers, 'Connection: keep-alive\r\n');
  pool.request(new PooledExchange(gw, req, res, match, framing, fail, mayRetry, headers, pool), head);
}

/**
 * One request through a pooled connection (upstream-pool.ts): the body is written to the
 * client as it comes and the connection paused while the client is slow. The same behaviour
 * as the http.request path: the response timer from the moment the request is written, a 101
 * or an unrelayable head answered 502, a peer's refusal, one retry of a reset on a reused
 * connection, the upstream request cancelled when the client leaves.
 */
class PooledExchange implements Exchange {
  conn: Conn | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** The client's response has been ended: all of it was relayed. */
  private ended = false;
  private gone = false;
  private reused = false;
  private readonly keepClientGone: () => void;
  private onDrain: (() => void) | null = null;
  /** `onDrain` waits for the client's 'drain'. */
  private waitingDrain = false;

  constructor(
    private readonly gw: GatewayCore,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly match: Match,
    private readonly framing: Framing,
    private readonly fail: (err: PortholeError) => void,
    private readonly mayRetry: boolean,
    private readonly headers: string[],
    private readonly pool: H1Pool,
  ) {
    this.keepClientGone = onResponseDone(res, () => this.clientGone());
  }

  private clientGone(): void {
    if (this.res.writableFinished) return;
    this.gone = true;
    this.clearTimer();
    // Still waiting for a connection: it no longer needs one.
    if (this.conn === null) this.pool.withdraw(this);
    else this.conn.cancel();
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  sent(reused: boolean): void {
    this.reused = reused;
    const ms = this.match.route.responseMs;
    // 0 means no limit, as for the other timeouts.
    if (ms > 0) this.timer = setTimeout(pooledResponseTimedOut, ms, this);
  }

  /** Called by the response timer. */
  timedOut(): void {
    this.timer = null;
    const { route, target } = this.match;
    this.abort(new UpstreamTimeoutError(`${route.app.name}: upstream ${target.label} sent no response in ${route.responseMs / 1000} s`, { app: route.app.name }));
  }

  /** Gives up before the answer's head was relayed: the connection closed, the client answered `err`. */
  private abort(err: PortholeError): void {
    this.clearTimer();
    this.conn?.cancel();
    this.keepClientGone();
    if (!this.gone && !this.res.destroyed) this.fail(err);
  }

  head(status: number, reason: string, headers: string[], upgrade: boolean): boolean {
    this.clearTimer();
    const { match, res } = this;
    const { route, target } = match;
    const app = route.app.name;
    if (upgrade) {
      // A 101 relayed to a client that asked for no upgrade would hang it.
      this.abort(upgradeNotAsked(app, target));
      return true;
    }
    let sized = false;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i];
      if (name.length === 14 && name.toLowerCase() === 'content-length') sized = true;
    }
    if (route.peer) {
      const refused = peerRefusal(app, target, status, headerObject(headers));
      if (refused) {
        this.abort(refused);
        return true;
      }
    }
    try {
      res.writeHead(status, reason === '' ? STATUS_CODES[status] || 'Unknown' : reason, downstreamResponseHeaders(headers, match) as unknown as Record<string, string>);
    } catch (err) {
      // An answer the parser took but Node will not repeat (a status above 999, a header value
      // it refuses): the upstream's fault, answered as one — never a crash of the gateway.
      for (const name of res.getHeaderNames()) res.removeHeader(name);
      this.abort(new UpstreamBadResponseError(`${app}: upstream ${target.label} sent a response that cannot be relayed (${(err as Error).message})`, { app, cause: err }));
      return true;
    }
    if (status === 204 || status === 304 || this.req.method === 'HEAD') {
      // No body, whatever a Content-Length says (a 304 may carry the length of what it stands
      // for, RFC 9110 §8.6; a HEAD's answer, the length of the GET's): the response is whole now.
      this.ended = true;
      res.end();
      return true;
    }
    // A streamed answer (event stream, chunked) sends its head at once, so the client sees it
    // before the first event; a sized one leaves with its body, in one packet.
    if (!sized) res.flushHeaders();
    return false;
  }

  data(chunk: Buffer): boolean {
    const res = this.res;
    if (res.write(chunk) || res.destroyed) return true;
    // The client reads slower than the upstream sends: the upstream connection is paused. The
    // parser hands on the rest of what it read meanwhile (every chunk of a chunked body): one
    // 'drain' listener for them all.
    if (this.waitingDrain) return false;
    this.waitingDrain = true;
    this.onDrain ??= () => {
      this.waitingDrain = false;
      this.conn?.resume();
    };
    res.once('drain', this.onDrain);
    return false;
  }

  complete(): void {
    if (this.ended) return;
    this.ended = true;
    if (!this.res.destroyed) this.res.end();
  }

  failed(err: Error, answered: boolean): void {
    this.clearTimer();
    const { match, res } = this;
    const { route, target } = match;
    const app = route.app.name;
    if (answered) {
      // Cut mid-body: the client's connection is cut too (it must not take half a body for a whole one).
      if (!this.gone && !this.ended && !res.writableFinished) this.fail(new UpstreamResetError(`${app}: upstream ${target.label} broke off the response body`, { app, cause: err }));
      return;
    }
    this.keepClientGone();
    // Our own abort (the client left): nothing to answer.
    if (this.gone || res.destroyed) return;
    // A kept-alive connection the upstream closed just as we reused it: one retry (what
    // browsers and Node's client do too).
    const code = (err as NodeJS.ErrnoException).code;
    const closed = code === 'ECONNRESET' || code === 'EPIPE' || code === CLOSED;
    if (this.mayRetry && this.reused && closed) return sendPooled(this.gw, this.req, res, match, this.framing, this.fail, false, this.headers);
    this.fail(pooledError(err, app, target, route.connectMs));
  }
}

/** A 101 to a plain request: not HTTP the gateway can relay (a client that asked for no upgrade would hang). */
function upgradeNotAsked(app: string, target: Target): UpstreamBadResponseError {
  return new UpstreamBadResponseError(`${app}: upstream ${target.label} answered 101 Switching Protocols to a request that asked for no upgrade`, { app });
}

function pooledResponseTimedOut(exchange: PooledExchange): void {
  exchange.timedOut();
}

/** A pooled connection's failures as the gateway's errors, with the messages of the http.request path. */
function pooledError(err: Error, app: string, target: Target, connectMs: number): PortholeError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === CONNECT_TIMEOUT) return new UpstreamConnectTimeoutError(`${app}: connecting to ${target.label} timed out after ${connectMs / 1000} s`, { app, cause: err });
  if (code === CLOSED) return new UpstreamResetError(`${app}: upstream ${target.label} closed the connection before answering`, { app, cause: err });
  if (code === POOL_CLOSED) return new UpstreamResetError(`${app}: the gateway closed its connection to ${target.label} (it is closing)`, { app, cause: err });
  return upstreamError(err, app, target.label);
}

/** A header list as Node's `headers` object (names lower-cased, repeats joined), for peerRefusal(). */
function headerObject(list: string[]): IncomingHttpHeaders {
  const out: Record<string, string> = {};
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i].toLowerCase();
    out[name] = out[name] === undefined ? list[i + 1] : `${out[name]}, ${list[i + 1]}`;
  }
  return out;
}

/** Through Node's http.request and the target's keep-alive agent: every request the pools do not take (upstream-pool.ts). */
function sendWithRequest(gw: GatewayCore, req: IncomingMessage, res: ServerResponse, match: Match, framing: Framing, fail: (err: PortholeError) => void, mayRetry: boolean, headers: string[]): void {
  const { route, target } = match;
  const app = route.app.name;
  const method = req.method ?? 'GET';
  let upReq: ReturnType<typeof upstreamRequest>;
  try {
    upReq = upstreamRequest({ target, app, method, path: match.path, headers, connectMs: route.connectMs, responseMs: route.responseMs, pooled: true });
  } catch (err) {
    // A head Node's client refuses to write (it throws ERR_INVALID_CHAR): a `set_headers` value
    // with a character above U+00FF or a control character. The app's configuration is at
    // fault, answered as such on every request to it — never a crash of the gateway.
    return fail(new ConfigError([`apps.${app}: the request to ${target.label} cannot be written (${(err as Error).message})`]));
  }
  let answered = false;

  let clientGone = false;
  const onClientGone = () => {
    if (res.writableFinished) return;
    clientGone = true;
    upReq.destroy();
  };
  const keepClientGone = onResponseDone(res, onClientGone);

  upReq.on('response', (upRes) => {
    const status = upRes.statusCode ?? 502;
    if (status === 101) {
      // A 101 without Connection: Upgrade arrives here rather than as an upgrade: the same
      // fault as below, and a 101 relayed to a client that asked for none would hang it.
      upRes.destroy();
      keepClientGone();
      fail(upgradeNotAsked(app, target));
      return;
    }
    const refusedByPeer = route.peer && peerRefusal(app, target, status, upRes.headers);
    if (refusedByPeer) {
      upRes.destroy();
      keepClientGone();
      return fail(refusedByPeer);
    }
    try {
      res.writeHead(status, upRes.statusMessage || STATUS_CODES[status] || 'Unknown', downstreamResponseHeaders(upRes.rawHeaders, match) as unknown as Record<string, string>);
    } catch (err) {
      // An answer the parser took but Node will not repeat (a status below 100, a header value
      // it refuses): the upstream's fault, answered as one — never a crash of the gateway.
      upRes.destroy();
      for (const name of res.getHeaderNames()) res.removeHeader(name);
      keepClientGone();
      fail(new UpstreamBadResponseError(`${app}: upstream ${target.label} sent a response that cannot be relayed (${(err as Error).message})`, { app, cause: err }));
      return;
    }
    answered = true;
    // A streamed answer (event stream, chunked) sends its head at once, so the client sees it
    // before the first event. A sized one does not: head and body then leave in one packet
    // instead of two (a separate head costs a round trip with Nagle and delayed ACKs).
    if (upRes.headers['content-length'] === undefined) res.flushHeaders();
    relay(upRes, res);
    // Cut mid-body: the client's connection is cut too (it must not take half a body for a
    // whole one), and the log says why.
    const cut = () => {
      if (!upRes.complete) fail(new UpstreamResetError(`${app}: upstream ${target.label} broke off the response body`, { app }));
    };
    upRes.on('error', cut);
    upRes.on('aborted', cut);
  });

  // `101 Switching Protocols` to a request that asked for no upgrade (issue 8, item 5): Node
  // hands over the socket, and nothing would ever answer the client. Not HTTP we can relay.
  upReq.on('upgrade', (_upRes, upSocket: Socket) => {
    upSocket.destroy();
    if (answered) return;
    keepClientGone();
    fail(upgradeNotAsked(app, target));
  });

  upReq.on('error', (err) => {
    if (answered) {
      // After the head: the client's connection is cut (fail() destroys an answered response).
      if (!res.writableFinished) fail(upstreamError(err, app, target.label));
      return;
    }
    keepClientGone();
    // Our own abort (the client left) reads as a reset too: never retried, nothing to answer.
    if (clientGone || res.destroyed) return;
    // A kept-alive connection the upstream closed just as we reused it: one retry is safe
    // when the request has no body and is idempotent (what browsers and Node's client do too).
    const code = (err as NodeJS.ErrnoException).code;
    if (mayRetry && upReq.reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE') && IDEMPOTENT.has(method) && framing.kind === 'none') {
      return sendWithRequest(gw, req, res, match, framing, fail, false, headers);
    }
    fail(upstreamError(err, app, target.label));
  });

  if (framing.kind !== 'none') {
    // A body of unknown length may come slowly, the answer first (an HTTP/2 or chunked upload
    // streaming beside its response): the head goes at once rather than with the first chunk.
    if (framing.kind === 'chunked') upReq.flushHeaders();
    req.pipe(upReq);
    req.on('error', () => upReq.destroy());
    req.on('aborted', () => upReq.destroy());
  } else {
    upReq.end();
  }
}
