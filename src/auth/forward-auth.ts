/**
 * `forward_auth`: before a request or upgrade goes to its app, the gateway
 * asks an external service (Authelia, oauth2-proxy, Authentik…) with the
 * convention of Traefik's ForwardAuth, Caddy's forward_auth and nginx's
 * auth_request: a GET to the service's URL carrying the client's cookies and
 * Authorization, and the original request in `X-Forwarded-Method`,
 * `-Proto`, `-Host`, `-Uri` and `-For`. A 2xx lets the request through (with
 * the configured response headers copied onto it); any other answer is the
 * client's, as it is.
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { AuthConfig } from '../config/auth-schema.js';
import { AuthUnavailableError } from '../errors.js';
import { withoutAuthCookie } from './user-sessions.js';

/** The body of a refusal relayed to the client, at most (a login portal's page is small). */
const MAX_BODY = 64 * 1024;
/** Headers of a refusal the client gets (what a login portal needs: its redirect, its cookies, the challenge). */
const RELAYED = new Set(['location', 'set-cookie', 'content-type', 'www-authenticate', 'cache-control', 'retry-after']);
/** Client headers the auth service gets. */
const SENT = ['cookie', 'authorization', 'accept', 'user-agent', 'accept-language'];

export type ForwardAuthConfig = Extract<AuthConfig, { mode: 'forward_auth' }>;

export type ForwardAuthAnswer =
  | { ok: true; headers: [string, string][] }
  | { ok: false; status: number; headers: [string, string][]; body: Buffer };

export function askAuthService(cfg: ForwardAuthConfig, req: IncomingMessage, ctx: { proto: string; host: string; remote: string }): Promise<ForwardAuthAnswer> {
  const url = new URL(cfg.url);
  const headers: Record<string, string | string[]> = {
    'X-Forwarded-Method': req.method ?? 'GET',
    'X-Forwarded-Proto': ctx.proto,
    'X-Forwarded-Host': ctx.host,
    'X-Forwarded-Uri': req.url ?? '/',
    'X-Forwarded-For': ctx.remote,
  };
  for (const name of SENT) {
    // The gateway's own session cookie is no business of the service's (which may be another party's).
    const v = name === 'cookie' && typeof req.headers.cookie === 'string' ? withoutAuthCookie(req.headers.cookie) : req.headers[name];
    if (v !== undefined) headers[name] = v;
  }
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((ok, fail) => {
    const r = client.request(url, { method: 'GET', headers, agent: false, timeout: cfg.timeout }, (res) => {
      const status = res.statusCode ?? 502;
      if (status >= 200 && status < 300) {
        res.resume();
        const copied: [string, string][] = [];
        for (const name of cfg.response_headers) {
          const v = res.headers[name.toLowerCase()];
          if (v !== undefined) copied.push([name, Array.isArray(v) ? v.join(', ') : v]);
        }
        return ok({ ok: true, headers: copied });
      }
      const relayed: [string, string][] = [];
      for (let i = 0; i < res.rawHeaders.length; i += 2) if (RELAYED.has(res.rawHeaders[i].toLowerCase())) relayed.push([res.rawHeaders[i], res.rawHeaders[i + 1]]);
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= MAX_BODY) chunks.push(c);
        else res.destroy();
      });
      res.on('close', () => ok({ ok: false, status, headers: relayed, body: Buffer.concat(chunks) }));
    });
    r.on('timeout', () => r.destroy(new AuthUnavailableError(`forward_auth: ${url.origin} did not answer within ${cfg.timeout} ms`)));
    r.on('error', (err) => fail(err instanceof AuthUnavailableError ? err : new AuthUnavailableError(`forward_auth: ${url.origin} cannot be asked (${(err as NodeJS.ErrnoException).code ?? err.message})`, { cause: err })));
    r.end();
  });
}
