/**
 * Header policy: what crosses the gateway, what is added, what is rewritten.
 * Works on raw header lists (`[name, value, name, value, …]`) so that case,
 * order and repeated headers (several `Set-Cookie`) survive untouched.
 */
import type { IncomingMessage } from 'node:http';
import { isH2Request } from './h2-request.js';
import { MalformedRequestError } from '../errors.js';
import type { Match, Route } from './router.js';
import { admissionOf } from '../auth/admission.js';
import { isAuthCookie, withoutAuthCookie } from '../auth/user-sessions.js';
import { encodePeerUser, isPeerHeader, PEER_HEADER, PEER_USER_HEADER } from './peer.js';

/** Hop-by-hop headers (RFC 9110 §7.6.1): meaningful for one connection only, never forwarded. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);

/**
 * Headers by which a proxy says who the client is (besides the whole `X-Forwarded-*` family).
 * A client may not send them unless `trust_forwarded` says a proxy of ours stands in front.
 */
const FORWARDING = new Set([
  'forwarded',
  'forwarded-for',
  'x-forwarded',
  'x-real-ip',
  'x-client-ip',
  'client-ip',
  'true-client-ip',
  'cf-connecting-ip',
  'fastly-client-ip',
  'x-cluster-client-ip',
  'x-original-forwarded-for',
  'x-originating-ip',
  'x-remote-ip',
  'x-remote-addr',
  'x-proxyuser-ip',
]);

/**
 * Whether a lower-cased header name is a forwarding header once `_` is read as `-`:
 * Werkzeug and CGI-style stacks fold `X_Forwarded_For` into the same `HTTP_X_FORWARDED_FOR`
 * as the gateway's own `X-Forwarded-For` (issue 8, item 7).
 */
function isForwarding(lower: string): boolean {
  const name = lower.includes('_') ? lower.replaceAll('_', '-') : lower;
  return name.startsWith('x-forwarded-') || FORWARDING.has(name);
}

/**
 * Names a `Connection` header may not remove (issue 8): the message's framing, the routing
 * and handshake headers the gateway itself acts on. `Connection: Content-Length` on a GET
 * with a body used to strip the length and forward the body unframed, so the upstream read
 * it as a second request the gateway never routed.
 */
const NEVER_CONNECTION_SCOPED = new Set([
  'content-length',
  'transfer-encoding',
  'host',
  'origin',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-protocol',
  'sec-websocket-extensions',
]);

/** What a quoted `Forwarded` host cannot contain; dropped from it. */
const QUOTE_OR_BACKSLASH = /["\\]/g;

/** Names `set_headers` cannot add on top: Host is set above, framing belongs to the gateway. */
const NEVER_SET = new Set(['host', 'content-length', 'transfer-encoding']);

/**
 * Lower-cased names listed in a Connection header, which are hop-by-hop too. Those in
 * HOP_BY_HOP are left out: every caller tests HOP_BY_HOP first, so the usual `Connection:
 * Upgrade` or `keep-alive` needs no set at all.
 */
function connectionTokens(raw: readonly string[]): Set<string> | null {
  let out: Set<string> | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === 10 && raw[i].toLowerCase() === 'connection') {
      // Each comma-separated token in turn, as split(',') would give them, without the list.
      const value = raw[i + 1];
      for (let from = 0; ; ) {
        const comma = value.indexOf(',', from);
        const name = (comma < 0 ? value.slice(from) : value.slice(from, comma)).trim().toLowerCase();
        if (name && !HOP_BY_HOP.has(name) && !NEVER_CONNECTION_SCOPED.has(name)) (out ??= new Set()).add(name);
        if (comma < 0) break;
        from = comma + 1;
      }
    }
  }
  return out;
}

/** How the request body is delimited on the upstream hop. */
export type Framing = { kind: 'none' } | { kind: 'length'; length: string } | { kind: 'chunked' };

