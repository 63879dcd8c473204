/**
 * The hop from a worker to the primary (`workers: N`, docs/workers.md): the admin API, the
 * dashboard, the metrics and `/_porthole/health` are the primary's — it holds the registry,
 * the sessions and the counters of every worker — so a worker passes `/_porthole/` requests
 * to it, streamed both ways (event streams stay open).
 *
 * The primary's internal listener is on loopback, port 0, and answers only requests that
 * carry the secret made at this start (any local user can connect to loopback). The
 * client's addresses travel along: the admin API's `local_no_auth` and the Host check
 * must judge the client, not the worker that passed its request on.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PrimaryUnreachableError, WorkerAuthError, type PortholeError } from '../errors.js';
import { emit } from '../events.js';
import { sendHttpError } from '../gateway/error-response.js';
import { WORKER_CLIENT_HEADER, WORKER_HEADER, type ClientAddress } from './protocol.js';

/** Hop-by-hop headers (RFC 9110 §7.6.1): each side of the hop has its own connection. */
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

export function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

function sameSecret(given: string | string[] | undefined, secret: string): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(secret);
  return a.length === b.length && timingSafeEqual(a, b);
}

export interface InternalListener {
  port: number;
  close(): Promise<void>;
}

/**
 * The primary's side: requests with the secret get the client's addresses put back on
 * their socket, then go to `handle` (the primary gateway's request listener). The hop
 * never pipelines (the worker's agent sends one request per connection at a time), so
 * the addresses belong to the request being answered.
 */
export async function listenInternal(opts: { secret: string; gatewayId: string; handle: (req: http.IncomingMessage, res: http.ServerResponse, client: ClientAddress) => void }): Promise<InternalListener> {
  const server = http.createServer({ noDelay: true, requestTimeout: 0, keepAliveTimeout: 65_000 }, (req, res) => {
    if (!sameSecret(req.headers[WORKER_HEADER], opts.secret)) {
      const err = new WorkerAuthError('the internal listener takes requests from this gateway\'s workers only');
      emit('error', { gateway: opts.gatewayId, code: err.code, message: `${err.message} (from ${req.socket.remoteAddress}:${req.socket.remotePort})` });
      res.setHeader('Connection', 'close');
      return sendHttpError(res, err, req.headers.accept, undefined);
    }
    const client = parseClient(req.headers[WORKER_CLIENT_HEADER]);
    delete req.headers[WORKER_HEADER];
    delete req.headers[WORKER_CLIENT_HEADER];
    const socket = req.socket as unknown as Record<string, unknown>;
    for (const [key, value] of [['remoteAddress', client.remote], ['remotePort', client.remotePort], ['localAddress', client.local], ['localPort', client.localPort]] as const) {
      Object.defineProperty(socket, key, { value, configurable: true, enumerable: true });
    }
    opts.handle(req, res, client);
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => (server.off('error', fail), ok()));
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((ok) => (server.close(() => ok()), server.closeAllConnections())),
  };
}

function parseClient(v: string | string[] | undefined): ClientAddress {
  try {
    const c = JSON.parse(typeof v === 'string' ? v : '{}') as Partial<ClientAddress>;
    if (typeof c.remote === 'string' && typeof c.local === 'string') return { remote: c.remote, remotePort: Number(c.remotePort) || 0, local: c.local, localPort: Number(c.localPort) || 0, worker: Number(c.worker) || 0 };
  } catch {
    /* the worker always sends it; an unreadable one is treated as not loopback */
  }
  return { remote: '', remotePort: 0, local: '', localPort: 0, worker: 0 };
}

/** The worker's side: one keep-alive pool to the primary, and a function that passes a request over it. */
export function primaryHop(opts: { port: number; secret: string; gatewayId: string }): { forward(req: http.IncomingMessage, res: http.ServerResponse): void; close(): void } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const forward = (req: http.IncomingMessage, res: http.ServerResponse, again = true): void => {
    const headers: http.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(req.headers)) if (!HOP.has(name) && value !== undefined) headers[name] = value;
    headers[WORKER_HEADER] = opts.secret;
    const client: ClientAddress = { remote: req.socket.remoteAddress ?? '', remotePort: req.socket.remotePort ?? 0, local: req.socket.localAddress ?? '', localPort: req.socket.localPort ?? 0, worker: process.pid };
    headers[WORKER_CLIENT_HEADER] = JSON.stringify(client);
    const up = http.request({ host: '127.0.0.1', port: opts.port, method: req.method, path: req.url, headers, agent });
    // GET and HEAD carry no body the hop would have consumed: one that met a closing keep-alive
    // connection (the primary's side of a reused socket) is sent once more on another.
    const idempotent = req.method === 'GET' || req.method === 'HEAD';
    let answered = false;
    const fail = (cause: NodeJS.ErrnoException) => {
      if (!answered && again && idempotent && up.reusedSocket && (cause.code === 'ECONNRESET' || cause.code === 'EPIPE')) return forward(req, res, false);
      const err: PortholeError = new PrimaryUnreachableError(`the primary process did not answer (${cause.message})`);
      emit('error', { gateway: opts.gatewayId, code: err.code, message: err.message });
      if (res.headersSent) return void res.destroy();
      res.setHeader('Connection', 'close');
      sendHttpError(res, err, req.headers.accept, undefined);
    };
    up.on('error', fail);
    up.on('response', (answer) => {
      answered = true;
      const out: http.OutgoingHttpHeaders = {};
      for (const [name, value] of Object.entries(answer.headers)) if (!HOP.has(name) && value !== undefined) out[name] = value;
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, out);
      // Event streams: every chunk on at once (flushHeaders, no buffering in between).
      res.flushHeaders();
      answer.pipe(res);
      answer.on('error', () => res.destroy());
    });
    // The client left (an event stream closed): the primary's side ends too.
    res.once('close', () => void (res.writableFinished || up.destroy()));
    if (idempotent) up.end();
    else req.pipe(up);
  };
  return { forward, close: () => agent.destroy() };
}
