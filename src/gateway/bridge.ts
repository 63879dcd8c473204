/**
 * The WebSocket→TCP bridge (websockify's job, for VNC and other raw TCP
 * services), used by apps with `bridge`, `ws_bridge` or `bridge_token_file`
 * and by `porthole bridge`, both through BridgeEntry (bridge-entry.ts), the
 * bridge's public entry. The edge checks (handshake, ws_paths, origins)
 * happen before; here the target is chosen (fixed, or by token), TCP is
 * connected, and only then is the handshake completed, so a target that is
 * down becomes a 1014 close with a reason instead of a silent 1006.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { formatHostPort, parseHostPort, type HostPort } from '../config/host-port.js';
import type { AppConfig } from '../config/schema.js';
import { BadHandshakeError, DrainingError, PortholeError, RouteNotFoundError, upstreamError } from '../errors.js';
import { emit } from '../events.js';
import { BridgeConnection, targetClosedReason, textRefusedReason } from './bridge-connection.js';
import { acceptKey } from './error-response.js';
import type { NativeBridgeSpec, TunnelEngine } from './native-binding.js';
import { NativeBridge } from './native-bridge.js';
import { adoptable } from './native-tunnel.js';
import { peerOf } from './tunnel.js';
import { wsProtocol } from './handshake.js';
import { parseTokenRedisUrl } from '../config/token-redis.js';
import { RedisTokenTargets } from './bridge-token-redis.js';
import { TokenTargets, tokenOf, type TokenSource } from './bridge-tokens.js';
import type { Route } from './router.js';

/**
 * Largest message a client may send: `ws` holds a whole message before
 * handing it over, so this bounds memory per connection. VNC clients send
 * small messages; a bigger one closes the connection with 1009.
 */
export const MAX_CLIENT_MESSAGE = 16 * 1024 * 1024;

/** Where a bridge connects, and how it treats text messages. */
export interface BridgeSpec {
  /** The fixed target; absent when a token picks it. */
  readonly target?: HostPort;
  /** The token file or the Redis the token is looked up in. */
  readonly tokens?: TokenSource;
  /** Pass text messages' UTF-8 bytes to TCP instead of closing with 1003. */
  readonly textAsBinary: boolean;
}

export interface BridgeContext {
  app: string;
  gateway: string;
  spec: BridgeSpec;
  connectMs: number;
  idleMs: number;
  pingMs: number;
  /** Open connections (a drain closes them); each removes itself when both sides are closed. */
  connections: Set<OpenBridge>;
  /** Who moves the bytes: the native addon where it can take the sockets, or JavaScript. */
  engine: TunnelEngine;
  /**
   * Connections still being set up (a token lookup, the TCP connect) are in here, each as the
   * function that gives it up: a drain calls them (the gateway's pending handshakes, or the
   * entry's own set).
   */
  pending: Set<() => void>;
  /** What a connection given up by a drain is told (PH_ERR_DRAINING, close 1001). */
  drainingReason: string;
}

/**
 * A connection from its upgrade to its handshake: a token lookup, then the TCP connect. A
 * drain gives it up at once, as the gateway gives up an upgrade still waiting for its
 * upstream: a target that never answers the connect would otherwise hold it (and the client,
 * told nothing) until connect_timeout, and open a bridge after the drain closed the others.
 */
class Setup {
  over = false;
  tcp: net.Socket | null = null;
  /** connect_timeout's. */
  timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly ctx: BridgeContext,
    private readonly fail: (err: PortholeError) => void,
  ) {
    ctx.pending.add(this.drained);
  }

  /** The setup is over (connected, failed, or the client left); false when it was already. */
  end(): boolean {
    if (this.over) return false;
    this.over = true;
    if (this.timer) clearTimeout(this.timer);
    this.ctx.pending.delete(this.drained);
    return true;
  }

  private readonly drained = (): void => {
    if (!this.end()) return;
    this.tcp?.destroy();
    this.fail(new DrainingError(this.ctx.drainingReason, { app: this.ctx.app }));
  };
}

/** An open bridged connection, moved by JavaScript or by the native addon. */
export type OpenBridge = BridgeConnection | NativeBridge;

/**
 * The bridge of an app, or null when its upgrades are proxied. Relative
 * token file paths are resolved with `resolvePath` (the config's directory).
 */
