/**
 * One program and the WebSockets it talks to: its own client (a process per
 * connection, websocketd's model) or every client of the app
 * (`stdio_shared`). Text mode: each message is written to stdin as a line,
 * each stdout line goes to the clients as a text message. Binary mode: bytes
 * as they come, both ways.
 *
 * Bounded both ways: stdout is paused while a client has more than
 * HIGH_WATER bytes waiting or the lines-per-second budget is spent (the
 * program then blocks in write(), as on a slow terminal); a client is paused
 * while stdin's pipe is full or it sends faster than its budget.
 */
import type { Duplex, Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import WebSocket from 'ws';
import { StdioExitError } from '../errors.js';
import { emit } from '../events.js';
import { fitReason } from './bridge-connection.js';
import { describeExit, type StdioExit, type StdioProcess } from './stdio-process.js';
import { nextConnectionId, type LiveConnection } from './tunnel.js';

/** Bytes waiting for a client above which stdout is paused. */
export const HIGH_WATER = 1024 * 1024;
/** How long after the program's exit its last output may take to arrive before the clients are closed. */
const OUTPUT_GRACE_MS = 1000;
/** How long a client gets to answer our close frame. */
const CLOSE_GRACE_MS = 3000;

export interface SessionOptions {
  app: string;
  gateway: string;
  /** Raw bytes as binary messages instead of lines as text messages. */
  binary: boolean;
  /** Largest message either way, in bytes (a longer stdout line is sent in pieces of this size). */
  maxMessage: number;
  /** Messages per second each way (0: no limit). */
  linesPerSecond: number;
  /** SIGTERM → SIGKILL grace when the program is stopped. */
  killGraceMs: number;
  /** Where the program's stderr lines (and notes) go. */
  log(line: string, stream: 'stderr' | 'porthole'): void;
  /** Takes the stderr stream itself instead of `log` taking its lines (and may pause it: the app's log while its file lags). */
  stderr?(stream: Readable): void;
  /** Called once the program and all its descendants are gone. */
  onGone(session: StdioSession): void;
}

/** A client of a session. */
export class StdioClient {
  readonly id = nextConnectionId();
  readonly started = Date.now();
  lastActivity = Date.now();
  bytesIn = 0;
  bytesOut = 0;
  messagesIn = 0;
  messagesOut = 0;
  first: { by: 'client' | 'upstream' | 'gateway'; code: number | null; reason?: string } | null = null;
  private budget: Budget;
  /** Why the client is not read: its budget is spent, the program's stdin pipe is full. */
  private held = { budget: false, stdin: false };
  private killTimer: NodeJS.Timeout | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private pingTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly ws: WebSocket,
    readonly socket: Duplex,
    readonly path: string,
    readonly client: string,
    linesPerSecond: number,
    /** Close with 1001 after this long without a message either way (0: never): a client gone without a FIN must not keep its program for good. */
    private readonly idleMs = 0,
    /** Ping the client this often (0: never). */
    pingMs = 0,
  ) {
    this.budget = new Budget(linesPerSecond);
    if (idleMs > 0) this.armIdle(idleMs);
    if (pingMs > 0) {
      this.pingTimer = setInterval(() => {
        if (ws.readyState === WebSocket.OPEN) ws.ping();
      }, pingMs);
      this.pingTimer.unref();
    }
  }

  private armIdle(ms: number): void {
    this.idleTimer = setTimeout(() => {
      const quiet = Date.now() - this.lastActivity;
      if (quiet >= this.idleMs) this.close(1001, `idle for ${Math.round(quiet / 1000)} s`, 'gateway');
      else this.armIdle(this.idleMs - quiet);
    }, ms);
    this.idleTimer.unref();
  }

  snapshot(app: string): LiveConnection {
    return { id: this.id, kind: 'stdio', app, path: this.path, client: this.client, started: this.started, lastActivity: this.lastActivity, bytesIn: this.bytesIn, bytesOut: this.bytesOut, messagesIn: this.messagesIn, messagesOut: this.messagesOut };
  }

  /** Takes one message from the client's budget; holds the client until the budget refills when it is spent. */
  spend(): void {
    const wait = this.budget.take();
    if (wait > 0 && !this.held.budget) {
      this.hold('budget', true);
      setTimeout(() => this.hold('budget', false), wait).unref();
    }
  }

  /**
   * Stops or restarts reading the client for one reason. It is read again only
   * once neither holds: the end of a budget pause must not resume a client
   * whose program's stdin is full (each such resume let one more message into
   * stdin's buffer, without bound, for a program that never reads).
   */
  hold(why: 'budget' | 'stdin', on: boolean): void {
    this.held[why] = on;
    if (this.held.budget || this.held.stdin) {
      if (!this.ws.isPaused) this.ws.pause();
    } else if (this.ws.isPaused) this.ws.resume();
  }

  close(code: number, reason: string, by: 'upstream' | 'gateway'): void {
    this.first ??= { by, code, reason };
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code, fitReason(reason));
    if (!this.killTimer) {
      this.killTimer = setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS);
      this.killTimer.unref();
    }
  }

  stopTimers(): void {
    for (const t of [this.killTimer, this.idleTimer, this.pingTimer]) if (t) clearTimeout(t);
  }
}

