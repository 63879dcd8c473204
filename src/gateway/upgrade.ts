/**
 * WebSocket upgrades: check at the edge, forward the handshake with every
 * end-to-end header untouched, relay the upstream's answer as it is, and
 * after a 101 hand both sockets to a tunnel. A failure the browser could not
 * read (no upstream, a refused origin) becomes a completed handshake and a
 * close frame with a code and a reason — never a silent 1006.
 */
import type { ClientRequest, IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { DrainingError, PortholeError, RequestAbortedError, UpstreamBadResponseError, upstreamError } from '../errors.js';
import { emit } from '../events.js';
import { BridgeEntry } from './bridge-entry.js';
import { acceptAndClose, acceptKey, discardUntilClosed, sendRawHttpError } from './error-response.js';
import type { GatewayCore, OpenTunnel } from './core.js';
import { checkHandshake, checkOrigin, checkWsPath, hasToken, wsProtocol } from './handshake.js';
import { duplicateHost, upstreamRequestHeaders } from './headers.js';
import type { Match } from './router.js';
import { adoptable, NativeTunnel } from './native-tunnel.js';
import { peerOf, Tunnel } from './tunnel.js';
import { upstreamRequest } from './upstream-request.js';
import { UpgradeRequest, writableByHand, type UpgradeAnswer, type UpgradeRequestOptions } from './upstream-upgrade.js';
import { peerRefusal, trustsForwarded } from './peer.js';

export function proxyUpgrade(gw: GatewayCore, req: IncomingMessage, socket: Duplex, head: Buffer, match: Match): void {
  const route = match.route;
  const app = route.app.name;
  socket.on('error', destroySelf);
  (socket as Socket).setTimeout?.(0);
  const { refuse, fail } = failures(gw, req, socket, match);

  const bad = duplicateHost(req) ?? checkHandshake(req);
  if (bad) {
    refuse(bad);
    sendRawHttpError(socket, bad, req.headers.accept, undefined, bad.status === 426 ? { 'Sec-WebSocket-Version': '13' } : {});
    return;
  }
  if (gw.draining) return fail(new DrainingError(`${app}: the gateway is shutting down; reconnect in a moment`, { app }));
  const policy = checkWsPath(match) ?? checkOrigin(req, match, gw.forwardedHost(req), clientProto(gw, req));
  if (policy) return fail(policy);

  // A bridge app's upgrades are completed here and relayed to TCP (bridge-entry.ts) instead of proxied;
  // a stdio app's start its program (stdio-entry.ts).
  // An app on another node (route.peer) is forwarded there, stdio or not: its node runs the programs.
  const onward = route.bridge ? bridgeApp : route.app.stdio !== undefined && !route.peer ? stdioApp : connect;
  // Until its tunnel opens (then the tunnel counts), the handshake is the app's latest use.
  gw.activity.touch(app);
  const gate = gw.appGate(app);
  if (gate === null) return onward(gw, req, socket, head, match, fail);
  gate.then(
    (err) => (err ? fail(err) : socket.destroyed ? undefined : onward(gw, req, socket, head, gw.rematch(req, match, true), fail)),
    (err) => fail(upstreamError(err, app, match.target.label)),
  );
}

/**
 * How an upgrade is refused once it is known to be an app's: `refuse` logs it, `fail` also
 * answers the client as the app's ws_errors asks (a completed handshake and a close frame,
 * or an HTTP error).
 */
export function failures(gw: GatewayCore, req: IncomingMessage, socket: Duplex, match: Match): { refuse: (err: PortholeError, status?: number) => void; fail: (err: PortholeError) => void } {
  const route = match.route;
  const app = route.app.name;
  const path = req.url ?? '/';
  const refuse = (err: PortholeError, status?: number) => {
    emit('upgrade', { gateway: gw.id, app, path, accepted: false, status: status ?? err.status, code: err.code, reason: err.message, closeCode: err.closeCode, protocol: wsProtocol(req) });
  };
  const fail = (err: PortholeError) => {
    if (route.app.ws_errors === 'http') {
      refuse(err);
      sendRawHttpError(socket, err, req.headers.accept, route.errorPage ?? gw.errorPage);
      return;
    }
    refuse(err, 101);
    acceptAndClose(socket, req.headers['sec-websocket-key'] as string, req.headers['sec-websocket-protocol'], err.closeCode, err.message);
  };
  return { refuse, fail };
}

/**
 * The upstream request of an upgrade that everything before connect() let through, or null
 * when the upgrade needs more than the front (front.ts) does: the same checks as
 * proxyUpgrade's, in the same order, none of them failing, and an app reached by a head
 * written by hand over plain TCP at an IP address. Nothing is answered or logged here.
 */
export function frontRequest(gw: GatewayCore, req: IncomingMessage, match: Match): UpgradeRequestOptions | null {
  if (duplicateHost(req) ?? checkHandshake(req)) return null;
  if (gw.draining || (checkWsPath(match) ?? checkOrigin(req, match, gw.forwardedHost(req), clientProto(gw, req)))) return null;
  const { route, target } = match;
  if (route.bridge || route.app.stdio !== undefined || route.peer || target.kind !== 'tcp' || isIP(target.host) === 0) return null;
  if (gw.tunnelEngine !== 'native' || gw.appGate(route.app.name) !== null) return null;
  const headers = upstreamRequestHeaders(req, { match, proto: gw.proto(req), trustForwarded: trustsForwarded(gw, req), upgrade: true, framing: null });
  const o = { target, app: route.app.name, path: match.path, headers, connectMs: route.connectMs, responseMs: route.responseMs };
  return writableByHand(o) ? o : null;
}

function connect(gw: GatewayCore, req: IncomingMessage, socket: Duplex, head: Buffer, match: Match, fail: (err: PortholeError) => void): void {
  // For the upgrade event's `ms` (the handshake histogram of the metrics).
  const started = performance.now();
  const { route, target } = match;
  const app = route.app.name;
  const path = req.url ?? '/';
  const headers = upstreamRequestHeaders(req, { match, proto: gw.proto(req), trustForwarded: trustsForwarded(gw, req), upgrade: true, framing: null });
  const o = { target, app, path: match.path, headers, connectMs: route.connectMs, responseMs: route.responseMs };
  // A head written and read by hand (upstream-upgrade.ts); TLS upstreams, and the rare request
  // Node's client would write differently, keep the client.
  const upReq = writableByHand(o) ? new UpgradeRequest(o) : upstreamRequest({ ...o, method: 'GET', pooled: false });
  awaitAnswer(gw, req, socket, head, match, fail, upReq, started);
}

/**
 * Waits for the upstream's answer to an upgrade and acts on it: a tunnel after a clean 101,
 * the app's own answer relayed, a failure answered. Also where the front (front.ts) hands
 * an answer it does not take itself. `started`: performance.now() when connecting began.
 */
export function awaitAnswer(gw: GatewayCore, req: IncomingMessage, socket: Duplex, head: Buffer, match: Match, fail: (err: PortholeError) => void, upReq: UpgradeRequest | ClientRequest, started: number): void {
  const { route, target } = match;
  const app = route.app.name;
  const path = req.url ?? '/';
  let settled = false;
  // The client leaves before the upstream answers: the upstream request is given up, and logged.
  // Node reads the client on during the wait (its bytes wait in the socket for the tunnel), so
  // its FIN ends the socket's reading ('end'; the server's sockets are half-open, so no 'close'
  // follows), and its reset closes it.
  const clientLeft = () => {
    if (settled) return;
    over();
    upReq.destroy();
    socket.destroy();
    const err = new RequestAbortedError(`${app}: the client left before upstream ${target.label} answered the handshake`, { app });
    emit('upgrade', { gateway: gw.id, app, path, accepted: false, status: err.status, code: err.code, reason: err.message, protocol: wsProtocol(req) });
  };
  const over = () => {
    settled = true;
    socket.off('close', clientLeft);
    socket.off('end', clientLeft);
    gw.handshakes.delete(drained);
  };
  // The gateway drains: the client gets what a handshake that came now would (1001, or a 503).
  const drained = () => {
    if (settled) return;
    over();
    upReq.destroy();
    fail(new DrainingError(`${app}: the gateway is shutting down; reconnect in a moment`, { app }));
  };
  gw.handshakes.add(drained);
  // Not once(): over() takes both off, and once() would wrap each in two more objects.
  socket.on('close', clientLeft);
  socket.on('end', clientLeft);
  // Its FIN came while the app was woken or the gate decided: 'end' is behind us.
  if (socket.readableEnded) clientLeft();

  upReq.on('upgrade', (res: UpgradeAnswer, upSocket: Socket, upHead: Buffer) => {
    over();
    upSocket.on('error', destroySelf);
    if (socket.destroyed) {
      upSocket.destroy();
      return;
    }
    // A 101 the browser would fail (a wrong or missing Sec-WebSocket-Accept, a subprotocol or
    // extension it never offered) is not relayed: it would see a bare 1006. Complete its handshake ourselves
    // and close 1014 with the reason instead (issue 8, item 11).
    const wrong = bad101(res, req);
    if (wrong) {
      upSocket.destroy();
      fail(new UpstreamBadResponseError(`${app}: upstream ${target.label} ${wrong}`, { app }));
      return;
    }
    let response = `HTTP/1.1 101 ${res.statusMessage || 'Switching Protocols'}\r\n`;
    const raw = res.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) response += `${raw[i]}: ${raw[i + 1]}\r\n`;
    emit('upgrade', { gateway: gw.id, app, path, accepted: true, status: 101, ms: Math.round((performance.now() - started) * 1000) / 1000, protocol: wsProtocol(req) });
    // Header values are the upstream's bytes read as latin1: written back the same way, not as UTF-8.
    splice(gw, socket, upSocket, head, upHead, route, path, `${response}\r\n`);
  });

  upReq.on('response', (res: IncomingMessage) => {
    // The app's own answer (403, 404, a redirect…): relayed as it is, then the connection is closed.
    over();
    // A 101 Node did not take for an upgrade (no Connection: Upgrade): relayed, the browser
    // would fail the handshake with a bare 1006.
    if (res.statusCode === 101) {
      res.destroy();
      if (!socket.destroyed) fail(new UpstreamBadResponseError(`${app}: upstream ${target.label} answered 101 without Connection: Upgrade`, { app }));
      return;
    }
    const refusedByPeer = route.peer && peerRefusal(app, target, res.statusCode, res.headers);
    if (refusedByPeer) {
      res.destroy();
      if (!socket.destroyed) fail(refusedByPeer);
      return;
    }
    emit('upgrade', { gateway: gw.id, app, path, accepted: false, status: res.statusCode, reason: `upstream answered ${res.statusCode}`, protocol: wsProtocol(req) });
    if (!socket.writable) {
      res.destroy();
      return;
    }
    let response = `HTTP/1.1 ${res.statusCode} ${res.statusMessage}\r\n`;
    const raw = res.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i].toLowerCase();
      // The body is re-sent as it is decoded, delimited by closing the connection.
      if (name === 'transfer-encoding' || name === 'connection' || name === 'keep-alive') continue;
      response += `${raw[i]}: ${raw[i + 1]}\r\n`;
    }
    socket.write(`${response}Connection: close\r\n\r\n`, 'latin1');
    res.pipe(socket);
    res.on('error', () => socket.destroy());
    // The client may send more (its FIN among it): read and dropped, or the socket is never freed.
    discardUntilClosed(socket, true);
  });

  upReq.on('error', (err: Error) => {
    if (settled) return;
    over();
    if (socket.destroyed) return;
    fail(upstreamError(err, app, target.label));
  });
  upReq.end();
}

