/**
 * One port for TLS and cleartext (issue 10, section 1). Every connection's
 * first byte says which it is: 0x16 opens a TLS handshake record (RFC 8446
 * §5.1, ContentType handshake), anything else is cleartext HTTP. The bytes
 * read to decide are put back (`unshift`) before the socket is handed on,
 * so neither side misses one.
 *
 * The HTTP/1.1 server stays the one `Gateway.listen` made: this takes
 * Node's connection handler off it and calls it for cleartext sockets and
 * for TLS sockets once their handshake is done, so its header timeout,
 * keep-alive and `closeAllConnections` cover both. The TLS side is a
 * `tls.Server` of its own, never listening, whose secure context is swapped
 * when the certificate changes: connections already open keep theirs.
 * ALPN offers `h2` first when an HTTP/2 server is given (issue 10,
 * section 2): connections that chose it go there in `onSecure`, the others
 * (and every cleartext one) to the HTTP/1.1 server.
 */
import type http from 'node:http';
import type net from 'node:net';
import tls from 'node:tls';
import type { KeyPair } from '../tls/certificates.js';

/** The first byte of a TLS record carrying a handshake message (a ClientHello). */
const TLS_HANDSHAKE = 0x16;

export interface TlsListenerOptions {
  pair: KeyPair;
  /**
   * How long a connection may take to send its first byte, then to finish
   * the TLS handshake (each); the HTTP server's header timeout follows.
   * 0 waits for ever.
   */
  timeoutMs: number;
  /** Takes the TLS connections whose ALPN chose `h2` (h2-server.ts); without it only HTTP/1.1 is offered. */
  h2?: (socket: tls.TLSSocket) => void;
}

type ConnectionListener = (this: http.Server, socket: net.Socket) => void;

export class TlsListener {
  readonly tlsServer: tls.Server;
  /** Sockets still being told apart, or in their handshake: a drain cuts them. */
  private readonly pending = new Set<net.Socket>();
  private readonly toHttp: (socket: net.Socket) => void;

  constructor(
    private readonly http: http.Server,
    private readonly opts: TlsListenerOptions,
  ) {
    const handlers = http.listeners('connection') as ConnectionListener[];
    http.removeAllListeners('connection');
    this.toHttp = (socket) => {
      for (const h of handlers) h.call(http, socket);
    };
    this.tlsServer = tls.createServer({
      ...this.contextOptions(opts.pair),
      // The server's order wins (Node picks the first of ours the client offers): h2 when both can.
      ALPNProtocols: opts.h2 ? ['h2', 'http/1.1'] : ['http/1.1'],
      handshakeTimeout: opts.timeoutMs > 0 ? opts.timeoutMs : 120_000,
    });
    this.tlsServer.on('secureConnection', (socket: tls.TLSSocket) => this.onSecure(socket));
    // A client that refused the certificate (untrusted CA) or spoke bad TLS: nothing to answer.
    this.tlsServer.on('tlsClientError', (_err: Error, socket: tls.TLSSocket) => socket.destroy());
    http.on('connection', (socket: net.Socket) => this.sniff(socket));
  }

  /** Serves `pair` to connections from now on. */
  setPair(pair: KeyPair): void {
    this.tlsServer.setSecureContext(this.contextOptions(pair));
  }

  /** Cuts the connections not yet handed to the HTTP server (drain). */
  destroyPending(): void {
    for (const s of this.pending) s.destroy();
    this.pending.clear();
  }

  private contextOptions(pair: KeyPair): tls.SecureContextOptions {
    return { cert: pair.cert, key: pair.key, minVersion: 'TLSv1.2' };
  }

  private onSecure(socket: tls.TLSSocket): void {
    const raw = (socket as unknown as { _parent?: net.Socket })._parent;
    if (raw) this.pending.delete(raw);
    if (socket.alpnProtocol === 'h2' && this.opts.h2) this.opts.h2(socket);
    else this.toHttp(socket);
  }

  private sniff(socket: net.Socket): void {
    this.pending.add(socket);
    const onError = () => socket.destroy();
    // The server allows half-open sockets (for HTTP's sake): one that ends before a byte is done with.
    const onEnd = () => socket.destroy();
    socket.on('error', onError);
    socket.once('end', onEnd);
    // A connection that sends nothing (a browser's unused preconnect, slowloris) is closed quietly.
    const timer = this.opts.timeoutMs > 0 ? setTimeout(() => socket.destroy(), this.opts.timeoutMs) : null;
    socket.once('close', () => {
      // Cleared here too: a socket cut by a drain must not leave a timer that keeps the process up.
      if (timer) clearTimeout(timer);
      this.pending.delete(socket);
    });
    socket.once('data', (chunk: Buffer) => {
      if (timer) clearTimeout(timer);
      socket.off('end', onEnd);
      socket.pause();
      socket.unshift(chunk);
      if (chunk[0] === TLS_HANDSHAKE) {
        // The TLS socket reads what was put back (Node's TLSSocket initRead) before the rest.
        this.tlsServer.emit('connection', socket);
        return;
      }
      socket.off('error', onError);
      this.pending.delete(socket);
      this.toHttp(socket);
      socket.resume();
    });
  }
}
