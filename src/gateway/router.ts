/**
 * The route table: an immutable snapshot built from a config. A config change
 * builds a whole new table and swaps it in; requests in flight and open
 * tunnels keep the `Route` objects they started with, so nothing they hold
 * changes under them.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { parseHostPort } from '../config/host-port.js';
import type { AppConfig, Config } from '../config/schema.js';
import { ConfigError } from '../errors.js';
import { bridgeSpecOf, isBridgeOnly, type BridgeSpec } from './bridge.js';
import { parseHostHeader, type HostHeader } from './host-header.js';
import { HostPolicy } from './host-policy.js';
import { peerResponseMs, peerTarget, type PeerTarget } from './peer.js';
import { destroyPools, poolsOf } from './upstream-pool.js';

/** Where bytes for an app go. */
export interface Target {
  kind: 'tcp' | 'tls' | 'unix';
  host: string;
  port: number;
  socketPath?: string;
  /** Path the upstream is mounted at ('' for the root), prepended to every forwarded path. */
  basePath: string;
  /** Scheme for Origin and absolute Location URLs. */
  scheme: 'http' | 'https';
  /** `host[:port]` as the upstream knows itself (the `upstream` Host value). */
  authority: string;
  servername?: string;
  rejectUnauthorized: boolean;
  /** PEM of the CA to verify the target's certificate with (a peer node's); default: the system's. */
  ca?: string;
  /** Shown in logs and error messages. */
  label: string;
  /**
   * Keep-alive connections for plain HTTP to this target; it also holds the target's undici
   * pools (upstream-pool.ts), forgotten with it.
   */
  agent: http.Agent;
}

export interface Match {
  route: Route;
  target: Target;
  /** Path and query to send upstream. */
  path: string;
  /** The request's path as the app sees it (prefix stripped, no query), for `ws_paths`. */
  appPath: string;
  /** Mount prefix for X-Forwarded-Prefix ('' when routed by host name: explicit `hosts` or `{name}.localhost`). */
  prefix: string;
  /** Put Location and cookie paths back under the prefix. */
  rewrite: boolean;
}

export type Lookup =
  | { kind: 'app'; match: Match }
  | { kind: 'redirect'; location: string; route: Route }
  | { kind: 'none' };

export class Route {
  readonly app: AppConfig;
  readonly prefix: string;
  readonly http: Target;
  readonly ws: Target;
  readonly idleMs: number;
  readonly connectMs: number;
  readonly responseMs: number;
  readonly pingMs: number;
  readonly setHeaders: readonly (readonly [string, string])[];
  readonly setHeaderNames: ReadonlySet<string>;
  /** Absolute bases of the upstream, for rewriting Location headers that point at it. */
  readonly upstreamOrigins: readonly string[];
  readonly errorPage?: string;
  /** null: same origin (or none) only; '*': any. */
  readonly allowedOrigins: ReadonlySet<string> | '*' | null;
  readonly wsPaths: ReadonlySet<string> | null;
  /** Upgrades go to the WebSocket→TCP bridge (`bridge`, `ws_bridge`, `bridge_token_file`, `bridge_token_redis`) instead of `ws`; see bridge.ts. */
  readonly bridge: BridgeSpec | null;
  /** Plain HTTP gets a 426 (an app with only a bridge has no pages). */
  readonly bridgeOnly: boolean;
  /**
   * The app runs on another node (peer.ts): HTTP and upgrades go to that node's peer listener,
   * sent on as the client sent them (no stripping, rewriting, Host/Origin policy or
   * `set_headers`: the node that runs the app applies them once).
   */
  readonly peer: PeerTarget | null;