export function bridgeSpecOf(app: AppConfig, resolvePath: (file: string) => string = (f) => resolve(f)): BridgeSpec | null {
  const fixed = app.bridge ?? app.ws_bridge;
  const textAsBinary = app.bridge_text === 'binary';
  if (fixed !== undefined) {
    const target = parseHostPort(fixed);
    // The schema checked it; a config built without the schema fails here, loudly.
    if (typeof target === 'string') throw new TypeError(`app ${app.name}: ${target}`);
    return { target, textAsBinary };
  }
  if (app.bridge_token_file !== undefined) {
    const file = isAbsolute(app.bridge_token_file) ? app.bridge_token_file : resolvePath(app.bridge_token_file);
    const tokens = new TokenTargets(file, (message) => emit('error', { code: 'PH_ERR_CONFIG', message: `bridge_token_file ${message}`, app: app.name }));
    return { tokens, textAsBinary };
  }
  if (app.bridge_token_redis !== undefined) {
    const store = parseTokenRedisUrl(app.bridge_token_redis);
    if (typeof store === 'string') throw new TypeError(`app ${app.name}: bridge_token_redis: ${store}`);
    return { tokens: new RedisTokenTargets({ ...store, namespace: app.bridge_token_redis_namespace }, app.name), textAsBinary };
  }
  return null;
}

/** True when the app is only a bridge: plain HTTP to it has nothing to reach. */
export function isBridgeOnly(app: AppConfig): boolean {
  // A stdio app (stdio-entry.ts) is the same to routing: upgrades only, its own end.
  if (app.stdio !== undefined) return true;
  const tokens = app.bridge_token_file !== undefined || app.bridge_token_redis !== undefined;
  return app.bridge !== undefined || (tokens && app.port === undefined && app.url === undefined && app.socket === undefined);
}

/** What a log line says the bridge connects to. */
export function bridgeLabel(spec: BridgeSpec): string {
  return spec.target ? formatHostPort(spec.target) : (spec.tokens?.label ?? 'a target picked by token');
}

/**
 * Plain HTTP to a bridge-only app: 426 with a short text saying what it is,
 * rather than a confusing 502 from trying to speak HTTP to a VNC server.
 */
export function refuseBridgeHttp(gatewayId: string, req: IncomingMessage, res: ServerResponse, route: Route): void {
  const app = route.app.name;
  const body =
    route.app.stdio !== undefined
      ? `${app} runs a program for each WebSocket connection (stdio): connect with a WebSocket client (porthole connect, an MCP client), not plain HTTP.\n`
      : `${app} is a WebSocket bridge to ${route.bridge ? bridgeLabel(route.bridge) : 'a TCP service'}: connect with a WebSocket client (noVNC, porthole connect), not plain HTTP.\n`;
  res.writeHead(426, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), Upgrade: 'websocket', 'Cache-Control': 'no-store' });
  res.end(body);
  emit('request', { gateway: gatewayId, app, method: req.method ?? 'GET', path: req.url ?? '/', status: 426, ms: 0 });
}

const SUBPROTOCOLS = ['binary', 'base64'];

// One server object for every bridge: with `noServer` it holds no state per
// connection (`clientTracking` off), it only completes handshakes.
const wss = new WebSocketServer({
  noServer: true,
  clientTracking: false,
  perMessageDeflate: false,
  maxPayload: MAX_CLIENT_MESSAGE,
  // noVNC ≥ 1.0 offers `binary` (or nothing); the oldest offer `base64` too.
  handleProtocols: (offered: Set<string>) => SUBPROTOCOLS.find((p) => offered.has(p)) ?? false,
});

/**
 * Bridges one upgrade: picks the target, connects TCP, completes the
 * handshake, then relays. Every failure before the handshake goes to `fail`
 * (which completes it and closes with the error's code and reason).
 */