/**
 * The body framing of a client request, decided once by the gateway and written out by
 * the gateway (never copied from the client's bytes), or the reason it cannot be passed on.
 * Node's parser has already refused duplicate or malformed Content-Length values; what is
 * left ambiguous is refused here, as nginx and HAProxy do (RFC 9112 §6.1, §6.3): a
 * Transfer-Encoding other than exactly `chunked`, or one beside a Content-Length.
 */
export function requestFraming(req: IncomingMessage): Framing | MalformedRequestError {
  if (isH2Request(req)) return h2Framing(req);
  const raw = req.rawHeaders;
  let te: string[] | null = null;
  let cl: string[] | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i].toLowerCase();
    if (lower === 'transfer-encoding') (te ??= []).push(raw[i + 1]);
    else if (lower === 'content-length') (cl ??= []).push(raw[i + 1]);
  }
  if (te !== null) {
    if (cl !== null) return new MalformedRequestError('the request has both Transfer-Encoding and Content-Length (RFC 9112 §6.1)');
    // RFC 9112 §6.1: HTTP/1.0 has no chunked coding; such framing is to be treated as faulty.
    if (req.httpVersionMajor === 1 && req.httpVersionMinor === 0) return new MalformedRequestError('an HTTP/1.0 request cannot use Transfer-Encoding (RFC 9112 §6.1)');
    if (te.length !== 1 || te[0].trim().toLowerCase() !== 'chunked') {
      return new MalformedRequestError(`Transfer-Encoding ${JSON.stringify(te.join(', '))} is not supported; only "chunked" is`);
    }
    return { kind: 'chunked' };
  }
  if (cl === null) return { kind: 'none' };
  const values = new Set(cl.flatMap((v) => v.split(',')).map((v) => v.trim()));
  const [only] = values;
  if (values.size !== 1 || !/^[0-9]{1,15}$/.test(only)) return new MalformedRequestError(`Content-Length ${JSON.stringify(cl.join(', '))} is not one decimal length`);
  const length = String(Number(only));
  return length === '0' ? { kind: 'none' } : { kind: 'length', length };
}

/**
 * HTTP/2 has no Transfer-Encoding: DATA frames carry the body and the stream's end ends it
 * (RFC 9113 §8.1); nghttp2 has checked a Content-Length against them. A body without a length
 * goes upstream chunked; a stream that ended with its headers has none.
 */
function h2Framing(req: IncomingMessage & { stream: { endAfterHeaders: boolean } }): Framing | MalformedRequestError {
  const cl = req.headers['content-length'];
  if (cl !== undefined) {
    if (!/^[0-9]{1,15}$/.test(cl.trim())) return new MalformedRequestError(`Content-Length ${JSON.stringify(cl)} is not one decimal length`);
    const length = String(Number(cl.trim()));
    return length === '0' ? { kind: 'none' } : { kind: 'length', length };
  }
  return req.stream.endAfterHeaders ? { kind: 'none' } : { kind: 'chunked' };
}

/**
 * A request line without a version (HTTP/0.9 as Node's parser reads it, headers and all) or
 * with a version other than 1.0 and 1.1: the gateway would speak HTTP/1.1 on for a message
 * the client framed by other rules.
 */
export function unsupportedVersion(req: IncomingMessage): MalformedRequestError | null {
  if (req.httpVersionMajor === 1 && (req.httpVersionMinor === 1 || req.httpVersionMinor === 0)) return null;
  // Over HTTP/2 (h2-request.ts): Node's HTTP/2 server parsed it, the gateway speaks HTTP/1.1 on.
  if (isH2Request(req)) return null;
  return new MalformedRequestError(`HTTP/${req.httpVersion} requests are not passed on; use HTTP/1.1`);
}

/** Two Host headers (RFC 9112 §3.2): Node keeps the first in `headers.host`, apps may read the last. */
export function duplicateHost(req: IncomingMessage): MalformedRequestError | null {
  const raw = req.rawHeaders;
  let seen = false;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === 4 && raw[i].toLowerCase() === 'host') {
      if (seen) return new MalformedRequestError('the request has more than one Host header (RFC 9112 §3.2)');
      seen = true;
    }
  }
  return null;
}

