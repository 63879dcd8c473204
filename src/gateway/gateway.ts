/**
 * The gateway: a route table swapped whole on reload, the two entry points an
 * `http.Server` calls (`handleRequest`, `handleUpgrade`), and — for
 * `porthole serve` — a listener with graceful drain.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import { parseConfig, type AppConfig, type Config } from '../config/schema.js';
import { AppStoppedError, AuthRequiredError, ConfigError, HeadersTooLargeError, MalformedRequestError, PeerAuthError, PortholeError, RequestTimeoutError, RouteNotFoundError, TlsRequiredError } from '../errors.js';
import { emit } from '../events.js';
import type { GatewayCore } from './core.js';
import { sendHttpError, sendRawHttpError, writeRawResponse } from './error-response.js';
import { forwardHttp } from './http-forward.js';
import { onResponseDone } from './response-done.js';
import type { OpenBridge } from './bridge.js';
import { AppActivity } from './app-activity.js';
import { refuseBridgeHttp } from './bridge.js';
import { StdioApps, type StdioLog, type StdioStderr } from './stdio-apps.js';
import { appUrls } from './app-urls.js';
import { AgentPool, RouteTable, type Lookup, type Match, type Route } from './router.js';
import { unroutedHint } from './unrouted-hint.js';
import { refuseUpgrade } from './upgrade-refusal.js';
import type { OpenTunnel } from './core.js';
import type { LocalAddress } from './host-policy.js';
import { resolveTunnelEngine, type TunnelEngine } from './native-binding.js';
import { startNativeLoop } from './native-tunnel.js';
import { clientProto, frontRequest, proxyUpgrade } from './upgrade.js';
import { cutFront, frontWanted, installFront } from './front.js';
import type { UpgradeRequestOptions } from './upstream-upgrade.js';
import { Certificates, loadCertFiles } from '../tls/certificates.js';
import { TlsListener } from './tls-listener.js';
import { H2Server } from './h2-server.js';
import { AUTH_PATH, AuthGate, type Decision } from '../auth/auth-gate.js';
import { setAdmission } from '../auth/admission.js';
import { noteConnection, useMemoryReducer } from './memory-reducer.js';
import { createPeerServer, isPeerRequest, markPeerRequest, peerAdmission, PeerSecret, trustsForwarded, type PeerListenOptions, type PeerTarget, type RouteExtras } from './peer.js';

export type { PeerListenOptions, PeerTarget, RouteExtras };

export interface GatewayOptions {
  /** Directory that relative paths in the config (error pages) are resolved against. Default: cwd. */
  baseDir?: string;
  /**
   * More for `/_porthole/health` (a cluster node adds its store and nodes).
   * `degraded: true` turns the status to "degraded" (still 200: the gateway serves).
   */
  health?: () => Record<string, unknown> & { degraded?: boolean };
  /**
   * Tells whether an app can take traffic (see GatewayCore.appGate). The
   * supervisor provides it; without one every app is assumed up.
   */
  appGate?: (app: string, req?: http.IncomingMessage) => null | Promise<PortholeError | null>;
  /**
   * Called first for every request on the gateway's own listener; returns
   * true when it answered (the admin API does this).
   */
  intercept?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean;
  /**
   * Called for `/_porthole/` requests on the peer listener (listenPeer), after the
   * cluster secret was checked; returns true when it answered. Without it, or
   * when it returns false: 404.
   */
  peerIntercept?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean;
  /**
   * Where a `stdio` app's stderr goes: a line sink per app (the supervisor's
   * log of the app). Without it, stderr lines are dropped.
   */
  stdioLog?: StdioLog;
  /**
   * Takes a `stdio` program's stderr stream instead of `stdioLog` taking its
   * lines: the app's log, which pauses the pipe while its file lags behind
   * (without it a program flooding stderr grew the gateway's memory).
   */
  stdioStderr?: StdioStderr;
  /** The data directory: `tls: internal` keeps its CA in `private/tls/` under it. Default: the config's `data`. */
  dataDir?: string;
  /** Lifetime of `tls: internal` certificates (default 12 h; renewed at two thirds). For tests that prove renewal. */
  internalCertLifetimeMs?: number;
  /**
   * The gateway's id in its events. `workers: N` gives every worker the primary's: they are one
   * gateway to the metrics, the activity feed and idle_stop, which match events on it.
   */
  id?: string;
  /** Called after every reload: `workers: N` pushes the new route table to the workers from here. */
  onReload?: (config: Config) => void;
}

export interface ListenOptions {
  /** How long a client may take to send its request head (default: the config's `header_timeout`); then 408. */
  headersTimeoutMs?: number;
  /** WebSocket handshakes through the front (front.ts), where it can take them. Default: on, unless PORTHOLE_FRONT=node. */
  front?: boolean;
}

