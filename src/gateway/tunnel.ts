/**
 * A WebSocket tunnel after the upstream's 101: bytes are spliced both ways,
 * never re-framed, with backpressure (a slow reader pauses the other side).
 * Frame headers are tracked so the gateway can close cleanly — a real close
 * frame at a frame boundary on idle timeout or drain, never a bare reset.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { FrameTracker, OP_PING, closeFrame, controlFrame } from './frames.js';
import { emitTunnelClose, type Side } from './tunnel-close.js';
import { processShared } from './process-shared.js';

export interface TunnelInfo {
  app: string;
  path: string;
  gateway: string;
  /** The client's `address:port` as the gateway's socket saw it. */
  client?: string;
}

/** One open WebSocket connection, as the dashboard and the admin API show it. */
export interface LiveConnection {
  id: number;
  kind: 'tunnel' | 'bridge' | 'stdio';
  app: string;
  path: string;
  client: string;
  /** Epoch ms. */
  started: number;
  /** Epoch ms of the last byte either way. */
  lastActivity: number;
  /** Bytes from the client (to the app) and to the client. */
  bytesIn: number;
  bytesOut: number;
  /** Data messages each way. */
  messagesIn: number;
  messagesOut: number;
}

// One count per process, whichever copy of this module a connection comes from (process-shared.ts).
const ids = processShared('connectionIds', () => ({ last: 0 }));
/** A number per tunnel and bridge connection of this process, for the dashboard's rows. */
export function nextConnectionId(): number {
  return ++ids.last;
}

/** @internal Tests: the id the last connection got. */
export function setLastConnectionId(id: number): void {
  ids.last = id;
}

/** A tunnel's row in the dashboard and the admin API, whichever engine carries it. */
export function tunnelRow(id: number, info: TunnelInfo, started: number, lastActivity: number, bytesIn: number, bytesOut: number, messagesIn: number, messagesOut: number): LiveConnection {
  return { id, kind: 'tunnel', app: info.app, path: info.path, client: info.client ?? 'unknown', started, lastActivity, bytesIn, bytesOut, messagesIn, messagesOut };
}

/** `address:port` of a socket (`[v6]:port`), or `unknown`. */
export function peerOf(socket: { remoteAddress?: string; remotePort?: number }): string {
  const a = socket.remoteAddress;
  if (!a) return 'unknown';
  return a.includes(':') ? `[${a}]:${socket.remotePort}` : `${a}:${socket.remotePort}`;
}

export interface TunnelOptions {
  idleMs: number;
  pingMs: number;
  /** How long to wait for both sides to finish a gateway-initiated close. */
  closeGraceMs?: number;
  onEnd?: (t: Tunnel) => void;
}

/** One direction of a tunnel. */
class Leg {
  readonly tracker = new FrameTracker();
  bytes = 0;
  /** A control frame waiting for the next frame boundary of this direction. */
  pending: Buffer | null = null;
  /** The pending frame is a close: seal the direction once it is out. */
  sealAfterPending = false;
  /** After our close frame went out this way, nothing more may follow it. */
  sealed = false;
  /** Set once a close frame has been seen coming this way. */
  sawClose = false;

  /** The leg going the other way (set once both exist). */
  other!: Leg;

  constructor(
    readonly tunnel: Tunnel,
    readonly side: Side,
    readonly from: Duplex,
    readonly to: Duplex,
    /** Frames written towards an upstream server must be masked. */
    readonly maskOut: boolean,
  ) {}
}

/**
 * Socket listeners are shared functions that find their leg on the socket,
 * rather than closures made per tunnel: with thousands of idle tunnels open,
 * ten closures each are a measurable part of the memory a tunnel costs.
 */
const kLeg = Symbol('porthole.leg');
type Wired = Duplex & { [kLeg]: Leg };

function onLegData(this: Wired, chunk: Buffer): void {
  const leg = this[kLeg];
  leg.tunnel.onData(leg, chunk);
}
function onLegDrain(this: Wired): void {
  // This socket can take more: resume the one that writes into it.
  this[kLeg].other.from.resume();
}
function onLegEnd(this: Wired): void {
  this[kLeg].tunnel.onEnd(this[kLeg]);
}
function onLegError(this: Wired): void {
  this[kLeg].tunnel.noteCut(this[kLeg].side);
  this.destroy();
}
function onLegClose(this: Wired): void {
  this[kLeg].tunnel.onClose(this[kLeg]);
}