export interface ForwardContext {
  match: Match;
  /** Scheme the client used to reach the gateway. */
  proto: 'http' | 'https';
  trustForwarded: boolean;
  /** True for a WebSocket upgrade: Upgrade/Connection are put back. */
  upgrade: boolean;
  /** The body framing from requestFraming(); null for upgrades, which carry no body. */
  framing: Framing | null;
}

/**
 * The header list sent upstream: the client's end-to-end headers untouched,
 * hop-by-hop ones removed, Host/Origin set per the app's policy, the
 * X-Forwarded-* family and `Forwarded` added, then the app's `set_headers`.
 */
export function upstreamRequestHeaders(req: IncomingMessage, ctx: ForwardContext): string[] {
  const raw = req.rawHeaders;
  const { route, target, prefix } = ctx.match;
  const own = route.setHeaderNames;
  const dropNamed = connectionTokens(raw);
  const out: string[] = [];
  let clientHost = '';
  let origin: string | undefined;
  let priorFor: string | undefined;
  let priorProto: string | undefined;
  let priorHost: string | undefined;
  // What access control decided (src/auth/): undefined for an app with `auth: none`.
  const admission = admissionOf(req);
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    const lower = name.toLowerCase();
    let value = raw[i + 1];
    // Who the user is, the gateway says: a client's (or a proxy's) X-Forwarded-User never passes.
    if (lower === 'x-forwarded-user' || lower === 'x_forwarded_user') continue;
    // The cluster secret and the identity between nodes are the gateway's (peer.ts): never an app's, never a client's.
    if (isPeerHeader(lower)) continue;
    if (admission) {
      // `Remote_User` too: CGI-style stacks read it as the same HTTP_REMOTE_USER as `Remote-User`.
      if (admission.replace.size > 0 && admission.replace.has(lower.includes('_') ? lower.replaceAll('_', '-') : lower)) continue;
      if (lower === 'authorization' && admission.stripAuthorization) continue;
      if (lower === 'cookie' && admission.stripCookie) {
        const kept = withoutAuthCookie(value);
        if (kept === undefined) continue;
        value = kept;
      }
    }
    if (lower === 'host') {
      clientHost = value;
      continue;
    }
    if (lower === 'content-length') continue; // written out below from the framing
    if (HOP_BY_HOP.has(lower) || (dropNamed !== null && dropNamed.has(lower))) continue;
    if (isForwarding(lower)) {
      // Even a trusted proxy vouches only for the spellings it sets: an underscore spelling is
      // the client's, passed through, and is dropped whatever trust_forwarded says.
      if (ctx.trustForwarded && !lower.includes('_')) {
        if (lower === 'x-forwarded-for') priorFor = priorFor ? `${priorFor}, ${value}` : value;
        else if (lower === 'x-forwarded-proto') priorProto = value;
        else if (lower === 'x-forwarded-host') priorHost = value;
        else if (!own.has(lower)) out.push(name, value);
      }
      continue; // an untrusted client does not get to say who it is
    }
    if (lower === 'origin') {
      origin = value;
      continue;
    }
    if (own.has(lower)) continue;
    out.push(name, value);
  }

  // `set_headers` override what the gateway adds as well (Host, Origin, the X-Forwarded-*
  // family): `X-Forwarded-Proto: https` behind a TLS terminator must be the only value the
  // app sees, not a second one after the gateway's `http`.
  const add = (name: string, value: string) => {
    // No set_headers (the usual app): nothing to lower-case and look up.
    if (own.size === 0 || !own.has(name.toLowerCase())) out.push(name, value);
  };
  const hostHeader = own.has('host') ? route.setHeaders.find(([n]) => n.toLowerCase() === 'host')![1] : route.upstreamHost(clientHost, target);
  out.unshift('Host', hostHeader);
  if (origin !== undefined || (route.app.upstream_origin && route.app.upstream_origin !== 'keep' && route.app.upstream_origin !== 'upstream')) {
    const o = route.upstreamOrigin(origin, hostHeader, target);
    if (o !== undefined) add('Origin', o);
  }

  const remote = req.socket.remoteAddress ?? '';
  const proto = ctx.trustForwarded && priorProto ? priorProto : ctx.proto;
  const fwdHost = ctx.trustForwarded && priorHost ? priorHost : clientHost;
  add('X-Forwarded-For', priorFor ? `${priorFor}, ${remote}` : remote);
  add('X-Forwarded-Proto', proto);
  if (fwdHost) add('X-Forwarded-Host', fwdHost);
  const peer = route.peer;
  // To another node: it adds the prefix (and the app's user header) itself, as if the client had come to it.
  if (prefix && !peer) add('X-Forwarded-Prefix', prefix);
  const forNode = remote.includes(':') ? `"[${remote}]"` : remote;
  add('Forwarded', `for=${forNode};proto=${proto}${fwdHost ? `;host="${fwdHost.replace(QUOTE_OR_BACKSLASH, '')}"` : ''}`);
  if (peer) {
    out.push(PEER_HEADER, peer.secret);
    if (admission?.user) out.push(PEER_USER_HEADER, encodePeerUser(admission.user));
  } else if (admission?.user) add('X-Forwarded-User', admission.user);
  if (admission) for (const [name, value] of admission.headers) add(name, value);
  if (ctx.upgrade) out.push('Connection', 'Upgrade', 'Upgrade', 'websocket');
  // The gateway frames the body itself. Node's server has removed the client's chunked
  // framing, and Node's client sends a GET or DELETE body unframed unless told: the upstream
  // would read that body as the next request on the kept-alive connection (request smuggling).
  const framing = ctx.upgrade ? null : ctx.framing;
  if (framing?.kind === 'chunked') out.push('Transfer-Encoding', 'chunked');
  else if (framing?.kind === 'length') out.push('Content-Length', framing.length);
  for (const [name, value] of route.setHeaders) if (!NEVER_SET.has(name.toLowerCase())) out.push(name, value);
  return out;
}