  constructor(app: AppConfig, cfg: Config, agents: AgentPool, readTemplate: (file: string, at: string) => string, at: string, resolvePath?: (file: string) => string, peer?: PeerTarget) {
    this.app = app;
    this.prefix = app.prefix ?? `/${app.name}`;
    this.peer = peer ?? null;
    if (peer) {
      this.bridge = null;
      this.bridgeOnly = false;
      this.http = this.ws = peerTarget(app.name, peer, agents);
    } else {
      this.bridge = bridgeSpecOf(app, resolvePath);
      this.bridgeOnly = (this.bridge !== null || app.stdio !== undefined) && isBridgeOnly(app);
      this.http = resolveTarget(app, false, agents);
      this.ws = app.ws_port !== undefined || (this.bridge && !this.bridgeOnly) ? resolveTarget(app, true, agents) : this.http;
    }
    this.idleMs = app.idle_timeout ?? cfg.idle_timeout;
    this.connectMs = app.connect_timeout ?? cfg.connect_timeout;
    this.responseMs = peer ? peerResponseMs(app, cfg) : (app.response_timeout ?? cfg.response_timeout);
    this.pingMs = app.ping_interval ?? 0;
    this.setHeaders = peer ? [] : Object.entries(app.set_headers ?? {});
    this.setHeaderNames = new Set(this.setHeaders.map(([n]) => n.toLowerCase()));
    this.upstreamOrigins = peer ? [] : [...new Set([this.http, this.ws].flatMap(originsOf))];
    if (app.error_page) {
      const page = readTemplate(app.error_page, `${at}.error_page`);
      if (page !== '' || !peer) this.errorPage = page;
    }
    const origins = app.allowed_origins;
    this.allowedOrigins = !origins ? null : origins.includes('*') ? '*' : new Set(origins.map((o) => new URL(o).origin));
    this.wsPaths = app.ws_paths ? new Set(app.ws_paths) : null;
  }

  /** The Host header sent upstream: `keep` the client's, `upstream` the target's own, or a literal. */
  upstreamHost(clientHost: string, target: Target): string {
    const mode = this.peer ? 'keep' : (this.app.upstream_host ?? (this.app.url ? 'upstream' : 'keep'));
    if (mode === 'keep') return clientHost || target.authority;
    if (mode === 'upstream') return target.authority;
    return mode;
  }

  /**
   * The Origin sent upstream. `upstream` makes it agree with the Host sent
   * upstream, which is what servers that compare the two want (Tornado's
   * "Cross origin websockets not allowed", Streamlit behind ngrok).
   */
  upstreamOrigin(origin: string | undefined, hostHeader: string, target: Target): string | undefined {
    const mode = this.peer ? 'keep' : (this.app.upstream_origin ?? 'keep');
    if (mode === 'keep') return origin;
    if (mode === 'upstream') return `${target.scheme}://${hostHeader}`;
    return mode;
  }
}

function originsOf(t: Target): string[] {
  if (t.kind === 'unix') return [];
  const out = [`${t.scheme}://${t.authority}`];
  if (t.host === '127.0.0.1') out.push(`${t.scheme}://localhost:${t.port}`);
  return out;
}

/** Keep-alive agents shared across snapshots, so a reload does not drop warm upstream connections. */
export class AgentPool {
  private readonly agents = new Map<string, http.Agent>();

  get(kind: Target['kind'], key: string, tls: { servername?: string; rejectUnauthorized: boolean; ca?: string }): http.Agent {
    const id = `${kind}|${key}|${tls.servername ?? ''}|${tls.rejectUnauthorized}|${tls.ca ?? ''}`;
    let agent = this.agents.get(id);
    if (!agent) {
      // Free sockets are dropped after 4 s, before the usual 5 s server keep-alive timeout,
      // so a request rarely picks a connection the upstream is closing.
      const opts = { keepAlive: true, maxSockets: 256, maxFreeSockets: 64, scheduling: 'lifo' as const, timeout: 4000 };
      agent = kind === 'tls' ? new https.Agent({ ...opts, servername: tls.servername, rejectUnauthorized: tls.rejectUnauthorized, ...(tls.ca ? { ca: tls.ca } : {}) }) : new http.Agent(opts);
      this.agents.set(id, agent);
    }
    return agent;
  }

  /** How many agents are held (tests). */
  get size(): number {
    return this.agents.size;
  }

