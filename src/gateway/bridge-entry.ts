/**
 * The one public entry to the WebSocket→TCP bridge: a policy (where to
 * connect, which origins and Host names, text mode, heartbeat, timeouts,
 * event labels) and the upgrades it bridges. The gateway's bridged apps and
 * the standalone `porthole bridge` (src/toolkit/bridge-server.ts) both go
 * through it, so the toolkit depends on this file, not on the bridge's
 * insides (issue 9, section 4).
 *
 * Two ways in: `handleUpgrade` runs the edge checks of a server that is only
 * a bridge (Host, handshake, shutdown, Origin) and then bridges; `bridge`
 * only bridges, for the gateway, whose edge checks are shared with its
 * proxied apps (upgrade.ts) and have already run.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { HostPort } from '../config/host-port.js';
import { HOST_NAME, originProblem } from '../config/schema.js';
import { DrainingError, OriginRefusedError, type PortholeError } from '../errors.js';
import { emit } from '../events.js';
import { bridgeLabel, hideToken, openBridge, type BridgeSpec, type OpenBridge } from './bridge.js';
import { resolveTunnelEngine, type TunnelEngine } from './native-binding.js';
import type { RedisTokenStore } from '../config/token-redis.js';
import { RedisTokenTargets } from './bridge-token-redis.js';
import { TokenTargets, type TokenSource } from './bridge-tokens.js';
import { acceptAndClose, sendHttpError, sendRawHttpError } from './error-response.js';
import { checkHandshake, checkOriginOf, wsProtocol } from './handshake.js';
import { HostPolicy, type HostRefusalWording } from './host-policy.js';
import { refuseUpgrade } from './upgrade-refusal.js';

export { hideToken } from './bridge.js';
export type { HostRefusalWording } from './host-policy.js';

export interface BridgeEntryOptions {
  /** The `app` of this bridge's events and close reasons. */
  app: string;
  /** The `gateway` id of this bridge's events. */
  gateway: string;
  /** The TCP target of every connection (or use `tokens`). */
  target?: HostPort;
  /**
   * Targets picked by the `token` query parameter (or cookie): a path is
   * websockify's TokenFile, a file or a directory of them, read by the entry
   * (a bad line is an `error` event); or a source made already (the
   * gateway's, a RedisTokenTargets).
   */
  tokens?: string | TokenSource;
  /**
   * Targets picked by token from Redis (websockify's TokenRedis): one GET per
   * connection; a Redis down or slower than `tokenTimeoutMs` closes the
   * client with 1013, PH_ERR_TOKEN_STORE.
   */
  tokenRedis?: RedisTokenStore;
  /** How long a Redis token lookup may take, in ms. Default 1 s. */
  tokenTimeoutMs?: number;
  /** Pass text messages' UTF-8 bytes to TCP instead of closing with 1003. */
  textAsBinary?: boolean;
  /** TCP connect timeout, in ms. Default 5 s. */
  connectMs?: number;
  /** Close a connection with 1001 after this long without traffic, in ms (0: never). Default 1 h. */
  idleMs?: number;
  /** Ping every client this often, in ms (0: never). Default 0. */
  heartbeatMs?: number;
  /** Where open connections are kept (the gateway drains its own set); default one of the entry's own. */
  connections?: Set<OpenBridge>;
  /**
   * Where connections still being set up (token lookup, TCP connect) keep the function that
   * gives each up (the gateway's pending handshakes, which its drain calls); default a set of
   * the entry's own, which drain() calls.
   */
  pending?: Set<() => void>;
  /** What a connection refused or given up by a drain is told (PH_ERR_DRAINING, 1001). Default `APP: shutting down; reconnect in a moment`. */
  drainingReason?: string;
  /**
   * Who moves the bytes: `native` (the addon's loop, for plain TCP clients;
   * TLS, HTTP/2 and the `base64` subprotocol stay in JavaScript) or `js`.
   * Default: as a gateway's `tunnel_engine: auto` (native when the addon
   * loads; PORTHOLE_TUNNEL overrides).
   */
  engine?: TunnelEngine;
  /**
   * handleUpgrade only. Origins whose pages may open a WebSocket, as the
   * gateway's `allowed_origins`: omitted, only pages of the bridge's own
   * origin (and clients that send no Origin); `['*']`, any page.
   */
  allowedOrigins?: readonly string[];
  /** handleUpgrade only. The option that admits an origin, named in refusals. Default `--allowed-origin`. */
  originFlag?: string;
  /**
   * handleUpgrade and refuseRequest only. Host names answered besides
   * loopback names and this machine's addresses, as the gateway's
   * `server_names` (DNS rebinding).
   */
  serverNames?: readonly string[];
  /** How a Host refusal names whose names these are and the fix. Default the gateway's. */
  hostWording?: HostRefusalWording;
}

