/**
 * HTTP/2 on the TLS side of the gateway's port (issue 10, section 2). The
 * TLS listener hands over every connection whose ALPN chose `h2`; this
 * server (never listening itself) runs the HTTP/2 sessions on them:
 *
 * - plain requests go to the gateway's request listener, adapted to look
 *   like HTTP/1.1 ones (h2-request.ts): the same routing, forwarding to
 *   HTTP/1.1 upstreams, header rules, admin API and dashboard;
 * - it advertises SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 §3), and an
 *   extended CONNECT with `:protocol: websocket` goes to the gateway's
 *   upgrade listener as the HTTP/1.1 handshake it stands for
 *   (h2-websocket.ts). Any other CONNECT (a forward-proxy tunnel, another
 *   protocol) is refused with 400.
 *
 * Sessions are tracked for the drain: a GOAWAY first (streams in flight
 * finish), then whatever is left is cut with the other connections.
 */
import http2 from 'node:http2';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type http from 'node:http';
import { BadHandshakeError } from '../errors.js';
import { emit } from '../events.js';
import { sendHttpError } from './error-response.js';
import { adaptH2Request } from './h2-request.js';
import { H2UpgradeSocket, upgradeRequestOf } from './h2-websocket.js';

export interface H2Handlers {
  gateway: string;
  request: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  upgrade: (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** How long a session with no open stream is kept (the HTTP/1.1 keep-alive's role); 0 keeps it. */
  idleMs: number;
}

export class H2Server {
  readonly server: http2.Http2Server;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  /**
   * The connections themselves: a session closed gracefully only ends its socket, which
   * stays open while the client does not read (its window full of a tunnel's bytes).
   */
  private readonly sockets = new Set<net.Socket>();

  constructor(private readonly handlers: H2Handlers) {
    this.server = http2.createServer({
      // 128 streams at once per connection, nginx's default: Node's is unlimited. Each WebSocket
      // over HTTP/2 holds one stream for its life.
      settings: { enableConnectProtocol: true, maxConcurrentStreams: 128 },
    });
    this.server.on('request', (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
      adaptH2Request(req, res);
      handlers.request(req as unknown as http.IncomingMessage, res as unknown as http.ServerResponse);
    });
    this.server.on('connect', (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => this.connect(req, res));
    this.server.on('session', (session: http2.ServerHttp2Session) => this.track(session));
    // A client that broke the protocol: nghttp2 has answered with GOAWAY; nothing more to do.
    this.server.on('sessionError', () => undefined);
  }

  /** Runs HTTP/2 on a TLS connection whose ALPN chose `h2`. */
  accept(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    this.server.emit('connection', socket);
  }

  /** Drain, first step: every session is told GOAWAY; its open streams may finish. */
  close(): void {
    for (const s of this.sessions) if (!s.closed) s.close();
  }

  /** Drain, last step: sessions still open are cut. */
  destroy(): void {
    for (const s of this.sessions) s.destroy();
    this.sessions.clear();
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  private track(session: http2.ServerHttp2Session): void {
    this.sessions.add(session);
    session.once('close', () => this.sessions.delete(session));
    session.on('error', () => session.destroy());
    let open = 0;
    session.on('stream', (stream: http2.ServerHttp2Stream) => {
      open++;
      stream.once('close', () => open--);
    });
    if (this.handlers.idleMs > 0) {
      session.setTimeout(this.handlers.idleMs, () => {
        // A WebSocket may be quiet for long: only a session with nothing open is idle.
        if (open === 0) session.close();
      });
    }
  }

  private connect(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): void {
    const protocol = req.headers[':protocol'];
    if (protocol !== 'websocket') {
      const err = new BadHandshakeError(
        protocol === undefined ? 'CONNECT is only accepted as an extended CONNECT for WebSockets (RFC 8441, :protocol websocket)' : `only WebSockets are accepted over CONNECT, not :protocol ${protocol}`,
      );
      emit('upgrade', { gateway: this.handlers.gateway, app: null, path: req.url ?? '', accepted: false, status: err.status, code: err.code, reason: err.message, protocol: 'h2' });
      adaptH2Request(req, res);
      sendHttpError(res as unknown as http.ServerResponse, err, req.headers.accept);
      return;
    }
    const socket = new H2UpgradeSocket(req.stream);
    this.handlers.upgrade(upgradeRequestOf(req), socket, Buffer.alloc(0));
  }
}
