/**
 * An RFC 6455 echo server for tests and for checking a proxy chain end to end:
 * text comes back as text, binary as binary, pings are answered (by `ws`), and
 * a plain HTTP GET gets a short text answer so health checks pass.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { describeCloseCode } from './close-codes.js';

export interface EchoServerOptions {
  /** Interface to listen on. Default `127.0.0.1`. */
  host?: string;
  /** Port to listen on; 0 picks a free one. Default 0. */
  port?: number;
  /** Accept permessage-deflate (RFC 7692) when the client offers it. Default false. */
  compress?: boolean;
  /** Subprotocols the server speaks; the first one the client offers that is listed here is selected. */
  subprotocols?: readonly string[];
  /** Largest message accepted, in bytes; a bigger one closes the connection with 1009. Default 100 MiB. */
  maxPayload?: number;
  /** Receives one line per connection opened or closed (and per socket error). */
  log?: (line: string) => void;
}

export interface EchoServer {
  /** The port actually listened on. */
  readonly port: number;
  /** `ws://host:port`, ready to connect to. */
  readonly url: string;
  /** WebSocket connections open right now. */
  readonly connections: number;
  /** Closes every client with 1001 (going away), then stops listening. */
  close(): Promise<void>;
}

export const DEFAULT_MAX_PAYLOAD = 100 * 1024 * 1024;
/** Fragments per message: bounded (an endless run of empty fragments is memory too), above what the conformance cases send. */
const ECHO_MAX_FRAGMENTS = 65_536;

/** Clients that do not answer our 1001 within this time are cut. */
const CLOSE_GRACE_MS = 2000;

/** Starts an echo server; resolves once it listens. */
export async function startEchoServer(opts: EchoServerOptions = {}): Promise<EchoServer> {
  const host = opts.host ?? '127.0.0.1';
  const subprotocols = opts.subprotocols ?? [];
  const maxPayload = opts.maxPayload ?? DEFAULT_MAX_PAYLOAD;
  const log = opts.log ?? (() => {});
  if (!Number.isSafeInteger(maxPayload) || maxPayload < 1) throw new RangeError(`maxPayload must be a positive integer, got ${maxPayload}`);

  const http = createServer(answerHttp);
  const wss = new WebSocketServer({
    server: http,
    perMessageDeflate: opts.compress ?? false,
    maxPayload,
    // Autobahn's 9.3.1 and 9.4.1 send a 4 MiB message in 65,536 fragments of 64 bytes; ws's own limit (16,384) refuses them with 1008.
    maxFragments: ECHO_MAX_FRAGMENTS,
    // The client's offer order is kept in the Set (RFC 6455 §4.2.2 lets the server pick any; we honour the client's preference).
    handleProtocols: (offered: Set<string>) => {
      for (const p of offered) if (subprotocols.includes(p)) return p;
      return false;
    },
  });

  let nextId = 1;
  /** Why the server (not the client) started closing each connection, for the log. */
  const closedByServer = new WeakMap<WebSocket, { code: number; why: string }>();
  wss.on('connection', (ws: WebSocket, req: IncomingMessage) => {
    const id = nextId++;
    const started = Date.now();
    let messages = 0;
    const peer = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
    const ext = ws.extensions ? ` extensions=${ws.extensions}` : '';
    const proto = ws.protocol ? ` subprotocol=${ws.protocol}` : '';
    log(`open #${id} from ${peer} ${req.url ?? '/'}${proto}${ext}`);

    ws.on('message', (data, isBinary) => {
      messages++;
      ws.send(data as Buffer, { binary: isBinary });
    });
    // ws sends the close frame itself on a bad frame or message (1009 over maxPayload,
    // 1007 bad UTF-8, 1002 otherwise); we only note it for the log line.
    ws.on('error', (err: Error & { code?: string }) => {
      if (!closedByServer.has(ws)) closedByServer.set(ws, { code: closeCodeForWsError(err.code), why: err.message });
    });
    ws.on('close', (code: number, reason: Buffer) => {
      const took = `after ${((Date.now() - started) / 1000).toFixed(2)} s, ${messages} message${messages === 1 ? '' : 's'} echoed`;
      const ours = closedByServer.get(ws);
      if (ours) {
        log(`close #${id} ${ours.code} (${describeCloseCode(ours.code)}) sent by the echo server: ${ours.why}; ${took}`);
      } else {
        const why = reason.length ? ` reason ${JSON.stringify(reason.toString('utf8'))}` : '';
        log(`close #${id} ${code} (${describeCloseCode(code)})${why}${code === 1006 ? '' : ' sent by the client'}; ${took}`);
      }
    });
  });
  // Without these a failed upgrade or a listen error would throw from an emitter.
  wss.on('error', (err) => log(`error ${err.message}`));
  http.on('clientError', (_err, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(opts.port ?? 0, host, () => {
      http.off('error', reject);
      resolve();
    });
  });
  const port = (http.address() as AddressInfo).port;
  const url = `ws://${host.includes(':') ? `[${host}]` : host}:${port}`;

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      const clients = [...wss.clients];
      await Promise.all(
        clients.map(
          (ws) =>
            new Promise<void>((resolve) => {
              if (ws.readyState === ws.CLOSED) return resolve();
              ws.once('close', () => resolve());
              if (!closedByServer.has(ws)) closedByServer.set(ws, { code: 1001, why: 'shutting down' });
              ws.close(1001, 'echo server shutting down');
              setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
            }),
        ),
      );
      await new Promise<void>((resolve) => {
        wss.close(() => resolve());
      });
      await new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections();
      });
    })());

  return {
    port,
    url,
    get connections() {
      return wss.clients.size;
    },
    close,
  };
}

/** The close code `ws` sends for a receiver error (lib/receiver.js). */
function closeCodeForWsError(code: string | undefined): number {
  if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') return 1009;
  if (code === 'WS_ERR_INVALID_UTF8') return 1007;
  return 1002;
}

function answerHttp(req: IncomingMessage, res: ServerResponse): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
    res.end('method not allowed: this is a WebSocket echo server\n');
    return;
  }
  const body = 'porthole echo: a WebSocket echo server; connect with a WebSocket client on any path\n';
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(req.method === 'HEAD' ? undefined : body);
}
