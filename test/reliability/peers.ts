/**
 * Peers of the reliability suite: an upstream that logs every request it
 * parses (to prove nothing reaches an app that the gateway did not route and
 * log), a TCP echo for the bridge, and a raw WebSocket client that writes
 * exact bytes (so frames can be malformed on purpose).
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';
import { closeServer, listen } from '../helpers/net.js';

export interface Parsed {
  kind: 'request' | 'upgrade';
  method: string;
  url: string;
}

export interface LoggingUpstream {
  port: number;
  /** Every request and upgrade the upstream parsed, in order. */
  log: Parsed[];
  /**
   * Bytes the upstream's parser refused (the gateway sent something that is
   * not HTTP). `afterOthers`: on a connection that had carried requests
   * before, where an earlier body sent without its framing leaves the parser
   * out of step (request smuggling) rather than this request being garbage.
   */
  clientErrors: { text: string; afterOthers: boolean }[];
  /** Heads over the upstream's header size limit (valid HTTP, refused with 431). */
  tooLarge(): number;
  /** Closes idle keep-alive connections, so the gateway's pooled sockets to it close too. */
  closeIdle(): void;
  close(): Promise<void>;
}

/**
 * A Node HTTP server that records each request as its parser sees it (a body
 * the gateway forwarded unframed would show up as a second request here) and
 * echoes WebSocket messages. Keep-alive connections stay open until
 * `closeIdle()`: a pooled connection cut mid-run would make the gateway retry
 * an idempotent request, and the upstream would see it twice.
 */
export async function loggingUpstream(): Promise<LoggingUpstream> {
  const log: Parsed[] = [];
  const clientErrors: LoggingUpstream['clientErrors'] = [];
  let tooLarge = 0;
  const server = http.createServer({ keepAliveTimeout: 600_000, requestTimeout: 0 }, (req, res) => {
    log.push({ kind: 'request', method: req.method ?? '', url: req.url ?? '' });
    req.on('error', () => undefined);
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '3' });
      res.end('ok\n');
    });
  });
  server.on('clientError', (err: NodeJS.ErrnoException & { rawPacket?: Buffer; reason?: string }, socket) => {
    // A request cut short (the gateway gave up on it: reset, or FIN mid-body) is not garbage:
    // only an error while the connection was still open means the bytes were not HTTP.
    const cut = socket.readableEnded || err.code === 'ECONNRESET' || err.code === 'EPIPE' || err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    // Well-formed but over this server's 16 KiB of headers: the gateway's forwarding headers
    // repeat Host (X-Forwarded-Host, Forwarded), so a head near the limit grows past it.
    if (err.code === 'HPE_HEADER_OVERFLOW') tooLarge++;
    else if (!cut) {
      const packet = err.rawPacket ?? Buffer.alloc(0);
      clientErrors.push({ text: `${err.code} (${err.reason ?? err.message}): ${packet.subarray(0, 300).toString('latin1')}`, afterOthers: (socket as net.Socket).bytesRead > packet.length });
    }
    socket.destroy();
  });
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false });
  server.on('upgrade', (req, socket, head) => {
    log.push({ kind: 'upgrade', method: req.method ?? '', url: req.url ?? '' });
    socket.on('error', () => socket.destroy());
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', () => ws.terminate());
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
  });
  const port = await listen(server);
  return { port, log, clientErrors, tooLarge: () => tooLarge, closeIdle: () => server.closeIdleConnections(), close: () => closeServer(server) };
}

export interface TcpEcho {
  port: number;
  /** Connections accepted so far. */
  accepted: () => number;
  close(): Promise<void>;
}

/** A TCP server that writes back every byte it reads (the bridge's target). */
export async function tcpEcho(): Promise<TcpEcho> {
  let accepted = 0;
  const server = net.createServer((s) => {
    accepted++;
    s.on('error', () => s.destroy());
    s.pipe(s);
  });
  const port = await listen(server);
  return { port, accepted: () => accepted, close: () => closeServer(server) };
}

/** A WebSocket echo server in its own process (for many tunnels: its sockets are not counted against the test's fds). */
export async function wsEchoProcess(): Promise<{ port: number; pid: number; connections(): Promise<number>; stop(): Promise<void> }> {
  const script = fileURLToPath(new URL('./ws-echo-peer.mjs', import.meta.url));
  const child = spawn(process.execPath, [script], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  let out = '';
  const waiters: ((line: string) => void)[] = [];
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => {
    out += d;
    let i: number;
    while ((i = out.indexOf('\n')) >= 0) {
      const line = out.slice(0, i);
      out = out.slice(i + 1);
      waiters.shift()?.(line);
    }
  });
  const nextLine = () =>
    new Promise<string>((ok, fail) => {
      const t = setTimeout(() => fail(new Error(`ws echo peer silent: ${err}`)), 20_000);
      waiters.push((l) => {
        clearTimeout(t);
        ok(l);
      });
    });
  const port = Number(await nextLine());
  return {
    port,
    pid: child.pid!,
    connections: async () => {
      const line = nextLine();
      child.stdin!.write('count\n');
      return Number(await line);
    },
    stop: () =>
      new Promise((ok) => {
        if (child.exitCode !== null) return ok();
        child.once('exit', () => ok());
        child.kill('SIGKILL');
      }),
  };
}

