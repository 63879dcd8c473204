/**
 * `GET /_porthole/metrics`: the metrics in Prometheus' text format, behind
 * the admin API's guard (the Bearer token, the gateway's own Host, no
 * foreign Origin).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { checkAdmin, type GuardOptions } from '../admin/guard.js';
import { BadRequestError, InternalError, type PortholeError } from '../errors.js';
import { emit } from '../events.js';
import type { Metrics } from './metrics.js';

export const METRICS_PATH = '/_porthole/metrics';

/** Returns a handler that answers METRICS_PATH and returns false for every other path. */
export function metricsEndpoint(metrics: Metrics, guard: () => GuardOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const url = req.url ?? '/';
    // Asked of every request the gateway serves: the common answer costs one comparison.
    if (!url.startsWith(METRICS_PATH)) return false;
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (path !== METRICS_PATH) return false;
    const refused = checkAdmin(req, guard());
    if (refused) return refuse(res, refused), true;
    if (req.method !== 'GET' && req.method !== 'HEAD') return refuse(res, new BadRequestError(`${METRICS_PATH} takes GET, not ${req.method}`)), true;
    sendMetrics(metrics, req, res);
    return true;
  };
}

/** Answers 200 with the metrics page (its head only for HEAD). */
export function sendMetrics(metrics: Metrics, req: IncomingMessage, res: ServerResponse): void {
  metrics.text().then(
    (text) => {
      res.writeHead(200, { 'Content-Type': metrics.contentType, 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : text);
    },
    (err: Error) => {
      // A collect callback threw (a bug): the scrape fails loudly rather than showing partial figures.
      const e = new InternalError(`metrics: ${err.message}`, { cause: err });
      emit('error', { code: e.code, message: e.message });
      refuse(res, e);
    },
  );
}

/** The error as the admin API answers it: JSON with the code, and `X-Porthole-Error`. */
export function refuse(res: ServerResponse, err: PortholeError): void {
  const body = JSON.stringify({ ok: false, error: { code: err.code, status: err.status, message: err.message } });
  res.writeHead(err.status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
    'X-Porthole-Error': err.code,
    ...(err.status === 401 ? { 'WWW-Authenticate': 'Bearer realm="porthole"' } : {}),
  });
  res.end(body);
}