export class Tunnel {
  readonly id = nextConnectionId();
  readonly started = Date.now();
  private readonly up: Leg; // client → upstream
  private readonly down: Leg; // upstream → client
  private lastActivity = Date.now();
  private idleTimer: NodeJS.Timeout | null = null;
  private pingTimer: NodeJS.Timeout | null = null;
  private killTimer: NodeJS.Timeout | null = null;
  private gatewayClose: { code: number; reason: string } | null = null;
  private firstCut: Side | null = null;
  /** Which side sent a close frame first. */
  private readonly closeOrder: Side[] = [];
  private ended = false;
  /** The client answered our close before it went out: end its connection once it has. */
  private endClientWhenSealed = false;

  constructor(
    readonly client: Duplex,
    readonly upstream: Duplex,
    readonly info: TunnelInfo,
    private readonly opts: TunnelOptions,
  ) {
    this.up = new Leg(this, 'client', client, upstream, true);
    this.down = new Leg(this, 'upstream', upstream, client, false);
    this.up.other = this.down;
    this.down.other = this.up;
  }

  /** Starts splicing. `clientHead`/`upstreamHead` are bytes that arrived with the handshakes. */
  start(clientHead: Buffer, upstreamHead: Buffer): void {
    for (const s of [this.client, this.upstream] as Socket[]) s.setNoDelay?.(true);
    this.wire(this.up);
    this.wire(this.down);
    if (upstreamHead.length) this.onData(this.down, upstreamHead);
    if (clientHead.length) this.onData(this.up, clientHead);
    // A FIN that came before the tunnel existed (a client that half-closed while the upstream
    // was still answering its handshake) was emitted to no one: pass it on now, or both
    // sockets stay open until idle_timeout (test/gateway/tunnel-early-fin.test.ts).
    for (const leg of [this.up, this.down]) if (leg.from.readableEnded) this.onEnd(leg);
    if (this.opts.idleMs > 0) this.armIdle(this.opts.idleMs);
    if (this.opts.pingMs > 0) {
      this.pingTimer = setInterval(() => this.inject(this.down, controlFrame(OP_PING, Buffer.alloc(0), false)), this.opts.pingMs);
      this.pingTimer.unref();
    }
  }

  get bytesIn(): number {
    return this.up.bytes;
  }
  /** What the dashboard shows of this tunnel now. */
  snapshot(): LiveConnection {
    return tunnelRow(this.id, this.info, this.started, this.lastActivity, this.up.bytes, this.down.bytes, this.up.tracker.messages, this.down.tracker.messages);
  }
  get bytesOut(): number {
    return this.down.bytes;
  }

  /**
   * Closes from the gateway's side: a close frame to each side at its next
   * frame boundary (1001 "going away" for drain and idle), then TCP is closed
   * when both have answered, or after a grace period.
   */
  close(code: number, reason: string): void {
    if (this.ended || this.gatewayClose) return;
    this.gatewayClose = { code, reason };
    this.inject(this.down, closeFrame(code, reason, false), true);
    this.inject(this.up, closeFrame(code, reason, true), true);
    this.killTimer = setTimeout(() => this.destroy(), this.opts.closeGraceMs ?? 3000);
    this.killTimer.unref();
  }

  /** Cuts both connections now. */
  destroy(): void {
    this.client.destroy();
    this.upstream.destroy();
  }

  private wire(leg: Leg): void {
    const from = leg.from as Wired;
    from[kLeg] = leg;
    from.on('data', onLegData);
    from.on('drain', onLegDrain);
    from.on('end', onLegEnd);
    from.on('error', onLegError);
    from.on('close', onLegClose);
  }

  /** @internal */
  noteCut(side: Side): void {
    this.firstCut ??= side;
  }

  /** @internal A FIN from one side: passed on once everything before it is written (half-close). */
  onEnd(leg: Leg): void {
    this.firstCut ??= leg.side;
    if (!leg.to.writableEnded) leg.to.end();
  }

  /** @internal */
  onClose(leg: Leg): void {
    this.firstCut ??= leg.side;
    if (!leg.other.from.destroyed) {
      // The peer of a closed socket has nothing left to talk to. (end() on a stream already
      // ended builds an ERR_STREAM_ALREADY_FINISHED with its stack: a cost on every connection.)
      if (!leg.to.writableEnded) leg.to.end();
      const t = setTimeout(() => leg.to.destroy(), 1000);
      t.unref();
    }
    if (leg.to.destroyed || leg.other.from.destroyed) this.finish();
  }

