/**
 * The gateway: a route table swapped whole on reload, the two entry points an
 * `http.Server` calls (`handleRequest`, `handleUpgrade`), and — for
 * `porthole serve` — a listener with graceful drain.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import { parseConfig, type Config } from '../config/schema.js';
import { PortholeError, RouteNotFoundError } from '../errors.js';
import { emit } from '../events.js';
import type { GatewayCore } from './core.js';
import { sendHttpError, sendRawHttpError } from './error-response.js';
import { forwardHttp } from './http-forward.js';
import type { BridgeConnection } from './bridge-connection.js';
import { refuseBridgeHttp } from './bridge.js';
import { AgentPool, RouteTable, type Route } from './router.js';
import type { Tunnel } from './tunnel.js';
import { proxyUpgrade } from './upgrade.js';

export interface GatewayOptions {
  /** Directory that relative paths in the config (error pages) are resolved against. Default: cwd. */
  baseDir?: string;
  /**
   * Tells whether an app can take traffic (see GatewayCore.appGate). The
   * supervisor provides it; without one every app is assumed up.
   */
  appGate?: (app: string) => null | Promise<PortholeError | null>;
  /**
   * Called first for every request on the gateway's own listener; returns
   * true when it answered (the admin API does this).
   */
  intercept?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean;
}

export interface ListenAddress {
  host: string;
  port: number;
  /** `http://host:port` */
  url: string;
}

/**
 * Creates a gateway from a config object (the same shape as `porthole.yaml`:
 * `{ apps: [{ name, port | url | socket, … }], … }`). Throws ConfigError on
 * an invalid config.
 */
export function createGateway(config: unknown = {}, options: GatewayOptions = {}): Gateway {
  return new Gateway(config, options);
}

export class Gateway implements GatewayCore {
  readonly id = randomBytes(4).toString('hex');
  readonly tunnels = new Set<Tunnel>();
  readonly bridges = new Set<BridgeConnection>();
  draining = false;
  private table: RouteTable;
  private readonly agents = new AgentPool();
  private readonly baseDir: string;
  private readonly gate: GatewayOptions['appGate'];
  private readonly intercept: GatewayOptions['intercept'];
  private server: http.Server | null = null;
  private activeRequests = 0;

  constructor(config: unknown, options: GatewayOptions = {}) {
    this.baseDir = options.baseDir ?? process.cwd();
    this.gate = options.appGate;
    this.intercept = options.intercept;
    this.table = this.build(config);
  }

  /** The config in force (parsed, frozen). */
  get config(): Config {
    return this.table.config;
  }
  get routes(): readonly Route[] {
    return this.table.routes;
  }
  get trustForwarded(): boolean {
    return this.table.config.trust_forwarded;
  }
  get errorPage(): string | undefined {
    return this.table.errorPage;
  }

  /**
   * Swaps in a new config. Built whole first: if it is invalid, ConfigError is
   * thrown and the old one stays. Open tunnels and requests in flight keep the
   * routes they started with.
   */
  reload(config: unknown): void {
    this.table = this.build(config);
  }

  /** Builds routes for a config without swapping them in: throws ConfigError when it is invalid. */
  validate(config: unknown): Config {
    return this.build(config).config;
  }

  private build(config: unknown): RouteTable {
    const cfg = isParsed(config) ? config : parseConfig(config);
    return new RouteTable(cfg, { agents: this.agents, readTemplate: (f) => readTemplate(resolve(this.baseDir, f)), resolvePath: (f) => resolve(this.baseDir, f) });
  }

  /**
   * Handles a request if it belongs to an app; returns false (and touches
   * nothing) otherwise, so an existing server can fall through to its own routes.
   */
  handleRequest(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const found = this.table.lookup(req.headers.host, req.url ?? '/', false);
    if (found.kind === 'none') return false;
    this.activeRequests++;
    res.once('close', () => this.activeRequests--);
    if (found.kind === 'redirect') {
      // 308 for other methods: a 301 turns a POST into a GET in browsers.
      const status = req.method === 'GET' || req.method === 'HEAD' ? 301 : 308;
      res.writeHead(status, { Location: found.location, 'Content-Length': '0' });
      res.end();
      emit('request', { gateway: this.id, app: found.route.app.name, method: req.method ?? 'GET', path: req.url ?? '/', status, ms: 0 });
      return true;
    }
    if (this.draining) res.setHeader('Connection', 'close');
    if (found.match.route.bridgeOnly) refuseBridgeHttp(this.id, req, res, found.match.route);
    else forwardHttp(this, req, res, found.match);
    return true;
  }

