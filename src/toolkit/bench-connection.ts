/**
 * One connection of a `porthole bench` run: opens the WebSocket, times the
 * handshake, sends messages (on each echo in closed loop, when the scheduler
 * says so in open loop), checks and times every echo, and reports how it ended.
 * The hot path (send, echo) allocates nothing of its own (with --compress, one
 * copy per message: see `send`).
 */
import WebSocket, { type ClientOptions } from 'ws';
import type { BenchErrorTally } from './bench-errors.js';
import { PH_BENCH_CLIENT_ERROR, PH_BENCH_HANDSHAKE_UNFINISHED, PH_BENCH_MISMATCH, PH_BENCH_SOCKET_ERROR } from './bench-errors.js';
import { BenchPayload } from './bench-payload.js';
import type { Histogram } from './histogram.js';

/**
 * waiting → connecting → open → (done) → closing → closed, or connecting → failed,
 * or open → lost (the server closed it or it broke before the run ended).
 */
export type ConnectionState = 'waiting' | 'connecting' | 'open' | 'done' | 'closing' | 'closed' | 'failed' | 'lost';

/** Counters shared by every connection of a run. */
export interface BenchTotals {
  sent: number;
  received: number;
  /** `performance.now()` of the last echo. */
  lastEchoAt: number;
  /** Open loop: sends that left more than `LATE_SEND_MS` after their intended time. */
  late: number;
  /** Open loop: the largest delay between a send's intended and actual time, in ms. */
  maxLagMs: number;
}

/** What a connection needs from its run. */
export interface ConnectionHost {
  readonly url: string;
  readonly subprotocols: string[];
  readonly clientOptions: ClientOptions;
  readonly size: number;
  readonly binary: boolean;
  readonly compress: boolean;
  /** Closed loop: send the next message when the previous echo arrives. */
  readonly closedLoop: boolean;
  /** Messages per connection; Infinity without --messages. */
  readonly messages: number;
  /** Open loop: ms between two sends of one connection. */
  readonly intervalMs: number;
  readonly histogram: Histogram;
  readonly totals: BenchTotals;
  readonly errors: BenchErrorTally;
  /** False once the run stops sending. */
  readonly sending: boolean;
  /** The handshake ended, in success or failure: another one may start. */
  handshakeEnded(c: BenchConnection): void;
  /** Open loop: a connection opened and wants a schedule. */
  schedule(c: BenchConnection, now: number): void;
  /** The connection reached a final state for the run (done, failed or lost). */
  ended(c: BenchConnection): void;
  /** A connection we closed finished closing. */
  closed(c: BenchConnection): void;
}

/** A send this much behind its intended time counts as late. */
export const LATE_SEND_MS = 1;
/**
 * Open loop: Node timers have millisecond granularity and may fire up to a
 * millisecond after their time, which would add up to 1 ms of the bench's own
 * lag to every latency. Sends due within this window go out on the wake-up
 * before (stamped with the actual time); the scheduler wakes this much early.
 */
export const EARLY_SEND_MS = 1;
/**
 * Open loop: a connection whose socket holds more than this unsent stops sending until it drains,
 * so a server that stops reading cannot make the bench buffer without bound. The messages it owes
 * go out when it can, stamped with their intended time, so the wait is in the latency.
 */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** A connection held back by MAX_BUFFERED_BYTES looks again this much later (ws emits no 'drain'). */
const BACKLOG_RETRY_MS = 10;

export class BenchConnection {
  state: ConnectionState = 'waiting';
  sent = 0;
  received = 0;
  /** Handshake time in ms, NaN until open. */
  connectMs = NaN;
  /** Open loop: intended time (`performance.now()` ms) of the next send. */
  nextSendAt = Infinity;
  /** Open loop: when the scheduler should look at this connection next. */
  wakeAt = Infinity;

  private ws: WebSocket | undefined;
  private payload: BenchPayload | undefined;
  /** Sequence number the next echo should carry. */
  private expectSeq = 0;
  private errorCode: string | undefined;
  private errorMessage: string | undefined;
  private readonly sendOptions: { binary: boolean };

  constructor(
    readonly id: number,
    private readonly host: ConnectionHost,
  ) {
    this.sendOptions = { binary: host.binary };
  }