export interface ListenAddress {
  host: string;
  port: number;
  /** `http://host:port`, or `https://host:port` with `tls` (the same port also answers cleartext). */
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
  readonly id: string;
  readonly tunnels = new Set<OpenTunnel>();
  readonly handshakes = new Set<() => void>();
  /** Set with each config swapped in: read per upgrade, so kept rather than recomputed. */
  tunnelEngine: TunnelEngine = 'js';
  /** Why the JavaScript tunnel is in force (the setting, or why the addon did not load); null with native. */
  tunnelEngineWhy: string | null = null;
  /** Whether the front (front.ts) takes this listener's WebSocket handshakes. */
  front = false;
  readonly bridges = new Set<OpenBridge>();
  readonly stdio: StdioApps;
  readonly activity = new AppActivity();
  draining = false;
  /** Stops the after-burst collections (memory-reducer.ts) with the last gateway of the process. */
  private releaseMemoryReducer: (() => void) | null = null;
  private table: RouteTable;
  private readonly agents = new AgentPool();
  private readonly baseDir: string;
  private readonly gate: GatewayOptions['appGate'];
  private readonly intercept: GatewayOptions['intercept'];
  private readonly peerIntercept: GatewayOptions['peerIntercept'];
  private readonly healthExtra: GatewayOptions['health'];
  private server: http.Server | null = null;
  /** The listener other nodes of a cluster forward to (listenPeer), and its secret. */
  private peerServer: http.Server | null = null;
  private peerSecret: PeerSecret | null = null;
  /** Apps that run on other nodes (reload's `peers`), kept when a reload does not say. */
  private peers: ReadonlyMap<string, PeerTarget> | undefined;
  private activeRequests = 0;
  /** With `tls`: the certificate in force and its renewal, and the TLS side of the port. */
  private certificates: Certificates | null = null;
  private tlsListener: TlsListener | null = null;
  /** HTTP/2 on the TLS side (ALPN `h2`). */
  private h2: H2Server | null = null;
  private readonly dataDir: string | undefined;
  private readonly internalCertLifetimeMs: number | undefined;
  /** Access control (`auth`): who reaches which app, and the login pages (src/auth/). */
  readonly auth: AuthGate;

  private readonly onReload: GatewayOptions['onReload'];

