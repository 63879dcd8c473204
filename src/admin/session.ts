/**
 * Dashboard sessions: a browser cannot send `Authorization: Bearer` when it
 * navigates, so the dashboard logs in once (a one-time login link, or the
 * token pasted into a form) and then carries a session cookie.
 *
 * The cookie alone never authorizes anything. Apps behind a prefix route
 * (`http://gateway/app/`) share the dashboard's origin, so their scripts
 * could send it. Every admin call made with the session must also carry the
 * session's CSRF secret in `X-Porthole-CSRF`. The gateway puts that secret
 * only into the dashboard page, and only for a top-level navigation
 * (`Sec-Fetch-Dest: document`), which an app's script can neither make by
 * fetch nor read (the page refuses framing and sets
 * `Cross-Origin-Opener-Policy: same-origin`).
 *
 * Sessions live in memory: a restart of the gateway logs every browser out.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { sameToken } from './token.js';

export const SESSION_COOKIE = 'porthole_session';
export const CSRF_HEADER = 'x-porthole-csrf';
/** A session ends after this long without a call. */
const IDLE_MS = 12 * 60 * 60 * 1000;
/** …and this long after login, whatever its use. */
const MAX_AGE_MS = 7 * 24 * 60 * 60 * 1000;
/** A login link works once, within this long. */
const LOGIN_CODE_MS = 24 * 60 * 60 * 1000;
/** Sessions and unused login codes kept at most; the oldest go first. */
const MAX_SESSIONS = 256;
const MAX_CODES = 64;

export interface Session {
  id: string;
  /** Sent by the page in `X-Porthole-CSRF`. */
  csrf: string;
  created: number;
  lastUsed: number;
  /** Run when the session ends (logout, expiry, eviction): its open event streams close. */
  readonly onEnd: Set<() => void>;
}

const secret = () => randomBytes(32).toString('base64url');

export class Sessions {
  readonly #sessions = new Map<string, Session>();
  /** Unused login codes → when they stop working. */
  readonly #codes = new Map<string, number>();

  /** A one-time code for a login link (`/_porthole/?login=CODE`). */
  loginCode(now = Date.now()): string {
    this.#sweep(now);
    const code = secret();
    this.#codes.set(code, now + LOGIN_CODE_MS);
    while (this.#codes.size > MAX_CODES) this.#codes.delete(this.#codes.keys().next().value!);
    return code;
  }

  /** Uses up a login code: a new session, or null when the code is unknown, used or expired. */
  redeem(code: string, now = Date.now()): Session | null {
    const until = this.#codes.get(code);
    if (until === undefined) return null;
    this.#codes.delete(code);
    return until > now ? this.create(now) : null;
  }

  create(now = Date.now()): Session {
    this.#sweep(now);
    const s: Session = { id: secret(), csrf: secret(), created: now, lastUsed: now, onEnd: new Set() };
    this.#sessions.set(s.id, s);
    while (this.#sessions.size > MAX_SESSIONS) this.#drop(this.#sessions.values().next().value!);
    return s;
  }

  /**
   * The live session named by the request's cookie, or null. Finding it is not a use:
   * `touch` it once the call is authorized (with its CSRF header, or as a page load),
   * or an app's script on this origin, refused each time, would keep it alive forever.
   */
  of(req: IncomingMessage, now = Date.now()): Session | null {
    // Every cookie of the name: an app on this origin can set one with a narrower
    // path, which browsers send first, to shadow the real one.
    for (const id of cookieValues(req.headers.cookie, SESSION_COOKIE)) {
      const s = this.#sessions.get(id);
      if (!s) continue;
      if (expired(s, now)) {
        this.#drop(s);
        continue;
      }
      return s;
    }
    return null;
  }

  /** Marks a use: the session ends IDLE_MS after its last one. */
  touch(s: Session, now = Date.now()): void {
    s.lastUsed = Math.max(s.lastUsed, now);
  }

  /** True when the request carries a session cookie, live or not (to say "your session ended"). */
  static hasCookie(req: IncomingMessage): boolean {
    return cookieValues(req.headers.cookie, SESSION_COOKIE).length > 0;
  }

  /** True when `X-Porthole-CSRF` is the session's secret. */
  static csrfMatches(req: IncomingMessage, s: Session): boolean {
    const given = req.headers[CSRF_HEADER];
    return typeof given === 'string' && sameToken(given, s.csrf);
  }

  end(id: string): void {
    const s = this.#sessions.get(id);
    if (s) this.#drop(s);
  }

  #drop(s: Session): void {
    this.#sessions.delete(s.id);
    for (const fn of [...s.onEnd]) {
      try {
        fn();
      } catch {
        // One stream's failure must not keep the others open.
      }
    }
    s.onEnd.clear();
  }

  get size(): number {
    return this.#sessions.size;
  }

  #sweep(now: number): void {
    for (const s of [...this.#sessions.values()]) if (expired(s, now)) this.#drop(s);
    for (const [code, until] of this.#codes) if (until <= now) this.#codes.delete(code);
  }
}

export function expired(s: Session, now = Date.now()): boolean {
  return now > sessionExpiry(s);
}

/** When the session ends unless it is used before (epoch ms). */
export function sessionExpiry(s: Session): number {
  return Math.min(s.lastUsed + IDLE_MS, s.created + MAX_AGE_MS);
}

/** The `Set-Cookie` value that starts a session (`Secure` when the page came over TLS). */
export function sessionCookie(s: Session, secure: boolean): string {
  return `${SESSION_COOKIE}=${s.id}; Path=/_porthole/; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`;
}

/** The `Set-Cookie` value that removes it. */
export function clearedCookie(secure: boolean): string {
  return `${SESSION_COOKIE}=; Path=/_porthole/; HttpOnly; SameSite=Lax; Max-Age=0${secure ? '; Secure' : ''}`;
}

/** The values of every cookie of that name in a `Cookie` header, in its order (at most 16). */
export function cookieValues(header: string | undefined, name: string): string[] {
  const values: string[] = [];
  if (!header) return values;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) {
      const v = part.slice(eq + 1).trim();
      if (v) values.push(v);
      if (values.length === 16) break;
    }
  }
  return values;
}
