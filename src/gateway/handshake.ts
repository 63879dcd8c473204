/**
 * The edge check of a WebSocket opening handshake (RFC 6455 §4.2.1) and the
 * per-app policy (allowed origins, upgrade paths), each failure with its own
 * error so the client learns what to fix.
 */
import type { IncomingMessage } from 'node:http';
import { BadHandshakeError, OriginRefusedError, PortholeError, UnsupportedVersionError, WsPathRefusedError } from '../errors.js';
import type { Match } from './router.js';

/**
 * Whether a comma-separated header (Connection, Upgrade) lists `token` (lower-case ASCII), in any
 * case, with String#trim's whitespace around it. The usual value is one token: no list is built.
 */
export function hasToken(header: string | undefined, token: string): boolean {
  if (header === undefined) return false;
  if (header.indexOf(',') < 0) return isToken(header.trim(), token);
  return header.split(',').some((t) => isToken(t.trim(), token));
}

// toLowerCase() keeps the length of anything that can become an ASCII token (U+0130, which
// grows, lowers to a non-ASCII pair): a different length is a different token, not lowered.
const isToken = (t: string, token: string) => t.length === token.length && t.toLowerCase() === token;

/** Returns the failure, or null for a valid handshake. */
export function checkHandshake(req: IncomingMessage): PortholeError | null {
  if (req.method !== 'GET') return new BadHandshakeError(`a WebSocket handshake must be a GET request, not ${req.method}`);
  if (req.httpVersionMajor < 1 || (req.httpVersionMajor === 1 && req.httpVersionMinor < 1)) {
    return new BadHandshakeError(`a WebSocket handshake needs HTTP/1.1, not HTTP/${req.httpVersion}`);
  }
  // Node hands everything after the head to the upgrade as it is; a body would reach the
  // upstream as WebSocket bytes, or be read as a request by one that declines the upgrade.
  const length = req.headers['content-length'];
  if (req.headers['transfer-encoding'] !== undefined || (length !== undefined && length.trim() !== '0')) {
    return new BadHandshakeError('a WebSocket handshake carries no body (Content-Length or Transfer-Encoding given)');
  }
  if (!hasToken(req.headers.upgrade, 'websocket')) return new BadHandshakeError(`only WebSocket upgrades are proxied (Upgrade: ${req.headers.upgrade ?? 'missing'})`);
  if (!hasToken(req.headers.connection, 'upgrade')) return new BadHandshakeError('the Connection header must contain "upgrade"');
  const key = req.headers['sec-websocket-key'];
  if (typeof key !== 'string' || !/^[A-Za-z0-9+/]{22}==$/.test(key.trim())) {
    return new BadHandshakeError(key === undefined ? 'Sec-WebSocket-Key is missing' : 'Sec-WebSocket-Key must be 16 bytes in base64');
  }
  const version = req.headers['sec-websocket-version'];
  if (version === undefined) return new UnsupportedVersionError('Sec-WebSocket-Version is missing; this server speaks version 13');
  if (version.trim() !== '13') return new UnsupportedVersionError(`WebSocket version ${version} is not supported; use 13`);
  return null;
}

/**
 * Same-origin by default: a page of another site must not open a WebSocket to
 * an app that trusts its cookies (cross-site WebSocket hijacking). A request
 * without Origin (a non-browser client) is allowed. Same origin means same
 * scheme, host and port (RFC 6454 §5): `https://host` is not `http://host`.
 * `proto` is the scheme the client reached us with (X-Forwarded-Proto when
 * trusted), `forwardedHost` the host it used when a trusted proxy says so.
 */
export function checkOrigin(req: IncomingMessage, match: Match, forwardedHost?: string, proto: string = 'http'): PortholeError | null {
  return checkOriginOf(req, match.route.app.name, match.route.allowedOrigins, forwardedHost, proto);
}

/** checkOrigin for any holder of an origin policy (an app's route, a standalone bridge): `allowed` as Route.allowedOrigins. */
export function checkOriginOf(req: IncomingMessage, app: string, allowed: ReadonlySet<string> | '*' | null, forwardedHost?: string, proto: string = 'http'): PortholeError | null {
  const origin = req.headers.origin;
  if (origin === undefined || allowed === '*') return null;
  let normalized: string;
  try {
    normalized = new URL(origin).origin;
  } catch {
    return new OriginRefusedError(`${app}: Origin ${JSON.stringify(origin)} is not a valid origin`, { app });
  }
  if (allowed === null) {
    const host = forwardedHost ?? req.headers.host ?? '';
    if (host && normalized === ownOrigin(proto, host)) return null;
    const behindTls = proto === 'http' && normalized.startsWith('https:') ? '; behind a TLS proxy, set trust_forwarded so its X-Forwarded-Proto is believed' : '';
    return new OriginRefusedError(`${app}: cross-origin WebSocket from ${origin} refused (add it to allowed_origins${behindTls})`, { app });
  }
  if (allowed.has(normalized)) return null;
  return new OriginRefusedError(`${app}: WebSocket from origin ${origin} is not in allowed_origins`, { app });
}

/** `proto://host` serialized as an Origin is (lower case, default port dropped), or '' when it is not a host. */
function ownOrigin(proto: string, host: string): string {
  // Only a host and a port: `127.0.0.1:80@evil.example` would parse as evil.example.
  if (!/^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/.test(host)) return '';
  try {
    return new URL(`${proto}://${host}`).origin;
  } catch {
    return '';
  }
}

export function checkWsPath(match: Match): PortholeError | null {
  const paths = match.route.wsPaths;
  if (!paths || paths.has(match.appPath)) return null;
  const app = match.route.app.name;
  return new WsPathRefusedError(`${app}: WebSocket path ${match.appPath} is not in ws_paths`, { app });
}

/** How the client asked for its WebSocket: an HTTP/2 extended CONNECT reaches the gateway as a request of version 2.0 (h2-websocket.ts). */
export function wsProtocol(req: IncomingMessage): 'h2' | 'http/1.1' {
  return req.httpVersionMajor === 2 ? 'h2' : 'http/1.1';
}