/**
 * A token bucket of `rate` per second (burst: one second's worth).
 * `take()` returns 0 when there was a token, else the ms until there is one.
 */
class Budget {
  private tokens: number;
  private at = Date.now();
  constructor(private readonly rate: number) {
    this.tokens = rate;
  }
  take(): number {
    if (this.rate <= 0) return 0;
    const now = Date.now();
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.at) * this.rate) / 1000);
    this.at = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.rate);
  }
  /** ms until a token is there (0: now), without taking it. */
  wait(): number {
    if (this.rate <= 0) return 0;
    const tokens = Math.min(this.rate, this.tokens + ((Date.now() - this.at) * this.rate) / 1000);
    return tokens >= 1 ? 0 : Math.ceil(((1 - tokens) * 1000) / this.rate);
  }
}

/**
 * Where to cut `bytes` into a piece of at most `max` bytes without splitting a
 * UTF-8 character (each piece is sent as a text message of its own, and half
 * a character would become U+FFFD on both sides). Bytes that are not UTF-8, or
 * a limit below one character, are cut at `max`.
 */
function charBoundary(bytes: Buffer, max: number): number {
  // A character is at most 4 bytes: the next one starts within 3 bytes back.
  for (let end = max; end > 0 && end > max - 4; end--) if ((bytes[end] & 0xc0) !== 0x80) return end;
  return max;
}

export class StdioSession {
  readonly clients = new Set<StdioClient>();
  /** Messages read from stdout, waiting for the budget or for slow clients. */
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private partial: Buffer[] = [];
  private partialBytes = 0;
  /** The line being read was sent in pieces already. */
  private cut = false;
  private outBudget: Budget;
  private pumpTimer: NodeJS.Timeout | null = null;
  private stdoutEnded = false;
  private stdinPaused = new Set<StdioClient>();
  private lastStderr = '';
  private ending = false;
  private stopped: Promise<void> | undefined;
  /** The program is gone (with its descendants): the session is over. */
  done = false;

  constructor(
    readonly proc: StdioProcess,
    private readonly opts: SessionOptions,
  ) {
    this.outBudget = new Budget(opts.linesPerSecond);
    const { stdout, stderr, stdin } = proc.child;
    stdout!.on('data', (chunk: Buffer) => this.fromStdout(chunk));
    stdout!.once('end', () => {
      this.flushPartial();
      this.stdoutEnded = true;
      this.pump();
    });
    stdout!.once('close', () => {
      this.stdoutEnded = true;
      this.pump();
    });
    opts.stderr?.(stderr!);
    // Read here too for the last line, which a close reason quotes.
    let errPartial = '';
    const decoder = new StringDecoder('utf8');
    stderr!.on('data', (chunk: Buffer) => {
      const lines = (errPartial + decoder.write(chunk)).split('\n');
      errPartial = lines.pop() ?? '';
      if (errPartial.length > 4096) lines.push(errPartial), (errPartial = '');
      for (const l of lines) this.stderrLine(l);
    });
    stderr!.once('end', () => errPartial && this.stderrLine(errPartial));
    stdin!.on('drain', () => {
      for (const c of this.stdinPaused) c.hold('stdin', false);
      this.stdinPaused.clear();
    });
    void proc.exited.then((exit) => this.onExit(exit));
  }

