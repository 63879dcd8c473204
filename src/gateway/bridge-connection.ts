/**
 * One bridged connection: a WebSocket (already upgraded, framed by `ws`) on
 * one side, a TCP connection on the other. Each TCP chunk becomes one binary
 * message; each binary message's payload is written to TCP. Unlike a tunnel,
 * the bridge must re-frame, so it is a WebSocket endpoint, not a splice.
 *
 * Memory stays bounded both ways: TCP reading stops while more than
 * HIGH_WATER bytes wait for a slow browser, and the WebSocket stops being
 * read while TCP's write buffer is full.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import WebSocket from 'ws';
import { upstreamError } from '../errors.js';
import { emit } from '../events.js';
import { closePayload } from './frames.js';
import { nextConnectionId, type LiveConnection } from './tunnel.js';

/**
 * Bytes waiting for the client (in `ws` and in the socket's write buffer)
 * above which the bridge stops reading TCP. 1 MiB is a few full VNC frames:
 * enough to keep a fast link busy, little enough per connection.
 */
export const HIGH_WATER = 1024 * 1024;

/**
 * The close code `ws` sends for each of its protocol errors that is not
 * 1002: a frame length over 2^53 - 1 is 1009 like a message over the limit,
 * too many fragments or buffered chunks in one message is 1008.
 */
const WS_ERROR_CLOSE_CODES: Record<string, number> = {
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: 1009,
  WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH: 1009,
  WS_ERR_INVALID_UTF8: 1007,
  WS_ERR_TOO_MANY_BUFFERED_PARTS: 1008,
};

/** How long a closing side gets to finish (answer our close frame, or close TCP) before it is cut. */
const CLOSE_GRACE_MS = 3000;

export type ClosedBy = 'client' | 'upstream' | 'gateway';

export interface BridgeInfo {
  app: string;
  /** Request path for events, with a `token` value hidden. */
  path: string;
  gateway: string;
  /** `host:port` of the TCP target, for close reasons. */
  target: string;
  /** The client's `address:port`. */
  client?: string;
}

export interface BridgeConnectionOptions {
  /** Close with 1001 after this long without a byte either way (0: never). */
  idleMs: number;
  /** Ping the client this often (0: never). */
  pingMs: number;
  /** Pass text messages' UTF-8 bytes to TCP instead of closing with 1003. */
  textAsBinary: boolean;
  onEnd?: (c: BridgeConnection) => void;
}

export class BridgeConnection {
  readonly id = nextConnectionId();
  readonly started = Date.now();
  /** Payload bytes from the client, written to TCP. */
  bytesIn = 0;
  /** Bytes read from TCP, sent to the client. */
  bytesOut = 0;
  /** Messages from the client. */
  framesIn = 0;
  /** Messages to the client (one per TCP chunk). */
  framesOut = 0;
  /** The old `base64` subprotocol (noVNC before 1.0): data travels as base64 text. */
  private readonly base64: boolean;
  private tcpPaused = false;
  private wsPaused = false;
  private lastActivity = Date.now();
  private idleTimer: NodeJS.Timeout | null = null;
  private pingTimer: NodeJS.Timeout | null = null;
  private killTimer: NodeJS.Timeout | null = null;
  /** Who closed first, and how. */
  private first: { by: ClosedBy; code: number | null; reason?: string } | null = null;
  private tcpError: Error | null = null;
  private wsClosed = false;
  private tcpClosed = false;
  private ended = false;

  constructor(
    readonly ws: WebSocket,
    readonly tcp: Socket,
    /** The client's socket under `ws`, watched for 'drain'. */
    /** The client's socket (logout finds the connections of a login by it). */
    readonly client: Duplex,
    readonly info: BridgeInfo,
    private readonly opts: BridgeConnectionOptions,
  ) {
    this.base64 = ws.protocol === 'base64';
  }

  /** What the dashboard shows of this connection now. */
  snapshot(): LiveConnection {
    return {
      id: this.id,
      kind: 'bridge',
      app: this.info.app,
      path: this.info.path,
      client: this.info.client ?? 'unknown',
      started: this.started,
      lastActivity: this.lastActivity,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      messagesIn: this.framesIn,
      messagesOut: this.framesOut,
    };
  }

