/**
 * Header policy: what crosses the gateway, what is added, what is rewritten.
 * Works on raw header lists (`[name, value, name, value, …]`) so that case,
 * order and repeated headers (several `Set-Cookie`) survive untouched.
 */
import type { IncomingMessage } from 'node:http';
import type { Match, Route } from './router.js';

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

const FORWARDED = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-prefix', 'x-forwarded-port', 'forwarded', 'x-real-ip']);

/** Lower-cased names listed in a Connection header, which are hop-by-hop too. */
function connectionTokens(raw: readonly string[]): Set<string> | null {
  let out: Set<string> | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === 10 && raw[i].toLowerCase() === 'connection') {
      for (const t of raw[i + 1].split(',')) {
        const name = t.trim().toLowerCase();
        if (name) (out ??= new Set()).add(name);
      }
    }
  }
  return out;
}

export interface ForwardContext {
  match: Match;
  /** Scheme the client used to reach the gateway. */
  proto: 'http' | 'https';
  trustForwarded: boolean;
  /** True for a WebSocket upgrade: Upgrade/Connection are put back. */
  upgrade: boolean;
}

/**
 * The header list sent upstream: the client's end-to-end headers untouched,
 * hop-by-hop ones removed, Host/Origin set per the app's policy, the
 * X-Forwarded-* family and `Forwarded` added, then the app's `set_headers`.
 */
export function upstreamRequestHeaders(req: IncomingMessage, ctx: ForwardContext): string[] {
  const raw = req.rawHeaders;
  const { route, target, prefix } = ctx.match;
  const dropNamed = connectionTokens(raw);
  const out: string[] = [];
  let clientHost = '';
  let origin: string | undefined;
  let priorFor: string | undefined;
  let priorProto: string | undefined;
  let priorHost: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    const lower = name.toLowerCase();
    const value = raw[i + 1];
    if (lower === 'host') {
      clientHost = value;
      continue;
    }
    if (HOP_BY_HOP.has(lower) || (dropNamed !== null && dropNamed.has(lower))) continue;
    if (FORWARDED.has(lower)) {
      if (ctx.trustForwarded) {
        if (lower === 'x-forwarded-for') priorFor = priorFor ? `${priorFor}, ${value}` : value;
        else if (lower === 'x-forwarded-proto') priorProto = value;
        else if (lower === 'x-forwarded-host') priorHost = value;
        else out.push(name, value);
      }
      continue; // an untrusted client does not get to say who it is
    }
    if (lower === 'origin') {
      origin = value;
      continue;
    }
    if (route.setHeaderNames.has(lower)) continue;
    out.push(name, value);
  }

  const hostHeader = route.upstreamHost(clientHost, target);
  out.unshift('Host', hostHeader);
  if (origin !== undefined || (route.app.upstream_origin && route.app.upstream_origin !== 'keep' && route.app.upstream_origin !== 'upstream')) {
    const o = route.upstreamOrigin(origin, hostHeader, target);
    if (o !== undefined) out.push('Origin', o);
  }

  const remote = req.socket.remoteAddress ?? '';
  const proto = ctx.trustForwarded && priorProto ? priorProto : ctx.proto;
  const fwdHost = ctx.trustForwarded && priorHost ? priorHost : clientHost;
  out.push('X-Forwarded-For', priorFor ? `${priorFor}, ${remote}` : remote);
  out.push('X-Forwarded-Proto', proto);
  if (fwdHost) out.push('X-Forwarded-Host', fwdHost);
  if (prefix) out.push('X-Forwarded-Prefix', prefix);
  const forNode = remote.includes(':') ? `"[${remote}]"` : remote;
  out.push('Forwarded', `for=${forNode};proto=${proto}${fwdHost ? `;host="${fwdHost.replace(/["\\]/g, '')}"` : ''}`);
  if (ctx.upgrade) out.push('Connection', 'Upgrade', 'Upgrade', 'websocket');
  for (const [name, value] of route.setHeaders) out.push(name, value);
  return out;
}

/**
 * The header list sent back to the client: hop-by-hop headers removed and,
 * when the prefix is stripped, `Location` and cookie paths put back under it.
 */
export function downstreamResponseHeaders(raw: readonly string[], match: Match): string[] {
  const dropNamed = connectionTokens(raw);
  const out: string[] = [];
  const { rewrite, route } = match;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || (dropNamed !== null && dropNamed.has(lower))) continue;
    let value = raw[i + 1];
    if (rewrite) {
      if (lower === 'location' || lower === 'content-location') value = rewriteLocation(value, route);
      else if (lower === 'set-cookie') value = rewriteCookiePath(value, route.prefix);
    }
    out.push(name, value);
  }
  return out;
}

/** `/x` → `/{app}/x`; an absolute URL pointing at the upstream itself → the same path under the prefix. */
export function rewriteLocation(value: string, route: Route): string {
  if (value.startsWith('/') && !value.startsWith('//')) return underPrefix(value, route.prefix);
  for (const base of route.upstreamOrigins) {
    if (value.startsWith(base) && (value.length === base.length || value[base.length] === '/')) {
      return underPrefix(value.slice(base.length) || '/', route.prefix);
    }
  }
  return value;
}

function underPrefix(path: string, prefix: string): string {
  if (path === prefix || path.startsWith(`${prefix}/`)) return path; // the app already knows its prefix
  return prefix + path;
}

/** `Path=/x` → `Path=/{app}/x` in one Set-Cookie value; other attributes untouched. */
export function rewriteCookiePath(value: string, prefix: string): string {
  return value.replace(/(;\s*path=)([^;]*)/i, (_m, head: string, p: string) => {
    const path = p.trim();
    if (!path.startsWith('/')) return `${head}${p}`;
    return `${head}${underPrefix(path === '/' ? '/' : path, prefix)}`;
  });
}
