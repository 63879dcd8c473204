/**
 * A WebSocket tunnel moved by the native addon (native/loop.c): after the
 * 101, both sockets' file descriptors are handed to the addon's epoll thread
 * and Node lets go of them, so no JavaScript runs per chunk. Same surface and
 * same `tunnel.close` event as the JavaScript Tunnel (tunnel.ts), which stays
 * the fallback: TLS, HTTP/2 streams, or no addon (upgrade.ts chooses).
 */
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import { emit } from '../events.js';
import { emitTunnelClose } from './tunnel-close.js';
import { type NativeBinding, type NativeBridgeSpec, type NativeEndReport, nativeBinding } from './native-binding.js';
import { type LiveConnection, type TunnelInfo, type TunnelOptions, nextConnectionId, tunnelRow } from './tunnel.js';
import { processShared } from './process-shared.js';

interface HandleSocket extends Socket {
  _handle?: { fd?: number; readStop?: () => number } | null;
}

/** What the addon holds for JavaScript: a native tunnel or a native bridge (native-bridge.ts). */
export interface NativeHeld {
  readonly id: number;
  ended: boolean;
  finish(r: NativeEndReport): void;
  afterEnd(fn: () => void): void;
}

/**
 * Tunnels and bridges the addon holds, until their end report: by their ids as the addon
 * keeps them (int32: napi_get_value_int32 keeps the low 32 bits of a larger one), which its
 * end report gives back.
 */
// Shared by every copy of this module in the process: the addon reports to the copy that started it (process-shared.ts).
const shared = processShared('nativeTunnel', () => ({ live: new Map<number, NativeHeld>(), reportOut: new Float64Array(16), binding: null as NativeBinding | null }));
const live = shared.live;
/** One scratch array for stats(): a snapshot costs no allocation per tunnel. */
const scratch = new Float64Array(7);
const kAdopted = Symbol('porthole.nativeTunnel');
let started: NativeBinding | null = null;

/** Starts the addon's thread (its epoll fd and eventfd) now rather than at the first tunnel. */
export function startNativeLoop(): void {
  binding();
}

export function binding(): NativeBinding {
  if (started) return started;
  // Started by another copy of this module: its reports come through that copy's onEnd, to the same tunnels.
  if (shared.binding) return (started = shared.binding);
  const { binding: b, error } = nativeBinding();
  if (!b) throw new Error(`native tunnel unavailable: ${error}`);
  b.init(onEnd, reportOut);
  shared.binding = b;
  return (started = b);
}

/** Where the addon writes an ending tunnel's numbers (native/addon.c, call_js): codes and sides are -1 for none. */
const reportOut = shared.reportOut;
const SIDES = ['client', 'upstream', 'gateway'] as const;
const code = (n: number): number | null => (n < 0 ? null : n);
const side = (n: number): 'client' | 'upstream' | undefined => (n === 0 ? 'client' : n === 1 ? 'upstream' : undefined);

function onEnd(gatewayReason: string | undefined, clientReason: string | undefined, upstreamReason: string | undefined, bridgeReason: string | undefined): void {
  const o = reportOut;
  const r: NativeEndReport = {
    id: o[0],
    bytesIn: o[1],
    bytesOut: o[2],
    framesIn: o[3],
    framesOut: o[4],
    messagesIn: o[5],
    messagesOut: o[6],
    lastActivity: o[7],
    gatewayCode: code(o[8]),
    gatewayReason,
    clientCode: code(o[9]),
    clientReason: clientReason ?? '',
    upstreamCode: code(o[10]),
    upstreamReason: upstreamReason ?? '',
    firstClose: side(o[11]),
    firstCut: side(o[12]),
  };
  if (o[13] === 1) {
    r.closedBy = SIDES[o[14]];
    r.closeCode = code(o[15]);
    r.reason = bridgeReason;
  }
  const t = live.get(r.id);
  if (!t) return;
  live.delete(r.id);
  // Nothing of the tunnel is kept open by Node any more: only this count holds the process.
  if (live.size === 0) started?.unref();
  t.finish(r);
}

/**
 * A socket the addon can take: a plain TCP (or Unix) socket with a file
 * descriptor and nothing of ours still queued in Node for it.
 */
export function adoptable(s: Duplex): s is Socket {
  if (!(s instanceof Socket) || s instanceof TLSSocket || s.destroyed) return false;
  const fd = (s as HandleSocket)._handle?.fd;
  return typeof fd === 'number' && fd >= 0 && s.writableLength === 0;
}

