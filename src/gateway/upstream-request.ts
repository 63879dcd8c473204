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

function connectTo(t: Target): Socket {
  if (t.kind === 'unix') return net.connect({ path: t.socketPath! });
  if (t.kind === 'tls') return tls.connect({ host: t.host, port: t.port, servername: t.servername, rejectUnauthorized: t.rejectUnauthorized, ca: t.ca, ALPNProtocols: ['http/1.1'] });
  return net.connect({ host: t.host, port: t.port });
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
  const req = (t.kind === 'tls' ? https : http).request(options);
  let timer: NodeJS.Timeout | null = null;
  const clear = () => {
    if (timer) clearTimeout(timer);
    timer = null;
  };
  const waitResponse = () => {
    clear();
    if (o.responseMs > 0) {
      timer = setTimeout(() => req.destroy(new UpstreamTimeoutError(`${o.app}: upstream ${t.label} sent no response in ${o.responseMs / 1000} s`, { app: o.app })), o.responseMs);
    }
  };
  req.on('socket', (socket: Socket) => {
    // Small writes leave at once (a request head, an event): Nagle would hold them for an ACK.
    // Node remembers the setting, so a reused connection costs no system call here.
    socket.setNoDelay(true);
    if (!socket.connecting) return waitResponse(); // a warm keep-alive connection
    socket.once(t.kind === 'tls' ? 'secureConnect' : 'connect', waitResponse);
    // 0 means no limit, as for the other timeouts (a 0 ms timer would fail every request).
    if (o.connectMs <= 0) return;
    timer = setTimeout(
      () => req.destroy(new UpstreamConnectTimeoutError(`${o.app}: connecting to ${t.label} timed out after ${o.connectMs / 1000} s`, { app: o.app })),
      o.connectMs,
    );
  });
  req.once('response', clear);
  req.once('upgrade', clear);
  req.once('close', clear);
  return req;
}