  connect(): void {
    const host = this.host;
    this.state = 'connecting';
    const started = performance.now();
    let ws: WebSocket;
    try {
      ws = this.ws = new WebSocket(host.url, host.subprotocols, host.clientOptions);
    } catch (e) {
      // ws and node:http check synchronously: a bad subprotocol name, a header value with a control character.
      const err = e as Error & { code?: string };
      this.fail(() => host.errors.add('connect', err.code ?? PH_BENCH_CLIENT_ERROR, err.message));
      return;
    }
    ws.on('unexpected-response', (_req, res) => {
      if (this.state !== 'connecting') return;
      this.fail(() => host.errors.addStatus(res.statusCode ?? 0));
      // ws leaves aborting the request to an 'unexpected-response' listener; terminate() does it.
      ws.terminate();
    });
    ws.on('error', (err: Error & { code?: string }) => {
      if (this.state === 'connecting') this.fail(() => host.errors.addConnectError(err, host.url));
      else if (this.errorCode === undefined) {
        this.errorCode = err.code ?? PH_BENCH_SOCKET_ERROR;
        this.errorMessage = err.message;
      }
    });
    ws.on('open', () => {
      if (this.state !== 'connecting') return;
      const now = performance.now();
      this.connectMs = now - started;
      this.state = 'open';
      this.payload = new BenchPayload(this.id, host.size, host.binary);
      host.handshakeEnded(this);
      if (!host.sending || host.messages === 0) return;
      if (host.closedLoop) this.send(now);
      else host.schedule(this, now);
    });
    ws.on('message', this.onMessage);
    ws.on('close', (code: number) => {
      if (this.state === 'closing') {
        this.state = 'closed';
        host.closed(this);
      } else if (this.state === 'open' || this.state === 'done') {
        const wasDone = this.state === 'done';
        this.state = 'lost';
        host.errors.addLost(code, this.errorCode, this.errorMessage);
        if (!wasDone) host.ended(this);
      }
    });
  }

  /** Whether the scheduler should keep this connection (it is open and has messages left to send). */
  get schedulable(): boolean {
    return this.state === 'open' && this.sent < this.host.messages;
  }

  /**
   * Open loop: sends every message whose intended time is before `now + EARLY_SEND_MS`.
   * A late message is stamped with its intended time, so the latency includes the
   * delay in sending it (coordinated omission, Gil Tene: "How NOT to Measure
   * Latency"); an early one with the time it actually left, so no latency is hidden.
   * Sets `wakeAt` for the scheduler.
   */
  sendDue(now: number): void {
    const host = this.host;
    const ws = this.ws!;
    const totals = host.totals;
    while (this.nextSendAt <= now + EARLY_SEND_MS && this.sent < host.messages) {
      if (ws.bufferedAmount > MAX_BUFFERED_BYTES) {
        this.wakeAt = now + BACKLOG_RETRY_MS;
        return;
      }
      const intended = this.nextSendAt;
      const lag = now - intended;
      if (lag > LATE_SEND_MS) totals.late++;
      if (lag > totals.maxLagMs) totals.maxLagMs = lag;
      this.send(intended > now ? now : intended);
      this.nextSendAt = intended + host.intervalMs;
    }
    this.wakeAt = this.nextSendAt;
  }

  /** Sends the next message stamped with `timeMs`. */
  private send(timeMs: number): void {
    const ws = this.ws!;
    if (ws.readyState !== WebSocket.OPEN) return;
    const payload = this.payload!;
    payload.writeHeader(this.sent, timeMs);
    // Without compression ws masks into a new frame buffer at once (lib/sender.js Sender.frame,
    // `merge`), so the payload can be rewritten right away. With permessage-deflate ws keeps a
    // reference until zlib is done with it: that case needs a copy.
    ws.send(this.host.compress ? Buffer.from(payload.buffer) : payload.buffer, this.sendOptions);
    this.sent++;
    this.host.totals.sent++;
  }

  private readonly onMessage = (data: Buffer, isBinary: boolean): void => {
    const now = performance.now();
    const host = this.host;
    const totals = host.totals;
    this.received++;
    totals.received++;
    totals.lastEchoAt = now;
    const payload = this.payload!;
    const seq = payload.check(data, isBinary);
    const expected = this.expectSeq;
    if (seq === expected) {
      host.histogram.record((now - payload.echoTimeMs) * 1000);
      this.expectSeq = expected + 1;
    } else {
      host.errors.add('echo', PH_BENCH_MISMATCH);
      // A message lost on the way: carry on from the one that did come back.
      this.expectSeq = seq > expected && seq < this.sent ? seq + 1 : expected + 1;
    }
    if (this.received >= this.sent && this.sent >= host.messages) {
      if (this.state === 'open') {
        this.state = 'done';
        host.ended(this);
      }
    } else if (host.closedLoop && host.sending && this.state === 'open') {
      this.send(now);
    }
  };

  /** Messages sent that have not (yet) come back. */
  get outstanding(): number {
    return this.sent - this.received;
  }

  /** Ends the run for this connection: a close 1000 when open; a handshake in progress is abandoned (and counted as failed). */
  close(): void {
    const ws = this.ws;
    if (this.state === 'connecting') {
      this.host.errors.add('handshake', PH_BENCH_HANDSHAKE_UNFINISHED);
      this.state = 'failed';
      ws?.terminate();
      this.host.handshakeEnded(this);
    } else if ((this.state === 'open' || this.state === 'done') && ws) {
      this.state = 'closing';
      ws.close(1000, 'porthole bench done');
    }
  }

  /** Cuts a connection that did not answer our close in time. */
  terminate(): void {
    this.ws?.terminate();
  }

  private fail(count: () => void): void {
    if (this.state !== 'connecting') return;
    this.state = 'failed';
    count();
    this.host.handshakeEnded(this);
    this.host.ended(this);
  }
}
