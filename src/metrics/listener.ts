/**
 * `metrics.listen`: the metrics on an address of their own, at `GET /metrics`
 * and without the admin token — what Prometheus scrapes without being handed
 * the token that can register and start apps. Access to it is the network's
 * business (bind it to loopback or a private address), as for Traefik's
 * metrics entrypoint or node_exporter's port.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { checkAdminHost } from '../admin/guard.js';
import { BadRequestError, MetricsListenError, RouteNotFoundError } from '../errors.js';
import { refuse, sendMetrics } from './endpoint.js';
import type { Metrics } from './metrics.js';

export const METRICS_LISTEN_PATH = '/metrics';

export interface MetricsListener {
  readonly host: string;
  readonly port: number;
  /** `http://HOST:PORT/metrics`. */
  readonly url: string;
  /** Stops listening and cuts open connections (a scraper's keep-alive one too). */
  close(): Promise<void>;
}

export interface MetricsListenOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Host names besides loopback and this machine's addresses that a loopback listener answers under (`admin.hosts`). */
  hosts?: () => readonly string[];
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/i;

/** Listens, or rejects with `MetricsListenError` (the errno error as its cause). */
export function listenMetrics(metrics: Metrics, opts: MetricsListenOptions): Promise<MetricsListener> {
  // On loopback, a page that DNS-rebinds a name to 127.0.0.1 arrives with its own Host: refused,
  // as for the admin API. On another address the Host is whatever name Prometheus uses.
  const loopback = LOOPBACK.test(opts.host);
  const sockets = new Set<Socket>();
  const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    const badHost = loopback ? checkAdminHost(req.headers.host, opts.hosts?.() ?? []) : null;
    if (badHost) return refuse(res, badHost);
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (path !== METRICS_LISTEN_PATH) return refuse(res, new RouteNotFoundError(`the metrics are at ${METRICS_LISTEN_PATH}; nothing else is served here`));
    if (req.method !== 'GET' && req.method !== 'HEAD') return refuse(res, new BadRequestError(`${METRICS_LISTEN_PATH} takes GET, not ${req.method}`));
    sendMetrics(metrics, req, res);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  const display = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return new Promise((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'the port is already in use' : err.code === 'EADDRNOTAVAIL' ? 'the host is not an address of this machine' : err.message;
      reject(new MetricsListenError(`metrics.listen: cannot listen on ${display}:${opts.port}: ${why}`, { cause: err }));
    };
    server.once('error', failed);
    server.listen(opts.port, opts.host, () => {
      server.off('error', failed);
      const port = (server.address() as { port: number }).port;
      let closing: Promise<void> | undefined;
      resolve({
        host: opts.host,
        port,
        url: `http://${display}:${port}${METRICS_LISTEN_PATH}`,
        close: () =>
          (closing ??= new Promise<void>((done) => {
            server.close(() => done());
            for (const s of sockets) s.destroy();
          })),
      });
    });
  });
}