export class BridgeEntry {
  readonly app: string;
  readonly gateway: string;
  /** Open bridged connections. */
  readonly connections: Set<OpenBridge>;
  /** Who moves the bytes of the connections this entry opens. */
  readonly engine: TunnelEngine;
  /** Connections still being set up, each as the function that gives it up. */
  readonly pending: Set<() => void>;
  private readonly drainingReason: string;
  private readonly spec: BridgeSpec;
  private readonly connectMs: number;
  private readonly idleMs: number;
  private readonly pingMs: number;
  private readonly allowedOrigins: ReadonlySet<string> | '*' | null;
  private readonly originFlag: string;
  private readonly serverNames: readonly string[];
  private readonly hostWording: HostRefusalWording | undefined;
  // Built on first use: the gateway makes an entry per upgrade and never checks Host through it.
  private hostPolicy: HostPolicy | null = null;
  private draining = false;

  /** Throws TypeError for a policy that cannot work (no target, a malformed origin or server name). */
  constructor(opts: BridgeEntryOptions) {
    const given = [opts.target, opts.tokens, opts.tokenRedis].filter((x) => x !== undefined).length;
    if (given === 0) throw new TypeError('a bridge needs a target or a token file (or a token Redis)');
    if (given > 1) throw new TypeError('a bridge takes one of a target, a token file and a token Redis');
    this.app = opts.app;
    this.gateway = opts.gateway;
    const tokens = opts.tokenRedis
      ? new RedisTokenTargets(opts.tokenRedis, opts.app, opts.tokenTimeoutMs)
      : typeof opts.tokens === 'string'
        ? new TokenTargets(opts.tokens, (message) => emit('error', { code: 'PH_ERR_CONFIG', message: `token file ${message}`, app: opts.app, gateway: opts.gateway }))
        : opts.tokens;
    this.spec = { target: opts.target, tokens, textAsBinary: Boolean(opts.textAsBinary) };
    this.connectMs = opts.connectMs ?? 5000;
    this.idleMs = opts.idleMs ?? 3_600_000;
    this.pingMs = opts.heartbeatMs ?? 0;
    this.connections = opts.connections ?? new Set();
    this.pending = opts.pending ?? new Set();
    this.drainingReason = opts.drainingReason ?? `${opts.app}: shutting down; reconnect in a moment`;
    this.engine = opts.engine ?? resolveTunnelEngine('auto').engine;
    this.serverNames = namesOf(opts.serverNames);
    this.allowedOrigins = originSet(opts.allowedOrigins);
    this.originFlag = opts.originFlag ?? '--allowed-origin';
    this.hostWording = opts.hostWording;
  }

  /** What log lines and pages say the bridge connects to. */
  get label(): string {
    return bridgeLabel(this.spec);
  }

