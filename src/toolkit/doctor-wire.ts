/**
 * The WebSocket connection the doctor holds after its handshake: it behaves
 * like a browser (answers pings, answers a close), and records every frame
 * and how the connection ended — a close frame, a TCP FIN, a reset — and
 * when, which is what tells a proxy's idle cut from a server's close.
 */
import type { Duplex } from 'node:stream';
import {
  FrameDecoder,
  OP_BINARY,
  OP_CLOSE,
  OP_CONTINUATION,
  OP_PING,
  OP_PONG,
  OP_TEXT,
  closePayload,
  encodeClientFrame,
  frameProblem,
  parseClosePayload,
  type Frame,
} from './doctor-frames.js';

/** After a close frame crossed both ways, the server should end TCP (RFC 6455 §7.1.1); we wait this long. */
const CLOSE_LINGER_MS = 1000;

export interface ReceivedMessage {
  at: number;
  binary: boolean;
  data: Buffer;
}

export interface CloseFrame {
  at: number;
  code: number;
  reason: string;
}

export interface TransportEnd {
  at: number;
  /** `fin`: the peer ended TCP (orderly); `reset`: ECONNRESET; `error`: another socket error. */
  how: 'fin' | 'reset' | 'error';
  code?: string;
}

export class WireSession {
  readonly messages: ReceivedMessage[] = [];
  readonly pongs: { at: number; payload: Buffer }[] = [];
  readonly pingsReceived: number[] = [];
  /** The server's close frame, if one came. */
  closeFrame: CloseFrame | undefined;
  /** The close frame we sent. */
  closeSent: { at: number; code: number } | undefined;
  /** How TCP ended, once it did. */
  ended: TransportEnd | undefined;
  /** The first violation of RFC 6455 the server committed, in words. */
  problem: string | undefined;
  /** Time of the last frame either way, close frames excepted: where a stretch of silence starts. */
  lastActivity = performance.now();

  private readonly decoder = new FrameDecoder();
  private fragments: { opcode: number; parts: Buffer[] } | undefined;
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly socket: Duplex,
    head: Buffer,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd({ at: performance.now(), how: 'fin' }));
    socket.on('error', (err: NodeJS.ErrnoException) =>
      this.onEnd({ at: performance.now(), how: err.code === 'ECONNRESET' || err.code === 'EPIPE' ? 'reset' : 'error', code: err.code ?? err.message }),
    );
    socket.on('close', () => this.onEnd({ at: performance.now(), how: 'fin' }));
    if (head.length) this.onData(head);
    socket.resume();
  }

  /** Neither a close frame nor the end of TCP has been seen. */
  get open(): boolean {
    return !this.closeFrame && !this.ended;
  }

  ping(payload: string): void {
    this.write(encodeClientFrame(OP_PING, payload), true);
  }

  sendText(text: string): void {
    this.write(encodeClientFrame(OP_TEXT, text), true);
  }

  /** Starts the closing handshake (§7.1.2). */
  sendClose(code: number, reason = ''): void {
    if (this.closeSent || this.ended) return;
    this.closeSent = { at: performance.now(), code };
    this.write(encodeClientFrame(OP_CLOSE, closePayload(code, reason)));
  }

  /** Resolves with `check()`'s first truthy value, or undefined after `ms`. Re-checked on every frame and on the end. */
  waitUntil<T>(check: () => T | undefined | false, ms: number): Promise<T | undefined> {
    return new Promise((resolve) => {
      const first = check();
      if (first) return resolve(first);
      const done = (value: T | undefined) => {
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve(value);
      };
      const wake = () => {
        const v = check();
        if (v) done(v);
      };
      const timer = setTimeout(() => done(undefined), ms);
      this.waiters.add(wake);
    });
  }

  destroy(): void {
    this.socket.destroy();
  }

  private write(bytes: Buffer, activity = false): void {
    if (this.ended) return;
    if (activity) this.lastActivity = performance.now();
    this.socket.write(bytes);
  }

  private onData(chunk: Buffer): void {
    for (const frame of this.decoder.push(chunk)) this.onFrame(frame);
    if (this.decoder.error && !this.problem) this.problem = this.decoder.error;
    this.notify();
  }

  private onFrame(f: Frame): void {
    const now = performance.now();
    if (f.opcode !== OP_CLOSE) this.lastActivity = now;
    const problem = frameProblem(f);
    if (problem && !this.problem) this.problem = problem;
    switch (f.opcode) {
      case OP_PING:
        this.pingsReceived.push(now);
        // A browser answers every ping by itself (§5.5.2); so does the doctor.
        if (!this.closeSent) this.write(encodeClientFrame(OP_PONG, f.payload), true);
        return;
      case OP_PONG:
        this.pongs.push({ at: now, payload: f.payload });
        return;
      case OP_CLOSE: {
        if (this.closeFrame) return;
        const { code, reason, problem: closeProblem } = parseClosePayload(f.payload);
        if (closeProblem && !this.problem) this.problem = closeProblem;
        this.closeFrame = { at: now, code, reason };
        // Answer a close we did not start (§5.5.1), echoing its code; 1005 is never sent (§7.4.1).
        if (!this.closeSent) {
          this.closeSent = { at: now, code };
          this.write(encodeClientFrame(OP_CLOSE, code === 1005 ? Buffer.alloc(0) : closePayload(code)));
        }
        setTimeout(() => this.socket.destroy(), CLOSE_LINGER_MS).unref();
        return;
      }
      case OP_TEXT:
      case OP_BINARY:
        if (f.fin) this.messages.push({ at: now, binary: f.opcode === OP_BINARY, data: f.payload });
        else this.fragments = { opcode: f.opcode, parts: [f.payload] };
        return;
      case OP_CONTINUATION:
        if (!this.fragments) {
          if (!this.problem) this.problem = 'the server sent a continuation frame with no message to continue (§5.4)';
          return;
        }
        this.fragments.parts.push(f.payload);
        if (f.fin) {
          this.messages.push({ at: now, binary: this.fragments.opcode === OP_BINARY, data: Buffer.concat(this.fragments.parts) });
          this.fragments = undefined;
        }
        return;
      default:
    }
  }

  private onEnd(end: TransportEnd): void {
    if (!this.ended) {
      this.ended = end;
      // Half-close from the peer: finish ours, as a browser would.
      if (end.how === 'fin') this.socket.end();
      else this.socket.destroy();
    }
    this.notify();
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }
}
