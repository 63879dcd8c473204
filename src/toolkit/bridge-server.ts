/**
 * A standalone WebSocket→TCP bridge, what `websockify [--web DIR] PORT
 * HOST:PORT` does: every WebSocket upgrade is bridged to the target (fixed,
 * or picked by token), plain GETs are served from `web` (noVNC), and every
 * failure reaches the browser as a close code with a reason.
 *
 * A bridge usually fronts a VNC server without a password on loopback, so
 * it refuses what the gateway refuses, with the gateway's own checks: an
 * upgrade from a page of another origin (cross-site WebSocket hijacking),
 * and any request whose Host is not one of its names (DNS rebinding: the
 * rebound page's Host and Origin agree, only Host gives it away).
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { HostPort } from '../config/host-port.js';
import { parseTokenRedisUrl, parseWebsockifyRedisSource, type RedisTokenStore } from '../config/token-redis.js';
import { emit } from '../events.js';
import { BridgeEntry, hideToken, type HostRefusalWording } from '../gateway/bridge-entry.js';
import { listenStandalone } from './standalone-listener.js';
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
  /**
   * websockify's TokenRedis: the `token` query parameter is looked up in
   * Redis, one GET per connection. A `redis://[:password@]host:port/db` URL,
   * websockify's `host[:port[:db[:password[:namespace]]]]`, or a parsed store.
   */
  tokenRedis?: string | RedisTokenStore;
  /** With `tokenRedis`: keys are `NAMESPACE:token`. */
  tokenNamespace?: string;
  /** How long a Redis token lookup may take, in ms (then close 1013, PH_ERR_TOKEN_STORE). Default 1 s. */
  tokenTimeoutMs?: number;
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
  /**
   * Origins whose pages may open a WebSocket, as the gateway's `allowed_origins`:
   * omitted, only pages of the bridge's own origin (and clients that send no
   * Origin: not browsers); `['*']`, any page. A refusal is close 1008 with
   * PH_ERR_ORIGIN_REFUSED, its reason worded for `porthole bridge`
   * (`--allowed-origin`, this option's flag).
   */
  allowedOrigins?: readonly string[];
  /**
   * Host names the bridge answers under besides loopback names and this
   * machine's addresses, as the gateway's `server_names` (a tunnel's name;
   * `*.example.com` for every name under it). On a loopback listener other
   * Hosts are refused (421, or close 1008 for upgrades); on other addresses
   * the list, when given, restricts Host the same way (PH_ERR_HOST_REFUSED,
   * worded for `porthole bridge`'s `--server-name`).
   */
  serverNames?: readonly string[];
}

/** `tokenRedis` as a store; throws TypeError (before anything listens) for one that does not parse. */
function tokenStoreOf(source: string | RedisTokenStore | undefined, namespace: string | undefined): RedisTokenStore | undefined {
  if (source === undefined) {
    if (namespace !== undefined) throw new TypeError('tokenNamespace: only used with tokenRedis');
    return undefined;
  }
  const store = typeof source !== 'string' ? source : source.includes('://') ? parseTokenRedisUrl(source) : parseWebsockifyRedisSource(source);
  if (typeof store === 'string') throw new TypeError(`tokenRedis: ${store}`);
  return namespace !== undefined ? { ...store, namespace } : store;
}

const HOST_WORDING: HostRefusalWording = {
  whose: "this bridge's",
  fix: "pass --server-name NAME (names other than loopback and this machine's addresses are refused, against DNS rebinding)",
};

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
  const id = randomBytes(4).toString('hex');
  const app = opts.name ?? 'bridge';
  // Validates the policy (a target or a token file, origins, server names): a bad one throws before listening.
  const entry = new BridgeEntry({
    app,
    gateway: id,
    target: opts.target,
    tokens: opts.tokenFile,
    tokenRedis: tokenStoreOf(opts.tokenRedis, opts.tokenNamespace),
    tokenTimeoutMs: opts.tokenTimeoutMs,
    textAsBinary: opts.textAsBinary,
    connectMs: opts.connectMs,
    idleMs: opts.idleMs,
    heartbeatMs: opts.heartbeatMs,
    allowedOrigins: opts.allowedOrigins,
    originFlag: '--allowed-origin',
    serverNames: opts.serverNames,
    hostWording: HOST_WORDING,
  });
  const connections = entry.connections;
  let closing = false;

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const started = performance.now();
    // Pages need no Origin check (a page of another site may load noVNC's files, not read them); a foreign Host does.
    const refused = entry.refuseRequest(req, res);
    res.once('close', () =>
      emit('request', { gateway: id, app, method: req.method ?? 'GET', path: hideToken(req.url ?? '/'), status: res.statusCode, ms: Math.round(performance.now() - started), ...(refused ? { code: refused.code } : {}) }),
    );
    if (refused) return;
    if (opts.web) {
      serveStatic(req, res, opts.web).catch(() => res.destroy());
      return;
    }
    const body = `This is a WebSocket bridge to ${entry.label}: connect with a WebSocket client (noVNC, porthole connect).\n`;
    res.writeHead(426, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), Upgrade: 'websocket' });
    res.end(body);
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => entry.handleUpgrade(req, socket, head);

  const { server, port, url } = await listenStandalone(id, opts, onRequest, onUpgrade);

  return {
    port,
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
      entry.drain(`${app}: shutting down`);
      const deadline = Date.now() + graceMs;
      while (connections.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      entry.destroyAll();
      server.closeAllConnections();
      await stopped;
      emit('gateway', { gateway: id, action: 'closed' });
    },
  };
}