  constructor(config: unknown, options: GatewayOptions = {}) {
    this.id = options.id ?? randomBytes(4).toString('hex');
    this.onReload = options.onReload;
    this.baseDir = options.baseDir ?? process.cwd();
    this.stdio = new StdioApps(this.id, options.stdioLog ?? (() => undefined), (p) => resolve(this.baseDir, p), () => this.table.config.app_defaults, options.stdioStderr);
    this.gate = options.appGate;
    this.intercept = options.intercept;
    this.peerIntercept = options.peerIntercept;
    this.healthExtra = options.health;
    this.dataDir = options.dataDir;
    this.internalCertLifetimeMs = options.internalCertLifetimeMs;
    this.table = this.build(config);
    this.setEngine();
    this.auth = new AuthGate({
      gatewayId: this.id,
      config: () => this.table.config,
      isAppHost: (host) => this.appAtHost(host) !== undefined,
      proto: (req) => this.clientProto(req),
      endConnections: (sockets) => {
        const open = [...this.tunnels, ...this.bridges].filter((c) => c.client !== undefined && sockets.has(c.client));
        for (const c of open) c.close(1008, 'PH_ERR_AUTH_REQUIRED: logged out');
        const stdio = this.stdio.closeClientsOf(sockets, 1008, 'PH_ERR_AUTH_REQUIRED: logged out');
        // Still connecting to the app: no tunnel yet.
        for (const s of sockets) if (!open.some((c) => c.client === s) && !stdio.includes(s)) s.destroy();
      },
    });
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
   * routes they started with. `extras.peers`: the apps of the config that run
   * on another node of a cluster, routed to that node's peer listener; without
   * `extras`, the peers in force stay.
   */
  reload(config: unknown, extras?: RouteExtras): void {
    const before = this.server?.listening ? this.appUrls() : undefined;
    const peers = extras ? extras.peers : this.peers;
    this.table = this.build(config, peers);
    this.setEngine();
    this.agents.keepOnly(this.table.agents());
    this.peers = peers;
    this.auth.configChanged();
    this.certificates?.update(this.table.config);
    this.onReload?.(this.table.config);
    if (!before) return;
    // A new app (or new URLs) is announced where the `gateway listening` line announced the first ones.
    for (const [app, urls] of Object.entries(this.appUrls())) {
      if (before[app]?.join(' ') !== urls.join(' ')) emit('app', { app, state: 'routed', urls });
    }
  }

  /** Builds routes for a config (and peers, as reload takes them) without swapping them in: throws ConfigError when it is invalid. */
  validate(config: unknown, extras?: RouteExtras): Config {
    const cfg = this.build(config, extras ? extras.peers : this.peers).config;
    this.checkTls(cfg);
    return cfg;
  }

  /**
   * What a reload may not change about TLS: whether the port speaks it (the
   * listener is made for one or the other), and certificate files that do
   * not load (TlsCertError: the ones in force stay). Files are read here only
   * when the config names other ones: the same files are the watcher's
   * business, and an app registered while they are being replaced must not
   * be refused for them.
   */
  private checkTls(cfg: Config): void {
    if (this.server?.listening && Boolean(cfg.tls) !== Boolean(this.tlsListener)) {
      throw new ConfigError([`tls: turning TLS ${cfg.tls ? 'on' : 'off'} takes a restart of the gateway (the running one keeps ${this.tlsListener ? 'https' : 'http'})`]);
    }
    const now = this.table.config.tls;
    const sameFiles = now !== undefined && !now.internal && now.cert === cfg.tls?.cert && now.key === cfg.tls?.key;
    if (cfg.tls && !cfg.tls.internal && !sameFiles) loadCertFiles(cfg.tls, this.baseDir);
  }

  private build(config: unknown, peers?: ReadonlyMap<string, PeerTarget>): RouteTable {
    const cfg = isParsed(config) ? config : parseConfig(config);
    // `tunnel_engine: native` without the addon is a config error (PH_ERR_NATIVE_TUNNEL), found before anything is swapped in.
    resolveTunnelEngine(cfg.tunnel_engine);
    return new RouteTable(cfg, { agents: this.agents, readTemplate: (f) => readTemplate(resolve(this.baseDir, f)), resolvePath: (f) => resolve(this.baseDir, f), peers });
  }

  private setEngine(): void {
    const { engine, why } = resolveTunnelEngine(this.table.config.tunnel_engine);
    this.tunnelEngine = engine;
    this.tunnelEngineWhy = why;
    // Its two fds (epoll, eventfd) belong to the gateway from the start, not to its first tunnel.
    if (engine === 'native') startNativeLoop();
  }

  /**
   * Handles a request if it belongs to an app; returns false (and touches
   * nothing) otherwise, so an existing server can fall through to its own
   * routes. A request for an app under a Host that is not this gateway's
   * (DNS rebinding) is answered 421 here.
   */
  handleRequest(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    // The login pages of `auth: login` belong to the gateway wherever it is embedded.
    if ((req.url ?? '/').startsWith(AUTH_PATH) && this.table.config.users.length > 0) {
      const refusedHost = this.checkHost(req.headers.host, req.socket);
      if (refusedHost) return this.refuseRequest(req, res, refusedHost), true;
      if (this.auth.handle(req, res)) return true;
    }
    const found = this.table.lookup(req.headers.host, req.url ?? '/', false);
    if (found.kind === 'none') return false;
    const refused = this.checkHost(req.headers.host, req.socket);
    if (refused) this.refuseRequest(req, res, refused, (found.kind === 'app' ? found.match.route : found.route).app.name);
    else this.dispatch(req, res, found);
    return true;
  }

  private dispatch(req: http.IncomingMessage, res: http.ServerResponse, found: Exclude<Lookup, { kind: 'none' }>): void {
    this.activeRequests++;
    onResponseDone(res, () => this.activeRequests--);
    if (found.kind === 'redirect') {
      // 308 for other methods: a 301 turns a POST into a GET in browsers.
      const status = req.method === 'GET' || req.method === 'HEAD' ? 301 : 308;
      res.writeHead(status, { Location: found.location, 'Content-Length': '0' });
      res.end();
      emit('request', { gateway: this.id, app: found.route.app.name, method: req.method ?? 'GET', path: req.url ?? '/', status, ms: 0 });
      return;
    }
    if (this.draining) res.setHeader('Connection', 'close');
    const match = found.match;
    // From another node of the cluster: it decided (peer.ts).
    const decided = isPeerRequest(req) ? { kind: 'admit' as const, admission: peerAdmission(req) } : this.auth.decide(req, match.route.app, false);
    if (!(decided instanceof Promise)) return this.admitted(req, res, match, decided);
    decided.then(
      (d) => (res.destroyed ? undefined : this.admitted(req, res, match, d)),
      (err) => this.refuseRequest(req, res, err as PortholeError, match.route.app.name),
    );
  }

  /** After access control: on to the app, or the refusal (a login redirect, 401, the auth service's answer). */
  private admitted(req: http.IncomingMessage, res: http.ServerResponse, match: Extract<Lookup, { kind: 'app' }>['match'], d: Decision): void {
    if (d.kind !== 'admit') {
      const app = match.route.app.name;
      onResponseDone(res, () => emit('request', { gateway: this.id, app, method: req.method ?? 'GET', path: req.url ?? '/', status: res.statusCode, ms: 0, code: d.kind === 'refuse' ? d.err.code : undefined }));
      // An unread body must not be parsed as the next request.
      if (req.method !== 'GET' && req.method !== 'HEAD') res.setHeader('Connection', 'close');
      return this.auth.answer(req, res, d, match.route.errorPage ?? this.errorPage);
    }
    if (d.admission) setAdmission(req, d.admission);
    if (match.route.bridgeOnly) refuseBridgeHttp(this.id, req, res, match.route);
    else forwardHttp(this, req, res, match);
  }

  private refuseRequest(req: http.IncomingMessage, res: http.ServerResponse, err: PortholeError, app: string | null = null): void {
    const url = req.url ?? '/';
    onResponseDone(res, () => emit('request', { gateway: this.id, app, method: req.method ?? 'GET', path: url, status: err.status, ms: 0, code: err.code }));
    // The request may carry a body the gateway will not read: close rather than parse it as the next request.
    res.setHeader('Connection', 'close');
    sendHttpError(res, err, req.headers.accept, this.table.errorPage);
  }

  /**
   * Handles a WebSocket upgrade if it belongs to an app; returns false (and
   * touches nothing) otherwise.
   */
  handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const found = this.table.lookup(req.headers.host, req.url ?? '/', true);
    if (found.kind === 'none') return false;
    const route = found.kind === 'app' ? found.match.route : found.route;
    // From another node of the cluster (peer.ts): it checked the Host, and decided access.
    const peer = isPeerRequest(req);
    const refused = peer ? null : this.checkHost(req.headers.host, req.socket);
    if (refused) {
      refuseUpgrade(this.id, req, socket, refused, { app: route.app.name, wsErrors: route.app.ws_errors, template: route.errorPage ?? this.errorPage });
      return true;
    }
    if (found.kind === 'redirect') {
      // A browser does not follow redirects on a WebSocket handshake: name the right URL in the close reason instead.
      const app = found.route.app.name;
      const err = new RouteNotFoundError(`${app}: WebSocket URLs of this app start with ${found.location}`, { app });
      refuseUpgrade(this.id, req, socket, err, { app, wsErrors: route.app.ws_errors, template: route.errorPage ?? this.errorPage });
      return true;
    }
    const match = found.match;
    const decided = peer ? { kind: 'admit' as const, admission: peerAdmission(req) } : this.auth.decide(req, route.app, true);
    if (!(decided instanceof Promise)) this.upgradeAdmitted(req, socket, head, match, decided);
    else {
      socket.on('error', () => socket.destroy());
      decided.then(
        (d) => (socket.destroyed ? undefined : this.upgradeAdmitted(req, socket, head, match, d)),
        () => socket.destroy(),
      );
    }
    return true;
  }