/**
 * An upgrade to a bridge app, after the edge checks above: through the
 * bridge's public entry, the one `porthole bridge` uses, with the app's
 * timeouts and the gateway's set of connections (drained with the tunnels).
 */
function bridgeApp(gw: GatewayCore, req: IncomingMessage, socket: Duplex, head: Buffer, match: Match, fail: (err: PortholeError) => void): void {
  const route = match.route;
  const spec = route.bridge;
  if (!spec) throw new TypeError(`app ${route.app.name} has no bridge`);
  // One entry per upgrade: the route holds the bridge's settings, the gateway its id and
  // connection set; building it costs a few fields, less than parsing the handshake did.
  const entry = new BridgeEntry({
    app: route.app.name,
    gateway: gw.id,
    target: spec.target,
    tokens: spec.tokens,
    textAsBinary: spec.textAsBinary,
    connectMs: route.connectMs,
    idleMs: route.idleMs,
    heartbeatMs: route.pingMs,
    connections: gw.bridges,
    engine: gw.tunnelEngine,
    // Connections still connecting to their target are given up by a drain, as upgrades waiting for their upstream are.
    pending: gw.handshakes,
    drainingReason: `${route.app.name}: the gateway is shutting down; reconnect in a moment`,
  });
  entry.bridge(req, socket, head, fail);
}