export function openBridge(req: IncomingMessage, socket: Duplex, head: Buffer, ctx: BridgeContext, fail: (err: PortholeError) => void): void {
  const offered = (req.headers['sec-websocket-protocol'] ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  if (offered.length && !offered.some((p) => SUBPROTOCOLS.includes(p))) {
    return fail(new BadHandshakeError(`${ctx.app}: this bridge speaks the "binary" subprotocol; the client offered only ${offered.join(', ')}`, { app: ctx.app }));
  }
  const { spec } = ctx;
  const setup = new Setup(ctx, fail);
  if (spec.target) return connectTarget(req, socket, head, ctx, spec.target, fail, setup);
  spec.tokens!.lookup(tokenOf(req)).then(
    (found) => {
      if (setup.over) return;
      if (socket.destroyed) return void setup.end();
      if ('problem' in found) return void (setup.end(), fail(new RouteNotFoundError(`${ctx.app}: ${found.problem}`, { app: ctx.app })));
      connectTarget(req, socket, head, ctx, found.target, fail, setup);
    },
    // A PortholeError (the token store failed: 1013) passes as it is.
    (err) => (!setup.end() || socket.destroyed ? undefined : fail(upstreamError(err, ctx.app, bridgeLabel(spec)))),
  );
}

function connectTarget(req: IncomingMessage, socket: Duplex, head: Buffer, ctx: BridgeContext, target: HostPort, fail: (err: PortholeError) => void, setup: Setup): void {
  const label = formatHostPort(target);
  const tcp = net.connect({ host: target.host, port: target.port });
  setup.tcp = tcp;
  if (ctx.connectMs > 0) {
    setup.timer = setTimeout(() => tcp.destroy(Object.assign(new Error(`connect timed out after ${ctx.connectMs} ms`), { code: 'ETIMEDOUT' })), ctx.connectMs);
  }
  // False when the setup was over already: a drain gave it up.
  const settle = () => {
    socket.off('close', abandon);
    return setup.end();
  };
  // The client gave up while we were connecting.
  const abandon = () => {
    if (settle()) tcp.destroy();
  };
  socket.once('close', abandon);
  tcp.on('error', (err) => {
    if (settle() && !socket.destroyed) fail(upstreamError(err, ctx.app, label));
  });
  tcp.once('connect', () => {
    if (!settle()) return;
    if (socket.destroyed) return void tcp.destroy();
    handshake(req, socket, head, ctx, tcp, label);
  });
}

function handshake(req: IncomingMessage, socket: Duplex, head: Buffer, ctx: BridgeContext, tcp: net.Socket, label: string): void {
  const path = hideToken(req.url ?? '/');
  const info = { app: ctx.app, path, gateway: ctx.gateway, target: label, client: peerOf(socket as net.Socket) };
  const protocol = chooseProtocol(req);
  // Native between two plain sockets; `base64` (noVNC before 1.0) re-encodes every message, left to JavaScript.
  if (ctx.engine === 'native' && protocol !== 'base64' && adoptable(socket) && adoptable(tcp)) {
    const native = new NativeBridge(socket, tcp, info, { idleMs: ctx.idleMs, pingMs: ctx.pingMs, onEnd: (c) => ctx.connections.delete(c) });
    const accept =
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${acceptKey(String(req.headers['sec-websocket-key']).trim())}\r\n` +
      (protocol ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : '') +
      '\r\n';
    const adopted = native.start(head, {
      app: ctx.app,
      eofReason: targetClosedReason(ctx.app, label),
      ...targetFailureReasons(ctx.app, label),
      textReason: textRefusedReason(ctx.app),
      textAsBinary: ctx.spec.textAsBinary,
      preface: Buffer.from(accept, 'latin1'),
    });
    if (adopted) {
      emit('upgrade', { gateway: ctx.gateway, app: ctx.app, path, accepted: true, status: 101, protocol: wsProtocol(req) });
      ctx.connections.add(native);
      return;
    }
    // Not adopted: the bytes Node had buffered are back in the socket, in front.
    head = Buffer.alloc(0);
  }
  // `ws` refuses a handshake it finds invalid with a 400 of its own and never calls back: free TCP then.
  const lost = () => tcp.destroy();
  socket.once('close', lost);
  wss.handleUpgrade(req, socket, head, (ws) => {
    socket.off('close', lost);
    emit('upgrade', { gateway: ctx.gateway, app: ctx.app, path, accepted: true, status: 101, protocol: wsProtocol(req) });
    const conn = new BridgeConnection(ws, tcp, socket, info, {
      idleMs: ctx.idleMs,
      pingMs: ctx.pingMs,
      textAsBinary: ctx.spec.textAsBinary,
      onEnd: (c) => ctx.connections.delete(c),
    });
    ctx.connections.add(conn);
    conn.start();
  });
}

type FailureReasons = Pick<NativeBridgeSpec, 'resetReason' | 'timeoutReason' | 'failedBefore' | 'failedAfter'>;
/** The last target's, kept: a fixed target's connections all share them. */
let lastFailureReasons: { app: string; label: string; reasons: FailureReasons } | null = null;

/**
 * What the native bridge says when TCP to its target fails, worded by upstreamError as
 * BridgeConnection words the same failure, so both engines close with the same reason. The
 * addon knows the errno only once it happens: any error other than a reset or a timeout is
 * worded around a placeholder code, and the addon puts the error's name in its place.
 */
function targetFailureReasons(app: string, label: string): FailureReasons {
  const last = lastFailureReasons;
  if (last && last.app === app && last.label === label) return last.reasons;
  const said = (code: string) => upstreamError(Object.assign(new Error(code), { code }), app, label).message;
  const [failedBefore, failedAfter = ''] = said('\0').split('\0');
  const reasons = { resetReason: said('ECONNRESET'), timeoutReason: said('ETIMEDOUT'), failedBefore, failedAfter };
  lastFailureReasons = { app, label, reasons };
  return reasons;
}

/** The subprotocol the bridge selects from the client's offer, as `ws` does through handleProtocols. */
function chooseProtocol(req: IncomingMessage): string | null {
  const offered = new Set(
    (req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean),
  );
  return SUBPROTOCOLS.find((p) => offered.has(p)) ?? null;
}

/** The request path for logs: a token picks a target and may be a secret, so its value is not logged. */
export function hideToken(url: string): string {
  return url.replace(/([?&]token=)[^&#]*/g, '$1…');
}