  /** How many undici pools the held agents carry (tests). */
  get pools(): number {
    let n = 0;
    for (const a of this.agents.values()) n += poolsOf(a);
    return n;
  }

  /**
   * Forgets the agents a new snapshot does not use: apps that change ports and
   * nodes that come back at new addresses would otherwise leave one behind each
   * time. Not destroyed: a request in flight on an old route finishes, and idle
   * sockets close on their own timeout.
   */
  keepOnly(used: ReadonlySet<http.Agent>): void {
    for (const [id, agent] of this.agents) if (!used.has(agent)) this.agents.delete(id);
  }

  destroy(): void {
    for (const a of this.agents.values()) {
      a.destroy();
      destroyPools(a);
    }
    this.agents.clear();
  }
}

function resolveTarget(app: AppConfig, forWs: boolean, agents: AgentPool): Target {
  const verify = app.tls_verify;
  // A stdio app's upgrades start its command (stdio-apps.ts): no network target; the label names the command.
  if (app.stdio !== undefined) {
    return { kind: 'tcp', host: '127.0.0.1', port: 0, basePath: '', scheme: 'http', authority: '127.0.0.1', rejectUnauthorized: verify, label: `stdio: ${app.stdio}`, agent: agents.get('tcp', '127.0.0.1', { rejectUnauthorized: verify }) };
  }
  // A bridge's target: no HTTP is sent there; its label names the target in upgrade errors.
  const byToken = app.bridge_token_file !== undefined || app.bridge_token_redis !== undefined;
  if (app.bridge !== undefined || (forWs && app.ws_bridge !== undefined) || (byToken && (forWs || isBridgeOnly(app)))) {
    return bridgeTarget(app, verify, agents);
  }
  if (forWs || app.port !== undefined) {
    const port = forWs ? app.ws_port! : app.port!;
    const authority = `127.0.0.1:${port}`;
    return { kind: 'tcp', host: '127.0.0.1', port, basePath: '', scheme: 'http', authority, rejectUnauthorized: verify, label: authority, agent: agents.get('tcp', authority, { rejectUnauthorized: verify }) };
  }
  if (app.socket !== undefined) {
    const socketPath = app.socket;
    return {
      kind: 'unix',
      host: 'localhost',
      port: 0,
      socketPath,
      basePath: '',
      scheme: 'http',
      authority: 'localhost',
      rejectUnauthorized: verify,
      label: `unix:${socketPath}`,
      agent: agents.get('unix', socketPath, { rejectUnauthorized: verify }),
    };
  }
  if (app.url !== undefined) {
    const u = new URL(app.url);
    const secure = u.protocol === 'https:' || u.protocol === 'wss:';
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const port = u.port ? Number(u.port) : secure ? 443 : 80;
    const servername = secure && !isIP(host) ? host : undefined;
    const kind = secure ? 'tls' : 'tcp';
    const authority = u.host; // includes the port only when it is not the default
    return {
      kind,
      host,
      port,
      basePath: u.pathname.replace(/\/+$/, ''),
      scheme: secure ? 'https' : 'http',
      authority,
      servername,
      rejectUnauthorized: verify,
      label: `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`,
      agent: agents.get(kind, `${host}:${port}`, { servername, rejectUnauthorized: verify }),
    };
  }
  // A supervised app whose port is not known yet: the supervisor fills it in before routing.
  throw new ConfigError([`app ${app.name}: no port, url or socket to route to`]);
}

/** The Target of a bridged app (its `bridge`/`ws_bridge` address, or a placeholder naming the token file). */
function bridgeTarget(app: AppConfig, verify: boolean, agents: AgentPool): Target {
  const fixed = app.bridge ?? app.ws_bridge;
  const parsed = fixed !== undefined ? parseHostPort(fixed) : null;
  const { host, port } = parsed && typeof parsed !== 'string' ? parsed : { host: '127.0.0.1', port: 0 };
  const authority = fixed ?? '127.0.0.1';
  const label = fixed ?? (app.bridge_token_file !== undefined ? `the targets in ${app.bridge_token_file}` : 'the targets in its token store');
  return { kind: 'tcp', host, port, basePath: '', scheme: 'http', authority, rejectUnauthorized: verify, label, agent: agents.get('tcp', authority, { rejectUnauthorized: verify }) };
}

