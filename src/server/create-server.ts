/**
 * The composition root (issue 9, item 1): the gateway, the supervisor, the
 * app registry and its store, the admin API and its token, wired the way
 * `porthole serve` runs them. `porthole serve` is flags, signals, config-file
 * watching and printing around `createServer()`; a Node program can embed
 * the same server.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { loadConfigFile } from '../config/load.js';
import { parseConfig, type Config } from '../config/schema.js';
import { ConfigError, type MetricsListenError } from '../errors.js';
import { emit, subscribe } from '../events.js';
import { Activity } from '../admin/activity.js';
import { createAdminApi, type AdminApi } from '../admin/api.js';
import type { GuardOptions } from '../admin/guard.js';
import { Sessions } from '../admin/session.js';
import { AppRegistry } from '../admin/registry.js';
import { ensureToken, tokenFile } from '../admin/token.js';
import { Supervisor } from '../apps/supervisor.js';
import { createDashboard, DASHBOARD_PATH } from '../dashboard/dashboard.js';
import { createGateway, type Gateway, type ListenAddress } from '../gateway/gateway.js';
import { startLogger, type LogFormat } from '../log/logger.js';
import { createMetrics, type Metrics } from '../metrics/metrics.js';
import type { ClusterSnapshot } from '../metrics/cluster-metrics.js';
import { metricsEndpoint } from '../metrics/endpoint.js';
import { listenMetrics, type MetricsListener } from '../metrics/listener.js';
import { FileStore } from '../store/file-store.js';
import { ClusterNode, VERSION_HEADER } from '../cluster/node.js';
import { dataLayout, prepareDataDir, type DataLayout } from './data-dir.js';
import { checkAuthConfigured } from '../auth/safe-default.js';
import type { WorkerPool } from '../workers/pool.js';

export interface ServerOptions {
  /**
   * The config, shaped like `porthole.yaml` (validated here; `ConfigError`
   * when it is not) or already parsed. Ignored when `configFile` is given.
   * Default: no apps.
   */
  config?: unknown;
  /** A YAML config file, read instead of `config`; relative paths in it are resolved from its directory. */
  configFile?: string;
  /** The state directory (token, registry, app logs). Default: the config's `data`, else `$XDG_DATA_HOME/porthole`. */
  dataDir?: string;
  /** Where to listen: `"HOST:PORT"` or `{ host, port }` (port 0 picks a free one). Default: the config's `listen`, else 127.0.0.1:50000. */
  listen?: string | { host?: string; port: number };
  /** Where relative paths of the config (error pages) are resolved. Default: the config file's directory, else the cwd. */
  baseDir?: string;
  /**
   * Log every event as a line on stdout (see `startLogger`) until the server
   * is drained: `true` for the config's `log` settings, or a format.
   * Default: no logging (subscribe to the events yourself).
   */
  log?: boolean | { format?: LogFormat | 'auto' };
  /**
   * Prometheus metrics (see docs/metrics.md): at `GET /_porthole/metrics`
   * behind the admin token, or, with the config's `metrics.listen`, at
   * `/metrics` on that address only. Default: the config's
   * `metrics.enabled` (true); false subscribes to nothing.
   */
  metrics?: boolean;
  /** In a cluster (`store: redis://…`): this node's name; default the config's `cluster.node`, else the host name. */
  node?: string;
  /**
   * `porthole serve` with `workers: N` (docs/workers.md): worker processes listen on the
   * port instead of this process, which keeps the supervisor, the store and the admin API.
   */
  workers?: (config: Config) => WorkerPool | undefined;
}

/** What `listen()` resolves with. */
export interface ServerStarted extends ListenAddress {
  /** The admin token (send it as `Authorization: Bearer …`). */
  token: string;
  /** True when this start created the token: show it once, it is not printed again. */
  tokenCreated: boolean;
  /** Where the token is kept (mode 0600). */
  tokenFile: string;
  /** With `metrics.listen`: where Prometheus scrapes (`http://HOST:PORT/metrics`). */
  metricsUrl?: string;
  /** In a cluster: this node's name and where its peer listener listens. */
  node?: { name: string; peer: string };
}