/**
 * The header list sent back to the client: hop-by-hop headers removed and,
 * when the prefix is stripped, `Location` and cookie paths put back under it.
 */
export function downstreamResponseHeaders(raw: readonly string[], match: Match): string[] {
  const dropNamed = connectionTokens(raw);
  // From another node: that node has applied the app's prefix policy already.
  const prefixed = match.prefix !== '' && match.route.peer === null;
  const dropOpenerPolicy = prefixed && sharesOpenerGroup(raw);
  const out: string[] = [];
  const { rewrite, route } = match;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || (dropNamed !== null && dropNamed.has(lower))) continue;
    let value = raw[i + 1];
    // The gateway's session cookie is the gateway's: an app cannot set (fix) or clear it.
    if (lower === 'set-cookie' && isAuthCookie(value)) continue;
    if (rewrite) {
      if (lower === 'location' || lower === 'content-location') value = rewriteLocation(value, route);
      else if (lower === 'set-cookie') value = rewriteCookiePath(value, route.prefix, route.http.basePath);
    }
    if (lower === 'service-worker-allowed' && prefixed) {
      // A service worker scoped beyond the app's prefix would see every other app's pages on this
      // origin, and the dashboard's: only a scope under the prefix passes.
      const scope = rewrite && value.startsWith('/') ? underPrefix(outOfBase(value, route.http.basePath), route.prefix) : value;
      if (!isUnder(scope, route.prefix)) continue;
      value = scope;
    }
    if (dropOpenerPolicy && lower === 'cross-origin-opener-policy') continue;
    out.push(name, value);
  }
  return out;
}

