/**
 * The `porthole connect` client: open one WebSocket, say what was negotiated,
 * exchange messages in one of three modes, and say how and why it closed.
 *
 * - `script`: send the `-x`/binary messages, wait for the answers (or `waitMs`), close.
 * - `pipe`: every stdin line is a text message, every received message is one
 *   stdout line (see `pipeLine`); nothing else on stdout.
 * - `interactive`: stdin lines are messages or `/commands`; received messages
 *   print as `< text`. With a TTY there is a `> ` prompt.
 *
 * Status (connected, negotiated subprotocol/extensions, pings, close) goes to
 * stderr; in pipe mode only problems do.
 */
import { createInterface, clearLine, cursorTo, type Interface } from 'node:readline';
import WebSocket, { type ClientOptions } from 'ws';
import { describeCloseCode, isSendableCloseCode } from './close-codes.js';
import { describeConnectError, describeUnexpectedResponse } from './handshake-failure.js';
import { describeBinary, describeControlPayload, parseHex, pipeLine } from './payload.js';

export type OutgoingMessage = { readonly binary: false; readonly data: string } | { readonly binary: true; readonly data: Buffer };

export interface ConnectOptions {
  /** A `ws://` or `wss://` URL (see `normalizeUrl`). */
  url: string;
  /** Extra handshake headers, names as typed. */
  headers?: Readonly<Record<string, string>>;
  /** Subprotocols offered, in order of preference. */
  subprotocols?: readonly string[];
  origin?: string;
  /** `user:pass` for HTTP Basic authentication. */
  auth?: string;
  /** Skip TLS certificate verification. */
  insecure?: boolean;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** Offer permessage-deflate. Off by default so what is on the wire is what was typed. */
  compress?: boolean;
  /** Follow 3xx redirects on the handshake, at most `MAX_REDIRECTS`. */
  followRedirects?: boolean;
  /** Sent in order right after the connection opens. */
  execute?: readonly OutgoingMessage[];
  mode: 'script' | 'pipe' | 'interactive';
  /** After the input ends: how long to wait for answers before closing. */
  waitMs?: number;
  /** Give up on a handshake that gets no answer in this time. */
  connectTimeoutMs?: number;
  /** Print every ping and pong received (a pong answering `/ping` is always printed). */
  showPing?: boolean;
  /** Aborting closes the connection with 1000 (or abandons the handshake). */
  signal?: AbortSignal;
}

export interface ConnectIO {
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** stdin and stdout are a terminal: show a prompt and keep it intact while printing. */
  tty: boolean;
}

export const MAX_REDIRECTS = 5;
export const DEFAULT_WAIT_MS = 2000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** After we send a close frame, the peer has this long to answer before we cut the connection. */
const CLOSE_ANSWER_MS = 5000;

/**
 * Runs one connection to the end. Resolves with the process exit code:
 * 0 for a normal close (1000; or 1001, 1005 or the code we sent, when we closed first),
 * 1 for everything else (handshake refused, connection failed, 1006, other codes),
 * 2 when ws refuses the options before connecting (invalid subprotocol or header value).
 */
export function runConnect(opts: ConnectOptions, io: ConnectIO): Promise<number> {
  return new Promise<number>((resolve) => new Session(opts, io, resolve).start());
}

/**
 * Normalises what a user typed as the URL: `http(s)://` becomes `ws(s)://`, and
 * a bare `host:port/path` gets `ws://`. Returns null for anything else
 * (another scheme, no host, a `#fragment`, which RFC 6455 §3 forbids).
 */