  /** Adds an upgraded client: its messages go to stdin, stdout goes to it. */
  add(client: StdioClient): void {
    this.clients.add(client);
    const { ws } = client;
    ws.on('message', (data: Buffer, isBinary: boolean) => this.fromClient(client, data, isBinary));
    ws.on('error', (err: Error & { code?: string }) => {
      const code = err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 1009 : err.code === 'WS_ERR_INVALID_UTF8' ? 1007 : 1002;
      client.first ??= { by: 'gateway', code, reason: err.message };
    });
    ws.on('close', (code: number, reason: Buffer) => this.clientGone(client, code, reason.toString()));
    // A slow client caught up: more stdout may go out.
    client.socket.on('drain', () => this.pump());
    // What the program said before the first client was there is held for it.
    this.pump();
  }

  /** The program is being stopped (or is gone): no new client may join it. */
  get stopping(): boolean {
    return this.stopped !== undefined;
  }

  /** Closes every client with `code` and stops the program (drain, shutdown). */
  close(code: number, reason: string): void {
    for (const c of this.clients) c.close(code, reason, 'gateway');
    void this.stop();
  }

  /** Stops the program and its descendants; the clients are closed by the exit. */
  stop(): Promise<void> {
    this.stopped ??= this.proc.stop(this.opts.killGraceMs).then((r) => {
      if (r.killed) this.opts.log(`[porthole] pid ${this.proc.pid}: still alive after ${this.opts.killGraceMs} ms: sent SIGKILL to its process group`, 'porthole');
      if (r.survivors.length) emit('error', { code: 'PH_ERR_STDIO_EXIT', message: `${this.opts.app}: pids ${r.survivors.join(', ')} survived SIGKILL`, app: this.opts.app, gateway: this.opts.gateway });
      if (!this.done) {
        this.done = true;
        this.opts.onGone(this);
      }
    });
    return this.stopped;
  }

  private stderrLine(line: string): void {
    const text = line.endsWith('\r') ? line.slice(0, -1) : line;
    if (text.trim()) this.lastStderr = text;
    if (!this.opts.stderr) this.opts.log(text, 'stderr');
  }