/** Why `listen()` failed (code `PH_ERR_START`, also sent as an `error` event); the original error is `cause`. */
export class ServerStartError extends Error {
  readonly code = 'PH_ERR_START';
  constructor(
    /** `data` (the data dir), `registry` (loading the stored apps), `metrics` (`metrics.listen`; the cause is a `PH_ERR_METRICS_LISTEN`), `listen` (the port), `token` (creating it). */
    readonly stage: 'data' | 'registry' | 'metrics' | 'listen' | 'token' | 'store' | 'cluster',
    message: string,
    override readonly cause: NodeJS.ErrnoException,
  ) {
    super(message);
    this.name = 'ServerStartError';
    emit('error', { code: this.code, message: `${message} (${stage})` });
  }
}

export interface PortholeServer {
  /** The config in force (the last one `reload` swapped in). */
  readonly config: Config;
  /** The config file, when the server was made from one. */
  readonly configFile: string | undefined;
  readonly dataDir: string;
  /** `private/` (token, registry, logs) and `apps/` (each app's default cwd) under `dataDir`. */
  readonly layout: DataLayout;
  /** Where the admin token is (or will be) kept. */
  readonly tokenFile: string;
  /** The admin token, once `listen()` has resolved. */
  readonly token: string | undefined;
  /** The address to listen on. */
  readonly listenAddress: { host: string; port: number };
  readonly gateway: Gateway;
  readonly supervisor: Supervisor;
  /** The apps of the config file and the admin API; ready once `listen()` has resolved. */
  readonly registry: AppRegistry;
  /** The events (`porthole:request`, `porthole:app`, …), as `subscribe` from the package. */
  readonly subscribe: typeof subscribe;
  /** The metrics served at `/_porthole/metrics` (undefined with `metrics: false`). */
  readonly metrics: Metrics | undefined;
  /** This gateway as a node of a cluster (`store: redis://…`), else undefined. */
  readonly node: ClusterNode | undefined;
  /**
   * A one-time login link to the dashboard (`http://HOST:PORT/_porthole/?login=…`),
   * good for one browser session within 24 hours; a new code each call.
   * Throws before `listen()` has resolved.
   */
  loginUrl(): string;
  /**
   * Prepares the data dir, loads the stored apps (stopping what a killed
   * gateway left running, starting autostart apps), listens, then reads or
   * creates the admin token — only once listening, so a start that fails
   * creates none. Rejects with `ServerStartError` after stopping what it
   * started. Calling it again returns the same promise.
   */
  listen(): Promise<ServerStarted>;
  /**
   * Swaps in a new config (by default the config file, read again), built
   * whole first: open tunnels stay, the registry's API apps stay. Rejects
   * with the error (and emits `config rejected`) when it is invalid; the old
   * config stays.
   */
  reload(config?: unknown): Promise<Config>;
  /**
   * New connections are refused, tunnels get a close frame (1001), requests
   * in flight get `timeoutMs` (default: the config's `drain_timeout`) to
   * finish; then every app is stopped.
   */
  drain(timeoutMs?: number): Promise<void>;
  /** Drains without waiting for requests in flight, and stops every app. */
  close(): Promise<void>;
}

/** `$XDG_DATA_HOME/porthole`, else `~/.local/share/porthole`. */
export function defaultDataDir(): string {
  const base = process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(base, 'porthole');
}

/** `HOST:PORT`, `[V6]:PORT` or `PORT` (host 127.0.0.1); `ConfigError` otherwise. */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:\s]*)):(\d{1,5})$/.exec(value) ?? /^()()(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new ConfigError([`--listen: expected HOST:PORT such as 127.0.0.1:50000, got ${JSON.stringify(value)}`]);
  return { host: m[1] || m[2] || '127.0.0.1', port };
}

/**
 * Builds the server without touching the disk or the network: throws
 * `ConfigError` when the config (or `listen`) is invalid. Nothing runs until
 * `listen()`.
 */