export interface RouteTableOptions {
  agents: AgentPool;
  /** Reads an error page template; relative paths are resolved by the caller. */
  readTemplate?: (file: string) => string;
  /** Resolves a relative path of the config (a bridge token file) against the config's directory. */
  resolvePath?: (file: string) => string;
  /** Apps that run on another node, by name (peer.ts). */
  peers?: ReadonlyMap<string, PeerTarget>;
}

export class RouteTable {
  readonly routes: readonly Route[];
  readonly errorPage?: string;
  private readonly byName: ReadonlyMap<string, Route>;
  /** Longest prefix first. */
  private readonly byPrefix: readonly Route[];
  private readonly byHost: ReadonlyMap<string, Route>;
  private readonly byWildcard: readonly (readonly [string, Route])[];
  /** Which Host names the gateway answers under (DNS rebinding). */
  readonly hosts: HostPolicy;

  constructor(readonly config: Config, opts: RouteTableOptions) {
    const problems: string[] = [];
    const read = (file: string, at: string): string => {
      try {
        return (opts.readTemplate ?? ((f: string) => readFileSync(f, 'utf8')))(file);
      } catch (err) {
        problems.push(`${at}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
        return '';
      }
    };
    if (config.error_page) this.errorPage = read(config.error_page, 'error_page');
    const routes: Route[] = [];
    // An error page of an app on another node may exist only there: without it here, the gateway's own page.
    const readOptional = (file: string): string => {
      try {
        return (opts.readTemplate ?? ((f: string) => readFileSync(f, 'utf8')))(file);
      } catch {
        return '';
      }
    };
    config.apps.forEach((app, i) => {
      const peer = opts.peers?.get(app.name);
      if (peer) return routes.push(new Route(app, config, opts.agents, readOptional, `apps[${i}]`, opts.resolvePath, peer));
      // Supervised apps without a port yet are routed once the supervisor gives them one.
      if (app.port === undefined && app.url === undefined && app.socket === undefined && !isBridgeOnly(app)) return;
      routes.push(new Route(app, config, opts.agents, read, `apps[${i}]`, opts.resolvePath));
    });
    if (problems.length) throw new ConfigError(problems);
    this.routes = routes;
    this.byName = new Map(routes.map((r) => [r.app.name, r]));
    this.byPrefix = [...routes].sort((a, b) => b.prefix.length - a.prefix.length);
    const hosts = new Map<string, Route>();
    const wild: [string, Route][] = [];
    for (const r of routes) {
      for (const h of r.app.hosts ?? []) {
        const name = h.toLowerCase().replace(/\.(?=:\d+$|$)/, ''); // `app.example.` is `app.example`
        if (name.startsWith('*.')) wild.push([name.slice(1), r]);
        else hosts.set(name, r);
      }
    }
    this.byHost = hosts;
    this.byWildcard = wild;
    this.hosts = new HostPolicy(config);
  }

  /** The upstream agents this table's routes use. */
  agents(): Set<http.Agent> {
    const used = new Set<http.Agent>();
    for (const r of this.routes) for (const target of [r.http, r.ws]) used.add(target.agent);
    return used;
  }

  get(name: string): Route | undefined {
    return this.byName.get(name);
  }

  /**
   * Finds the app for a request. `url` is the request target (path and query).
   * By Host first — an app's `hosts`, then its automatic `{name}.localhost`
   * and `{name}.{base_domain}`, then `*.` wildcards — at the root with
   * nothing stripped; then by path prefix. A Host that is not `host[:port]`
   * routes by path only (the Host check refuses it before it gets here).
   */
  lookup(host: string | undefined, url: string, upgrade: boolean): Lookup {
    const q = url.indexOf('?');
    const pathname = q === -1 ? url : url.slice(0, q);
    const query = q === -1 ? '' : url.slice(q);
    const parsed = host ? parseHostHeader(host) : null;
    if (parsed) {
      const route = this.hostRoute(parsed);
      if (route) return { kind: 'app', match: this.match(route, pathname, query, '', upgrade, false) };
    }
    const route = this.prefixRoute(pathname);
    if (!route) return { kind: 'none' };
    // `/site/x/../admin/`, `/site/%2e%2e/…`, `/site//admin/`: the upstream may read it as another
    // app's path (one behind a login) than the gateway did. Such a path is routed nowhere.
    if (AMBIGUOUS.test(pathname)) {
      const resolved = this.prefixRoute(resolvedPath(pathname));
      if (resolved !== undefined && resolved !== route) return { kind: 'none' };
    }
    const p = route.prefix;
    if (pathname.length === p.length) return { kind: 'redirect', location: `${p}/${query}`, route };
    const strip = route.app.strip_prefix;
    const rest = strip ? pathname.slice(p.length) : pathname;
    return { kind: 'app', match: this.match(route, rest, query, p, upgrade, strip) };
  }

  /** The app whose prefix a path is under (the longest), or undefined. */
  private prefixRoute(pathname: string): Route | undefined {
    for (const route of this.byPrefix) {
      const p = route.prefix;
      if (pathname.startsWith(p) && (pathname.length === p.length || pathname.charCodeAt(p.length) === 47 /* / */)) return route;
    }
    return undefined;
  }

  /**
   * The app a Host names. Explicit `hosts` win over the automatic names (an
   * app may take over another's `x.localhost` on purpose); the automatic
   * names win over `*.` wildcards, which are the least specific.
   */
  private hostRoute(host: HostHeader): Route | undefined {
    const { name, port } = host;
    const exact = (port !== undefined ? this.byHost.get(`${name}:${port}`) : undefined) ?? this.byHost.get(name);
    if (exact || host.ip !== 0) return exact; // an address is only ever an explicit host
    const auto = this.automaticName(name);
    if (auto !== undefined) {
      const r = this.byName.get(auto);
      if (r) return r;
    }
    for (const [suffix, route] of this.byWildcard) if (name.endsWith(suffix) && name.length > suffix.length) return route;
    return undefined;
  }

  /** `vnc` for `vnc.localhost` or `vnc.{base_domain}`; undefined for any other name. */
  private automaticName(name: string): string | undefined {
    for (const domain of ['localhost', this.config.base_domain]) {
      if (!domain || !name.endsWith(`.${domain}`)) continue;
      const label = name.slice(0, -domain.length - 1);
      if (label && !label.includes('.')) return label;
    }
    return undefined;
  }

  private match(route: Route, pathname: string, query: string, prefix: string, upgrade: boolean, rewrite: boolean): Match {
    const target = upgrade ? route.ws : route.http;
    // To another node: the path as the client sent it; that node strips and maps it.
    if (route.peer) return { route, target, path: (rewrite ? prefix + pathname : pathname) + query, appPath: pathname, prefix, rewrite: false };
    const path = upgrade && route.app.ws_path ? route.app.ws_path : pathname;
    return { route, target, path: target.basePath + path + query, appPath: pathname, prefix, rewrite };
  }
}

/** A path with dot segments (plain or `%2e`) or doubled slashes, which upstreams commonly resolve. */
const AMBIGUOUS = /\/\/|\/(\.|%2e)/i;

/** A path as most servers read it: `%2e` as `.`, dot segments resolved, doubled slashes merged. */
export function resolvedPath(pathname: string): string {
  const segments = pathname.replace(/%2e/gi, '.').split('/');
  const out: string[] = [];
  for (const seg of segments) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  const last = segments[segments.length - 1];
  const dir = last === '' || last === '.' || last === '..';
  return `/${out.join('/')}${dir && out.length > 0 ? '/' : ''}`;
}
