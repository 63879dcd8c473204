/**
 * Access control in front of the apps (docs/auth.md): which requests and
 * upgrades reach an app, and the gateway's own login, handoff and logout
 * pages under `/_porthole/auth/`.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AuthConfig } from '../config/auth-schema.js';
import type { AppConfig, Config } from '../config/schema.js';
import { AuthDeniedError, AuthRequiredError, AuthUnavailableError, BadRequestError, CsrfError, LoginFailedError, LoginRateLimitedError, PortholeError } from '../errors.js';
import { emit } from '../events.js';
import { sendHttpError, wantsJson } from '../gateway/error-response.js';
import { parseHostHeader } from '../gateway/host-header.js';
import { onConnectionClosed } from '../gateway/native-tunnel.js';
import type { Admission } from './admission.js';
import { fromOtherOrigin, readForm } from '../admin/form-post.js';
import { askAuthService, type ForwardAuthConfig } from './forward-auth.js';
import { loginPage, logoutPage, messagePage, pageHeaders } from './login-page.js';
import { decoyHash, tokenDigest, verifyPassword } from './password.js';
import { LoginRateLimit } from './rate-limit.js';
import { authCookie, AUTH_COOKIE, clearedAuthCookie, handoffCookie, handoffNonces, UserSessions, type UserSession } from './user-sessions.js';

export const AUTH_PATH = '/_porthole/auth/';
const LOGIN = '/_porthole/auth/login';
const LOGOUT = '/_porthole/auth/logout';
const HANDOFF = '/_porthole/auth/handoff';
const NONE: AuthConfig = Object.freeze({ mode: 'none' });
/**
 * An app that lets everyone in still never gets the gateway's session cookie: the
 * browser sends it (Path=/) to every app of the host, and an app holding it could
 * replay it against the apps that do ask for a login.
 */
const OPEN: Admission = Object.freeze({ stripCookie: true, stripAuthorization: false, replace: new Set<string>(), headers: [] });

/** What access control decided: let through (with what it learnt), or refuse (and how). */
export type Decision =
  | { kind: 'admit'; admission: Admission | null }
  | { kind: 'refuse'; err: PortholeError; login?: boolean; retryAfter?: number; relay?: { status: number; headers: [string, string][]; body: Buffer } }
  | { kind: 'redirect'; location: string; cookie?: string };

export interface AuthGateOptions {
  gatewayId: string;
  config: () => Config;
  /** True when a Host header routes to one app whole (its `hosts` or automatic names). */
  isAppHost: (host: string) => boolean;
  /** The scheme the client used (the listener's, or a trusted proxy's). */
  proto: (req: IncomingMessage) => 'http' | 'https';
  /** Ends the connections (WebSocket tunnels) a logged-out login opened. */
  endConnections: (sockets: ReadonlySet<Duplex>) => void;
}

export class AuthGate {
  readonly sessions = new UserSessions();
  readonly rateLimit = new LoginRateLimit();
  /** Client sockets of admitted upgrades, per login family: closed at logout. */
  readonly #sockets = new Map<string, Set<Duplex>>();

  /** What else ends with a login family (the dashboard sessions an admin user's login started). */
  readonly #bound = new Map<string, Set<() => void>>();

  constructor(private readonly opts: AuthGateOptions) {
    this.sessions.onEnd = (family) => {
      const set = this.#sockets.get(family);
      this.#sockets.delete(family);
      if (set) opts.endConnections(set);
      const bound = this.#bound.get(family);
      this.#bound.delete(family);
      for (const end of bound ?? []) end();
    };
  }

  /** Calls `end` when the request's login ends (logout, or a reload that removes or changes its user). */
  bindToLogin(req: IncomingMessage, end: () => void): void {
    const s = this.sessions.of(req);
    if (!s) return;
    let set = this.#bound.get(s.family);
    if (!set) this.#bound.set(s.family, (set = new Set()));
    set.add(end);
  }

  /** The app's own `auth`, else the global one, else `none`. */
  modeOf(app: AppConfig): AuthConfig {
    return app.auth ?? this.opts.config().auth ?? NONE;
  }

