/**
 * The one config schema: the YAML file, the library options and the admin API's
 * app bodies are all checked by it, and its types are the ones the code uses.
 */
import { ConfigError } from '../errors.js';
import { authProblems, authSchema, authTokenSchema, userSchema } from './auth-schema.js';
import { execLimitProblems } from './exec-limits.js';
import { parseHostPort } from './host-port.js';
import { parseTokenRedisUrl, parseWebsockifyRedisSource, redactSource } from './token-redis.js';
import * as k from './schema-kit.js';
import { workerProblems, workersSchema } from './workers-schema.js';

export const APP_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** A cluster node's name (`--node`, `cluster.node`, an app's `node`): a host name's characters. */
export const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
/** Names the gateway keeps for its own paths (`/_porthole/…`, `/webapp`). */
export const RESERVED_NAMES: readonly string[] = ['_porthole', 'webapp'];

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** CR, LF and NUL never reach the wire: they would let a value add headers of its own. */
const UNSAFE_HEADER_VALUE = /[\r\n\0]/;

/** What HTTP/1.1 writes as a header value (as Node checks it): tab, printable ASCII, and latin1's upper half. */
const UNWRITABLE_HEADER_VALUE = /[^\t\x20-\x7e\x80-\xff]/u;

export const headerValue = () =>
  k.string({
    check: (s) => {
      if (UNSAFE_HEADER_VALUE.test(s)) return 'header values must not contain CR, LF or NUL';
      const bad = UNWRITABLE_HEADER_VALUE.exec(s);
      if (bad) return `header values are written as latin1 text: ${JSON.stringify(bad[0])} (U+${bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}) cannot be; percent-encode it or leave it out`;
      return undefined;
    },
  });

const port = () => k.integer(1, 65535);
const path = () => k.string({ pattern: /^\/[^\s]*$/, patternHint: 'a path starting with /' });

const upstreamUrl = () =>
  k.string({
    patternHint: 'an http://, https://, ws:// or wss:// URL',
    check: (s) => {
      let u: URL;
      try {
        u = new URL(s);
      } catch {
        return `${k.quote(s)} is not a URL`;
      }
      if (!['http:', 'https:', 'ws:', 'wss:'].includes(u.protocol)) return `${k.quote(s)}: scheme must be http, https, ws or wss`;
      if (u.username || u.password) return 'credentials in the URL would leak into logs: use set_headers with Authorization instead';
      if (u.search || u.hash) return 'a query or fragment has no meaning in an upstream URL';
      return undefined;
    },
  });

/** Why `s` is not an origin such as "https://example.com:8443" (or "*"), or undefined: `allowed_origins`, `porthole bridge --allowed-origin`. */
export function originProblem(s: string): string | undefined {
  if (s === '*') return undefined;
  try {
    const u = new URL(s);
    if (u.origin === 'null' || `${u.origin}` !== s.replace(/\/$/, '')) return `${k.quote(s)} is not an origin like "https://example.com:8443" (or "*")`;
  } catch {
    return `${k.quote(s)} is not an origin like "https://example.com" (or "*")`;
  }
  return undefined;
}

const origin = () => k.string({ check: originProblem });

/** A bridge target such as `127.0.0.1:5900` (port 1–65535). */
const hostPort = () =>
  k.string({
    patternHint: 'HOST:PORT such as "127.0.0.1:5900"',
    check: (s) => {
      const t = parseHostPort(s);
      return typeof t === 'string' ? t : undefined;
    },
  });

/**
 * A user or group: a name (no leading '-', so it never reads as an option of
 * getent or setpriv) or a numeric id.
 */
const userOrGroup = (): k.Schema<string | number> => ({
  expects: 'a user or group name, or a numeric id',
  parse(v, at, issues) {
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xfffffffe) return v;
    if (typeof v === 'string' && /^[A-Za-z0-9_.][A-Za-z0-9_.@-]{0,255}\$?$/.test(v)) return v;
    issues.push(`${at}: expected a user or group name, or a numeric id, got ${JSON.stringify(v)}`);
    return undefined;
  },
});

/** A name of `hosts` / `server_names` (and `porthole bridge --server-name`): exact, or `*.` and a suffix; a port is ignored. */
export const HOST_NAME = /^(\*\.)?[a-zA-Z0-9.-]+(:\d+)?$/;