/**
 * An upgrade to a stdio app, after the edge checks above (auth, origins,
 * ws_paths): its entry starts the program (or joins the shared one) and
 * completes the handshake; the limit and a program that cannot start go to
 * `fail`.
 */
function stdioApp(gw: GatewayCore, req: IncomingMessage, socket: Duplex, head: Buffer, match: Match, fail: (err: PortholeError) => void): void {
  const { route } = match;
  gw.stdio.entryFor(route.app, { idleMs: route.idleMs, pingMs: route.pingMs }).attach(req, socket, head, fail);
}

/** The scheme the client used: the listener's, or a trusted proxy's X-Forwarded-Proto. */
export function clientProto(gw: Pick<GatewayCore, 'trustForwarded' | 'proto'>, req: IncomingMessage): 'http' | 'https' {
  const fwd = trustsForwarded(gw, req) ? req.headers['x-forwarded-proto'] : undefined;
  const first = typeof fwd === 'string' ? fwd.split(',')[0].trim().toLowerCase() : '';
  return first === 'http' || first === 'https' ? first : gw.proto(req);
}

/** Why an upstream's 101 cannot be relayed to the client (RFC 6455 §4.1), or null when it can. */
export function bad101(res: { headers: IncomingHttpHeaders }, req: IncomingMessage): string | null {
  const got = res.headers['sec-websocket-accept'];
  if (got === undefined) return 'answered 101 without Sec-WebSocket-Accept';
  if (got.trim() !== acceptKey(String(req.headers['sec-websocket-key']).trim())) return 'answered 101 with a wrong Sec-WebSocket-Accept';
  const upgrade = res.headers.upgrade;
  if (upgrade === undefined || upgrade.trim().toLowerCase() !== 'websocket') return `answered 101 with Upgrade: ${upgrade ?? 'missing'} instead of websocket`;
  const connection = res.headers.connection;
  if (!hasToken(connection, 'upgrade')) return 'answered 101 without Connection: Upgrade';
  const chosen = res.headers['sec-websocket-protocol'];
  if (chosen !== undefined) {
    const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    if (!offered.includes(chosen.trim())) return `chose subprotocol ${JSON.stringify(chosen)}, which the client did not offer`;
  }
  const extensions = res.headers['sec-websocket-extensions'];
  if (extensions !== undefined) {
    const names = (h: string | undefined) => (h ?? '').split(',').map((e) => e.split(';')[0].trim().toLowerCase()).filter(Boolean);
    const offered = names(req.headers['sec-websocket-extensions']);
    const foreign = names(extensions).find((n) => !offered.includes(n));
    if (foreign) return `chose extension ${JSON.stringify(foreign)}, which the client did not offer`;
  }
  return null;
}