  /**
   * The front's question (front.ts): where an upgrade goes when it needs nothing but a
   * tunnel, or null. The upgrade listener's decisions in its order (handleUpgrade,
   * upgradeAdmitted, proxyUpgrade), none failing, on an app without access control (a
   * decision there may count a failed login: made once, by Node's path).
   */
  frontPlan(req: http.IncomingMessage): { match: Match; o: UpgradeRequestOptions } | null {
    if (this.mustRedirect(req)) return null;
    const found = this.table.lookup(req.headers.host, req.url ?? '/', true);
    if (found.kind !== 'app' || this.checkHost(req.headers.host, req.socket)) return null;
    const app = found.match.route.app;
    if (this.auth.modeOf(app).mode !== 'none') return null;
    const d = this.auth.decide(req, app, true);
    if (d instanceof Promise || d.kind !== 'admit') return null;
    if (d.admission) setAdmission(req, d.admission);
    const o = frontRequest(this, req, found.match);
    return o ? { match: found.match, o } : null;
  }

  /** After access control: the tunnel, or a completed handshake closed 1008 "login required" (never a bare 1006). */
  private upgradeAdmitted(req: http.IncomingMessage, socket: Duplex, head: Buffer, match: Extract<Lookup, { kind: 'app' }>['match'], d: Decision): void {
    const route = match.route;
    if (d.kind !== 'admit') {
      const err = d.kind === 'refuse' ? d.err : new AuthRequiredError('login required', { app: route.app.name });
      if (d.kind === 'refuse' && d.relay && route.app.ws_errors === 'http') {
        // ws_errors: http asks for HTTP answers: the auth service's own, as it is.
        emit('upgrade', { gateway: this.id, app: route.app.name, path: req.url ?? '/', accepted: false, status: d.relay.status, code: err.code, reason: err.message });
        const headers: Record<string, string> = {};
        for (const [n, v] of d.relay.headers) if (n.toLowerCase() !== 'set-cookie') headers[n] = v;
        return writeRawResponse(socket, d.relay.status, { ...headers, 'X-Porthole-Error': err.code }, d.relay.body.toString('utf8'));
      }
      return refuseUpgrade(this.id, req, socket, err, { app: route.app.name, wsErrors: route.app.ws_errors, template: route.errorPage ?? this.errorPage });
    }
    if (d.admission) {
      setAdmission(req, d.admission);
      this.auth.track(d.admission.family, socket);
    }
    proxyUpgrade(this, req, socket, head, match);
  }