  /**
   * A standalone bridge's upgrade: the Host, handshake, shutdown and Origin
   * checks, each refusal with its code (a Host or Origin refused: close 1008
   * with `CODE: reason`; a malformed handshake: its HTTP status), then the
   * bridge.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const { app, gateway } = this;
    const path = hideToken(req.url ?? '/');
    const hostRefused = this.hosts.check(req.headers.host, req.socket);
    if (hostRefused) return refuseUpgrade(gateway, req, socket, hostRefused, { app, wsErrors: 'ws', path });
    const refuse = (err: PortholeError, status: number) =>
      emit('upgrade', { gateway, app, path, accepted: false, status, code: err.code, reason: err.message, closeCode: err.closeCode, protocol: wsProtocol(req) });
    const bad = checkHandshake(req);
    if (bad) {
      refuse(bad, bad.status);
      return sendRawHttpError(socket, bad, req.headers.accept, undefined, bad.status === 426 ? { 'Sec-WebSocket-Version': '13' } : {});
    }
    const fail = (err: PortholeError) => {
      refuse(err, 101);
      acceptAndClose(socket, req.headers['sec-websocket-key'] as string, req.headers['sec-websocket-protocol'], err.closeCode, err.message);
    };
    if (this.draining) return fail(new DrainingError(this.drainingReason, { app }));
    if (checkOriginOf(req, app, this.allowedOrigins)) return refuseUpgrade(gateway, req, socket, this.originRefusal(req.headers.origin ?? ''), { app, wsErrors: 'ws', path });
    this.bridge(req, socket, head, fail);
  }

  /**
   * Bridges an upgrade whose edge checks have run: picks the target,
   * connects TCP, completes the handshake, relays. A failure before the
   * handshake goes to `fail`, which answers it (a close code and a reason).
   */
  bridge(req: IncomingMessage, socket: Duplex, head: Buffer, fail: (err: PortholeError) => void): void {
    const { app, gateway, spec, connectMs, idleMs, pingMs, connections, engine, pending, drainingReason } = this;
    openBridge(req, socket, head, { app, gateway, spec, connectMs, idleMs, pingMs, connections, engine, pending, drainingReason }, fail);
  }

  /**
   * A plain HTTP request under a Host that is not the bridge's: answered
   * (421, or 400 for a malformed Host, with Connection: close) and returned.
   * Null when the request may proceed.
   */
  refuseRequest(req: IncomingMessage, res: ServerResponse): PortholeError | null {
    const refused = this.hosts.check(req.headers.host, req.socket);
    if (!refused) return null;
    // The request may carry a body the bridge will not read: close rather than parse it as the next request.
    res.setHeader('Connection', 'close');
    sendHttpError(res, refused, req.headers.accept);
    return refused;
  }

  /**
   * Refuses new upgrades (1001, PH_ERR_DRAINING), gives up those still connecting to their
   * target the same way, and closes every open connection with 1001 and `reason`.
   */
  drain(reason: string): void {
    this.draining = true;
    for (const giveUp of [...this.pending]) giveUp();
    for (const c of this.connections) c.close(1001, reason);
  }

  /** Cuts every open connection now. */
  destroyAll(): void {
    for (const c of this.connections) c.destroy();
  }

  private get hosts(): HostPolicy {
    this.hostPolicy ??= HostPolicy.forNames(this.serverNames, this.hostWording);
    return this.hostPolicy;
  }

  /**
   * The Origin refusal, worded with the option that fixes it. checkOrigin's
   * own wording names `allowed_origins` and carries the origin twice, too
   * long for a close reason (123 bytes) once the origin is long.
   */
  private originRefusal(origin: string): PortholeError {
    const { app, originFlag: flag } = this;
    let normalized: string | undefined;
    try {
      normalized = new URL(origin).origin;
    } catch {
      /* not a URL */
    }
    if (!normalized || normalized === 'null') {
      return new OriginRefusedError(`${app}: WebSocket from Origin ${JSON.stringify(origin.slice(0, 60))} refused: only ${flag} '*' admits it`, { app });
    }
    const what = this.allowedOrigins === null ? 'cross-origin WebSocket refused' : 'origin not allowed';
    return new OriginRefusedError(`${app}: ${what}: pass ${flag} ${normalized}`, { app });
  }
}

/** `allowedOrigins`, checked as the gateway's `allowed_origins` are, in Route.allowedOrigins' shape. */
function originSet(list: readonly string[] | undefined): ReadonlySet<string> | '*' | null {
  for (const o of list ?? []) {
    const problem = originProblem(o);
    if (problem) throw new TypeError(`allowedOrigins: ${problem}`);
  }
  return !list ? null : list.includes('*') ? '*' : new Set(list.map((o) => new URL(o).origin));
}

/** `serverNames`, checked as the gateway's `server_names` are. */
function namesOf(list: readonly string[] = []): readonly string[] {
  for (const n of list) if (!HOST_NAME.test(n)) throw new TypeError(`serverNames: ${JSON.stringify(n)} is not a host name such as "vnc.example.com" or "*.example.com"`);
  return list;
}
