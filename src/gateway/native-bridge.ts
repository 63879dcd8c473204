/**
 * A bridged connection run by the native addon (native/bridge.c): after the
 * TCP target is connected, both sockets go to the addon's epoll thread, which
 * writes the 101 and then frames, unframes and moves every byte itself (TCP's
 * bytes reach the client through a pipe with splice(2)); no JavaScript runs
 * per message. Same surface and same `tunnel.close` event as the JavaScript
 * BridgeConnection (bridge-connection.ts), which stays in use for TLS,
 * HTTP/2 streams, the `base64` subprotocol, or no addon (bridge.ts chooses).
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { emit } from '../events.js';
import type { BridgeInfo } from './bridge-connection.js';
import type { NativeBridgeSpec, NativeEndReport } from './native-binding.js';
import { adoptPair, binding, type NativeHeld } from './native-tunnel.js';
import { type LiveConnection, nextConnectionId } from './tunnel.js';

/** One scratch array for stats(): a snapshot costs no allocation per connection. */
const scratch = new Float64Array(7);

export interface NativeBridgeOptions {
  idleMs: number;
  pingMs: number;
  /** How long a closing side gets to finish after our close frame is out, in ms. Default 3 s. */
  closeGraceMs?: number;
  onEnd?: (c: NativeBridge) => void;
}

export class NativeBridge implements NativeHeld {
  readonly id = nextConnectionId();
  readonly started = Date.now();
  ended = false;
  private handle: object | null = null;
  /** Weak: logout matching needs the socket only while the auth gate holds it itself. */
  private readonly clientRef: WeakRef<Duplex>;
  private final: NativeEndReport | null = null;
  private waiting: (() => void)[] | null = null;

  constructor(
    client: Socket,
    private tcp: Socket | null,
    readonly info: BridgeInfo,
    private readonly opts: NativeBridgeOptions,
  ) {
    this.clientRef = new WeakRef(client);
  }

  /** The client's socket (a closed Node object once adopted), for the gateway's logout matching. */
  get client(): Duplex | undefined {
    return this.clientRef.deref();
  }

  /**
   * Hands both sockets to the addon, which writes `spec.preface` (the 101)
   * first. False when it cannot take them (no fd left for the dup): nothing
   * was written and both sockets are as they were, for the JavaScript bridge.
   */
  start(head: Buffer, spec: NativeBridgeSpec): boolean {
    const tcp = this.tcp!;
    this.tcp = null;
    const r = adoptPair(this, this.client as Socket, tcp, head, Buffer.alloc(0), { idleMs: this.opts.idleMs, pingMs: this.opts.pingMs, graceMs: this.opts.closeGraceMs ?? 3000 }, spec);
    if ('error' in r) {
      emit('error', { code: 'PH_ERR_NATIVE_TUNNEL', message: `${this.info.app}: the native bridge cannot take this connection (${r.error.message}); it goes through the JavaScript bridge`, app: this.info.app, gateway: this.info.gateway });
      // Node's buffered bytes were taken out of the sockets: put back in front of what comes next.
      const [c, u] = r.heads;
      if (c.length) (this.client as Socket).unshift(c);
      if (u.length) tcp.unshift(u);
      return false;
    }
    this.handle = r.handle;
    return true;
  }

  /** What the dashboard shows of this connection now. */
  snapshot(): LiveConnection {
    const f = this.final;
    const s = f ? [f.bytesIn, f.bytesOut, 0, 0, f.messagesIn, f.messagesOut, f.lastActivity] : this.read();
    return {
      id: this.id,
      kind: 'bridge',
      app: this.info.app,
      path: this.info.path,
      client: this.info.client ?? 'unknown',
      started: this.started,
      lastActivity: s[6],
      bytesIn: s[0],
      bytesOut: s[1],
      messagesIn: s[4],
      messagesOut: s[5],
    };
  }

  /** A close frame to the client (after what is queued), TCP ended once it answers; both cut after a grace period. */
  close(code: number, reason: string): void {
    if (this.ended || !this.handle) return;
    binding().close(this.handle, code, reason);
  }

  /** Cuts both connections now. */
  destroy(): void {
    if (this.ended || !this.handle) return;
    binding().destroy(this.handle);
  }

  /** @internal For onConnectionClosed(). */
  afterEnd(fn: () => void): void {
    (this.waiting ??= []).push(fn);
  }

  private read(): Float64Array {
    if (this.handle) binding().stats(this.handle, scratch);
    return scratch;
  }

  /** @internal The addon's end report: `tunnel.close` as BridgeConnection emits it. */
  finish(r: NativeEndReport): void {
    this.ended = true;
    this.final = r;
    if (this.handle) binding().release(this.handle);
    this.handle = null;
    emit('tunnel.close', {
      app: this.info.app,
      path: this.info.path,
      gateway: this.info.gateway,
      ms: Date.now() - this.started,
      bytesIn: r.bytesIn,
      bytesOut: r.bytesOut,
      framesIn: r.messagesIn,
      framesOut: r.messagesOut,
      messagesIn: r.messagesIn,
      messagesOut: r.messagesOut,
      id: this.id,
      kind: 'bridge',
      engine: 'native',
      client: this.info.client,
      closeCode: r.closeCode ?? null,
      closedBy: r.closedBy ?? 'upstream',
      reason: r.reason,
    });
    this.opts.onEnd?.(this);
    for (const fn of this.waiting ?? []) fn();
    this.waiting = null;
  }
}