  /**
   * Whether the gateway answers under this Host on a socket whose local
   * address is `localAddress`: null, or the refusal (PH_ERR_BAD_HOST for a
   * Host that is not `host[:port]`, PH_ERR_HOST_REFUSED for a name that is
   * not this gateway's on a loopback listener, or outside `server_names`).
   */
  checkHost(host: string | undefined, local: LocalAddress): PortholeError | null {
    return this.table.hosts.check(host, local);
  }

  /**
   * The app that a Host header routes to whole (one of its `hosts` or automatic names),
   * or undefined when the gateway's own paths answer there.
   */
  appAtHost(host: string): string | undefined {
    const found = this.table.lookup(host, '/', false);
    return found.kind === 'app' && found.match.prefix === '' ? found.match.route.app.name : undefined;
  }

  /** Where an app can be opened: under its prefix, and at the root of its own host names (absolute once listening). */
  urlsOf(app: AppConfig): string[] {
    const addr = this.server?.address();
    const at = addr && typeof addr === 'object' ? { host: addr.address, port: addr.port } : this.servedAt;
    return appUrls(app, this.table.config, at);
  }

  /**
   * Where this gateway's port is when other processes listen on it for it (the primary of
   * `workers: N`): the apps' URLs are absolute there too.
   */
  servedAt: { host: string; port: number } | undefined;

  /** `urlsOf` for every app in the config in force. */
  appUrls(): Record<string, string[]> {
    return Object.fromEntries(this.table.config.apps.map((a) => [a.name, this.urlsOf(a)]));
  }

  proto(req: http.IncomingMessage): 'http' | 'https' {
    return (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
  }

  /** The scheme the client used: the listener's, or a trusted proxy's `X-Forwarded-Proto`. */
  clientProto(req: http.IncomingMessage): 'http' | 'https' {
    return clientProto(this, req);
  }

  forwardedHost(req: http.IncomingMessage): string | undefined {
    if (!trustsForwarded(this, req)) return undefined;
    const h = req.headers['x-forwarded-host'];
    return typeof h === 'string' ? h.split(',')[0].trim() : undefined;
  }

  appGate(app: string, req?: http.IncomingMessage): null | Promise<PortholeError | null> {
    return this.gate ? this.gate(app, req) : null;
  }

  rematch(req: http.IncomingMessage, match: Match, upgrade: boolean): Match {
    const found = this.table.lookup(req.headers.host, req.url ?? '/', upgrade);
    return found.kind === 'app' && found.match.route.app.name === match.route.app.name ? found.match : match;
  }

  /**
   * The request listener `porthole serve` uses. At an app's own host name
   * every path is the app's. Elsewhere: the admin API (which checks Host
   * itself), then the Host check, `/_porthole/health`, the apps under their
   * prefixes, and a 404 page.
   */
  readonly requestListener = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const url = req.url ?? '/';
    if (this.mustRedirect(req)) return this.redirectToHttps(req, res);
    // The login pages answer under every name, an app's own included (its cookie is set there).
    if (url.startsWith(AUTH_PATH)) {
      const refusedHost = this.checkHost(req.headers.host, req.socket);
      if (refusedHost) return this.refuseRequest(req, res, refusedHost);
      if (this.auth.handle(req, res)) return;
    }
    const found = this.table.lookup(req.headers.host, url, false);
    const byHost = found.kind === 'app' && found.match.prefix === '';
    if (!byHost && this.intercept?.(req, res)) return;
    const refused = this.checkHost(req.headers.host, req.socket);
    if (refused) return this.refuseRequest(req, res, refused);
    if (!byHost && (url === '/_porthole/health' || url.startsWith('/_porthole/health?'))) {
      const { degraded, ...extra } = this.healthExtra?.() ?? {};
      const body = JSON.stringify({ status: this.draining ? 'draining' : degraded ? 'degraded' : 'ok', apps: this.table.routes.length, tunnels: this.tunnels.size + this.bridges.size, tunnelEngine: this.tunnelEngine, ...extra });
      res.writeHead(this.draining ? 503 : 200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
      res.end(body);
      return;
    }
    if (found.kind !== 'none') return this.dispatch(req, res, found);
    const err = new RouteNotFoundError(`No app is routed at ${url.split('?')[0]}.`);
    onResponseDone(res, () => emit('request', { gateway: this.id, app: null, method: req.method ?? 'GET', path: url, status: 404, ms: 0, code: err.code }));
    sendHttpError(res, err, req.headers.accept, this.table.errorPage);
  };

  readonly upgradeListener = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (this.mustRedirect(req)) return this.refuseCleartextUpgrade(req, socket);
    if (this.handleUpgrade(req, socket, head)) return;
    const cfg = this.table.config;
    const template = this.table.errorPage;
    const refused = this.checkHost(req.headers.host, req.socket);
    if (refused) return refuseUpgrade(this.id, req, socket, refused, { app: null, wsErrors: cfg.ws_errors, template });
    // A page that does not know its prefix dials the root (noVNC's /websockify): say where the app is.
    const hint = unroutedHint(req.url ?? '/', req.headers.host, this.table);
    const err = new RouteNotFoundError(hint.message, hint.app ? { app: hint.app } : {});
    refuseUpgrade(this.id, req, socket, err, { app: null, wsErrors: cfg.ws_errors, template, reason: hint.reason });
  };