/**
 * Runs `fn` once the connection on `socket` is over: at its 'close', or, for
 * a socket a native tunnel took over (its Node object closes at the handover),
 * when that tunnel ends. The auth gate tracks logged-in connections this way.
 */
export function onConnectionClosed(socket: Duplex, fn: () => void): void {
  socket.once('close', () => {
    const t = (socket as Duplex & { [kAdopted]?: NativeHeld })[kAdopted];
    if (t && !t.ended) t.afterEnd(fn);
    else fn();
  });
}

/**
 * Hands two sockets to the addon (see NativeTunnel.start): returns its
 * handle, or, when it cannot take them, the error and the heads to go on
 * with in JavaScript (Node's buffered bytes included).
 */
export function adoptPair(
  owner: NativeHeld,
  client: Socket,
  upstream: Socket,
  clientHead: Buffer,
  upstreamHead: Buffer,
  timers: { idleMs: number; pingMs: number; graceMs: number },
  bridge?: NativeBridgeSpec,
  preface?: Buffer,
): { handle: object } | { error: Error; heads: [Buffer, Buffer] } {
  const b = binding();
  const c = client as HandleSocket;
  const u = upstream as HandleSocket;
  // The addon's duplicates share these sockets' options: small frames leave at once. Node
  // remembers the setting, so a socket that has it already costs no system call.
  c.setNoDelay(true);
  u.setNoDelay(true);
  const cHead = takeBuffered(c, clientHead);
  const uHead = takeBuffered(u, upstreamHead);
  let handle: object;
  try {
    handle = b.adopt(owner.id, c._handle!.fd!, u._handle!.fd!, cHead, uHead, timers.idleMs, timers.pingMs, timers.graceMs, bridge, preface);
  } catch (err) {
    return { error: err as Error, heads: [cHead ?? Buffer.alloc(0), uHead ?? Buffer.alloc(0)] };
  }
  if (live.size === 0) b.ref();
  live.set(owner.id | 0, owner);
  armLinks(b);
  (c as Duplex & { [kAdopted]?: NativeHeld })[kAdopted] = owner;
  c.destroy();
  u.destroy();
  return { handle };
}

/** Registers a tunnel the front made (`make` calls the addon's frontTunnel): held until its end report. */
function adoptFront(owner: NativeHeld, make: (b: NativeBinding) => object): object {
  const b = binding();
  const handle = make(b);
  if (live.size === 0) b.ref();
  live.set(owner.id | 0, owner);
  return handle;
}

/**
 * How long the timers (idle, ping) of a tunnel the addon took without waking its loop may
 * wait for that loop's next turn, when no socket stirs to bring one sooner.
 */
const LINK_WAIT_MS = 20;
let linkTimer: NodeJS.Timeout | null = null;

export function armLinks(b: NativeBinding): void {
  if (linkTimer) return;
  linkTimer = setTimeout(() => {
    linkTimer = null;
    b.wake();
  }, LINK_WAIT_MS);
  linkTimer.unref();
}

