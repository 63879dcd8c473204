/**
 * A standalone WebSocket→TCP bridge, what `websockify [--web DIR] PORT
 * HOST:PORT` does: every WebSocket upgrade is bridged to the target (fixed,
 * or picked by token), plain GETs are served from `web` (noVNC), and every
 * failure reaches the browser as a close code with a reason.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { formatHostPort, type HostPort } from '../config/host-port.js';
import { DrainingError, type PortholeError } from '../errors.js';
import { emit } from '../events.js';
import type { BridgeConnection } from '../gateway/bridge-connection.js';
import { bridgeLabel, hideToken, openBridge, type BridgeSpec } from '../gateway/bridge.js';
import { TokenTargets } from '../gateway/bridge-tokens.js';
import { acceptAndClose, sendRawHttpError } from '../gateway/error-response.js';
import { checkHandshake } from '../gateway/handshake.js';
import { serveStatic } from './static-files.js';

export interface BridgeServerOptions {
  /** Interface to listen on. Default `127.0.0.1`. */
  host?: string;
  /** Port to listen on; 0 picks a free one. Default 0. */
  port?: number;
  /** The TCP target of every connection (or use `tokenFile`). */
  target?: HostPort;
  /** websockify's TokenFile (a file or a directory of them): the `token` query parameter picks the target. */
  tokenFile?: string;
  /** Serve static files (noVNC) from this directory for plain GETs. */
  web?: string;
  /** Pass text messages' UTF-8 bytes to TCP instead of closing with 1003. */
  textAsBinary?: boolean;
  /** Ping every client this often, in ms (0: never). Default 0. */
  heartbeatMs?: number;
  /** Close a connection with 1001 after this long without traffic, in ms (0: never). Default 1 h. */
  idleMs?: number;
  /** TCP connect timeout, in ms. Default 5 s. */
  connectMs?: number;
  /** The `app` name in events. Default `bridge`. */
  name?: string;
}

export interface BridgeServer {
  readonly port: number;
  /** `http://host:port` */
  readonly url: string;
  /** The `gateway` id of this server's events. */
  readonly id: string;
  /** Bridged connections open right now. */
  readonly connections: number;
  /** Stops listening, closes every connection with 1001, and resolves once they are gone (cut after `graceMs`). */
  close(graceMs?: number): Promise<void>;
}

/** Starts a bridge; resolves once it listens. */
export async function startBridgeServer(opts: BridgeServerOptions): Promise<BridgeServer> {
  if (!opts.target && !opts.tokenFile) throw new TypeError('a bridge needs a target or a token file');
  const id = randomBytes(4).toString('hex');
  const app = opts.name ?? 'bridge';
  const spec: BridgeSpec = {
    target: opts.target,
    tokens: opts.tokenFile ? new TokenTargets(opts.tokenFile, (message) => emit('error', { code: 'PH_ERR_CONFIG', message: `token file ${message}`, app, gateway: id })) : undefined,
    textAsBinary: Boolean(opts.textAsBinary),
  };
  const connections = new Set<BridgeConnection>();
  let closing = false;

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const started = performance.now();
    res.once('close', () => emit('request', { gateway: id, app, method: req.method ?? 'GET', path: hideToken(req.url ?? '/'), status: res.statusCode, ms: Math.round(performance.now() - started) }));
    if (opts.web) {
      serveStatic(req, res, opts.web).catch(() => res.destroy());
      return;
    }
    const body = `This is a WebSocket bridge to ${bridgeLabel(spec)}: connect with a WebSocket client (noVNC, porthole connect).\n`;
    res.writeHead(426, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), Upgrade: 'websocket' });
    res.end(body);
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const path = hideToken(req.url ?? '/');
    const refuse = (err: PortholeError, status: number) =>
      emit('upgrade', { gateway: id, app, path, accepted: false, status, code: err.code, reason: err.message, closeCode: err.closeCode });
    const bad = checkHandshake(req);
    if (bad) {
      refuse(bad, bad.status);
      return sendRawHttpError(socket, bad, req.headers.accept, undefined, bad.status === 426 ? { 'Sec-WebSocket-Version': '13' } : {});
    }
    const fail = (err: PortholeError) => {
      refuse(err, 101);
      acceptAndClose(socket, req.headers['sec-websocket-key'] as string, req.headers['sec-websocket-protocol'], err.closeCode, err.message);
    };
    if (closing) return fail(new DrainingError(`${app}: shutting down; reconnect in a moment`, { app }));
    openBridge(req, socket, head, { app, gateway: id, spec, connectMs: opts.connectMs ?? 5000, idleMs: opts.idleMs ?? 3_600_000, pingMs: opts.heartbeatMs ?? 0, connections }, fail);
  };

  const server = createServer({ requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 5_000 }, onRequest);
  server.on('upgrade', onUpgrade);
  server.on('clientError', (_err, socket: Duplex) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', fail);
      ok();
    });
  });
  server.on('error', (err: NodeJS.ErrnoException) => emit('error', { gateway: id, code: err.code ?? 'PH_ERR_LISTEN', message: err.message }));
  const addr = server.address() as AddressInfo;
  const url = `http://${formatHostPort({ host: addr.address, port: addr.port })}`;
  emit('gateway', { gateway: id, action: 'listening', address: url });

  return {
    port: addr.port,
    url,
    id,
    get connections() {
      return connections.size;
    },
    async close(graceMs = 3000) {
      if (closing) return;
      closing = true;
      emit('gateway', { gateway: id, action: 'draining', tunnels: connections.size });
      const stopped = new Promise<void>((ok) => server.close(() => ok()));
      for (const c of connections) c.close(1001, `${app}: shutting down`);
      const deadline = Date.now() + graceMs;
      while (connections.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      for (const c of connections) c.destroy();
      server.closeAllConnections();
      await stopped;
      emit('gateway', { gateway: id, action: 'closed' });
    },
  };
}