  /**
   * Handles a WebSocket upgrade if it belongs to an app; returns false (and
   * touches nothing) otherwise.
   */
  handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const found = this.table.lookup(req.headers.host, req.url ?? '/', true);
    if (found.kind === 'none') return false;
    if (found.kind === 'redirect') {
      // A browser does not follow redirects on a WebSocket handshake; name the right URL instead.
      const app = found.route.app.name;
      socket.on('error', () => socket.destroy());
      const err = new RouteNotFoundError(`${app}: WebSocket URLs of this app start with ${found.location}`, { app });
      emit('upgrade', { gateway: this.id, app, path: req.url ?? '/', accepted: false, status: 404, code: err.code, reason: err.message });
      sendRawHttpError(socket, err, req.headers.accept);
      return true;
    }
    proxyUpgrade(this, req, socket, head, found.match);
    return true;
  }

  proto(req: http.IncomingMessage): 'http' | 'https' {
    return (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
  }

  forwardedHost(req: http.IncomingMessage): string | undefined {
    if (!this.trustForwarded) return undefined;
    const h = req.headers['x-forwarded-host'];
    return typeof h === 'string' ? h.split(',')[0].trim() : undefined;
  }

  appGate(app: string): null | Promise<PortholeError | null> {
    return this.gate ? this.gate(app) : null;
  }

  /** The request listener `porthole serve` uses: apps, the gateway's own paths, then a 404 page. */
  readonly requestListener = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const url = req.url ?? '/';
    if (url === '/_porthole/health' || url.startsWith('/_porthole/health?')) {
      const body = JSON.stringify({ status: this.draining ? 'draining' : 'ok', apps: this.table.routes.length, tunnels: this.tunnels.size + this.bridges.size });
      res.writeHead(this.draining ? 503 : 200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
      res.end(body);
      return;
    }
    if (this.intercept?.(req, res)) return;
    if (this.handleRequest(req, res)) return;
    const err = new RouteNotFoundError(`No app is routed at ${url.split('?')[0]}.`);
    res.once('close', () => emit('request', { gateway: this.id, app: null, method: req.method ?? 'GET', path: url, status: 404, ms: 0, code: err.code }));
    sendHttpError(res, err, req.headers.accept, this.table.errorPage);
  };

  readonly upgradeListener = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (this.handleUpgrade(req, socket, head)) return;
    socket.on('error', () => socket.destroy());
    const err = new RouteNotFoundError(`No app is routed at ${(req.url ?? '/').split('?')[0]}.`);
    emit('upgrade', { gateway: this.id, app: null, path: req.url ?? '/', accepted: false, status: 404, code: err.code, reason: err.message });
    sendRawHttpError(socket, err, req.headers.accept);
  };

  /** Listens on `host:port` (port 0 picks a free one). */
  async listen(host = '127.0.0.1', port = 50000): Promise<ListenAddress> {
    const headersTimeout = this.table.config.header_timeout;
    const server = http.createServer({
      noDelay: true,
      // Uploads and event streams may run long; idle sockets are what get cut.
      requestTimeout: 0,
      // Counted from a connection's first byte (or its accept): a client that trickles
      // its headers, or sends none, is cut. Node checks every connectionsCheckingInterval
      // (30 s by default, which would let a 60 s limit run to 90 s): check every quarter.
      headersTimeout,
      connectionsCheckingInterval: headersTimeout > 0 ? Math.min(30_000, Math.max(100, Math.round(headersTimeout / 4))) : 30_000,
      keepAliveTimeout: 65_000,
    });
    server.on('request', this.requestListener);
    server.on('upgrade', this.upgradeListener);
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      // Garbage instead of HTTP, or a client gone mid-request: answer if we still can.
      if (socket.writable && err.code !== 'ECONNRESET') socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      else socket.destroy();
    });
    this.server = server;
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(port, host, () => {
        server.off('error', fail);
        ok();
      });
    });
    server.on('error', (err: NodeJS.ErrnoException) => emit('error', { gateway: this.id, code: err.code ?? 'PH_ERR_LISTEN', message: err.message }));
    const addr = server.address() as AddressInfo;
    const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    const address = { host: addr.address, port: addr.port, url: `http://${shownHost}:${addr.port}` };
    emit('gateway', { gateway: this.id, action: 'listening', address: address.url });
    return address;
  }

  /**
   * Graceful drain: stop accepting, send every tunnel a close frame (1001),
   * let HTTP requests finish for up to `drain_timeout`, then cut what is left.
   * Tunnels are closed at once rather than after the timeout: a WebSocket
   * never ends on its own, and a client told 1001 reconnects to the next
   * instance sooner.
   */
  async drain(timeoutMs = this.table.config.drain_timeout): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    emit('gateway', { gateway: this.id, action: 'draining', tunnels: this.tunnels.size + this.bridges.size, requests: this.activeRequests });
    const server = this.server;
    const closed = server ? new Promise<void>((ok) => server.close(() => ok())) : Promise.resolve();
    for (const t of [...this.tunnels, ...this.bridges]) t.close(1001, 'gateway shutting down');
    const deadline = Date.now() + timeoutMs;
    while ((this.activeRequests > 0 || this.tunnels.size > 0 || this.bridges.size > 0) && Date.now() < deadline) {
      server?.closeIdleConnections();
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const t of [...this.tunnels, ...this.bridges]) t.destroy();
    server?.closeAllConnections();
    await closed;
    this.agents.destroy();
    emit('gateway', { gateway: this.id, action: 'closed' });
  }

  /** Closes the listener (if any) and every connection, after a drain. */
  close(): Promise<void> {
    return this.drain();
  }
}

function isParsed(c: unknown): c is Config {
  return typeof c === 'object' && c !== null && Object.isFrozen(c) && Array.isArray((c as Config).apps);
}

function readTemplate(file: string): string {
  return readFileSync(file, 'utf8');
}