export function createServer(options: ServerOptions = {}): PortholeServer {
  const configFile = options.configFile;
  const config = configFile ? loadConfigFile(configFile) : options.config === undefined ? parseConfig({}) : parseGiven(options.config);
  const listenAt = listenOption(options.listen ?? config.listen ?? '127.0.0.1:50000');
  const dataDir = resolve(options.dataDir ?? config.data ?? defaultDataDir());
  // The token and the registry in private/ (0700), apps' directories beside it (see data-dir.ts).
  const layout = dataLayout(dataDir);
  const baseDir = options.baseDir ?? (configFile ? dirname(resolve(configFile)) : process.cwd());
  const source = configFile ?? 'createServer';

  let current = config;
  // Read once the gateway listens: a start that fails must not create a token.
  let token: string | undefined;
  let admin: AdminApi | undefined;
  let dashboard: ((req: IncomingMessage, res: ServerResponse) => boolean) | undefined;
  let listening: ListenAddress | undefined;
  let metricsPage: ((req: IncomingMessage, res: ServerResponse) => boolean) | undefined;
  let registry: AppRegistry | undefined;
  // A node of a cluster keeps its registry in Redis (docs/cluster.md).
  const node = config.store !== undefined && config.store !== 'file' && config.cluster ? new ClusterNode({ store: config.store, cluster: config.cluster, node: options.node, baseDir }) : undefined;
  if (options.node !== undefined && !node) throw new ConfigError(['--node: this gateway is not a node of a cluster (set store: redis://… and cluster: in the config)']);
  // Calls another node made through the peer listener: admitted by the admin API like the token.
  const peerCalls = new WeakSet<IncomingMessage>();
  const pool = options.workers?.(config);
  const gateway = createGateway(config, {
    // Every change of the route table reaches the workers.
    onReload: pool ? () => pool.routesChanged() : undefined,
    baseDir,
    dataDir,
    appGate: (name, req) => registry?.appGate(name, req) ?? null,
    // A stdio app's stderr goes to its log, where `porthole apps logs` reads it.
    stdioLog: (name) => (line, stream) => supervisor.appLog(name).line(line, stream),
    stdioStderr: (name) => (stderr) => supervisor.appLog(name).attach(stderr, 'stderr'),
    intercept: (req, res) => (metricsPage?.(req, res) || admin?.(req, res) || dashboard?.(req, res)) ?? false,
    peerIntercept: (req, res) => {
      if (!admin) return false;
      // Only another node's own admin calls carry the registry version (a client's copy never
      // passes a node: peer.ts). A client's request another node forwarded here carries the
      // secret too: when this node does not route its Host (the nodes' base_domain differ, an
      // app's hosts changed a moment ago), its /_porthole/ path must not become an admin call.
      const version = req.headers[VERSION_HEADER];
      if (typeof version !== 'string' || !/^\d{1,15}$/.test(version)) return false;
      peerCalls.add(req);
      // The caller may have written a change this node has not read yet: wait for it first.
      const wanted = Number(version);
      if (!node || wanted <= node.store.version) return admin(req, res);
      void node.caughtUp(wanted).then(() => admin!(req, res) || res.writeHead(404).end());
      return true;
    },
    health: node ? () => ({ degraded: !node.store.up, cluster: healthView(node.view()) }) : pool ? () => pool.health() : undefined,
  });
  // The connections are the workers' when they hold them.
  const openConnections = () => (pool ? pool.connections() : [...[...gateway.tunnels].map((t) => t.snapshot()), ...[...gateway.bridges].map((b) => b.snapshot()), ...gateway.stdio.snapshots()]);
  // Dashboard sessions, in memory: a restart logs browsers out.
  const sessions = new Sessions();
  // No token yet means nothing matches it (sameToken never matches the empty string).
  const guardOptions = (): GuardOptions => ({ token: token ?? '', localNoAuth: current.admin.local_no_auth, hosts: current.admin.hosts, sessions });
  const supervisor = new Supervisor({ dataDir: layout.privateDir, appsDir: layout.appsDir, appDefaults: config.app_defaults });
  registry = new AppRegistry(gateway, supervisor, node?.store ?? new FileStore(layout.privateDir), config);
  // In a cluster, another node's apps are that node's to report (several nodes may share this process).
  const ownApp = (name: string) => {
    const app = registry?.get(name);
    return app !== undefined && registry!.isLocal(app);
  };
  const activity = new Activity({ gatewayId: gateway.id, isOwnApp: ownApp });
  // The other nodes (and their dashboards) learn this node's app states from its heartbeat: beat at once on a change.
  const offAppBeat = node ? subscribe('app', (d) => ownApp(d.app) && node.cluster?.beatNow()) : undefined;
  admin = createAdminApi({
    registry,
    supervisor,
    gatewayId: gateway.id,
    guard: guardOptions,
    connections: openConnections,
    activity,
    loginCode: () => sessions.loginCode(),
    fromPeer: (req) => peerCalls.has(req),
    cluster: node ? () => node.view() : undefined,
    forgetNode: node ? (name) => node.forget(name) : undefined,
    onClusterChange: node ? (fn) => node.cluster?.onChange(fn) ?? (() => {}) : undefined,
    forwardApp: node ? (name, req, res, path) => node.forwardApp(name, req, res, path) : undefined,
  });
  dashboard = createDashboard({ sessions, guard: guardOptions, gatewayId: gateway.id, secure: (req) => gateway.clientProto(req) === 'https', adminUser: (req) => gateway.auth.adminUser(req), boundToLogin: (req, end) => gateway.auth.bindToLogin(req, end) });
  // Fed by the events; the open-tunnel gauge reads the gateway's sets when scraped.
  // With metrics.listen they are served there only, without the token (docs/metrics.md says why);
  // like `listen`, it is read at start.
  let metrics: Metrics | undefined;
  let metricsListener: MetricsListener | undefined;
  const metricsAt = config.metrics.listen !== undefined ? parseListen(config.metrics.listen) : undefined;
  // Bound first, the metrics would take the gateway's port and the gateway would fail with "in use".
  if (metricsAt && metricsAt.port !== 0 && metricsAt.port === listenAt.port && (metricsAt.host === listenAt.host || [metricsAt.host, listenAt.host].some((h) => h === '0.0.0.0' || h === '::'))) {
    throw new ConfigError([`metrics.listen: ${config.metrics.listen} is the gateway's own address (listen ${listenAt.host}:${listenAt.port}); give the metrics a port of their own`]);
  }
  // Off loopback the config must say who may use the apps (AuthUnsetError otherwise).
  checkAuthConfigured(config, listenAt.host);
  if (options.metrics ?? config.metrics.enabled) {
    const appRegistry = registry;
    metrics = createMetrics({
      gatewayId: gateway.id,
      // The same counts the tunnel.close events carry at the end, so no connection is counted twice or less.
      openConnections,
      // External apps are probed (at most every 2 s, 500 ms each), as the admin API's list does.
      apps: async () => (await appRegistry.checkExternal(), appRegistry.list()),
      cluster: node ? () => node.view() as unknown as ClusterSnapshot : undefined,
    });
    if (!metricsAt) metricsPage = metricsEndpoint(metrics, () => ({ token: token ?? '', localNoAuth: current.admin.local_no_auth, hosts: current.admin.hosts }));
  }
  const listenMetricsAt = async (): Promise<string | undefined> => {
    if (!metrics || !metricsAt) return undefined;
    metricsListener = await listenMetrics(metrics, { ...metricsAt, hosts: () => current.admin.hosts });
    return metricsListener.url;
  };

  let stopLogger: (() => void) | undefined;
  if (options.log) {
    const format = options.log === true ? config.log.format : (options.log.format ?? config.log.format);
    stopLogger = startLogger({ format, quietRequests: !config.log.requests });
  }

  const stopApps = async () => {
    // Gone from the cluster first: the other nodes stop sending this node requests.
    offAppBeat?.();
    registry?.sleep.close();
    await node?.close();
    await supervisor.stopAll();
    await metricsListener?.close();
    metrics?.close();
    activity.close();
    stopLogger?.();
    stopLogger = undefined;
  };

  /**
   * A node leaves its cluster before it drains: the others see its heartbeat
   * go at their next look and answer its apps 503 PH_ERR_NODE_DOWN (and move
   * its `node: any` apps) instead of forwarding to a peer listener that no
   * longer accepts (502). Its peer listener keeps taking what they send until
   * they have looked once.
   */
  const leaveCluster = async (timeoutMs: number): Promise<number> => {
    const cluster = node?.cluster;
    if (!cluster) return 0;
    const began = Date.now();
    await cluster.leave();
    if (timeoutMs > 0) await new Promise((ok) => setTimeout(ok, Math.min(timeoutMs, cluster.pollMs + 100)));
    return Date.now() - began;
  };

  let stopping: Promise<void> | undefined;
  const shutDown = (timeoutMs?: number) =>
    (stopping ??= (async () => {
      // Event streams never finish on their own: a drain must not wait its whole timeout on them.
      admin?.endStreams();
      const budget = timeoutMs ?? current.drain_timeout;
      // The whole drain stays within its timeout.
      const spent = await leaveCluster(budget);
      // The workers hold the tunnels: they drain first, while the apps still run.
      const began = Date.now();
      await pool?.drain(Math.max(0, budget - spent));
      await gateway.drain(Math.max(0, budget - spent - (Date.now() - began)));
      await stopApps();
    })());

  const reg = registry;
  const start = async (): Promise<ServerStarted> => {
    try {
      prepareDataDir(dataDir);
    } catch (err) {
      throw new ServerStartError('data', `cannot prepare the data directory ${dataDir}: ${(err as Error).message}`, err as NodeJS.ErrnoException);
    }
    if (configFile) emit('config', { action: 'loaded', source: configFile, apps: config.apps.length });
    let peerAddress: string | undefined;
    if (node && config.cluster) {
      try {
        await node.connect();
      } catch (err) {
        await stopApps();
        throw new ServerStartError('store', `cannot reach the store: ${(err as Error).message}`, err as NodeJS.ErrnoException);
      }
      const at = parseListen(config.cluster.listen);
      try {
        const peer = await gateway.listenPeer({ host: at.host, port: at.port, secret: () => node.secret(), ...(node.tls ? { tls: { cert: node.tls.cert, key: node.tls.key } } : {}) });
        peerAddress = `${peer.host.includes(':') ? `[${peer.host}]` : peer.host}:${peer.port}`;
      } catch (err) {
        await stopApps();
        const e = err as NodeJS.ErrnoException;
        throw new ServerStartError('listen', `cannot listen on cluster.listen ${config.cluster.listen}: ${e.code === 'EADDRINUSE' ? 'the port is already in use' : e.message}`, e);
      }
      const advertise = config.cluster.advertise ?? peerAddress;
      try {
        await node.join(reg, supervisor, advertise, () => listening?.url);
      } catch (err) {
        await gateway.close().catch(() => undefined);
        await stopApps();
        throw new ServerStartError('cluster', `cannot join the cluster as node ${node.name}: ${(err as Error).message}`, err as NodeJS.ErrnoException);
      }
    }
    try {
      await reg.init();
      node?.follow();
    } catch (err) {
      await stopApps();
      throw new ServerStartError('registry', `cannot load the app registry in ${dataDir}: ${(err as Error).message}`, err as NodeJS.ErrnoException);
    }
    let metricsUrl: string | undefined;
    try {
      // Before the gateway: a start that fails here has served nothing.
      metricsUrl = await listenMetricsAt();
    } catch (err) {
      const e = err as MetricsListenError;
      emit('error', { code: e.code, message: e.message, gateway: gateway.id });
      await stopApps();
      throw new ServerStartError('metrics', `${e.message} (${e.code})`, e as unknown as NodeJS.ErrnoException);
    }
    let address: ListenAddress;
    try {
      address = pool ? await pool.listen(listenAt, { gateway, registry: reg, supervisor, baseDir, dataDir }) : await gateway.listen(listenAt.host, listenAt.port);
      if (pool) gateway.servedAt = { host: address.host, port: address.port };
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      await stopApps();
      throw new ServerStartError('listen', `cannot listen on ${listenAt.host}:${listenAt.port}: ${e.code === 'EADDRINUSE' ? 'the port is already in use' : e.code?.startsWith('PH_ERR_') ? `${e.code}: ${e.message}` : e.message}`, e);
    }
    reg.gatewayPort = address.port;
    listening = address;
    try {
      // The token is the gateway's secret: apps never see it (see clean-env.ts).
      const t = ensureToken(dataDir);
      token = t.token;
      return { ...address, token: t.token, tokenCreated: t.created, tokenFile: t.file, ...(metricsUrl ? { metricsUrl } : {}), ...(node && peerAddress ? { node: { name: node.name, peer: peerAddress } } : {}) };
    } catch (err) {
      await shutDown();
      throw new ServerStartError('token', `cannot create the admin token in ${dataDir}: ${(err as Error).message}`, err as NodeJS.ErrnoException);
    }
  };
  let starting: Promise<ServerStarted> | undefined;
  const server: PortholeServer = {
    get config() {
      return current;
    },
    configFile,
    dataDir,
    layout,
    tokenFile: tokenFile(dataDir),
    get token() {
      return token;
    },
    listenAddress: listenAt,
    gateway,
    supervisor,
    registry: reg,
    subscribe,
    metrics,
    node,

    listen() {
      // Twice would load the registry twice: the second call gets the first start.
      return (starting ??= start());
    },

    async reload(given?: unknown) {
      let next: Config;
      try {
        if (given === undefined && !configFile) throw new ConfigError(['reload: no config given and no config file to read']);
        next = given === undefined ? loadConfigFile(configFile!) : parseGiven(given);
        // Built whole before anything changes: a bad error_page path rejects the config here.
        gateway.validate(next);
        checkAuthConfigured(next, listenAt.host);
      } catch (err) {
        const e = err as Error & { code?: string };
        emit('config', { action: 'rejected', source, error: e.message, code: e.code ?? 'PH_ERR_CONFIG' });
        throw err;
      }
      supervisor.setAppDefaults(next.app_defaults);
      try {
        await reg.setConfig(next);
      } catch (err) {
        const e = err as Error & { code?: string };
        supervisor.setAppDefaults(current.app_defaults);
        emit('config', { action: 'rejected', source, error: e.message, code: e.code ?? 'PH_ERR_CONFIG' });
        throw err;
      }
      current = next;
      emit('config', { action: 'reloaded', source, apps: next.apps.length });
      return next;
    },

    loginUrl() {
      if (!listening || !token) throw new Error('loginUrl(): the server is not listening yet (await listen() first)');
      return `${dashboardBase(listening, gateway)}?login=${sessions.loginCode()}`;
    },

    drain: (timeoutMs) => shutDown(timeoutMs),
    close: () => shutDown(0),
  };
  return server;
}

