/**
 * The sessions of `auth: login` and `auth: token` (docs/auth.md): a cookie
 * per host name, all the cookies of one login forming a family that one
 * logout revokes together.
 *
 * A browser keeps cookies per host: one set at `localhost` never reaches
 * `vnc.localhost`. An app host name therefore gets its own cookie by a
 * handoff: its login goes through the gateway's own name, which answers with
 * a redirect to `/_porthole/auth/handoff?code=…` on the app's host; that
 * one-time code (60 s) is exchanged there for a cookie of the same family.
 *
 * Sessions live in memory: a restart of the gateway logs everyone out.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { cookieValues } from '../admin/session.js';

export const AUTH_COOKIE = 'porthole_auth';
/** A session ends after this long without a request… */
export const IDLE_MS = 12 * 60 * 60 * 1000;
/** …and this long after login, whatever its use. */
export const MAX_AGE_MS = 7 * 24 * 60 * 60 * 1000;
/** A handoff code works once, within this long: it only crosses one redirect. */
const HANDOFF_MS = 60 * 1000;
const MAX_SESSIONS = 4096;
const MAX_CODES = 1024;

export interface UserSession {
  id: string;
  /** Every cookie of one login (one per host name) shares it: logout ends them all. */
  family: string;
  user: string;
  /** `login` (a password) or `token` (an auth_tokens entry). */
  via: 'login' | 'token';
  created: number;
  lastUsed: number;
  /** The credential it was made with (the password hash, the token's sha256): a changed one ends it. */
  stamp?: string;
}

const secret = () => randomBytes(32).toString('base64url');

export class UserSessions {
  readonly #sessions = new Map<string, UserSession>();
  readonly #codes = new Map<string, { session: UserSession; host: string; nonce: string; until: number }>();
  /** Called with a family when it is logged out (open WebSockets of it are closed). */
  onEnd: ((family: string) => void) | undefined;

  create(user: string, via: UserSession['via'], family = secret(), now = Date.now()): UserSession {
    this.#sweep(now);
    const s: UserSession = { id: secret(), family, user, via, created: now, lastUsed: now };
    this.#sessions.set(s.id, s);
    while (this.#sessions.size > MAX_SESSIONS) this.#sessions.delete(this.#sessions.keys().next().value!);
    return s;
  }

  /**
   * The live session named by the request's cookie, or null. Every cookie of the
   * name is tried: an app on the same origin can set one with a narrower path.
   */
  of(req: IncomingMessage, now = Date.now()): UserSession | null {
    for (const id of cookieValues(req.headers.cookie, AUTH_COOKIE)) {
      const s = this.#sessions.get(id);
      if (!s) continue;
      if (expired(s, now)) {
        this.#sessions.delete(id);
        continue;
      }
      return s;
    }
    return null;
  }

  touch(s: UserSession, now = Date.now()): void {
    s.lastUsed = Math.max(s.lastUsed, now);
  }

  /** A one-time code that `host` exchanges for a session of the same family. */
  handoffCode(s: UserSession, host: string, nonce: string, now = Date.now()): string {
    this.#sweep(now);
    const code = secret();
    this.#codes.set(code, { session: s, host: host.toLowerCase(), nonce, until: now + HANDOFF_MS });
    while (this.#codes.size > MAX_CODES) this.#codes.delete(this.#codes.keys().next().value!);
    return code;
  }

  /**
   * Uses up a handoff code at `host`, from the browser holding `nonce` (the
   * handoff cookie the app's host set when it sent that browser to log in):
   * the new session, or null (unknown, used, expired, another host, another
   * browser, a family logged out since).
   */
  redeem(code: string, host: string, nonce: readonly string[], now = Date.now()): UserSession | null {
    const c = this.#codes.get(code);
    if (!c) return null;
    this.#codes.delete(code);
    if (c.until <= now || c.host !== host.toLowerCase() || !this.#sessions.has(c.session.id)) return null;
    if (!nonce.includes(c.nonce)) return null;
    const s = this.create(c.session.user, c.session.via, c.session.family, now);
    s.stamp = c.session.stamp;
    return s;
  }

  /** Logout: every session of the family, on every host name. */
  endFamily(family: string): void {
    for (const [id, s] of this.#sessions) if (s.family === family) this.#sessions.delete(id);
    for (const [code, c] of this.#codes) if (c.session.family === family) this.#codes.delete(code);
    this.onEnd?.(family);
  }

  /** Sessions of users no longer in the config (a reload removed them) end. */
  keepUsers(alive: (s: UserSession) => boolean): void {
    const gone = new Set<string>();
    for (const [id, s] of this.#sessions) if (!alive(s)) this.#sessions.delete(id), gone.add(s.family);
    for (const f of gone) this.onEnd?.(f);
  }

  get size(): number {
    return this.#sessions.size;
  }

  #sweep(now: number): void {
    for (const [id, s] of this.#sessions) if (expired(s, now)) this.#sessions.delete(id);
    for (const [code, c] of this.#codes) if (c.until <= now) this.#codes.delete(code);
  }
}

function expired(s: UserSession, now: number): boolean {
  return now > Math.min(s.lastUsed + IDLE_MS, s.created + MAX_AGE_MS);
}

/** The cookie that ties a handoff to the browser that asked to log in (set on the app's host). */
export const HANDOFF_COOKIE = 'porthole_handoff';

/** Every value of the handoff cookie in a request. */
export function handoffNonces(req: IncomingMessage): string[] {
  return cookieValues(req.headers.cookie, HANDOFF_COOKIE);
}

/** `Set-Cookie` for the handoff nonce: only the handoff path of the app's host sees it. */
export function handoffCookie(nonce: string, secure: boolean, maxAge = 900): string {
  return `${HANDOFF_COOKIE}=${nonce}; Path=/_porthole/auth/handoff; HttpOnly; SameSite=Lax; Max-Age=${maxAge}${secure ? '; Secure' : ''}`;
}

/**
 * `Set-Cookie` for a session: every path of this host name (apps under their
 * prefixes included), and with `domain` (the config's `base_domain`) every
 * name under it.
 */
export function authCookie(s: UserSession, secure: boolean, domain?: string): string {
  return `${AUTH_COOKIE}=${s.id}; Path=/;${domain ? ` Domain=${domain};` : ''} HttpOnly; SameSite=Lax; Max-Age=${Math.floor(MAX_AGE_MS / 1000)}${secure ? '; Secure' : ''}`;
}

export function clearedAuthCookie(secure: boolean, domain?: string): string {
  return `${AUTH_COOKIE}=; Path=/;${domain ? ` Domain=${domain};` : ''} HttpOnly; SameSite=Lax; Max-Age=0${secure ? '; Secure' : ''}`;
}

/** True when a Set-Cookie value sets the gateway's session cookie (names are case-sensitive; `__Host-`/`__Secure-` prefixes aside). */
export function isAuthCookie(setCookie: string): boolean {
  const eq = setCookie.indexOf('=');
  return eq !== -1 && setCookie.slice(0, eq).trim() === AUTH_COOKIE;
}

/** A Cookie header without the gateway's own session cookie (undefined when nothing is left). */
export function withoutAuthCookie(header: string): string | undefined {
  // Untouched (byte for byte) when it does not hold ours: most apps never see one.
  if (!header.includes(AUTH_COOKIE)) return header;
  const kept = header
    .split(';')
    .map((p) => p.trim())
    .filter((p) => p !== '' && p.slice(0, p.indexOf('=') === -1 ? p.length : p.indexOf('=')).trim() !== AUTH_COOKIE);
  return kept.length ? kept.join('; ') : undefined;
}
