/**
 * One app's output: stdout and stderr, line by line, appended to
 * `{dataDir}/logs/{name}.log` (rotated to `.log.1` past a size limit, one
 * generation kept) and held in an in-memory tail for `logs` and followers.
 *
 * File writes are asynchronous, batched and done by one drain loop at a
 * time, so a chatty app never blocks the gateway's event loop and lines keep
 * their order.
 */
import { mkdirSync } from 'node:fs';
import { open, rename, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';

export const TAIL_LINES = 1000;
/** A "line" longer than this (binary output, a huge JSON dump) is cut, so one write cannot eat the memory. */
const MAX_LINE_CHARS = 64 * 1024;
/**
 * Bytes queued for the file above which the app's pipes are paused: an app
 * that writes faster than the disk takes then blocks in write(), as it would
 * on a slow terminal, instead of growing the gateway's memory without bound.
 */
const HIGH_WATER_BYTES = 1024 * 1024;

export interface AppLogOptions {
  /** The log file; its directory is created. */
  path: string;
  /** Rotate before the file would grow past this many bytes. */
  maxBytes: number;
  /** Called when the log file cannot be written (disk full…); the tail keeps working. */
  onError?: (err: Error) => void;
}

/** Where a line came from: the app's stdout or stderr, or Porthole itself (`[porthole] …` notes). */
export type LogStream = 'stdout' | 'stderr' | 'porthole';

/** One line of the tail. */
export interface LogEntry {
  stream: LogStream;
  text: string;
  /** Epoch ms when the line was read. */
  at: number;
}

export class AppLog {
  readonly path: string;
  readonly #maxBytes: number;
  readonly #onError: (err: Error) => void;
  readonly #tail: LogEntry[] = [];
  readonly #followers = new Set<(line: string, entry: LogEntry) => void>();
  #fh: FileHandle | undefined;
  #size = 0;
  /** Lines waiting for the file, written in batches by one drain loop at a time. */
  #queue: Buffer[] = [];
  #draining: Promise<void> | undefined;
  #closed = false;
  /** Bytes in #queue. */
  #pending = 0;
  readonly #streams = new Set<Readable>();

  constructor(opts: AppLogOptions) {
    this.path = opts.path;
    this.#maxBytes = opts.maxBytes;
    this.#onError = opts.onError ?? (() => {});
    mkdirSync(dirname(this.path), { recursive: true });
  }

  /** Feeds a child's stream in, one line at a time (a partial last line is flushed at end). */
  attach(stream: Readable, from: LogStream = 'stdout'): void {
    this.#streams.add(stream);
    stream.once('close', () => this.#streams.delete(stream));
    if (this.#pending > HIGH_WATER_BYTES) stream.pause();
    const decoder = new StringDecoder('utf8');
    let partial = '';
    stream.on('data', (chunk: Buffer) => {
      const lines = (partial + decoder.write(chunk)).split('\n');
      partial = lines.pop() ?? '';
      if (partial.length > MAX_LINE_CHARS) {
        lines.push(partial);
        partial = '';
      }
      for (const line of lines) this.line(line, from);
    });
    stream.on('end', () => {
      const rest = partial + decoder.end();
      if (rest) this.line(rest, from);
    });
    // A pipe error (EPIPE after the group was killed) only ends this stream's output.
    stream.on('error', () => {});
  }

  /** Adds one line (without its newline): file, tail, followers. */
  line(text: string, from: LogStream = 'porthole'): void {
    if (this.#closed) return;
    const line = text.endsWith('\r') ? text.slice(0, -1) : text;
    const entry: LogEntry = { stream: from, text: line, at: Date.now() };
    this.#tail.push(entry);
    if (this.#tail.length > TAIL_LINES) this.#tail.splice(0, this.#tail.length - TAIL_LINES);
    for (const follower of this.#followers) {
      try {
        follower(line, entry);
      } catch {
        // A follower's bug must not stop the app's logging.
      }
    }
    const data = Buffer.from(`${line}\n`);
    this.#queue.push(data);
    this.#pending += data.length;
    if (this.#pending > HIGH_WATER_BYTES) for (const s of this.#streams) s.pause();
    this.#draining ??= this.#drain();
  }

  /** The last `n` lines (all the tail holds if `n` is larger). */
  last(n: number): string[] {
    return this.lastEntries(n).map((e) => e.text);
  }

  /** The last `n` lines with where each came from and when. */
  lastEntries(n: number): LogEntry[] {
    return n <= 0 ? [] : this.#tail.slice(-n);
  }

  /** Calls `onLine` for every new line until the returned function is called. */
  follow(onLine: (line: string, entry: LogEntry) => void): () => void {
    this.#followers.add(onLine);
    return () => void this.#followers.delete(onLine);
  }

  /** Resolves once every line so far is in the file. */
  flush(): Promise<void> {
    return this.#draining ?? Promise.resolve();
  }

  /** Flushes and closes the file; later lines are dropped. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#followers.clear();
    await this.flush();
    await this.#fh?.close().catch(() => undefined);
    this.#fh = undefined;
  }

  /** Writes the queue out, batch by batch, rotating between batches when the next line would not fit. */
  async #drain(): Promise<void> {
    while (this.#queue.length) {
      let batch: Buffer[] = [];
      try {
        if (!this.#fh) {
          this.#fh = await open(this.path, 'a');
          this.#size = (await this.#fh.stat()).size;
        }
        if (this.#size > 0 && this.#size + this.#queue[0].length > this.#maxBytes) await this.#rotate();
        // As many lines as still fit (at least one: a line longer than the limit gets a file of its own).
        let bytes = 0;
        let n = 0;
        while (n < this.#queue.length && (n === 0 || this.#size + bytes + this.#queue[n].length <= this.#maxBytes)) bytes += this.#queue[n++].length;
        batch = this.#queue.splice(0, n);
        await this.#fh!.appendFile(Buffer.concat(batch, bytes)); // loops until all is written
        this.#size += bytes;
      } catch (err) {
        // Disk full, file removed…: these lines stay in the tail only; do not spin on the error.
        batch = batch.concat(this.#queue.splice(0));
        await this.#fh?.close().catch(() => undefined);
        this.#fh = undefined;
        this.#onError(err as Error);
      } finally {
        this.#pending -= batch.reduce((sum, b) => sum + b.length, 0);
        if (this.#pending <= HIGH_WATER_BYTES / 2) for (const s of this.#streams) if (s.isPaused()) s.resume();
      }
    }
    this.#draining = undefined;
  }

  async #rotate(): Promise<void> {
    await this.#fh?.close();
    this.#fh = undefined;
    await rename(this.path, `${this.path}.1`);
    this.#fh = await open(this.path, 'a');
    this.#size = 0;
  }
}