  private fromStdout(chunk: Buffer): void {
    if (this.opts.binary) {
      for (let i = 0; i < chunk.length; i += this.opts.maxMessage) this.enqueue(chunk.subarray(i, i + this.opts.maxMessage));
    } else {
      let start = 0;
      for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
        this.addToLine(chunk.subarray(start, nl));
        // A line cut into pieces whose last piece was full: nothing is left to send.
        if (!(this.cut && this.partialBytes === 0)) this.flushPartial(true);
        this.cut = false;
        start = nl + 1;
      }
      if (start < chunk.length) this.addToLine(chunk.subarray(start));
    }
    this.pump();
  }

  /** Adds bytes to the line being read; a line longer than a message may be goes out in pieces. */
  private addToLine(bytes: Buffer): void {
    this.partial.push(bytes);
    this.partialBytes += bytes.length;
    const max = this.opts.maxMessage;
    if (this.partialBytes < max) return;
    let all = Buffer.concat(this.partial);
    while (all.length >= max) {
      const end = charBoundary(all, max);
      this.enqueue(all.subarray(0, end));
      all = all.subarray(end);
      this.cut = true;
    }
    this.partial = all.length ? [all] : [];
    this.partialBytes = all.length;
  }

  /** The line gathered so far as one message (`always`: also when empty, for an empty line). */
  private flushPartial(always = false): void {
    if (!always && this.partialBytes === 0) return;
    let line = this.partial.length === 1 ? this.partial[0] : Buffer.concat(this.partial);
    if (line.length > 0 && line[line.length - 1] === 13) line = line.subarray(0, -1);
    this.partial = [];
    this.partialBytes = 0;
    this.enqueue(line);
  }

  private enqueue(message: Buffer): void {
    this.queue.push(message);
    this.queuedBytes += message.length;
    if (this.queuedBytes > HIGH_WATER || this.queue.length > 1024) this.proc.child.stdout!.pause();
  }

  /** Sends queued messages as far as the budget and the clients allow; resumes stdout when the queue is short. */
  private pump(): void {
    // Nobody to send to yet (the handshake is being completed): the output waits.
    if (this.pumpTimer || this.clients.size === 0) return;
    const { stdout } = this.proc.child;
    while (this.queue.length) {
      if ([...this.clients].some((c) => c.ws.bufferedAmount > HIGH_WATER)) return void stdout!.pause(); // 'drain' calls again
      const wait = this.outBudget.wait();
      if (wait > 0) {
        this.pumpTimer = setTimeout(() => {
          this.pumpTimer = null;
          this.pump();
        }, wait);
        stdout!.pause();
        return;
      }
      this.outBudget.take();
      const message = this.queue.shift()!;
      this.queuedBytes -= message.length;
      for (const c of this.clients) {
        if (c.ws.readyState !== WebSocket.OPEN) continue;
        c.bytesOut += message.length;
        c.messagesOut++;
        c.lastActivity = Date.now();
        if (this.opts.binary) c.ws.send(message, { binary: true });
        else c.ws.send(message.toString('utf8'), { binary: false });
      }
    }
    if (this.stdoutEnded) this.maybeEnd();
    else if (stdout!.isPaused()) stdout!.resume();
  }

  private fromClient(client: StdioClient, data: Buffer, isBinary: boolean): void {
    client.lastActivity = Date.now();
    client.bytesIn += data.length;
    client.messagesIn++;
    client.spend();
    const stdin = this.proc.child.stdin!;
    if (!stdin.writable) return;
    // Text mode: every message is one line (a binary message's bytes too); binary mode: bytes as they are.
    const ok = this.opts.binary ? stdin.write(data) : stdin.write(isBinary ? Buffer.concat([data, Buffer.from('\n')]) : `${data.toString('utf8')}\n`);
    if (!ok && !this.stdinPaused.has(client)) {
      client.hold('stdin', true);
      this.stdinPaused.add(client);
    }
  }

  private clientGone(client: StdioClient, code: number, reason: string): void {
    client.first ??= { by: 'client', code: code === 1006 ? null : code, reason: code === 1006 ? 'connection cut without a close frame' : reason || undefined };
    client.stopTimers();
    this.clients.delete(client);
    this.stdinPaused.delete(client);
    const first = client.first;
    emit('tunnel.close', {
      app: this.opts.app,
      path: client.path,
      gateway: this.opts.gateway,
      ms: Date.now() - client.started,
      bytesIn: client.bytesIn,
      bytesOut: client.bytesOut,
      framesIn: client.messagesIn,
      framesOut: client.messagesOut,
      messagesIn: client.messagesIn,
      messagesOut: client.messagesOut,
      id: client.id,
      kind: 'stdio',
      client: client.client,
      closeCode: first.code,
      closedBy: first.by,
      reason: first.reason,
    });
    // The last client is gone: nobody reads the program any more (a shared one too).
    if (this.clients.size === 0) void this.stop();
    else this.pump();
  }

  private onExit(exit: StdioExit): void {
    this.opts.log(`[porthole] pid ${this.proc.pid} ${describeExit(exit)}`, 'porthole');
    // Its last lines may still be in the pipe; a grandchild holding stdout open must not keep the clients waiting.
    setTimeout(() => {
      this.stdoutEnded = true;
      this.flushPartial();
      this.pump();
    }, OUTPUT_GRACE_MS).unref();
    this.maybeEnd();
    // Children it left behind go with it.
    void this.stop();
  }

  /** After the exit and the last output: every client gets the close frame that says how the program ended. */
  private maybeEnd(): void {
    const exit = this.proc.exit;
    if (this.ending || !exit || !this.stdoutEnded || this.queue.length) return;
    this.ending = true;
    const { app } = this.opts;
    const how = describeExit(exit);
    const clean = exit.code === 0 && !exit.signal;
    const err = clean ? null : new StdioExitError(`${app}: ${how}${this.lastStderr ? `: ${this.lastStderr}` : ''}`, { app });
    for (const c of this.clients) {
      if (err) c.close(err.closeCode, `${err.code}: ${err.message}`, 'upstream');
      else c.close(1000, `${app}: ${how}`, 'upstream');
    }
  }
}