/**
 * `http://HOST:PORT/_porthole/` for a browser on this machine (a wildcard address becomes
 * loopback). Never at a name an app owns with its `hosts`: every path there is the app's,
 * so the app would receive the one-time code and could log in with it. `localhost` is
 * tried next; when apps own every name, this throws rather than hand the code to one.
 */
function dashboardBase(address: ListenAddress, gateway: Pick<Gateway, 'appAtHost'>): string {
  const first = address.host === '0.0.0.0' ? '127.0.0.1' : address.host === '::' ? '[::1]' : address.host.includes(':') ? `[${address.host}]` : address.host;
  const loopback = ['0.0.0.0', '::', '127.0.0.1', '::1'].includes(address.host);
  const names = loopback ? [first, 'localhost'] : [first];
  const owners: string[] = [];
  for (const name of names) {
    const app = gateway.appAtHost(`${name}:${address.port}`);
    if (app === undefined) return `${address.url.startsWith('https:') ? 'https' : 'http'}://${name}:${address.port}${DASHBOARD_PATH}`;
    owners.push(`${name} is in the hosts of app ${app}`);
  }
  throw new Error(`loginUrl(): no address of this gateway shows the dashboard (${owners.join('; ')}): take it out of the app's hosts, or open the dashboard through a name in admin.hosts`);
}