export function normalizeUrl(input: string): string | null {
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(input) ? input : `ws://${input}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  if ((url.protocol !== 'ws:' && url.protocol !== 'wss:') || !url.hostname || url.hash) return null;
  return url.href;
}

/** Parses `-H "Name: value"`; null when the name is not an HTTP token or CR/LF appears. */
export function parseHeader(text: string): [string, string] | null {
  const i = text.indexOf(':');
  if (i <= 0) return null;
  const name = text.slice(0, i).trim();
  const value = text.slice(i + 1).trim();
  // RFC 9110 §5.1 token; and never let a CR/LF reach the wire (header injection).
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name) || /[\r\n\0]/.test(value)) return null;
  return [name, value];
}

class Session {
  private ws!: WebSocket;
  private rl: Interface | undefined;
  private opened = false;
  private finished = false;
  /** The handshake failed and was reported; later ws events are noise. */
  private failed = false;
  private inputEnded = false;
  private sent = 0;
  private received = 0;
  private pingsAwaitingPong = 0;
  private weClosedWith: number | undefined;
  private extensionsHeader: string | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly opts: ConnectOptions,
    private readonly io: ConnectIO,
    private readonly resolve: (code: number) => void,
  ) {}

  start(): void {
    const { opts } = this;
    const headers: Record<string, string> = { ...opts.headers };
    const subprotocols = [...(opts.subprotocols ?? [])];
    // wscat habit: -H "Sec-WebSocket-Protocol: x". Sent as a plain header, ws would then reject the
    // server's (correct) answer as "a subprotocol but none was requested"; treat it as -s x.
    for (const name of Object.keys(headers)) {
      if (name.toLowerCase() !== 'sec-websocket-protocol') continue;
      for (const p of headers[name].split(',')) if (p.trim() && !subprotocols.includes(p.trim())) subprotocols.push(p.trim());
      delete headers[name];
    }
    if (opts.auth !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'authorization')) {
      headers.Authorization = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
    }
    const clientOptions: ClientOptions = {
      headers,
      origin: opts.origin,
      // ws offers permessage-deflate unless told not to.
      perMessageDeflate: opts.compress ?? false,
      followRedirects: opts.followRedirects ?? false,
      maxRedirects: MAX_REDIRECTS,
      handshakeTimeout: opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      rejectUnauthorized: !opts.insecure,
      ca: opts.ca,
      cert: opts.cert,
      key: opts.key,
    };
    let ws: WebSocket;
    try {
      ws = this.ws = new WebSocket(opts.url, subprotocols, clientOptions);
    } catch (e) {
      // ws and node:http check synchronously: a bad subprotocol name, a header value with a control character.
      this.err(`cannot connect: ${(e as Error).message}`);
      this.finish(2);
      return;
    }

    ws.on('upgrade', (res) => {
      this.extensionsHeader = res.headers['sec-websocket-extensions'];
    });
    ws.on('unexpected-response', (_req, res) => {
      this.failed = true;
      void describeUnexpectedResponse(res, opts.followRedirects ?? false).then((lines) => {
        for (const line of lines) this.err(line);
        ws.terminate();
        this.finish(1);
      });
    });
    ws.on('error', (err: Error & { code?: string }) => {
      if (this.failed) return;
      if (!this.opened) {
        this.failed = true;
        for (const line of describeConnectError(err, opts.url)) this.err(line);
        return; // 'close' follows and ends the session
      }
      this.err(`error: ${err.message}${err.code ? ` (${err.code})` : ''}`);
    });
    ws.on('open', () => this.onOpen());
    // binaryType is 'nodebuffer' (the default), so data is always one Buffer.
    ws.on('message', (data, isBinary) => this.onMessage(data as Buffer, isBinary));
    ws.on('ping', (data: Buffer) => {
      if (opts.showPing) this.status(`ping received: ${describeControlPayload(data)}`, true);
    });
    ws.on('pong', (data: Buffer) => {
      const asked = this.pingsAwaitingPong > 0;
      if (asked) this.pingsAwaitingPong--;
      if (asked || opts.showPing) this.status(`pong received: ${describeControlPayload(data)}`, true);
    });
    ws.on('close', (code: number, reason: Buffer) => this.onClose(code, reason));

    opts.signal?.addEventListener('abort', () => this.quit(), { once: true });
  }

  private onOpen(): void {
    const { opts, ws } = this;
    this.opened = true;
    const redirected = ws.url !== opts.url ? ` (redirected from ${opts.url})` : '';
    this.status(`connected to ${ws.url}${redirected}`);
    if (ws.protocol) this.status(`subprotocol: ${ws.protocol}`);
    if (this.extensionsHeader) this.status(`extensions: ${this.extensionsHeader}`);

    for (const m of opts.execute ?? []) this.send(m);
    if (opts.mode === 'script') this.endOfInput();
    else this.readInput();
  }

  private readInput(): void {
    const { io } = this;
    const rl = (this.rl = createInterface({
      input: io.stdin,
      output: io.tty ? io.stdout : undefined,
      terminal: io.tty,
      prompt: '> ',
    }));
    rl.on('line', (line) => {
      if (this.opts.mode === 'pipe') this.send({ binary: false, data: line });
      else this.command(line);
      if (this.io.tty && this.rl) this.rl.prompt();
    });
    rl.on('close', () => this.endOfInput());
    // Ctrl-C at the prompt: readline swallows the signal, so quit here.
    rl.on('SIGINT', () => this.quit());
    // out() draws the prompt once rl exists.
    if (io.tty) this.out('type a message and Enter to send it; /help lists commands; /quit or Ctrl-D closes', io.stderr);
  }

  /** One interactive input line: a `/command` or a text message (`//x` sends `/x`). */
  private command(line: string): void {
    if (!line.startsWith('/') || line.startsWith('//')) {
      this.send({ binary: false, data: line.startsWith('//') ? line.slice(1) : line });
      return;
    }
    const [cmd = '', ...rest] = line.slice(1).split(' ');
    const arg = rest.join(' ');
    try {
      switch (cmd) {
        case 'ping':
          this.ws.ping(arg);
          this.pingsAwaitingPong++;
          return;
        case 'pong':
          this.ws.pong(arg);
          return;
        case 'binary': {
          const data = parseHex(arg);
          if (!data) return this.err('usage: /binary HEX (for example /binary 00ff10)');
          this.send({ binary: true, data });
          return;
        }
        case 'close': {
          const m = /^\s*(\d+)?\s*(.*)$/.exec(arg);
          const code = m?.[1] === undefined ? 1000 : Number(m[1]);
          if (!isSendableCloseCode(code)) return this.err(`cannot send close code ${code}: use 1000–1003, 1007–1014 or 3000–4999`);
          this.closeWith(code, m?.[2] ?? '');
          return;
        }
        case 'quit':
        case 'exit':
          this.closeWith(1000, '');
          return;
        case 'help':
          this.err(HELP);
          return;
        default:
          this.err(`unknown command /${cmd}; type /help (to send a message that starts with /, type //)`);
      }
    } catch (e) {
      // ws throws for a control payload over 125 bytes or a close reason over 123 (RFC 6455 §5.5).
      this.err(`/${cmd}: ${(e as Error).message}`);
    }
  }

  private send(m: OutgoingMessage): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.sent++;
    this.ws.send(m.data, { binary: m.binary });
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    this.received++;
    if (this.opts.mode === 'pipe') this.io.stdout.write(`${pipeLine(data, isBinary)}\n`);
    else this.out(isBinary ? `< binary ${describeBinary(data)}` : `< ${data.toString('utf8')}`, this.io.stdout);
    this.maybeDone();
  }

  /** Input is over (end of -x, stdin EOF): close once every message got an answer, or after the wait. */
  private endOfInput(): void {
    if (this.inputEnded || this.finished) return;
    this.inputEnded = true;
    this.timer(() => this.closeWith(1000, ''), this.opts.waitMs ?? DEFAULT_WAIT_MS);
    this.maybeDone();
  }

  private maybeDone(): void {
    if (this.inputEnded && this.received >= this.sent) this.closeWith(1000, '');
  }

  private quit(): void {
    if (this.opened) this.closeWith(1000, '');
    else {
      this.failed = true;
      this.err('interrupted before the connection opened');
      this.ws.terminate();
      this.finish(1);
    }
  }

  private closeWith(code: number, reason: string): void {
    if (this.weClosedWith !== undefined || this.ws.readyState !== WebSocket.OPEN) return;
    this.ws.close(code, reason); // throws on a reason over 123 bytes: nothing was sent then
    this.weClosedWith = code;
    // ws would wait 30 s for the peer's close frame; a person at a prompt should not.
    this.timer(() => this.ws.terminate(), CLOSE_ANSWER_MS);
  }

  private onClose(code: number, reason: Buffer): void {
    if (this.failed || !this.opened) return this.finish(1);
    this.stopReading();
    const exit = code === 1000 || (this.weClosedWith !== undefined && (code === 1001 || code === 1005 || code === this.weClosedWith)) ? 0 : 1;
    const why = reason.length ? ` reason ${JSON.stringify(reason.toString('utf8'))}` : '';
    const line = `closed ${code} (${describeCloseCode(code)})${why}`;
    if (this.opts.mode !== 'pipe' || exit !== 0) this.err(line);
    this.finish(exit);
  }

  private finish(code: number): void {
    if (this.finished) return;
    this.finished = true;
    for (const t of this.timers) clearTimeout(t);
    this.stopReading();
    this.resolve(code);
  }

  /** Stops reading stdin and takes the prompt off the screen. */
  private stopReading(): void {
    const rl = this.rl;
    if (!rl) return;
    this.rl = undefined;
    if (this.io.tty) {
      clearLine(this.io.stdout as NodeJS.WriteStream, 0);
      cursorTo(this.io.stdout as NodeJS.WriteStream, 0);
    }
    rl.close();
  }

  private timer(fn: () => void, ms: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  /** A status line: stderr, except in pipe mode where only `force`d ones (pings asked for) show. */
  private status(line: string, force = false): void {
    if (this.opts.mode !== 'pipe' || force) this.out(line, this.io.stderr);
  }

  private err(line: string): void {
    this.out(line, this.io.stderr);
  }

  /** Writes a line without mangling the prompt and what the user has typed so far. */
  private out(line: string, stream: NodeJS.WritableStream): void {
    const rl = this.rl;
    if (this.io.tty && rl) {
      clearLine(this.io.stdout as NodeJS.WriteStream, 0);
      cursorTo(this.io.stdout as NodeJS.WriteStream, 0);
      stream.write(`${line}\n`);
      rl.prompt(true);
    } else {
      stream.write(`${line}\n`);
    }
  }
}

const HELP = `commands:
  /ping [data]             send a ping (its pong is printed)
  /pong [data]             send an unsolicited pong
  /binary HEX              send a binary message, e.g. /binary 00ff10
  /close [CODE [REASON]]   start the closing handshake (default 1000)
  /quit                    close with 1000 and exit
  //text                   send a text message that starts with /`;