  /** @internal */
  onData(leg: Leg, chunk: Buffer): void {
    this.lastActivity = Date.now();
    leg.bytes += chunk.length;
    this.forward(leg, chunk);
  }

  private forward(leg: Leg, chunk: Buffer): void {
    if (leg.sealed) {
      // Only the peer's close reply matters now; it is read for the log, not forwarded, so
      // its frames are not counted as passed on (they never reached the other side).
      const { frames, messages } = leg.tracker;
      leg.tracker.feed(chunk);
      leg.tracker.frames = frames;
      leg.tracker.messages = messages;
      if (leg === this.up && leg.tracker.closeCode !== null && this.gatewayClose) this.endClientAfterClose();
      return;
    }
    if (leg.pending) {
      const n = leg.tracker.feedToBoundary(chunk);
      if (n > 0 && !leg.to.write(chunk.subarray(0, n))) leg.from.pause();
      if (!leg.sawClose && leg.tracker.closeCode !== null) this.noteClose(leg);
      if (leg.tracker.atBoundary) {
        this.flushPending(leg);
        // After a close the rest is still parsed (sealed: read, not forwarded), or the next
        // chunk would be read from the middle of a frame.
        if (n < chunk.length) this.forward(leg, chunk.subarray(n));
      }
      return;
    }
    leg.tracker.feed(chunk);
    if (!leg.to.write(chunk)) leg.from.pause();
    if (!leg.sawClose && leg.tracker.closeCode !== null) this.noteClose(leg);
  }

  private noteClose(leg: Leg): void {
    leg.sawClose = true;
    this.closeOrder.push(leg === this.up ? 'client' : 'upstream');
  }

  /** Sends a control frame this way as soon as the stream is at a frame boundary. */
  private inject(leg: Leg, frame: Buffer, seal = false): void {
    if (leg.sealed || leg.to.destroyed || leg.to.writableEnded) return;
    if (leg.pending && (leg.sealAfterPending || !seal)) return; // a close is already waiting; pings can be skipped
    leg.pending = frame;
    leg.sealAfterPending = seal;
    if (leg.tracker.atBoundary) this.flushPending(leg);
  }

  private flushPending(leg: Leg): void {
    const frame = leg.pending;
    if (!frame) return;
    leg.pending = null;
    leg.to.write(frame);
    if (leg.sealAfterPending) leg.sealed = true;
    if (leg === this.down && leg.sealed && this.endClientWhenSealed) this.client.end();
  }

  /**
   * The client answered our close: its connection ends once our close frame
   * has been written to it. While that close still waits for a frame boundary
   * (a slow client, the upstream mid-frame), ending now would cut the frame in
   * flight short and lose the close (test/gateway/native-close-reply.test.ts).
   */
  private endClientAfterClose(): void {
    if (this.down.sealed) this.client.end();
    else this.endClientWhenSealed = true;
  }

  private armIdle(ms: number): void {
    this.idleTimer = setTimeout(() => {
      const quiet = Date.now() - this.lastActivity;
      if (quiet >= this.opts.idleMs) this.close(1001, `idle for ${Math.round(quiet / 1000)} s`);
      else this.armIdle(this.opts.idleMs - quiet);
    }, ms);
    this.idleTimer.unref();
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    for (const t of [this.idleTimer, this.pingTimer, this.killTimer]) if (t) clearTimeout(t);
    this.client.destroy();
    this.upstream.destroy();
    const fromClient = this.up.tracker;
    const fromUpstream = this.down.tracker;
    emitTunnelClose(this.info, this.id, this.started, {
      engine: 'js',
      gateway: this.gatewayClose,
      client: { code: fromClient.closeCode, reason: fromClient.closeReason },
      upstream: { code: fromUpstream.closeCode, reason: fromUpstream.closeReason },
      firstClose: this.closeOrder[0] ?? null,
      firstCut: this.firstCut,
      bytesIn: this.up.bytes,
      bytesOut: this.down.bytes,
      framesIn: fromClient.frames,
      framesOut: fromUpstream.frames,
      messagesIn: fromClient.messages,
      messagesOut: fromUpstream.messages,
    });
    this.opts.onEnd?.(this);
  }
}