  /** A cleartext request on a TLS port whose `redirect_http` is on. */
  private mustRedirect(req: http.IncomingMessage): boolean {
    return this.tlsListener !== null && this.table.config.tls?.redirect_http === true && this.proto(req) === 'http';
  }

  /**
   * 308 to the same URL over https:// (308 keeps the method and body, as a POST
   * needs), on the same port, which answers both. The Host check runs first:
   * a name that is not the gateway's gets its 421, not a redirect.
   */
  private redirectToHttps(req: http.IncomingMessage, res: http.ServerResponse): void {
    const refused = this.checkHost(req.headers.host, req.socket);
    if (refused) return this.refuseRequest(req, res, refused);
    const url = req.url ?? '/';
    const location = `https://${this.authorityOf(req)}${originForm(url)}`;
    onResponseDone(res, () => emit('request', { gateway: this.id, app: null, method: req.method ?? 'GET', path: url, status: 308, ms: 0 }));
    // The request may carry a body the gateway will not read.
    res.writeHead(308, { Location: location, 'Content-Length': '0', Connection: 'close' });
    res.end();
  }

  /** A browser does not follow a redirect on a WebSocket handshake: the close reason says what to use. */
  private refuseCleartextUpgrade(req: http.IncomingMessage, socket: Duplex): void {
    const cfg = this.table.config;
    const refused = this.checkHost(req.headers.host, req.socket);
    // No URL in the message: a query may hold a token (a bridge's), and the message is logged.
    const err = refused ?? new TlsRequiredError('use wss:// (this port takes WebSockets over TLS only)');
    refuseUpgrade(this.id, req, socket, err, { app: null, wsErrors: cfg.ws_errors, template: this.table.errorPage });
  }

  /** The request's Host (checked by checkHost), else the address it reached. */
  private authorityOf(req: http.IncomingMessage): string {
    const host = req.headers.host;
    if (host) return host;
    const a = req.socket.localAddress ?? '127.0.0.1';
    return `${a.includes(':') ? `[${a}]` : a}:${req.socket.localPort}`;
  }

