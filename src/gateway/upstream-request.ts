/**
 * Opens a request to an upstream with the two timeouts users need told apart:
 * connecting (nothing answers: a dead host, a firewall) and waiting for the
 * response head (the app accepted the connection but is stuck).
 */
import http from 'node:http';
import https from 'node:https';
import net, { type Socket } from 'node:net';
import tls from 'node:tls';
import { UpstreamConnectTimeoutError, UpstreamTimeoutError } from '../errors.js';
import type { Target } from './router.js';

export interface UpstreamRequestOptions {
  target: Target;
  app: string;
  method: string;
  path: string;
  headers: string[];
  connectMs: number;
  responseMs: number;
  /** Use the target's keep-alive pool (plain HTTP) or a fresh connection (upgrades). */
  pooled: boolean;
}

/**
 * A new connection to a target, as the upstream requests and upgrades open it. Small writes
 * (a request head, a frame) leave at once: Nagle would hold them for an ACK. Given as an
 * option to a plain connection, Node sets TCP_NODELAY once it is up (setNoDelay() before
 * that costs a second system call) and remembers it, so later setNoDelay(true) calls cost
 * nothing. A TLS connection gets it from its request (upstreamRequest's onSocket).
 */
export function connectTo(t: Target): Socket {
  if (t.kind === 'unix') return net.connect({ path: t.socketPath! });
  if (t.kind === 'tls') return tls.connect({ host: t.host, port: t.port, servername: t.servername, rejectUnauthorized: t.rejectUnauthorized, ca: t.ca, ALPNProtocols: ['http/1.1'] });
  return net.connect({ host: t.host, port: t.port, noDelay: true });
}

export function upstreamRequest(o: UpstreamRequestOptions): http.ClientRequest {
  const t = o.target;
  const options: https.RequestOptions = {
    method: o.method,
    path: o.path,
    headers: o.headers as unknown as http.OutgoingHttpHeaders,
    setHost: false,
  };
  // Pooled: the target's keep-alive agent. Not pooled (upgrades): a connection of our own, with
  // no agent at all — `agent: false` would build a whole Agent per upgrade and keep it alive
  // with the tunnel.
  if (o.pooled) options.agent = t.agent;
  else options.createConnection = () => connectTo(t);
  if (t.kind === 'unix') options.socketPath = t.socketPath;
  else {
    options.host = t.host;
    options.port = t.port;
  }
  if (t.kind === 'tls') {
    options.servername = t.servername;
    options.rejectUnauthorized = t.rejectUnauthorized;
    if (t.ca) options.ca = t.ca;
  }
  const req = (t.kind === 'tls' ? https : http).request(options) as Timed;
  req[kTimer] = { o, timer: null };
  req.on('socket', onSocket);
  req.on('response', clearTimer);
  req.on('upgrade', clearTimer);
  req.on('close', clearTimer);
  return req;
}

// The timers' state lives on the request and its listeners are shared functions: every forwarded
// request passes here, and closures and `once` wrappers per request showed in profiles.
const kTimer = Symbol('porthole.upstreamTimer');
type Timed = http.ClientRequest & { [kTimer]: { o: UpstreamRequestOptions; timer: NodeJS.Timeout | null } };

function clearTimer(this: Timed): void {
  const state = this[kTimer];
  if (state.timer) clearTimeout(state.timer);
  state.timer = null;
}

function waitResponse(req: Timed): void {
  clearTimer.call(req);
  const state = req[kTimer];
  if (state.o.responseMs > 0) state.timer = setTimeout(responseTimedOut, state.o.responseMs, req);
}

function responseTimedOut(req: Timed): void {
  const { o } = req[kTimer];
  req.destroy(new UpstreamTimeoutError(`${o.app}: upstream ${o.target.label} sent no response in ${o.responseMs / 1000} s`, { app: o.app }));
}

function connectTimedOut(req: Timed): void {
  const { o } = req[kTimer];
  req.destroy(new UpstreamConnectTimeoutError(`${o.app}: connecting to ${o.target.label} timed out after ${o.connectMs / 1000} s`, { app: o.app }));
}

function onSocket(this: Timed, socket: Socket): void {
  // Small writes leave at once (a request head, an event): Nagle would hold them for an ACK.
  // Node remembers the setting, so a reused connection costs no system call here.
  socket.setNoDelay(true);
  if (!socket.connecting) return waitResponse(this); // a warm keep-alive connection
  const req = this;
  const { o } = req[kTimer];
  socket.once(o.target.kind === 'tls' ? 'secureConnect' : 'connect', () => waitResponse(req));
  // 0 means no limit, as for the other timeouts (a 0 ms timer would fail every request).
  if (o.connectMs <= 0) return;
  req[kTimer].timer = setTimeout(connectTimedOut, o.connectMs, req);
}