const hostName = () =>
  k.string({ pattern: HOST_NAME, patternHint: 'a host name such as "app.example.com" or "*.example.com"' });

/** A DNS name without wildcard or port, under which every app gets `{name}.{base_domain}`. */
const domainName = () =>
  k.string({
    pattern: /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/,
    patternHint: 'a lowercase domain name such as "apps.example.com" (no wildcard, no port)',
    check: (s) => (s === 'localhost' || s.endsWith('.localhost') ? 'every app already has {name}.localhost: base_domain is for a domain of your own' : undefined),
  });

export const appSchema = k.object(
  {
    name: k.string({ pattern: APP_NAME, patternHint: 'a name of lowercase letters, digits and dashes (^[a-z0-9][a-z0-9-]{0,62}$)' }),
    description: k.optional(k.string()),
    /** Where the app is mounted; default `/{name}`. */
    prefix: k.optional(k.string({ pattern: /^\/[^\s?#]*[^/\s?#]$/, patternHint: 'a path such as "/api/vnc" (no trailing slash)' })),
    port: k.optional(port()),
    ws_port: k.optional(port()),
    url: k.optional(upstreamUrl()),
    socket: k.optional(k.string({ pattern: /^\//, patternHint: 'an absolute unix socket path' })),
    /** WebSocket→TCP: every upgrade is bridged to this TCP `host:port` (websockify's job); plain HTTP gets a 426. */
    bridge: k.optional(hostPort()),
    /** Upgrades bridged to this TCP `host:port`, pages from `port` (or url/socket). */
    ws_bridge: k.optional(hostPort()),
    /** websockify's TokenFile: `token: host:port` lines; the `token` query parameter (or cookie) picks the bridge target. */
    bridge_token_file: k.optional(k.string()),
    /** websockify's TokenRedis: `redis://[:password@]host:port/db`; the key `token` (or `namespace:token`) holds `host:port` or JSON. */
    bridge_token_redis: k.optional(k.string()),
    /** Keys are `NAMESPACE:token` (websockify TokenRedis's namespace). */
    bridge_token_redis_namespace: k.optional(k.string({ pattern: /^\S+$/, patternHint: 'a key prefix without spaces, such as "vnc" (keys are then vnc:TOKEN)' })),
    /** Text frames on a bridge: `refuse` (close 1003, default) or `binary` (their UTF-8 bytes go to TCP). */
    bridge_text: k.optional(k.oneOf('refuse', 'binary')),
    /**
     * stdio over WebSocket (docs/stdio.md): every upgrade starts this command (`/bin/sh -c`)
     * in a process group of its own; text messages are its stdin lines, its stdout lines
     * come back as messages, its stderr goes to the app's log. Plain HTTP gets a 426.
     */
    stdio: k.optional(k.string({ check: (s) => (s.trim() === '' ? 'an empty command' : undefined) })),
    /** One process for every connection of the app (started with the first, stopped after the last). */
    stdio_shared: k.optional(k.boolean()),
    /** Raw bytes as binary messages both ways instead of lines. */
    stdio_binary: k.optional(k.boolean()),
    /** Processes at once (with stdio_shared: connections); the next upgrade gets 503 / close 1013. Default 16. */
    stdio_max_processes: k.optional(k.integer(1, 100_000)),
    /** Largest message either way, in bytes (a bigger one from a client closes it with 1009). Default 1 MiB. */
    stdio_max_message: k.optional(k.integer(1, 64 * 1024 * 1024)),
    /** Messages per second each way (0: no limit); beyond it the sender is paused. Default 1000. */
    stdio_lines_per_second: k.optional(k.integer(0, 1_000_000)),
    ws_path: k.optional(path()),
    hosts: k.optional(k.array(hostName())),
    strip_prefix: k.withDefault(k.boolean(), true),
    allowed_origins: k.optional(k.array(origin())),
    ws_paths: k.optional(k.array(path())),
    upstream_host: k.optional(headerValue()),
    upstream_origin: k.optional(headerValue()),
    set_headers: k.optional(k.record(headerValue(), { pattern: HEADER_NAME, hint: 'a valid header name' })),
    ws_errors: k.withDefault(k.oneOf('ws', 'http'), 'ws'),
    error_page: k.optional(k.string()),
    idle_timeout: k.optional(k.duration()),
    connect_timeout: k.optional(k.duration()),
    response_timeout: k.optional(k.duration()),
    ping_interval: k.optional(k.duration()),
    tls_verify: k.withDefault(k.boolean(), true),
    /** Who may use the app (docs/auth.md); default: the global `auth`. */
    auth: k.optional(authSchema()),
    /** Pass the gateway's session cookie and a consumed Authorization on to the app. */
    auth_forward_credentials: k.optional(k.boolean()),
    // Supervised apps (the process behind the route).
    cmd: k.optional(k.string()),
    cwd: k.optional(k.string()),
    env: k.optional(k.record(k.string(), { pattern: /^[A-Za-z_][A-Za-z0-9_]*$/, hint: 'an environment variable name' })),
    autostart: k.withDefault(k.boolean(), false),
    health_path: k.optional(path()),
    start_timeout: k.optional(k.duration()),
    stop_timeout: k.optional(k.duration()),
    restart: k.withDefault(k.oneOf('on-failure', 'always', 'never'), 'on-failure'),
    /** Stop the app after this long with no request and no open tunnel (docs/apps.md, "Apps that sleep"). */
    idle_stop: k.optional(k.duration()),
    /** A request for the stopped app starts it: browsers get a waiting page, API clients and WebSockets are held. */
    wake_on_request: k.optional(k.boolean()),
    /** Run the process as this user (name or uid); needs a gateway running as root. Default: app_defaults.user, else the gateway's. */
    user: k.optional(userOrGroup()),
    /** Its primary group (name or gid); default: the user's, app_defaults.group. */
    group: k.optional(userOrGroup()),
    /**
     * In a cluster (docs/cluster.md): the node that runs the app (default: the node it was
     * registered through), or `any`: a live node chosen by the cluster, moved when that node is down.
     */
    node: k.optional(k.string({ pattern: NODE_NAME, patternHint: 'a node name (letters, digits, ".", "_", "-") or "any"' })),
  },
  (app, at, issues) => {
    if (RESERVED_NAMES.includes(app.name)) issues.push(`${at}.name: "${app.name}" is reserved for the gateway`);
    // A prefix is checked too: `prefix: /_porthole/api` would take over the gateway's own paths.
    const first = app.prefix?.split('/')[1];
    if (first !== undefined && RESERVED_NAMES.includes(first)) issues.push(`${at}.prefix: "${app.prefix}" is under /${first}, which is reserved for the gateway`);
    const targets = (['port', 'url', 'socket'] as const).filter((t) => app[t] !== undefined);
    if (targets.length > 1) issues.push(`${at}: give only one of port, url, socket (got ${targets.join(' and ')})`);
    const bridged = app.bridge !== undefined || app.bridge_token_file !== undefined || app.bridge_token_redis !== undefined || app.stdio !== undefined;
    if (targets.length === 0 && app.cmd === undefined && !bridged) issues.push(`${at}: needs one of port, url or socket (where the app listens)`);
    issues.push(...bridgeProblems(app, at), ...stdioProblems(app, at));
    if (app.ws_port !== undefined && app.url !== undefined) issues.push(`${at}.ws_port: not used with url (put the WebSocket path in the url's app instead)`);
    issues.push(...execLimitProblems(app, at));
    issues.push(...sleepProblems(app, at));
  },
);
export type AppConfig = k.Infer<typeof appSchema>;

/** `idle_stop` and `wake_on_request` stop and start a process: only for an app Porthole runs. */
function sleepProblems(app: AppConfig, at: string): string[] {
  const issues: string[] = [];
  for (const key of ['idle_stop', 'wake_on_request'] as const) {
    if (app[key] !== undefined && app.cmd === undefined) issues.push(`${at}.${key}: only for an app with cmd (Porthole cannot stop or start an app it does not run)`);
  }
  if (app.idle_stop === 0) issues.push(`${at}.idle_stop: 0 would stop the app as soon as it is ready; give a duration such as "15m" (or leave idle_stop out)`);
  return issues;
}

/** The bridge keys (`bridge`, `ws_bridge`, `bridge_token_file`, `bridge_text`) taken together. */
function bridgeProblems(app: AppConfig, at: string): string[] {
  const issues: string[] = [];
  // `bridge` counts as the app's target, like port, url and socket.
  const other = (['port', 'url', 'socket'] as const).find((t) => app[t] !== undefined);
  if (app.bridge !== undefined && other) issues.push(`${at}.bridge: not with ${other} (bridge takes every upgrade and has no pages; for pages from ${other}, use ws_bridge)`);
  if (app.bridge !== undefined && app.ws_port !== undefined) issues.push(`${at}.bridge: not with ws_port (bridge already takes every upgrade)`);
  if (app.ws_bridge !== undefined && app.bridge !== undefined) issues.push(`${at}.ws_bridge: not with bridge, which already takes every upgrade`);
  if (app.ws_bridge !== undefined && app.ws_port !== undefined) issues.push(`${at}.ws_bridge: not with ws_port (upgrades go to one place)`);
  if (app.bridge_token_file !== undefined) {
    const fixed = app.bridge !== undefined ? 'bridge' : app.ws_bridge !== undefined ? 'ws_bridge' : app.ws_port !== undefined ? 'ws_port' : undefined;
    if (fixed) issues.push(`${at}.bridge_token_file: the token file picks each upgrade's target; drop ${fixed}`);
  }
  if (app.bridge_token_redis !== undefined) {
    const fixed = app.bridge !== undefined ? 'bridge' : app.ws_bridge !== undefined ? 'ws_bridge' : app.ws_port !== undefined ? 'ws_port' : undefined;
    if (fixed) issues.push(`${at}.bridge_token_redis: the token in Redis picks each upgrade's target; drop ${fixed}`);
    if (app.bridge_token_file !== undefined) issues.push(`${at}.bridge_token_redis: not with bridge_token_file (tokens come from one place)`);
    const store = parseTokenRedisUrl(app.bridge_token_redis);
    if (typeof store === 'string') {
      // websockify's `--token-source host:port:db:password:namespace` pasted as is
      const ws = /^[^/]*:/.test(app.bridge_token_redis) && !app.bridge_token_redis.includes('//') ? parseWebsockifyRedisSource(app.bridge_token_redis) : null;
      const hint = ws && typeof ws !== 'string' ? ` (websockify's source ${JSON.stringify(redactSource(app.bridge_token_redis))} is written redis://${ws.password ? ':PASSWORD@' : ''}${ws.host}:${ws.port}/${ws.db}${ws.namespace ? ` with bridge_token_redis_namespace: ${ws.namespace}` : ''})` : '';
      issues.push(`${at}.bridge_token_redis: ${store}${hint}`);
    }
  }
  if (app.bridge_token_redis_namespace !== undefined && app.bridge_token_redis === undefined) issues.push(`${at}.bridge_token_redis_namespace: only used with bridge_token_redis`);
  const bridged = app.bridge !== undefined || app.ws_bridge !== undefined || app.bridge_token_file !== undefined || app.bridge_token_redis !== undefined;
  if (app.bridge_text !== undefined && !bridged) issues.push(`${at}.bridge_text: only used with bridge, ws_bridge, bridge_token_file or bridge_token_redis`);
  return issues;
}

/** `stdio` and its `stdio_*` keys taken together: a stdio app takes every upgrade and has no pages. */
function stdioProblems(app: AppConfig, at: string): string[] {
  const issues: string[] = [];
  const others = (['port', 'url', 'socket', 'ws_port', 'cmd', 'bridge', 'ws_bridge', 'bridge_token_file', 'bridge_token_redis'] as const).filter((key) => app[key] !== undefined);
  if (app.stdio !== undefined && others.length) issues.push(`${at}.stdio: not with ${others.join(', ')} (a stdio app runs its command for each WebSocket connection and has nothing else to route to)`);
  if (app.stdio === undefined) {
    for (const key of ['stdio_shared', 'stdio_binary', 'stdio_max_processes', 'stdio_max_message', 'stdio_lines_per_second'] as const) {
      if (app[key] !== undefined) issues.push(`${at}.${key}: only used with stdio`);
    }
  }
  if (app.stdio !== undefined) issues.push(...execLimitProblems({ cmd: app.stdio }, at).map((p) => p.replace(`${at}.cmd`, `${at}.stdio`)));
  return issues;
}

/**
 * `metrics: false` (or `true`), or `{ enabled, listen }`. With `listen`, the
 * metrics are served at `http://LISTEN/metrics` without the admin token and
 * no longer at the gateway's `/_porthole/metrics` (docs/metrics.md says why).
 */
function metricsSchema(): k.Schema<{ readonly enabled: boolean; readonly listen?: string }> {
  const obj = k.object({
    enabled: k.withDefault(k.boolean(), true),
    // Port 0 (a free port) is allowed, as for `listen`: tests and embedders read the port back.
    listen: k.optional(k.string({ pattern: /^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, patternHint: 'HOST:PORT such as "127.0.0.1:9464"', check: (s) => (Number(s.slice(s.lastIndexOf(':') + 1)) > 65535 ? 'the port must be 0–65535' : undefined) })),
  });
  const expects = 'true, false or a mapping { enabled, listen }';
  return {
    expects,
    parse(v, path, issues) {
      if (typeof v === 'boolean') return { enabled: v };
      if (v === null || typeof v !== 'object' || Array.isArray(v)) return void issues.push(`${path}: expected ${expects}, got ${Array.isArray(v) ? 'a list' : typeof v === 'string' ? `string ${k.quote(v)}` : String(v)}`);
      return obj.parse(v, path, issues);
    },
  };
}

/** `tls` as a mapping: a certificate of your own (`cert` + `key`) or `internal: true`. */
const tlsObject = k.object(
  {
    /** PEM certificate (the chain may follow it), relative to the config file's directory. */
    cert: k.optional(k.string()),
    /** PEM private key of `cert`. */
    key: k.optional(k.string()),
    /** Certificates from a local CA kept in the data directory (see `porthole trust`). */
    internal: k.withDefault(k.boolean(), false),
    /** Cleartext on the TLS port: requests get a 308 to https://, WebSocket upgrades a close 1008 "use wss://". */
    redirect_http: k.withDefault(k.boolean(), true),
  },
  (t, at, issues) => {
    const given = t.cert !== undefined || t.key !== undefined;
    if (t.internal && given) issues.push(`${at}: give either internal: true or cert and key, not both`);
    else if (!t.internal && (t.cert === undefined || t.key === undefined)) issues.push(`${at}: needs cert and key (PEM files), or internal: true`);
  },
);
export type TlsConfig = k.Infer<typeof tlsObject>;

/** `tls: internal` is short for `tls: { internal: true }`. */
const tlsSchema = (): k.Schema<TlsConfig> => ({
  expects: '"internal" or a mapping with cert and key',
  parse(v, at, issues) {
    if (v === 'internal') return { internal: true, redirect_http: true };
    if (typeof v === 'string') return void issues.push(`${at}: expected "internal" or a mapping { cert, key }, got ${k.quote(v)}`);
    return tlsObject.parse(v, at, issues);
  },
});

const listenAddress = (hint: string) =>
  k.string({ pattern: /^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, patternHint: hint, check: (s) => (Number(s.slice(s.lastIndexOf(':') + 1)) > 65535 ? 'the port must be 0–65535' : undefined) });

const redisUrl = () =>
  k.string({
    patternHint: 'a redis:// or rediss:// URL',
    check: (s) => {
      let u: URL;
      try {
        u = new URL(s);
      } catch {
        return `${k.quote(s.replace(/\/\/[^@/]*@/, '//***@'))} is not a URL`;
      }
      if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') return 'expected redis://[:password@]host[:port][/db] or rediss://…';
      if (u.pathname && u.pathname !== '/' && !/^\/\d{1,2}$/.test(u.pathname)) return 'the path is the database number, such as /0';
      if (u.search || u.hash) return 'a query or fragment has no meaning here';
      return undefined;
    },
  });

const storeObject = k.object(
  {
    url: redisUrl(),
    /** Prefix of every key and channel: several clusters (or tests) can share one Redis. */
    prefix: k.withDefault(k.string({ pattern: /^[A-Za-z0-9:._-]{1,64}$/, patternHint: 'letters, digits and ":._-" such as "porthole:"' }), 'porthole:'),
    /** Redis's password (`requirepass`, or an ACL user's) in a file of mode 0600, rather than in the URL of a config file. */
    password_file: k.optional(k.string()),
    /**
     * For `rediss://`: `ca` is the CA Redis's certificate is checked against (default: the
     * system's), `cert`/`key` the client certificate Redis asks for (`tls-auth-clients`). PEM files.
     */
    tls: k.optional(k.object({ ca: k.optional(k.string()), cert: k.optional(k.string()), key: k.optional(k.string()) })),
  },
  (store, at, issues) => {
    const url = new URL(store.url);
    if (store.password_file !== undefined && url.password) issues.push(`${at}.password_file: the url has a password already; keep it in one place`);
    if (store.tls && url.protocol !== 'rediss:') issues.push(`${at}.tls: only a rediss:// url speaks TLS; write rediss://${url.host}${url.pathname}`);
    if (store.tls && (store.tls.cert === undefined) !== (store.tls.key === undefined)) issues.push(`${at}.tls: cert and key go together (the client certificate and its private key)`);
  },
);
export type StoreConfig = k.Infer<typeof storeObject>;

/** `store: file`, `store: redis://…`, or `store: { url, prefix, password_file, tls }`. Undefined means the file store. */
function storeSchema(): k.Schema<StoreConfig | 'file'> {
  const expects = '"file", a redis:// URL or a mapping { url, prefix, password_file, tls }';
  return {
    expects,
    parse(v, at, issues) {
      if (v === 'file') return 'file';
      if (typeof v === 'string') return storeObject.parse({ url: v }, at, issues);
      if (v === null || typeof v !== 'object' || Array.isArray(v)) return void issues.push(`${at}: expected ${expects}`);
      return storeObject.parse(v, at, issues);
    },
  };
}

const clusterSchema = k.object({
  /** This node's name; default: the machine's host name (`--node` overrides both). */
  node: k.optional(k.string({ pattern: NODE_NAME, patternHint: 'letters, digits, ".", "_" and "-"' })),
  /** Where this node takes requests forwarded by the other nodes (its peer listener). */
  listen: listenAddress('HOST:PORT such as "10.0.0.2:50001"'),
  /** The address other nodes reach `listen` at (default: `listen`, which must then be a specific address). */
  advertise: k.optional(listenAddress('HOST:PORT such as "10.0.0.2:50001"')),
  /** A node with no heartbeat for this long is down: its apps answer 503, its `node: any` apps move. */
  heartbeat_ttl: k.withDefault(k.duration(), 5_000),
  /** The shared secret of the peer listeners, in a file (mode 0600). Default: made once and kept in the store. */
  secret_file: k.optional(k.string()),
  /**
   * TLS between the nodes: the peer listener serves `cert`/`key` (PEM files), and every node
   * verifies the others' certificates against `ca` (the CA that signed them; their names or
   * IP addresses must match what they advertise).
   */
  tls: k.optional(k.object({ cert: k.string(), key: k.string(), ca: k.string() })),
});
export type ClusterConfig = k.Infer<typeof clusterSchema>;

export const configSchema = k.object(
  {
    listen: k.optional(k.string({ pattern: /^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, patternHint: 'HOST:PORT such as "127.0.0.1:50000"' })),
    /** HTTPS (and wss://) on the listening port, beside cleartext: see docs/tls.md. */
    tls: k.optional(tlsSchema()),
    data: k.optional(k.string()),
    idle_timeout: k.withDefault(k.duration(), 3_600_000),
    connect_timeout: k.withDefault(k.duration(), 5_000),
    response_timeout: k.withDefault(k.duration(), 60_000),
    drain_timeout: k.withDefault(k.duration(), 10_000),
    /** Processes that share the listening port (`porthole serve`; docs/workers.md): 1 (default), N, or `auto` (one per core). */
    workers: k.withDefault(workersSchema(), 1),
    /** A client must send a request's whole head (or a handshake) within this; slowloris is cut with it. */
    header_timeout: k.withDefault(k.duration(), 60_000),
    error_page: k.optional(k.string()),
    /** Trust X-Forwarded-* from the client (only behind another proxy you run). */
    trust_forwarded: k.withDefault(k.boolean(), false),
    /**
     * Names this gateway answers under besides loopback names, its own addresses and the apps'
     * names (a tunnel's name such as "agent.ngrok-free.app"). On loopback other Hosts get 421
     * (DNS rebinding); on other addresses the list, when set, restricts Host the same way.
     */
    server_names: k.withDefault(k.array(hostName()), []),
    /** Every app is also served at the root of `{name}.{base_domain}` (wildcard DNS), besides `{name}.localhost`. */
    base_domain: k.optional(domainName()),
    /** Who may use the apps (docs/auth.md): none, login, token or { forward_auth: URL }. Required off loopback. */
    auth: k.optional(authSchema()),
    /** The accounts of `auth: login` (hashes from `porthole passwd`). */
    users: k.withDefault(k.array(userSchema), []),
    /** The tokens of `auth: token`, as SHA-256 (`porthole passwd --token`). */
    auth_tokens: k.withDefault(k.array(authTokenSchema), []),
    /** Failed upgrades that no app takes (no app at the path, a refused Host): `ws` (101 + close) or `http`. */
    ws_errors: k.withDefault(k.oneOf('ws', 'http'), 'ws'),
    /** Who moves WebSocket tunnels' bytes: `native` (the addon, Linux), `js`, or `auto` (native when it loads). PORTHOLE_TUNNEL overrides. */
    tunnel_engine: k.withDefault(k.oneOf('auto', 'native', 'js'), 'auto'),
    log: k.withDefault(
      k.object({
        format: k.withDefault(k.oneOf('auto', 'json', 'text'), 'auto'),
        /** One line per HTTP request; off for very busy gateways (upgrades and tunnels are still logged). */
        requests: k.withDefault(k.boolean(), true),
      }),
      { format: 'auto' as const, requests: true },
    ),
    admin: k.withDefault(
      k.object({
        /** Token-less admin calls from loopback, for agents that cannot send a header. */
        local_no_auth: k.withDefault(k.boolean(), false),
        /** Host names (besides localhost and IP addresses) under which the admin API answers. */
        hosts: k.withDefault(k.array(hostName()), []),
      }),
      { local_no_auth: false, hosts: [] },
    ),
    /** Prometheus metrics (docs/metrics.md): `false` turns them off; `listen` serves them on an address of their own. */
    metrics: k.withDefault(metricsSchema(), { enabled: true }),
    /** Where the app registry is kept: `file` (the data directory, default) or `redis://…` (a cluster, docs/cluster.md). */
    store: k.optional(storeSchema()),
    /** This gateway as a node of a cluster sharing the `store` (docs/cluster.md). */
    cluster: k.optional(clusterSchema),
    /** `user`/`group` of every app that sets none: a gateway started as root runs its apps unprivileged. */
    app_defaults: k.withDefault(k.object({ user: k.optional(userOrGroup()), group: k.optional(userOrGroup()) }), {}),
    apps: k.withDefault(k.array(appSchema), []),
  },
  (cfg, _at, issues) => {
    issues.push(...appSetProblems(cfg.apps), ...serverNameProblems(cfg), ...authProblems(cfg), ...clusterProblems(cfg), ...workerProblems(cfg));
  },
);
export type Config = k.Infer<typeof configSchema>;

/** `store` and `cluster` taken together. */
function clusterProblems(cfg: { store?: StoreConfig | 'file'; cluster?: ClusterConfig }): string[] {
  const redis = cfg.store !== undefined && cfg.store !== 'file';
  if (cfg.cluster && !redis) return ['cluster: a cluster shares its registry through Redis: set store: redis://HOST:PORT'];
  if (redis && !cfg.cluster) return ['store: a Redis store makes this gateway a node of a cluster: add cluster: { listen: HOST:PORT }, the address the other nodes reach it on (docs/cluster.md)'];
  if (cfg.cluster && !cfg.cluster.advertise) {
    const host = cfg.cluster.listen.slice(0, cfg.cluster.listen.lastIndexOf(':')).replace(/^\[|\]$/g, '');
    if (host === '0.0.0.0' || host === '::' || host === '') return [`cluster.advertise: required when cluster.listen (${cfg.cluster.listen}) is a wildcard address: the other nodes need an address to reach this one`];
  }
  if (cfg.cluster && Number(cfg.cluster.listen.slice(cfg.cluster.listen.lastIndexOf(':') + 1)) === 0 && !cfg.cluster.advertise) return [];
  return [];
}

/**
 * A name in `server_names` is the gateway's own (apps under their prefixes);
 * one that is also an app's host name or automatic name could mean either.
 */
export function serverNameProblems(cfg: Pick<Config, 'server_names' | 'base_domain' | 'apps'> & { admin?: Pick<Config['admin'], 'hosts'> }): string[] {
  const issues: string[] = [];
  // The admin API's and the dashboard's names: an app there would receive the admin
  // token (`porthole apps` sends it to 127.0.0.1) and the dashboard's session and login codes.
  const adminNames = new Set(['localhost', '127.0.0.1', '::1', ...(cfg.admin?.hosts ?? []).map((h) => bareHost(h))]);
  cfg.apps.forEach((app, i) =>
    (app.hosts ?? []).forEach((h, j) => {
      if (adminNames.has(bareHost(h)))
        issues.push(
          `apps[${i}].hosts[${j}]: "${h}" is the gateway's own name (its admin API and dashboard answer there, and an app there would receive the admin token); the app is at ${app.name}.localhost already, or use another name or address such as 127.0.0.2`,
        );
    }),
  );
  const owner = new Map<string, string>();
  for (const app of cfg.apps) {
    owner.set(`${app.name}.localhost`, `app ${app.name}'s automatic name`);
    if (cfg.base_domain) owner.set(`${app.name}.${cfg.base_domain}`, `app ${app.name}'s automatic name`);
  }
  for (const app of cfg.apps) for (const h of app.hosts ?? []) owner.set(h.toLowerCase().replace(/:\d+$/, ''), `in the hosts of app ${app.name}`);
  cfg.server_names.forEach((n, i) => {
    const bare = n.toLowerCase().replace(/:\d+$/, '');
    const taken = owner.get(bare);
    if (taken) issues.push(`server_names[${i}]: "${n}" is ${taken}, so it routes to that app; leave it out of server_names`);
  });
  return issues;
}

/** A host name without its port and IPv6 brackets, lower-cased. */
function bareHost(h: string): string {
  return h.toLowerCase().replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
}

/** Problems of a set of apps taken together: names, prefixes and host names must be unique. */
export function appSetProblems(apps: readonly AppConfig[]): string[] {
  const issues: string[] = [];
  const names = new Map<string, number>();
  const hosts = new Map<string, string>();
  const prefixes = new Map<string, string>();
  apps.forEach((app, i) => {
    if (names.has(app.name)) issues.push(`apps[${i}].name: "${app.name}" is already used by apps[${names.get(app.name)}]`);
    names.set(app.name, i);
    const prefix = app.prefix ?? `/${app.name}`;
    if (prefixes.has(prefix)) issues.push(`apps[${i}].prefix: "${prefix}" is already the prefix of ${prefixes.get(prefix)}`);
    prefixes.set(prefix, app.name);
    for (const h of app.hosts ?? []) {
      const key = h.toLowerCase();
      if (hosts.has(key)) issues.push(`apps[${i}].hosts: "${h}" is already routed to ${hosts.get(key)}`);
      hosts.set(key, app.name);
    }
  });
  return issues;
}

/** The same config with another set of (already parsed) apps, checked and frozen. */
export function withApps(config: Config, apps: readonly AppConfig[]): Config {
  const problems = [...appSetProblems(apps), ...serverNameProblems({ ...config, apps }), ...authProblems({ ...config, apps }), ...workerProblems({ ...config, apps })];
  if (problems.length) throw new ConfigError(problems);
  return k.deepFreeze({ ...config, apps: [...apps] });
}

/** Parses and freezes a config; throws ConfigError listing every problem. */
export function parseConfig(raw: unknown, source?: string): Config {
  const issues: string[] = [];
  const cfg = configSchema.parse(raw ?? {}, '', issues);
  if (!cfg || issues.length) throw new ConfigError(issues, source);
  return k.deepFreeze(cfg);
}

/** Parses one app (admin API bodies, library options). */
export function parseApp(raw: unknown, at = 'app'): AppConfig {
  const issues: string[] = [];
  const app = appSchema.parse(raw, at, issues);
  if (!app || issues.length) throw new ConfigError(issues);
  return k.deepFreeze(app);
}
