/**
 * Plain HTTP through the gateway: bodies stream both ways with backpressure
 * (Server-Sent Events, long downloads and uploads), nothing is buffered
 * whole, upstream connections are reused, and a failure before the response
 * head becomes a 502/503/504 page (or JSON) that says what went wrong.
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { relay } from './relay-body.js';
import { AppWakingError, PortholeError, RequestAbortedError, UpstreamBadResponseError, UpstreamResetError, upstreamError } from '../errors.js';
import { emit } from '../events.js';
import type { GatewayCore } from './core.js';
import { sendHttpError } from './error-response.js';
import { downstreamResponseHeaders, duplicateHost, requestFraming, unsupportedVersion, upstreamRequestHeaders, type Framing } from './headers.js';
import type { Match } from './router.js';
import { onResponseDone } from './response-done.js';
import { upstreamRequest } from './upstream-request.js';
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
  const { route, target } = match;
  const app = route.app.name;
  const method = req.method ?? 'GET';
  const headers = upstreamRequestHeaders(req, { match, proto: gw.proto(req), trustForwarded: trustsForwarded(gw, req), upgrade: false, framing });
  const upReq = upstreamRequest({ target, app, method, path: match.path, headers, connectMs: route.connectMs, responseMs: route.responseMs, pooled: true });
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
      fail(new UpstreamBadResponseError(`${app}: upstream ${target.label} answered 101 Switching Protocols to a request that asked for no upgrade`, { app }));
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
    fail(new UpstreamBadResponseError(`${app}: upstream ${target.label} answered 101 Switching Protocols to a request that asked for no upgrade`, { app }));
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
    // when the request has no body and is idempotent (what browsers and undici do too).
    const code = (err as NodeJS.ErrnoException).code;
    if (mayRetry && upReq.reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE') && IDEMPOTENT.has(method) && framing.kind === 'none') {
      return send(gw, req, res, match, framing, fail, false);
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