/**
 * True when a response would open its page with `Cross-Origin-Opener-Policy: same-origin`
 * alone, the gateway's own pages' policy. A prefixed app shares the gateway's origin, and
 * browsers keep two same-origin pages of equal policy in one browsing context group: the
 * app's page could `window.open('/_porthole/')` and script the dashboard it opened (read its
 * CSRF secret). Such a header is dropped; with `Cross-Origin-Embedder-Policy: require-corp`
 * beside it (an app that needs cross-origin isolation) the page's policy is
 * `same-origin-plus-COEP`, which differs, and it passes. `credentialless` is not enough:
 * Safari does not know it and would read the page's policy as plain `same-origin`.
 */
function sharesOpenerGroup(raw: readonly string[]): boolean {
  let opener = false;
  const embedder: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    // The two names are 26 and 28 letters long: the other headers of a response cost a length test.
    const n = raw[i].length;
    if (n !== 26 && n !== 28) continue;
    const lower = raw[i].toLowerCase();
    if (lower !== 'cross-origin-opener-policy' && lower !== 'cross-origin-embedder-policy') continue;
    // A structured-field token, parameters after `;` (`same-origin; report-to="x"`).
    const token = raw[i + 1].split(';')[0].trim();
    if (lower === 'cross-origin-opener-policy') {
      if (token.toLowerCase() === 'same-origin') opener = true;
    } else embedder.push(token);
  }
  // Two COEP fields are read as one invalid list (no policy): only a single require-corp counts.
  return opener && !(embedder.length === 1 && embedder[0] === 'require-corp');
}

/** `/x` → `/{app}/x`; an absolute URL pointing at the upstream itself → the same path under the prefix. */
export function rewriteLocation(value: string, route: Route): string {
  const base = route.http.basePath;
  if (value.startsWith('/') && !value.startsWith('//')) return underPrefix(outOfBase(value, base), route.prefix);
  for (const origin of route.upstreamOrigins) {
    if (value.startsWith(origin) && (value.length === origin.length || value[origin.length] === '/')) {
      return underPrefix(outOfBase(value.slice(origin.length) || '/', base), route.prefix);
    }
  }
  return value;
}

/**
 * `/base/x` → `/x` for an upstream mounted at `/base` (`url: http://host/base`): the inverse
 * of the base path the router prepends, so `/{app}/x` maps back to `/base/x` and not to
 * `/base/base/x`. The base itself maps to '' (the bare prefix).
 */
function outOfBase(path: string, base: string): string {
  if (!base || !path.startsWith(base)) return path;
  const rest = path.slice(base.length);
  if (rest === '' || rest[0] === '/') return rest;
  if (rest[0] === '?' || rest[0] === '#') return `/${rest}`;
  return path; // `/basement`: not under the base
}

/** True when a path (or same-origin URL's path) is the prefix or below it, after resolving dot segments. */
function isUnder(pathOrUrl: string, prefix: string): boolean {
  let path: string;
  try {
    path = new URL(pathOrUrl, 'http://x').pathname;
  } catch {
    return false;
  }
  return !/^[a-z][a-z0-9+.-]*:/i.test(pathOrUrl) && !pathOrUrl.startsWith('//') && (path === prefix || path === `${prefix}/` || path.startsWith(`${prefix}/`));
}

function underPrefix(path: string, prefix: string): string {
  if (path === prefix || path.startsWith(`${prefix}/`)) return path; // the app already knows its prefix
  return prefix + path;
}

/** `Path=/x` → `Path=/{app}/x` in one Set-Cookie value; other attributes untouched. */
export function rewriteCookiePath(value: string, prefix: string, basePath = ''): string {
  return value.replace(/(;\s*path=)([^;]*)/i, (_m, head: string, p: string) => {
    const path = p.trim();
    if (!path.startsWith('/')) return `${head}${p}`;
    return `${head}${underPrefix(outOfBase(path, basePath), prefix)}`;
  });
}
