/**
 * Plain requests over HTTP/2 (RFC 9113), made to look like the HTTP/1.1
 * requests the rest of the gateway forwards. Node's compatibility API
 * (`Http2ServerRequest`/`Http2ServerResponse`) is close to `IncomingMessage`/
 * `ServerResponse`; what differs, and is fixed here per request rather than
 * in every caller:
 *
 * - `rawHeaders` carries the pseudo-headers (`:method`, `:path`…) and no
 *   `Host`: they are dropped, and `Host` is made from `:authority`
 *   (RFC 9113 §8.3.1); `headers.host` is set likewise.
 * - Several `cookie` fields (HTTP/2 may split them) are joined with `; `
 *   into one before they reach an HTTP/1.1 app (RFC 9113 §8.2.3).
 * - Connection-specific headers are forbidden in HTTP/2 responses
 *   (RFC 9113 §8.2.2): Node throws on them, or warns and drops them. The
 *   gateway's own `Connection: close` (refusals, drain) and any that slip
 *   through are dropped quietly; a status message is not sent either
 *   (HTTP/2 has none, and Node warns once per process).
 */
import http2 from 'node:http2';

/** Names HTTP/2 forbids in a response (RFC 9113 §8.2.2; Node's list). */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings', 'te']);

/** True for a request that came over HTTP/2 (the compatibility API's request). */
export function isH2Request(req: unknown): req is http2.Http2ServerRequest {
  return req instanceof http2.Http2ServerRequest;
}

/**
 * The client's header list without pseudo-headers, `Host` first (from
 * `:authority`, else the client's own `host`), cookies joined.
 */
export function http1RawHeaders(raw: readonly string[]): { raw: string[]; host: string | undefined } {
  let authority: string | undefined;
  let host: string | undefined;
  const cookies: string[] = [];
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name === ':authority') authority = raw[i + 1];
    else if (name.startsWith(':')) continue;
    else if (name === 'host') host ??= raw[i + 1];
    else if (name === 'cookie') cookies.push(raw[i + 1]);
    else out.push(name, raw[i + 1]);
  }
  const chosen = authority ?? host;
  if (cookies.length > 0) out.push('cookie', cookies.join('; '));
  if (chosen !== undefined) out.unshift('host', chosen);
  return { raw: out, host: chosen };
}

/** Adapts a compatibility-API request and response in place (see the file's comment). */
export function adaptH2Request(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): void {
  const { raw, host } = http1RawHeaders(req.rawHeaders);
  Object.defineProperty(req, 'rawHeaders', { value: raw, configurable: true });
  if (host !== undefined) req.headers.host = host;

  const writeHead = res.writeHead as (status: number, headers?: unknown) => http2.Http2ServerResponse;
  const setHeader = res.setHeader;
  Object.defineProperty(res, 'setHeader', {
    configurable: true,
    value(name: string, value: number | string | readonly string[]) {
      if (CONNECTION_SPECIFIC.has(name.toLowerCase())) return res;
      return setHeader.call(res, name, value);
    },
  });
  Object.defineProperty(res, 'writeHead', {
    configurable: true,
    value(status: number, message?: unknown, headers?: unknown) {
      const given = typeof message === 'string' ? headers : message;
      return writeHead.call(res, status, withoutConnectionHeaders(given));
    },
  });
}

function withoutConnectionHeaders(headers: unknown): unknown {
  if (headers === undefined || headers === null) return undefined;
  if (Array.isArray(headers)) {
    const out: string[] = [];
    for (let i = 0; i < headers.length; i += 2) if (!CONNECTION_SPECIFIC.has(String(headers[i]).toLowerCase())) out.push(headers[i], headers[i + 1]);
    return out;
  }
  return Object.fromEntries(Object.entries(headers as Record<string, unknown>).filter(([k]) => !CONNECTION_SPECIFIC.has(k.toLowerCase())));
}
