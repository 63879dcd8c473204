/**
 * Who may call the admin API: a request with the token, under the gateway's
 * own Host (a DNS-rebinding page arrives with the attacker's host name), and
 * with no foreign Origin (a cross-site form or fetch).
 */
import type { IncomingMessage } from 'node:http';
import { BadHostError, CsrfError, ForbiddenError, UnauthorizedError, type PortholeError } from '../errors.js';
import { isLoopbackAddress, isLoopbackName, parseHostHeader, shortHost } from '../gateway/host-header.js';
import { isMachineAddress, NameSet } from '../gateway/host-policy.js';
import { Sessions, type Session } from './session.js';
import { sameToken } from './token.js';

export interface GuardOptions {
  token: string;
  localNoAuth: boolean;
  /** Extra host names the admin API answers under. */
  hosts: readonly string[];
  /** The dashboard's sessions: a session cookie with its CSRF header is accepted like the token. */
  sessions?: Sessions;
}

/** Who a call comes from: the token, a dashboard session, or (with `local_no_auth`) a loopback client. */
export interface Caller {
  via: 'token' | 'session' | 'local';
  session?: Session;
}

export const isLoopback = isLoopbackAddress;

/**
 * The admin API's own names: `localhost`, loopback and this machine's
 * addresses, and `admin.hosts`. Stricter than the apps' (no `*.localhost`,
 * no app host names: those are the apps' origins, and a page of an app must
 * not be same-origin with the admin API), read with the same strict parser.
 */
export function checkAdminHost(hostHeader: string | undefined, hosts: readonly string[]): PortholeError | null {
  if (!hostHeader) return new ForbiddenError('admin API: a Host header is required');
  const host = parseHostHeader(hostHeader);
  if (!host) return new BadHostError(`admin API: Host ${JSON.stringify(shortHost(hostHeader, 80))} is not host[:port]`);
  if (isLoopbackName(host, false) || (host.ip !== 0 && isMachineAddress(host.name)) || new NameSet(hosts).has(host.name)) return null;
  return new ForbiddenError(`admin API: Host ${JSON.stringify(shortHost(hostHeader, 80))} is not this gateway's address (add it to admin.hosts if it is)`);
}

/** Returns the refusal, or null when the request may proceed. */
export function checkAdmin(req: IncomingMessage, opts: GuardOptions): PortholeError | null {
  const who = authorize(req, opts);
  return 'via' in who ? null : who;
}

/** The caller, or the refusal. */
export function authorize(req: IncomingMessage, opts: GuardOptions): Caller | PortholeError {
  const badHost = checkAdminHost(req.headers.host, opts.hosts);
  if (badHost) return badHost;
  const host = req.headers.host ?? '';
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
    if (m && sameToken(m[1], opts.token)) return { via: 'token' };
    return new UnauthorizedError('admin API: the token is wrong (it is in the data directory\'s "private/token" file)');
  }
  const session = opts.sessions?.of(req);
  if (session) {
    if (Sessions.csrfMatches(req, session)) {
      opts.sessions!.touch(session);
      return { via: 'session', session };
    }
    return new CsrfError('admin API: a dashboard session needs its X-Porthole-CSRF header (a page of another origin, or of an app behind this gateway, cannot use your session)');
  }
  if (opts.localNoAuth && isLoopback(req.socket.remoteAddress)) return { via: 'local' };
  if (opts.sessions && Sessions.hasCookie(req)) return new UnauthorizedError('admin API: the dashboard session ended (log in again at /_porthole/)');
  return new UnauthorizedError('admin API: send "Authorization: Bearer <token>" (the token is in the data directory\'s "private/token" file, or PORTHOLE_TOKEN)');
}