/** Bytes Node read past the handshake and holds in its buffer: they go first. */
function takeBuffered(s: Socket, head: Buffer): Buffer | null {
  const parts = head.length ? [head] : [];
  for (let chunk: Buffer | null; (chunk = s.read() as Buffer | null) !== null; ) parts.push(chunk);
  return parts.length === 0 ? null : parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

export class NativeTunnel {
  readonly id = nextConnectionId();
  readonly started = Date.now();
  ended = false;
  private handle: object | null = null;
  /** Weak: logout matching needs the socket only while the auth gate holds it itself. None for the front's tunnels. */
  private readonly clientRef: WeakRef<Duplex> | null;
  private gatewayClose: { code: number; reason: string } | null = null;
  private final: NativeEndReport | null = null;
  private waiting: (() => void)[] | null = null;
  private upstream: Socket | null;

  constructor(
    client: Socket | null,
    upstream: Socket | null,
    readonly info: TunnelInfo,
    private readonly opts: Omit<TunnelOptions, 'onEnd'> & { onEnd?: (t: NativeTunnel) => void },
  ) {
    this.clientRef = client ? new WeakRef(client) : null;
    this.upstream = upstream;
  }

  /** The client's socket (a closed Node object once adopted), for gateway.ts's logout matching. */
  get client(): Duplex | undefined {
    return this.clientRef?.deref();
  }

  /**
   * The tunnel of a handshake the front did (front.ts): its sockets are the addon's already,
   * and `preface` (the client's 101) goes out first. Throws when the addon cannot make it.
   */
  startFront(conn: object, preface: Buffer): void {
    const { idleMs, pingMs } = this.opts;
    this.handle = adoptFront(this, (b) => b.frontTunnel(conn, this.id, preface, idleMs, pingMs, this.opts.closeGraceMs ?? 3000));
  }

  /**
   * Hands both sockets to the addon: Node stops reading, the bytes it holds
   * go first, the addon dup()s the fds, then Node's sockets are destroyed —
   * closing Node's fd leaves the connection open on the dup, and libuv drops
   * its epoll registration. All in one tick: libuv reads nothing in between.
   * `preface` (the client's 101) is written by the addon, before the
   * upstream's first bytes. Returns null once adopted; when the addon cannot
   * take them (no fd left for the dup: EMFILE), the sockets are untouched,
   * nothing is written, and the heads to go on with in a JavaScript tunnel are
   * returned (Node's buffered bytes included).
   */
  start(clientHead: Buffer, upstreamHead: Buffer, preface?: Buffer): [Buffer, Buffer] | null {
    const upstream = this.upstream!;
    this.upstream = null;
    const r = adoptPair(this, this.client as Socket, upstream, clientHead, upstreamHead, { idleMs: this.opts.idleMs, pingMs: this.opts.pingMs, graceMs: this.opts.closeGraceMs ?? 3000 }, undefined, preface);
    if ('error' in r) {
      emit('error', { code: 'PH_ERR_NATIVE_TUNNEL', message: `${this.info.app}: the native tunnel cannot take this connection (${r.error.message}); it goes through the JavaScript tunnel`, app: this.info.app, gateway: this.info.gateway });
      return r.heads;
    }
    this.handle = r.handle;
    return null;
  }

  get bytesIn(): number {
    return this.stat(0);
  }
  get bytesOut(): number {
    return this.stat(1);
  }

  /** What the dashboard shows of this tunnel now. */
  snapshot(): LiveConnection {
    const s = this.final ? [this.final.bytesIn, this.final.bytesOut, 0, 0, this.final.messagesIn, this.final.messagesOut, this.final.lastActivity] : this.read();
    return tunnelRow(this.id, this.info, this.started, s[6], s[0], s[1], s[4], s[5]);
  }

  /** A close frame each way at the next frame boundary, then TCP closed (as Tunnel.close). */
  close(code: number, reason: string): void {
    if (this.ended || this.gatewayClose || !this.handle) return;
    this.gatewayClose = { code, reason };
    started!.close(this.handle, code, reason);
  }

  /** Cuts both connections now. */
  destroy(): void {
    if (this.ended || !this.handle) return;
    started!.destroy(this.handle);
  }

  /** @internal For onConnectionClosed(). */
  afterEnd(fn: () => void): void {
    (this.waiting ??= []).push(fn);
  }

  private stat(i: number): number {
    if (this.final) return i === 0 ? this.final.bytesIn : this.final.bytesOut;
    return this.read()[i];
  }

  private read(): Float64Array {
    if (this.handle) started!.stats(this.handle, scratch);
    return scratch;
  }

  /** @internal The addon's end report: `tunnel.close` as tunnel.ts's finish() emits it. */
  finish(r: NativeEndReport): void {
    this.ended = true;
    this.final = r;
    if (this.handle) started!.release(this.handle);
    this.handle = null;
    const gateway = this.gatewayClose ?? (r.gatewayCode !== null ? { code: r.gatewayCode, reason: r.gatewayReason } : null);
    emitTunnelClose(this.info, this.id, this.started, {
      engine: 'native',
      gateway,
      client: { code: r.clientCode, reason: r.clientReason },
      upstream: { code: r.upstreamCode, reason: r.upstreamReason },
      firstClose: r.firstClose,
      firstCut: r.firstCut,
      bytesIn: r.bytesIn,
      bytesOut: r.bytesOut,
      framesIn: r.framesIn,
      framesOut: r.framesOut,
      messagesIn: r.messagesIn,
      messagesOut: r.messagesOut,
    });
    this.opts.onEnd?.(this);
    for (const fn of this.waiting ?? []) fn();
    this.waiting = null;
  }
}