// ---- raw WebSocket client ----

export const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export function acceptOf(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

export function handshakeText(path: string, host: string, key: string, extra: string[] = []): string {
  return [
    `GET ${path} HTTP/1.1`,
    `Host: ${host}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${key}`,
    'Sec-WebSocket-Version: 13',
    `Origin: http://${host}`,
    ...extra,
    '',
    '',
  ].join('\r\n');
}

export interface FrameOptions {
  fin?: boolean;
  rsv?: number;
  mask?: boolean;
  /** Claimed payload length (default: the real one). */
  length?: number | bigint;
}

/** One frame, with any header field set to anything (RFC 6455 §5.2). */
export function frame(opcode: number, payload: Buffer, opts: FrameOptions = {}): Buffer {
  const mask = opts.mask ?? true;
  const len = opts.length ?? payload.length;
  const big = BigInt(len);
  const ext = big < 126n ? 0 : big < 65536n ? 2 : 8;
  const head = Buffer.alloc(2 + ext + (mask ? 4 : 0));
  head[0] = ((opts.fin ?? true) ? 0x80 : 0) | ((opts.rsv ?? 0) << 4) | (opcode & 0x0f);
  head[1] = (mask ? 0x80 : 0) | (ext === 0 ? Number(big) : ext === 2 ? 126 : 127);
  if (ext === 2) head.writeUInt16BE(Number(big), 2);
  if (ext === 8) head.writeBigUInt64BE(big, 2);
  if (!mask) return Buffer.concat([head, payload]);
  const key = randomBytes(4);
  key.copy(head, 2 + ext);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3];
  return Buffer.concat([head, body]);
}

export interface RawWs {
  socket: net.Socket;
  /** Bytes received after the 101's head. */
  received(): Buffer;
  /** Resolves when the socket has closed. */
  closed: Promise<void>;
  /** The code of the first close frame the server sent (null until one arrived). */
  closeCode(): number | null;
}

/**
 * Completes a real handshake on a raw socket and resolves once the 101 head
 * has arrived (rejects on any other answer).
 */
export function rawWebSocket(port: number, path: string, host = `127.0.0.1:${port}`, protocols?: string): Promise<RawWs> {
  return new Promise((ok, fail) => {
    const key = randomBytes(16).toString('base64');
    const socket = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let opened = false;
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.on('error', () => undefined);
    const timer = setTimeout(() => {
      socket.destroy();
      fail(new Error('no 101 within 10 s'));
    }, 10_000);
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (opened) return;
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString('latin1');
      clearTimeout(timer);
      if (!head.startsWith('HTTP/1.1 101') || !head.includes(acceptOf(key))) {
        socket.destroy();
        fail(new Error(`handshake refused: ${head.split('\r\n')[0]}`));
        return;
      }
      opened = true;
      buf = buf.subarray(end + 4);
      ok({ socket, received: () => buf, closed, closeCode: () => firstCloseCode(buf) });
    });
    socket.once('close', () => {
      clearTimeout(timer);
      if (!opened) fail(new Error('closed before the 101'));
    });
    socket.write(handshakeText(path, host, key, protocols ? [`Sec-WebSocket-Protocol: ${protocols}`] : []));
  });
}

/** Walks unmasked server frames; returns the first close frame's code (1005 when it has none). */
export function firstCloseCode(buf: Buffer): number | null {
  let off = 0;
  while (off + 2 <= buf.length) {
    const op = buf[off] & 0x0f;
    const masked = (buf[off + 1] & 0x80) !== 0;
    let len = buf[off + 1] & 0x7f;
    let h = 2;
    if (len === 126) {
      if (off + 4 > buf.length) return null;
      len = buf.readUInt16BE(off + 2);
      h = 4;
    } else if (len === 127) {
      if (off + 10 > buf.length) return null;
      len = Number(buf.readBigUInt64BE(off + 2));
      h = 10;
    }
    if (masked) h += 4;
    if (op === 0x8) return len >= 2 && off + h + 2 <= buf.length ? buf.readUInt16BE(off + h) : 1005;
    off += h + len;
  }
  return null;
}