  start(): void {
    const { ws, tcp } = this;
    tcp.setNoDelay(true);
    tcp.on('data', (chunk: Buffer) => this.fromTarget(chunk));
    tcp.on('end', () => this.targetGone());
    tcp.on('error', (err) => {
      this.tcpError ??= err;
    });
    tcp.on('close', () => {
      this.tcpClosed = true;
      this.targetGone();
      this.finish();
    });
    tcp.on('drain', () => {
      if (!this.wsPaused) return;
      this.wsPaused = false;
      ws.resume();
    });
    // `ws` writes straight to the socket, so the socket's 'drain' says the browser caught up.
    this.client.on('drain', () => {
      if (this.tcpPaused && ws.bufferedAmount < HIGH_WATER) {
        this.tcpPaused = false;
        tcp.resume();
      }
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => this.fromClient(data, isBinary));
    ws.on('error', (err: Error & { code?: string }) => {
      // A protocol error: `ws` sends its own close frame (1002, 1007, 1008, 1009) and 'close' follows;
      // the event logs the code that frame carried.
      const code = WS_ERROR_CLOSE_CODES[err.code ?? ''] ?? 1002;
      this.first ??= { by: 'gateway', code, reason: err.message };
    });
    ws.on('close', (code: number, reason: Buffer) => this.clientGone(code, reason.toString()));
    if (this.opts.idleMs > 0) this.armIdle(this.opts.idleMs);
    if (this.opts.pingMs > 0) {
      this.pingTimer = setInterval(() => {
        if (ws.readyState === WebSocket.OPEN) ws.ping();
      }, this.opts.pingMs);
      this.pingTimer.unref();
    }
  }

  /**
   * Closes from the bridge's side (drain, idle): a close frame to the client,
   * TCP ended once the client answers; both are cut after a grace period.
   */
  close(code: number, reason: string): void {
    this.closeWs(code, reason, 'gateway');
  }

  /** Cuts both connections now. */
  destroy(): void {
    this.ws.terminate();
    this.tcp.destroy();
  }

  private fromTarget(chunk: Buffer): void {
    this.lastActivity = Date.now();
    // After a close frame nothing more may be sent; what the target still says is dropped.
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.bytesOut += chunk.length;
    this.framesOut++;
    if (this.base64) this.ws.send(chunk.toString('base64'), { binary: false });
    else this.ws.send(chunk, { binary: true });
    if (!this.tcpPaused && this.ws.bufferedAmount > HIGH_WATER) {
      this.tcpPaused = true;
      this.tcp.pause();
    }
  }

  private fromClient(data: Buffer, isBinary: boolean): void {
    this.lastActivity = Date.now();
    let bytes = data;
    if (!isBinary) {
      if (this.base64) bytes = Buffer.from(data.toString('latin1'), 'base64');
      else if (!this.opts.textAsBinary) {
        this.closeWs(1003, textRefusedReason(this.info.app), 'gateway');
        return;
      }
    }
    if (!this.tcp.writable) return;
    this.bytesIn += bytes.length;
    this.framesIn++;
    if (!this.tcp.write(bytes) && !this.wsPaused) {
      this.wsPaused = true;
      this.ws.pause();
    }
  }

  /** TCP ended or closed: the client gets 1000, or 1014 when the target failed (reset). */
  private targetGone(): void {
    if (this.first) return;
    if (this.tcpError) {
      const err = upstreamError(this.tcpError, this.info.app, this.info.target);
      this.closeWs(err.closeCode, err.message, 'upstream');
    } else {
      this.closeWs(1000, targetClosedReason(this.info.app, this.info.target), 'upstream');
    }
  }

  /** The WebSocket is closed (close handshake done, or the connection cut): end TCP. */
  private clientGone(code: number, reason: string): void {
    this.wsClosed = true;
    // 1006: the client vanished without a close frame.
    this.first ??= { by: 'client', code: code === 1006 ? null : code, reason: code === 1006 ? 'connection cut without a close frame' : reason || undefined };
    if (!this.tcp.destroyed) {
      this.tcp.end();
      // A target that never closes its side after our FIN is cut.
      const t = setTimeout(() => this.tcp.destroy(), CLOSE_GRACE_MS);
      t.unref();
      this.tcp.once('close', () => clearTimeout(t));
      // Nothing reads TCP any more: let it flow so its FIN can arrive.
      this.tcp.resume();
    }
    this.finish();
  }

  private closeWs(code: number, reason: string, by: ClosedBy): void {
    this.first ??= { by, code, reason };
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code, fitReason(reason));
    if (!this.killTimer) this.armKill();
  }

  /**
   * Cuts a client that does not answer our close frame. The grace period
   * starts once the frame is on the wire: a slow client still reading the
   * data queued before it is not cut short (websockify loses that tail).
   * `ws` bounds the whole close at 30 s on its own.
   */
  private armKill(): void {
    const waiting = this.client.writableLength > 0 && !this.client.destroyed;
    this.killTimer = setTimeout(() => (waiting ? this.armKill() : this.destroy()), waiting ? 200 : CLOSE_GRACE_MS);
    this.killTimer.unref();
  }

  private armIdle(ms: number): void {
    this.idleTimer = setTimeout(() => {
      const quiet = Date.now() - this.lastActivity;
      if (quiet >= this.opts.idleMs) this.close(1001, `${this.info.app}: idle for ${Math.round(quiet / 1000)} s`);
      else this.armIdle(this.opts.idleMs - quiet);
    }, ms);
    this.idleTimer.unref();
  }

  private finish(): void {
    if (this.ended || !this.wsClosed || !this.tcpClosed) return;
    this.ended = true;
    for (const t of [this.idleTimer, this.pingTimer, this.killTimer]) if (t) clearTimeout(t);
    const first = this.first ?? { by: 'upstream' as const, code: null };
    emit('tunnel.close', {
      app: this.info.app,
      path: this.info.path,
      gateway: this.info.gateway,
      ms: Date.now() - this.started,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      framesIn: this.framesIn,
      framesOut: this.framesOut,
      messagesIn: this.framesIn,
      messagesOut: this.framesOut,
      id: this.id,
      kind: 'bridge',
      engine: 'js',
      client: this.info.client,
      closeCode: first.code,
      closedBy: first.by,
      reason: first.reason,
    });
    this.opts.onEnd?.(this);
  }
}

/** The close reason (1003) for a text message when text is not passed on as bytes. */
export function textRefusedReason(app: string): string {
  return `${app}: text messages are refused: this bridge carries bytes, send binary messages`;
}

/** The close reason (1000) when the target closes its TCP connection. */
export function targetClosedReason(app: string, target: string): string {
  return `${app}: ${target} closed the connection`;
}

/** A close reason cut to the 123 bytes a close frame holds, on a character boundary (`ws` throws on more). */
export function fitReason(reason: string): string {
  return closePayload(1000, reason).subarray(2).toString('utf8');
}