/** An error handler that closes over nothing: a tunnel's sockets live for hours. */
function destroySelf(this: Duplex): void {
  this.destroy();
}

/**
 * Hands both sockets to a tunnel. A separate function on purpose: a closure
 * made inside the upgrade handler would keep the whole handshake (request,
 * header lists, upstream request) alive for as long as the tunnel lives.
 */
function splice(gw: GatewayCore, client: Duplex, upstream: Socket, clientHead: Buffer, upstreamHead: Buffer, route: Match['route'], path: string, response: string): void {
  const info = { app: route.app.name, path, gateway: gw.id, client: peerOf(client as Socket) };
  const opts = { idleMs: route.idleMs, pingMs: route.pingMs, onEnd: (t: OpenTunnel) => gw.tunnels.delete(t) };
  // Native only between two plain sockets: TLS and HTTP/2 streams have no fd carrying the WebSocket bytes.
  // The addon writes the 101 itself, first: nothing is queued in Node for the socket it takes.
  if (gw.tunnelEngine === 'native' && adoptable(client) && adoptable(upstream)) {
    const native = new NativeTunnel(client, upstream, info, opts);
    const left = native.start(clientHead, upstreamHead, Buffer.from(response, 'latin1'));
    if (left === null) {
      gw.tunnels.add(native);
      return;
    }
    [clientHead, upstreamHead] = left;
  }
  client.write(response, 'latin1');
  const tunnel = new Tunnel(client, upstream, info, opts);
  gw.tunnels.add(tunnel);
  tunnel.start(clientHead, upstreamHead);
}