  /** After a reload: sessions of users (or tokens) that are gone end. */
  configChanged(): void {
    this.sessions.keepUsers((s) => this.#userExists(s));
  }

  /** Remembers an admitted upgrade's socket, to close it at logout. */
  track(family: string | undefined, socket: Duplex): void {
    if (!family) return;
    let set = this.#sockets.get(family);
    if (!set) this.#sockets.set(family, (set = new Set()));
    set.add(socket);
    // A native tunnel closes the Node socket when it takes the connection over: its end counts, not that close.
    onConnectionClosed(socket, () => {
      set.delete(socket);
      if (set.size === 0 && this.#sockets.get(family) === set) this.#sockets.delete(family);
    });
  }

  /**
   * Whether a request (or an upgrade) may reach `app`. Synchronous except for
   * forward_auth, which asks its service first.
   */
  decide(req: IncomingMessage, app: AppConfig, upgrade: boolean): Decision | Promise<Decision> {
    const mode = this.modeOf(app);
    if (mode.mode === 'none') return { kind: 'admit', admission: credentialsKept(app, OPEN) };
    if (mode.mode === 'forward_auth') return this.#forward(req, app, mode);
    // `?token=` on a page: exchanged once for the session cookie, then the URL is loaded without it.
    // Not on a websockify token app (file or Redis), whose `token` parameter picks the bridge target.
    const url = req.url ?? '/';
    const bridgeToken = app.bridge_token_file !== undefined || app.bridge_token_redis !== undefined;
    const link = !upgrade && mode.mode === 'token' && !bridgeToken ? tokenLink(url) : null;
    const session = this.sessions.of(req);
    if (session && this.#userExists(session)) {
      this.sessions.touch(session);
      // Logged in already: a link's token of ours still leaves the URL before the app (and its logs) sees it.
      if (link && this.#tokenName(link.token)) return { kind: 'redirect', location: link.location };
      return { kind: 'admit', admission: credentialsKept(app, { user: session.user, family: session.family, stripCookie: true, stripAuthorization: false, replace: new Set(), headers: [] }) };
    }
    const client = req.socket.remoteAddress ?? '';
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (bearer) {
      const wait = this.rateLimit.retryAfter(client);
      if (wait) return this.#limited(client, wait);
      const name = this.#tokenName(bearer[1]);
      if (name && link && this.#tokenName(link.token)) return { kind: 'redirect', location: link.location };
      if (name) return { kind: 'admit', admission: credentialsKept(app, { user: name, stripCookie: true, stripAuthorization: true, replace: new Set(), headers: [] }) };
      return this.#failed(client, new LoginFailedError('the bearer token matches none of auth_tokens'));
    }
    if (link) {
      const wait = this.rateLimit.retryAfter(client);
      if (wait) return this.#limited(client, wait);
      const name = this.#tokenName(link.token);
      if (!name) return this.#failed(client, new LoginFailedError('the token in the link matches none of auth_tokens'));
      const s = this.sessions.create(name, 'token');
      s.stamp = this.opts.config().auth_tokens.find((t) => t.name === name)?.sha256;
      emit('auth', { action: 'token', user: name, client, gateway: this.opts.gatewayId });
      return { kind: 'redirect', location: link.location, cookie: authCookie(s, this.opts.proto(req) === 'https', this.#cookieDomain(req)) };
    }
    const how = mode.mode === 'login' ? `log in at ${LOGIN}` : 'send Authorization: Bearer <token>, or open a link with ?token=';
    return { kind: 'refuse', err: new AuthRequiredError(`login required (${how})`, { app: app.name }), login: mode.mode === 'login' };
  }

  /** Answers a refused (or redirected) HTTP request. */
  answer(req: IncomingMessage, res: ServerResponse, d: Exclude<Decision, { kind: 'admit' }>, template?: string): void {
    if (d.kind === 'redirect') {
      res.writeHead(303, { Location: d.location, ...(d.cookie ? { 'Set-Cookie': d.cookie } : {}), 'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer', 'Content-Length': '0' });
      return void res.end();
    }
    if (d.relay) {
      res.writeHead(d.relay.status, [...d.relay.headers.flat(), 'Content-Length', String(d.relay.body.length), 'X-Porthole-Error', d.err.code]);
      return void res.end(d.relay.body);
    }
    const page = (req.method === 'GET' || req.method === 'HEAD') && !wantsJson(req.headers.accept);
    if (d.login && page) {
      const to = this.#loginTarget(req);
      const nonceCookie = to.nonce ? { 'Set-Cookie': handoffCookie(to.nonce, this.opts.proto(req) === 'https') } : {};
      res.writeHead(302, { Location: to.url, ...nonceCookie, 'Cache-Control': 'no-store', 'Content-Length': '0', 'X-Porthole-Error': d.err.code });
      return void res.end();
    }
    const extra: Record<string, string> = d.retryAfter ? { 'Retry-After': String(d.retryAfter) } : {};
    if (d.err instanceof AuthRequiredError && !d.login) extra['WWW-Authenticate'] = 'Bearer realm="porthole"';
    sendHttpError(res, d.err, req.headers.accept, template, extra);
  }

  /**
   * Where a refused page is sent to log in. An app's own host name logs in
   * through the gateway's name on the same port (`vnc.localhost` through
   * `localhost`), whose session then hands a cookie to the app's host; any
   * other name logs in on itself.
   */
  loginUrl(req: IncomingMessage): string {
    return this.#loginTarget(req).url;
  }

  /**
   * The login URL, and for an app's `*.localhost` name the nonce of its
   * handoff: set as a cookie on the app's host and carried through the
   * login, so that only this browser can redeem the code the login makes
   * (another user's code, opened by this browser, logs nobody in).
   */
  #loginTarget(req: IncomingMessage): { url: string; nonce?: string } {
    const next = req.url ?? '/';
    const hostHeader = req.headers.host ?? '';
    const host = parseHostHeader(hostHeader);
    if (host && host.name.endsWith('.localhost') && this.opts.isAppHost(hostHeader)) {
      const port = host.port ? `:${host.port}` : '';
      const nonce = randomBytes(24).toString('base64url');
      return { url: `${this.opts.proto(req)}://localhost${port}${LOGIN}?next=${encodeURIComponent(next)}&host=${encodeURIComponent(hostHeader)}&nonce=${nonce}`, nonce };
    }
    return { url: `${LOGIN}?next=${encodeURIComponent(next)}` };
  }

  /** The user of the request's live session when it is an `admin: true` user (the dashboard lets them in). */
  adminUser(req: IncomingMessage): string | undefined {
    const s = this.sessions.of(req);
    if (!s || s.via !== 'login' || !this.#userExists(s)) return undefined;
    return this.opts.config().users.find((u) => u.name === s.user)?.admin ? s.user : undefined;
  }

  /** The login, handoff and logout pages: true when `req` was one of them (and is answered). */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (path !== LOGIN && path !== LOGOUT && path !== HANDOFF) return false;
    const params = new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
    const started = performance.now();
    res.once('close', () =>
      emit('request', {
        gateway: this.opts.gatewayId,
        app: null,
        method: req.method ?? 'GET',
        // No query: it may hold a handoff code.
        path,
        status: res.statusCode,
        ms: Math.round(performance.now() - started),
        ...(res.getHeader('X-Porthole-Error') ? { code: String(res.getHeader('X-Porthole-Error')) } : {}),
      }),
    );
    if (path === LOGIN) this.#login(req, res, params);
    else if (path === LOGOUT) this.#logout(req, res);
    else this.#handoff(req, res, params);
    return true;
  }

  #login(req: IncomingMessage, res: ServerResponse, params: URLSearchParams): void {
    const secure = this.opts.proto(req) === 'https';
    if (req.method === 'GET' || req.method === 'HEAD') {
      const next = localPath(params.get('next'));
      const host = this.#appHost(req, params.get('host'));
      const nonce = nonceOf(params.get('nonce'));
      const s = this.sessions.of(req);
      if (s && this.#userExists(s)) return this.#finish(req, res, s, next, host, undefined, nonce);
      return sendPage(res, 200, loginPage({ next, host, nonce }), this.#formTo(req, host));
    }
    if (req.method !== 'POST') return sendPage(res, 405, messagePage('Log in', `${req.method} is not used here`), undefined, new BadRequestError(`${LOGIN} takes GET or POST`));
    // A login posted from another site would log the browser into the attacker's account (login CSRF).
    const foreign = foreignOrigin(req);
    if (foreign) return sendPage(res, foreign.status, messagePage('Log in', foreign.message), undefined, foreign);
    const client = req.socket.remoteAddress ?? '';
    const wait = this.rateLimit.retryAfter(client);
    if (wait) {
      const err = new LoginRateLimitedError(`too many failed logins from ${client}: try again in ${wait} s`);
      emit('auth', { action: 'rate_limited', client, code: err.code, gateway: this.opts.gatewayId });
      res.setHeader('Retry-After', String(wait));
      req.resume();
      return sendPage(res, 429, messagePage('Too many attempts', err.message), undefined, err);
    }
    this.rateLimit.begin(client);
    readForm(req, res, 'a login form')
      .then(async (form) => {
        const next = localPath(form.get('next'));
        const host = this.#appHost(req, form.get('host'));
        const nonce = nonceOf(form.get('nonce'));
        const name = form.get('user') ?? '';
        const user = this.opts.config().users.find((u) => u.name === name);
        // An unknown name costs a hash like a wrong password: timing does not tell which names exist.
        const good = await verifyPassword(form.get('password') ?? '', user?.password_hash ?? (await decoyHash()));
        if (!user || !good) {
          const err = new LoginFailedError('wrong user name or password');
          this.rateLimit.fail(client);
          emit('auth', { action: 'login_failed', user: name.replace(/[\u0000-\u001f\u007f]/g, '?').slice(0, 64), client, code: err.code, gateway: this.opts.gatewayId });
          return sendPage(res, 401, loginPage({ next, host, nonce, error: 'Wrong user name or password.' }), this.#formTo(req, host), err);
        }
        const s = this.sessions.create(user.name, 'login');
        s.stamp = user.password_hash;
        emit('auth', { action: 'login', user: user.name, client, gateway: this.opts.gatewayId });
        this.#finish(req, res, s, next, host, authCookie(s, secure, this.#cookieDomain(req)), nonce);
      })
      .catch((err: PortholeError) => sendPage(res, err.status ?? 400, messagePage('Log in', err.message), undefined, err))
      .finally(() => this.rateLimit.end(client));
  }

  /**
   * `base_domain` when the request came to it or to a name under it: the
   * cookie then reaches every `{app}.{base_domain}` (one login for all of
   * them, as `*.localhost` names get through the handoff).
   */
  #cookieDomain(req: IncomingMessage): string | undefined {
    const base = this.opts.config().base_domain?.toLowerCase();
    if (!base) return undefined;
    const host = (req.headers.host ?? '').toLowerCase().replace(/:\d+$/, '').replace(/\.$/, '');
    return host === base || host.endsWith(`.${base}`) ? base : undefined;
  }

  /** After a login (or with one already): on to `next`, through a handoff when it is on an app's host. */
  #finish(req: IncomingMessage, res: ServerResponse, s: UserSession, next: string, host: string | undefined, cookie: string | undefined, nonce?: string): void {
    let location = next;
    // Without the browser's nonce no code is made: back to the app's host, which starts over with one.
    if (host) location = nonce ? `${this.opts.proto(req)}://${host}${HANDOFF}?code=${this.sessions.handoffCode(s, host, nonce)}&next=${encodeURIComponent(next)}` : `${this.opts.proto(req)}://${host}${next}`;
    res.writeHead(303, { Location: location, 'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer', 'Content-Length': '0', ...(cookie ? { 'Set-Cookie': cookie } : {}) });
    res.end();
  }

  #handoff(req: IncomingMessage, res: ServerResponse, params: URLSearchParams): void {
    if (req.method !== 'GET') return sendPage(res, 405, messagePage('Log in', 'use GET'), undefined, new BadRequestError(`${HANDOFF} takes GET`));
    const s = this.sessions.redeem(params.get('code') ?? '', req.headers.host ?? '', handoffNonces(req));
    if (!s) {
      const err = new AuthRequiredError('login required (this login link was used already, has expired or is for another host)');
      return sendPage(res, 401, messagePage('Log in', 'This login link was used already or has expired.'), undefined, err);
    }
    emit('auth', { action: 'handoff', user: s.user, host: req.headers.host, client: req.socket.remoteAddress, gateway: this.opts.gatewayId });
    // The code leaves the address bar (and the history) at once.
    const secure = this.opts.proto(req) === 'https';
    res.writeHead(303, { Location: localPath(params.get('next')), 'Set-Cookie': [authCookie(s, secure, this.#cookieDomain(req)), handoffCookie('', secure, 0)], 'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer', 'Content-Length': '0' });
    res.end();
  }

  #logout(req: IncomingMessage, res: ServerResponse): void {
    const secure = this.opts.proto(req) === 'https';
    const s = this.sessions.of(req);
    if (req.method === 'GET' || req.method === 'HEAD') return sendPage(res, 200, logoutPage(s !== null));
    if (req.method !== 'POST') return sendPage(res, 405, messagePage('Log out', 'use POST'), undefined, new BadRequestError(`${LOGOUT} takes POST`));
    // A form of another origin is refused (logout CSRF).
    const foreign = foreignOrigin(req);
    if (foreign) return sendPage(res, foreign.status, messagePage('Log out', foreign.message), undefined, foreign);
    req.resume();
    if (s) {
      this.sessions.endFamily(s.family);
      emit('auth', { action: 'logout', user: s.user, client: req.socket.remoteAddress, gateway: this.opts.gatewayId });
    }
    res.writeHead(200, { ...pageHeaders(), 'Set-Cookie': clearedAuthCookie(secure, this.#cookieDomain(req)) });
    res.end(logoutPage(false));
  }

  async #forward(req: IncomingMessage, app: AppConfig, cfg: ForwardAuthConfig): Promise<Decision> {
    // Lower-cased, `_` read as `-` (as headers.ts compares them).
    const replace = new Set(cfg.response_headers.map((h) => h.toLowerCase().replaceAll('_', '-')));
    try {
      const answer = await askAuthService(cfg, req, { proto: this.opts.proto(req), host: req.headers.host ?? '', remote: req.socket.remoteAddress ?? '' });
      // Only the gateway's own cookie is dropped: the auth service's (its SSO session) are the app's business.
      if (answer.ok) return { kind: 'admit', admission: credentialsKept(app, { stripCookie: true, stripAuthorization: false, replace, headers: answer.headers }) };
      const err = new AuthDeniedError(`forward_auth: the auth service answered ${answer.status}`, { app: app.name });
      return { kind: 'refuse', err, relay: { status: answer.status, headers: answer.headers, body: answer.body } };
    } catch (err) {
      const e = err instanceof PortholeError ? err : new AuthUnavailableError(`forward_auth: ${(err as Error).message}`);
      emit('error', { code: e.code, message: e.message, app: app.name, gateway: this.opts.gatewayId });
      return { kind: 'refuse', err: e };
    }
  }

  #limited(client: string, wait: number): Decision {
    const err = new LoginRateLimitedError(`too many failed logins from ${client}: try again in ${wait} s`);
    emit('auth', { action: 'rate_limited', client, code: err.code, gateway: this.opts.gatewayId });
    return { kind: 'refuse', err, retryAfter: wait };
  }

  #failed(client: string, err: LoginFailedError): Decision {
    this.rateLimit.fail(client);
    emit('auth', { action: 'login_failed', client, code: err.code, gateway: this.opts.gatewayId });
    return { kind: 'refuse', err };
  }

  #tokenName(token: string): string | undefined {
    if (!token) return undefined;
    const digest = Buffer.from(tokenDigest(token), 'hex');
    let found: string | undefined;
    // Every entry is compared, in constant time each.
    for (const t of this.opts.config().auth_tokens) if (timingSafeEqual(digest, Buffer.from(t.sha256, 'hex'))) found ??= t.name;
    return found;
  }

  /** The session's user is still in the config, with the password (or token) it logged in with. */
  #userExists(s: UserSession): boolean {
    const cfg = this.opts.config();
    return s.via === 'login'
      ? cfg.users.some((u) => u.name === s.user && (s.stamp === undefined || u.password_hash === s.stamp))
      : cfg.auth_tokens.some((t) => t.name === s.user && (s.stamp === undefined || t.sha256 === s.stamp));
  }

  /**
   * `host` when it is an app's own host name on this gateway and on the port this
   * request came to (where a login may hand a cookie to), else undefined. The port
   * matters: `app.localhost:PORT` is loopback, where another program may listen.
   */
  #appHost(req: IncomingMessage, host: string | null): string | undefined {
    const h = host ? parseHostHeader(host) : null;
    const here = parseHostHeader(req.headers.host ?? '');
    if (!h || !here || h.port !== here.port || !this.opts.isAppHost(host!)) return undefined;
    return host!.toLowerCase();
  }

  #formTo(req: IncomingMessage, host: string | undefined): string | undefined {
    return host ? `${this.opts.proto(req)}://${host}` : undefined;
  }
}

/**
 * A `?token=` link's token (null when the query has none), and where it is loaded without it: the path as it
 * came, kept on this origin when it looks scheme-relative (`//evil.example/`
 * or `/\\evil.example/` at an app's host name, where every path is the app's).
 */
function tokenLink(url: string): { token: string; location: string } | null {
  const q = url.indexOf('?');
  if (q === -1) return null;
  const params = new URLSearchParams(url.slice(q + 1));
  if (!params.has('token')) return null;
  const token = params.get('token') ?? '';
  params.delete('token');
  const rest = params.toString();
  const path = url.slice(0, q);
  const safe = /^\/[\/\\]/.test(path) ? `/.${path}` : path;
  return { token, location: `${safe}${rest ? `?${rest}` : ''}` };
}

/** With `auth_forward_credentials: true` the app gets the cookie and Authorization as they came. */
function credentialsKept(app: AppConfig, a: Admission | null): Admission | null {
  if (!app.auth_forward_credentials || !a) return a;
  return { ...a, stripCookie: false, stripAuthorization: false };
}

/**
 * `next` when it is a path on this host, else `/`: never `//evil.example`
 * (a scheme-relative URL), `/\evil.example` (browsers read `\` as `/`), an
 * absolute URL, or anything with control characters.
 */
export function localPath(next: string | null): string {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\') || /[\u0000-\u001f\u007f\\]/.test(next)) return '/';
  try {
    // What a browser would make of it against a dummy origin must stay on that origin.
    return new URL(next, 'http://h.invalid').origin === 'http://h.invalid' ? next : '/';
  } catch {
    return '/';
  }
}

function foreignOrigin(req: IncomingMessage): PortholeError | null {
  return fromOtherOrigin(req) ? new CsrfError(`a form posted from ${req.headers.origin} is refused`) : null;
}

function sendPage(res: ServerResponse, status: number, html: string, formTo?: string, err?: PortholeError): void {
  if (res.headersSent) return void res.end();
  res.writeHead(status, { ...pageHeaders(formTo), 'Content-Length': Buffer.byteLength(html), ...(err ? { 'X-Porthole-Error': err.code } : {}) });
  res.end(html);
}

export { AUTH_COOKIE };

/** A handoff nonce as given in a URL or form: base64url of a sane length, else none. */
function nonceOf(v: string | null): string | undefined {
  return v && /^[\w-]{16,64}$/.test(v) ? v : undefined;
}
