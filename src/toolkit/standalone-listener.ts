/**
 * The HTTP listener of the toolkit's standalone servers (`porthole bridge`,
 * `porthole stdio`): the same timeouts as the gateway's, a 400 for requests
 * that do not parse, and the `gateway listening` event once it listens.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { formatHostPort } from '../config/host-port.js';
import { emit } from '../events.js';

export interface StandaloneListener {
  server: Server;
  port: number;
  /** `http://host:port` */
  url: string;
}

/** Listens on `host:port` (default 127.0.0.1, a free port); rejects with the listen error (EADDRINUSE…). */
export async function listenStandalone(
  id: string,
  where: { host?: string; port?: number },
  onRequest: (req: IncomingMessage, res: ServerResponse) => void,
  onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void,
): Promise<StandaloneListener> {
  // No request timeout: a WebSocket outlives any; a client must still send its head within 60 s.
  const server = createServer({ requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 5_000 }, onRequest);
  server.on('upgrade', onUpgrade);
  server.on('clientError', (_err, socket: Duplex) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(where.port ?? 0, where.host ?? '127.0.0.1', () => {
      server.off('error', fail);
      ok();
    });
  });
  server.on('error', (err: NodeJS.ErrnoException) => emit('error', { gateway: id, code: err.code ?? 'PH_ERR_LISTEN', message: err.message }));
  const addr = server.address() as AddressInfo;
  const url = `http://${formatHostPort({ host: addr.address, port: addr.port })}`;
  emit('gateway', { gateway: id, action: 'listening', address: url });
  return { server, port: addr.port, url };
}