  /** Listens on `host:port` (port 0 picks a free one); with `tls`, TLS and cleartext on the same port. */
  async listen(host = '127.0.0.1', port = 50000, options: ListenOptions = {}): Promise<ListenAddress> {
    // Read first: a PORTHOLE_FRONT the gateway does not know stops the start (PH_ERR_CONFIG) before anything listens.
    const wantFront = options.front ?? frontWanted();
    const headersTimeout = options.headersTimeoutMs ?? this.table.config.header_timeout;
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
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.clientError(err, socket));
    const tlsConfig = this.table.config.tls;
    if (tlsConfig) {
      // The certificate first: a gateway that cannot serve one does not start (TlsCertError, TlsCaError).
      const certificates = new Certificates(this.table.config, {
        gateway: this.id,
        baseDir: this.baseDir,
        dataDir: this.dataDir,
        internalLifetimeMs: this.internalCertLifetimeMs,
        listenHost: host,
        onChange: (pair) => this.tlsListener?.setPair(pair),
      });
      const pair = await certificates.start();
      this.certificates = certificates;
      const h2 = new H2Server({ gateway: this.id, request: this.requestListener, upgrade: this.upgradeListener, idleMs: 65_000 });
      this.h2 = h2;
      this.tlsListener = new TlsListener(server, { pair, timeoutMs: headersTimeout, h2: (socket) => h2.accept(socket) });
    }
    this.server = server;
    await new Promise<void>((ok, fail) => {
      const failed = (err: Error) => {
        // No renewal timer or file watcher outlives a listener that never started.
        this.certificates?.close();
        fail(err);
      };
      server.once('error', failed);
      server.listen(port, host, () => {
        server.off('error', failed);
        ok();
      });
    });
    server.on('error', (err: NodeJS.ErrnoException) => emit('error', { gateway: this.id, code: err.code ?? 'PH_ERR_LISTEN', message: err.message }));
    server.on('connection', noteConnection);
    this.releaseMemoryReducer = useMemoryReducer();
    // The front (front.ts): WebSocket handshakes on the addon's thread. Cleartext listeners only.
    const front = !tlsConfig && this.tunnelEngine === 'native' && wantFront ? installFront(this, server) : null;
    this.front = front !== null;
    const addr = server.address() as AddressInfo;
    const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    const address = { host: addr.address, port: addr.port, url: `${tlsConfig ? 'https' : 'http'}://${shownHost}:${addr.port}` };
    emit('gateway', { gateway: this.id, action: 'listening', address: address.url, apps: this.appUrls(), tunnelEngine: this.tunnelEngine, ...(this.tunnelEngineWhy ? { tunnelEngineWhy: this.tunnelEngineWhy } : {}), ...(front ? { front: true } : {}), ...(front?.deferWhy ? { frontWhy: front.deferWhy } : {}) });
    return address;
  }

  /**
   * Listens for the other nodes of a cluster (docs/cluster.md, "The hop between
   * nodes"): the same routes and handlers, for requests that carry the cluster
   * secret in `X-Porthole-Peer` (else 403 PH_ERR_PEER_AUTH, nothing routed).
   * The edge node that forwards them has checked the Host and decided access;
   * its `X-Forwarded-*` are trusted. Closed by drain() and close() with the
   * main listener.
   */
  async listenPeer(opts: PeerListenOptions): Promise<ListenAddress> {
    if (this.peerServer) throw new Error('listenPeer(): the peer listener is open already');
    const server = createPeerServer(opts, opts.headersTimeoutMs ?? this.table.config.header_timeout);
    this.peerSecret = new PeerSecret(opts.secret);
    server.on('request', this.peerRequestListener);
    server.on('upgrade', this.peerUpgradeListener);
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.clientError(err, socket));
    // A TLS handshake that fails (a node with the wrong CA) is the other node's to report.
    server.on('tlsClientError', (_err: Error, socket: Duplex) => socket.destroy());
    this.peerServer = server;
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(opts.port, opts.host, () => {
        server.off('error', fail);
        ok();
      });
    }).catch((err) => {
      this.peerServer = null;
      throw err;
    });
    server.on('error', (err: NodeJS.ErrnoException) => emit('error', { gateway: this.id, code: err.code ?? 'PH_ERR_LISTEN', message: err.message }));
    server.on('connection', noteConnection);
    this.releaseMemoryReducer = useMemoryReducer();
    const addr = server.address() as AddressInfo;
    const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    return { host: addr.address, port: addr.port, url: `${opts.tls ? 'https' : 'http'}://${shownHost}:${addr.port}` };
  }

  /** The peer listener's requests: the secret first; then the apps (at their prefixes or host names), or `/_porthole/` for peerIntercept. */
  private readonly peerRequestListener = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const url = req.url ?? '/';
    const refused = this.peerSecret?.refusal(req);
    if (refused !== null) {
      const err = refused ?? new PeerAuthError('no peer listener');
      emit('error', { gateway: this.id, code: err.code, message: err.message });
      return this.refuseRequest(req, res, err);
    }
    markPeerRequest(req);
    const found = this.table.lookup(req.headers.host, url, false);
    const byHost = found.kind === 'app' && found.match.prefix === '';
    if (!byHost && url.startsWith('/_porthole/')) {
      if (this.peerIntercept?.(req, res)) return;
    } else if (found.kind !== 'none') {
      const loop = notHere(found);
      return loop ? this.refuseRequest(req, res, loop, loop.app) : this.dispatch(req, res, found);
    }
    const err = new RouteNotFoundError(`No app is routed at ${url.split('?')[0]} on this node.`);
    onResponseDone(res, () => emit('request', { gateway: this.id, app: null, method: req.method ?? 'GET', path: url, status: 404, ms: 0, code: err.code }));
    sendHttpError(res, err, req.headers.accept, this.table.errorPage);
  };

  private readonly peerUpgradeListener = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    const refused = this.peerSecret?.refusal(req);
    if (refused !== null) {
      // No handshake is completed for a caller that is not a node of the cluster: the plain 403.
      const err = refused ?? new PeerAuthError('no peer listener');
      emit('error', { gateway: this.id, code: err.code, message: err.message });
      socket.on('error', () => socket.destroy());
      emit('upgrade', { gateway: this.id, app: null, path: req.url ?? '/', accepted: false, status: err.status, code: err.code, reason: err.message });
      return sendRawHttpError(socket, err, req.headers.accept, this.table.errorPage);
    }
    markPeerRequest(req);
    const loop = notHere(this.table.lookup(req.headers.host, req.url ?? '/', true));
    if (loop) return refuseUpgrade(this.id, req, socket, loop, { app: loop.app ?? null, wsErrors: this.table.config.ws_errors, template: this.table.errorPage });
    if (this.handleUpgrade(req, socket, head)) return;
    const err = new RouteNotFoundError(`No app is routed at ${(req.url ?? '/').split('?')[0]} on this node.`);
    refuseUpgrade(this.id, req, socket, err, { app: null, wsErrors: this.table.config.ws_errors, template: this.table.errorPage });
  };

  /**
   * A client whose bytes Node's parser refused, or that never finished its head: the status
   * that says why (408, 431, 400) with its code, and a `request` event. Nothing is written on
   * a connection whose response has already started: a second one would be read as the answer
   * to a next request.
   */
  private clientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    const inFlight = (socket as { _httpMessage?: http.ServerResponse | null })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || (inFlight && inFlight.headersSent)) {
      socket.destroy();
      return;
    }
    // A connection that never sent a byte (a browser's preconnect left unused) is closed
    // quietly: nothing was asked, so nothing is answered or logged.
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT' && (socket as { bytesRead?: number }).bytesRead === 0) {
      socket.destroy();
      return;
    }
    const e = clientFailure(err);
    emit('request', { gateway: this.id, app: null, method: '-', path: '-', status: e.status, ms: 0, code: e.code });
    socket.on('error', () => socket.destroy());
    writeRawResponse(socket, e.status, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Porthole-Error': e.code }, `${e.status} ${e.message}\n`);
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
    const peer = this.peerServer;
    const closed = Promise.all([server, peer].map((s) => (s ? new Promise<void>((ok) => s.close(() => ok())) : undefined)));
    for (const t of [...this.tunnels, ...this.bridges]) t.close(1001, 'gateway shutting down');
    // A handshake still waiting for its upstream would open a tunnel after this, or hold the
    // listener's close until response_timeout: given up now, as a new one would be.
    for (const giveUp of [...this.handshakes]) giveUp();
    this.stdio.drain('gateway shutting down');
    this.h2?.close();
    const deadline = Date.now() + timeoutMs;
    while ((this.activeRequests > 0 || this.tunnels.size > 0 || this.bridges.size > 0) && Date.now() < deadline) {
      server?.closeIdleConnections();
      peer?.closeIdleConnections();
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const t of [...this.tunnels, ...this.bridges]) t.destroy();
    // Every stdio program and what it started is gone before the gateway says it is closed.
    await this.stdio.stopAll();
    server?.closeAllConnections();
    // Connections the front holds are not Node's yet: cut as they come back (front.ts).
    if (server && this.front) cutFront(server);
    peer?.closeAllConnections();
    this.h2?.destroy();
    this.tlsListener?.destroyPending();
    this.certificates?.close();
    await closed;
    this.releaseMemoryReducer?.();
    this.agents.destroy();
    emit('gateway', { gateway: this.id, action: 'closed' });
  }

  /** Closes the listener (if any) and every connection, after a drain. */
  close(): Promise<void> {
    return this.drain();
  }
}