/**
 * The cluster as `/_porthole/health` shows it to anyone (it takes no token):
 * whether the store is up and how many nodes are, never the map a stranger
 * could use (the peer listeners' addresses, Redis', which apps run where).
 * The admin API's `GET /cluster` has it all.
 */
function healthView(view: Record<string, unknown>): Record<string, unknown> {
  const store = (view.store ?? {}) as { up?: boolean; down_since?: string };
  const nodes = (view.nodes ?? []) as { up: boolean }[];
  return {
    node: view.node,
    version: view.version,
    store: { up: store.up === true, ...(store.down_since ? { down_since: store.down_since } : {}) },
    nodes: { up: nodes.filter((n) => n.up).length, down: nodes.filter((n) => !n.up).length },
  };
}

function parseGiven(config: unknown): Config {
  // A parsed config is frozen (see schema.ts); anything else is validated.
  return typeof config === 'object' && config !== null && Object.isFrozen(config) && Array.isArray((config as Config).apps) ? (config as Config) : parseConfig(config);
}

function listenOption(value: string | { host?: string; port: number }): { host: string; port: number } {
  if (typeof value === 'string') return parseListen(value);
  if (!Number.isInteger(value.port) || value.port < 0 || value.port > 65535) throw new ConfigError([`listen.port: expected a port number 0–65535, got ${JSON.stringify(value.port)}`]);
  return { host: value.host ?? '127.0.0.1', port: value.port };
}
