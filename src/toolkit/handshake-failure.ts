/**
 * Explains a WebSocket handshake that did not end in `101 Switching Protocols`:
 * the HTTP status, headers and the start of the body the server (or a proxy on
 * the way) sent instead, or the socket/TLS error, each with a hint. This is
 * what people debugging a proxy chain need and what a browser never shows them.
 */
import type { IncomingMessage } from 'node:http';
import { printableBody } from './payload.js';

/** How much of a refusal's body is shown. */
export const BODY_PREVIEW_BYTES = 500;
/** A refusal whose body keeps streaming is cut after this long. */
const BODY_READ_MS = 2000;

/**
 * Reads up to `BODY_PREVIEW_BYTES` of `res` (or what arrives in 2 s) and returns
 * the lines to print: status line, every header as sent, the body preview and a hint.
 */
export async function describeUnexpectedResponse(res: IncomingMessage, followRedirects: boolean): Promise<string[]> {
  const body = await readPreview(res);
  const lines = [`handshake failed: the server answered HTTP/${res.httpVersion} ${res.statusCode} ${res.statusMessage ?? ''}`.trimEnd()];
  for (let i = 0; i < res.rawHeaders.length; i += 2) lines.push(`  ${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`);
  if (body.data.length) {
    lines.push(`  body${body.truncated ? ` (first ${BODY_PREVIEW_BYTES} bytes)` : ''}:`);
    for (const line of printableBody(body.data).replace(/\n$/, '').split('\n')) lines.push(`    ${line}`);
  } else {
    lines.push('  (no body)');
  }
  const hint = statusHint(res.statusCode ?? 0, res.headers.location, followRedirects);
  if (hint) lines.push(`hint: ${hint}`);
  return lines;
}

function readPreview(res: IncomingMessage): Promise<{ data: Buffer; truncated: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let truncated = false;
    const done = () => {
      clearTimeout(timer);
      res.removeListener('data', onData);
      resolve({ data: Buffer.concat(chunks).subarray(0, BODY_PREVIEW_BYTES), truncated });
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size > BODY_PREVIEW_BYTES) {
        truncated = true;
        done();
      }
    };
    const timer = setTimeout(() => {
      truncated = !res.complete;
      done();
    }, BODY_READ_MS);
    res.on('data', onData);
    res.once('end', done);
    res.once('close', done);
    res.once('error', done);
  });
}

function statusHint(status: number, location: string | undefined, followRedirects: boolean): string | undefined {
  if (status >= 300 && status < 400 && location) {
    return followRedirects
      ? `the redirect to ${location} could not be followed`
      : `the server redirects to ${location}; add -L to follow redirects`;
  }
  if (status === 200) return 'a plain HTTP answer: this path is not a WebSocket endpoint, or a proxy on the way dropped the Upgrade and Connection headers';
  if (status === 400) return 'the server or a proxy refused the handshake request; a proxy that drops "Connection: upgrade" often causes this';
  if (status === 401) return 'authentication required: try --auth user:pass or -H "Authorization: …"';
  if (status === 403) return 'refused: servers often check Origin (try --origin), a token or a cookie (-H "Cookie: …")';
  if (status === 404) return 'nothing at this path: check the path, and whether a proxy strips or adds a prefix';
  if (status === 426) return 'the server wants another protocol version or TLS (wss://)';
  if (status === 502 || status === 504) return 'a proxy could not reach the WebSocket server behind it';
  if (status === 503) return 'the server (or the app behind a proxy) is unavailable right now';
  return undefined;
}

const TLS_VERIFY_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** Lines explaining why a connection failed before the handshake completed. */
export function describeConnectError(err: Error & { code?: string }, url: string): string[] {
  const code = err.code ? ` (${err.code})` : '';
  const lines = [`connection to ${url} failed: ${err.message}${code}`];
  let hint: string | undefined;
  if (err.code === 'ECONNREFUSED') hint = 'nothing listens on that host and port';
  else if (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') hint = 'the host name does not resolve';
  else if (err.code === 'ECONNRESET' || err.message === 'socket hang up')
    hint = 'the server or a proxy closed the connection before answering; is it TLS (wss://) or not WebSocket at all?';
  else if (err.code && TLS_VERIFY_CODES.has(err.code))
    hint = 'the server certificate is not trusted: pass its CA with --ca FILE, or skip verification with --insecure';
  else if (err.code?.startsWith('ERR_SSL') || /wrong version number|packet length too long/i.test(err.message))
    hint = 'TLS failed: is the server speaking plain ws:// rather than wss://?';
  else if (/no subprotocol|invalid subprotocol/i.test(err.message)) hint = 'the server selected none of the subprotocols offered with -s';
  else if (/Sec-WebSocket-Extensions|extension/i.test(err.message)) hint = 'the server answered an extension negotiation it was not offered';
  else if (/timed out/i.test(err.message)) hint = 'no answer to the handshake: raise --connect-timeout, or check for a proxy that buffers the request';
  else if (/Maximum redirects/i.test(err.message)) hint = 'more than 5 redirects: a redirect loop?';
  if (hint) lines.push(`hint: ${hint}`);
  return lines;
}