/**
 * A request from another node for an app this node routes to a third one (or back): the
 * nodes disagree about where it runs, for a moment. Refused rather than passed on, so a
 * disagreement never becomes a loop between nodes.
 */
function notHere(found: Lookup): AppStoppedError | null {
  if (found.kind !== 'app' || !found.match.route.peer) return null;
  const app = found.match.route.app.name;
  return new AppStoppedError(`app ${app} is not on this node (it routes it on to node ${found.match.route.peer.node})`, { app });
}

/** The path and query of a request target: absolute-form (`http://host/p`) and `*` become origin-form. */
function originForm(target: string): string {
  if (target.startsWith('/')) return target;
  try {
    const u = new URL(target);
    return `${u.pathname}${u.search}`;
  } catch {
    return '/';
  }
}

/** Node's parser and timeout errors as Porthole errors (the codes are llhttp's and Node's). */
function clientFailure(err: NodeJS.ErrnoException): PortholeError {
  if (err.code === 'HPE_HEADER_OVERFLOW') return new HeadersTooLargeError('the request head is larger than 16 KiB');
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'HPE_HEADERS_TIMEOUT') return new RequestTimeoutError('the request head did not arrive in time');
  return new MalformedRequestError(`the request is not valid HTTP/1.1 (${err.code ?? 'parse error'}${'reason' in err && typeof err.reason === 'string' ? `: ${err.reason}` : ''})`);
}

function isParsed(c: unknown): c is Config {
  return typeof c === 'object' && c !== null && Object.isFrozen(c) && Array.isArray((c as Config).apps);
}

/** An error page is a page: larger than this is a mistake (or an attempt to exhaust memory). */
const MAX_TEMPLATE_BYTES = 1024 * 1024;

function readTemplate(file: string): string {
  // Checked first: readFileSync on a FIFO blocks the event loop for good, and on
  // /dev/zero reads until memory runs out (an admin registration could name either).
  const st = statSync(file);
  if (!st.isFile()) throw new Error('not a regular file');
  if (st.size > MAX_TEMPLATE_BYTES) throw new Error(`larger than ${MAX_TEMPLATE_BYTES} bytes`);
  return readFileSync(file, 'utf8');
}
