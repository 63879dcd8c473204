/**
 * Who may call the admin API: a request with the token, under the gateway's
 * own Host (a DNS-rebinding page arrives with the attacker's host name), and
 * with no foreign Origin (a cross-site form or fetch).
 */
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { ForbiddenError, UnauthorizedError, type PortholeError } from '../errors.js';
import { sameToken } from './token.js';

export interface GuardOptions {
  token: string;
  localNoAuth: boolean;
  /** Extra host names the admin API answers under. */
  hosts: readonly string[];
}

export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

function hostName(hostHeader: string): string {
  const h = hostHeader.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']'));
  const colon = h.lastIndexOf(':');
  return colon === -1 ? h : h.slice(0, colon);
}

/** Returns the refusal, or null when the request may proceed. */
export function checkAdmin(req: IncomingMessage, opts: GuardOptions): PortholeError | null {
  const host = req.headers.host;
  if (!host) return new ForbiddenError('admin API: a Host header is required');
  const name = hostName(host);
  if (name !== 'localhost' && !isIP(name) && !opts.hosts.includes(name)) {
    return new ForbiddenError(`admin API: Host ${JSON.stringify(host)} is not this gateway's address (add it to admin.hosts if it is)`);
  }
  const origin = req.headers.origin;
  if (origin !== undefined) {
    let originHost = '';
    try {
      originHost = new URL(origin).host.toLowerCase();
    } catch {
      /* refused below */
    }
    if (originHost !== host.toLowerCase()) return new ForbiddenError(`admin API: cross-origin request from ${origin} refused`);
  }
  const auth = req.headers.authorization;
  if (auth !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m && sameToken(m[1], opts.token)) return null;
    return new UnauthorizedError('admin API: the token is wrong (it is in the data directory\'s "private/token" file)');
  }
  if (opts.localNoAuth && isLoopback(req.socket.remoteAddress)) return null;
  return new UnauthorizedError('admin API: send "Authorization: Bearer <token>" (the token is in the data directory\'s "private/token" file, or PORTHOLE_TOKEN)');
}
