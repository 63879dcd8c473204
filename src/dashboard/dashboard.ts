/**
 * The dashboard at `/_porthole/`: the login, the page shell and its files.
 * The page itself (the repo's `dashboard/` folder, Preact with htm, no build
 * step) is a client of the admin API like any other; this module only lets a
 * browser in. See admin/session.ts for why the session cookie alone
 * authorizes nothing.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, extname, join, sep } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { BadRequestError, CsrfError, UnauthorizedError, type PortholeError } from '../errors.js';
import { emit } from '../events.js';
import { checkAdminHost, type GuardOptions } from '../admin/guard.js';
import { fromOtherOrigin, readForm } from '../admin/form-post.js';
import { clearedCookie, sessionCookie, Sessions, type Session } from '../admin/session.js';
import { sameToken } from '../admin/token.js';

export const DASHBOARD_PATH = '/_porthole/';
const UI = '/_porthole/ui/';

const IMPORT_MAP = JSON.stringify({
  imports: { preact: `${UI}vendor/preact.mjs`, 'preact/hooks': `${UI}vendor/hooks.mjs`, htm: `${UI}vendor/htm.mjs` },
});
const IMPORT_MAP_HASH = createHash('sha256').update(IMPORT_MAP).digest('base64');

/** Every page: nothing from outside the gateway, no inline script but the import map, never framed. */
const PAGE_HEADERS = {
  'Content-Security-Policy': `default-src 'self'; script-src 'self' 'sha256-${IMPORT_MAP_HASH}'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'`,
  'X-Frame-Options': 'DENY',
  // A page of an app on this origin that opens the dashboard gets no handle on its window.
  // The gateway drops this same policy from prefixed apps (gateway/headers.ts) but lets it
  // through beside COEP require-corp: adding COEP here would put those apps' pages back
  // in the dashboard's browsing context group.
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
  'Cache-Control': 'no-store',
};

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

export interface DashboardOptions {
  sessions: Sessions;
  /** The admin guard's settings: the token a pasted login is compared with, the admin host names. */
  guard: () => GuardOptions;
  gatewayId: string;
  /** The page's files. Default: the package's `dashboard/` folder. */
  uiDir?: string;
  /** True when the browser reached the gateway over HTTPS (its own TLS, or a trusted proxy's): the cookie is then `Secure`. */
  secure?: (req: IncomingMessage) => boolean;
  /**
   * The user of the request's gateway login (`auth: login`) when it is an `admin: true` user:
   * their page load starts a dashboard session like the admin token does (docs/auth.md).
   */
  adminUser?: (req: IncomingMessage) => string | undefined;
  /** Ends the dashboard session an admin user's login started when that login ends (its logout). */
  boundToLogin?: (req: IncomingMessage, end: () => void) => void;
}

/** The files served under `/_porthole/ui/vendor/`, from the installed packages. */
function vendorFiles(): Record<string, string> {
  const require = createRequire(import.meta.url);
  return {
    'preact.mjs': join(dirname(require.resolve('preact')), 'preact.module.js'),
    'hooks.mjs': join(dirname(require.resolve('preact/hooks')), 'hooks.module.js'),
    'htm.mjs': join(dirname(require.resolve('htm')), 'htm.module.js'),
  };
}

/** A request handler for the dashboard's paths; false for every other path. */
export function createDashboard(opts: DashboardOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const uiDir = opts.uiDir ?? fileURLToPath(new URL('../../dashboard/', import.meta.url));
  const vendor = vendorFiles();
  return (req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const query = q === -1 ? '' : url.slice(q);
    const page = path === '/_porthole' || path === DASHBOARD_PATH;
    const action = path === '/_porthole/login' || path === '/_porthole/logout';
    const file = path.startsWith(UI);
    if (!page && !action && !file) return false;

    const started = performance.now();
    res.once('close', () =>
      emit('request', {
        gateway: opts.gatewayId,
        app: null,
        method: req.method ?? 'GET',
        path: url,
        status: res.statusCode,
        ms: Math.round(performance.now() - started),
        ...(res.getHeader('X-Porthole-Error') ? { code: String(res.getHeader('X-Porthole-Error')) } : {}),
      }),
    );
    const guard = opts.guard();
    const badHost = checkAdminHost(req.headers.host, guard.hosts);
    if (badHost) return sendText(res, badHost), true;
    const secure = opts.secure ? opts.secure(req) : (req.socket as TLSSocket).encrypted === true;

    if (path === '/_porthole') {
      res.writeHead(308, { Location: `${DASHBOARD_PATH}${query}`, 'Cache-Control': 'no-store' });
      return res.end(), true;
    }
    if (file) {
      if (req.method !== 'GET' && req.method !== 'HEAD') return sendText(res, new BadRequestError(`${req.method} is not allowed on ${path} (use GET)`)), true;
      void serveFile(req, res, path.slice(UI.length), uiDir, vendor);
      return true;
    }
    if (path === '/_porthole/login') {
      if (req.method !== 'POST') return sendText(res, new BadRequestError('/_porthole/login takes POST (the login form)')), true;
      const foreign = foreignOrigin(req, 'login');
      if (foreign) return sendText(res, foreign), true;
      readForm(req, res, 'dashboard: a login form')
        .then((form) => {
          const token = form.get('token')?.trim() ?? '';
          if (!token || !sameToken(token, guard.token)) {
            const err = new UnauthorizedError('dashboard: that is not the admin token');
            return sendPage(res, 401, loginPage('That is not the admin token. It is in the data directory’s private/token file (porthole serve printed it at first start).'), err);
          }
          startSession(res, opts.sessions.create(), secure);
        })
        .catch((err: PortholeError) => sendPage(res, err.status, loginPage(err.message), err));
      return true;
    }
    if (path === '/_porthole/logout') {
      if (req.method !== 'POST') return sendText(res, new BadRequestError('/_porthole/logout takes POST')), true;
      // Another site's form arrives without the SameSite=Lax cookie, so no session is found
      // below; answering it with the cleared cookie would log the admin out from any page.
      const foreign = foreignOrigin(req, 'logout');
      if (foreign) return sendText(res, foreign), true;
      const session = opts.sessions.of(req);
      if (!session) {
        res.writeHead(204, { 'Set-Cookie': clearedCookie(secure), 'Cache-Control': 'no-store' });
        return res.end(), true;
      }
      if (!Sessions.csrfMatches(req, session)) return sendText(res, new CsrfError('dashboard: logout needs the X-Porthole-CSRF header')), true;
      opts.sessions.end(session.id);
      res.writeHead(204, { 'Set-Cookie': clearedCookie(secure), 'Cache-Control': 'no-store' });
      return res.end(), true;
    }
    // The page.
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendText(res, new BadRequestError(`${req.method} is not allowed on ${DASHBOARD_PATH} (use GET)`)), true;
    const login = new URLSearchParams(query).get('login');
    if (login !== null) {
      const session = opts.sessions.redeem(login);
      if (!session) {
        const err = new UnauthorizedError('dashboard: the login link was used already or has expired');
        sendPage(res, 401, loginPage('This login link was used already or has expired (a link works once, for 24 hours). Paste the admin token below, or run “porthole dashboard” for a new link.'), err);
        return true;
      }
      startSession(res, session, secure);
      return true;
    }
    const session = opts.sessions.of(req);
    // An admin user's login leads to a dashboard session: a page load only (the CSRF
    // secret then comes with the page, as after a token login), never an admin call.
    const admin = !session && req.headers['sec-fetch-dest'] === 'document' ? opts.adminUser?.(req) : undefined;
    if (admin !== undefined) {
      emit('auth', { action: 'login', user: admin, client: req.socket.remoteAddress, host: 'dashboard', gateway: opts.gatewayId });
      const started = opts.sessions.create();
      opts.boundToLogin?.(req, () => opts.sessions.end(started.id));
      startSession(res, started, secure);
      return true;
    }
    if (!session) {
      const ended = Sessions.hasCookie(req) ? 'Your session has ended: log in again.' : undefined;
      sendPage(res, 200, loginPage(ended));
      return true;
    }
    // The CSRF secret goes only into a top-level page, never to a fetch (see admin/session.ts).
    if (req.headers['sec-fetch-dest'] !== 'document') {
      sendPage(res, 200, loginPage('This browser did not say the request is a page load (Sec-Fetch-Dest: document). Browsers send it only to https:// pages and to this machine: open the dashboard over HTTPS (the gateway’s tls setting, or a TLS proxy), or at localhost.'));
      return true;
    }
    opts.sessions.touch(session);
    sendPage(res, 200, shellPage(session));
    return true;
  };
}

/** Sets the cookie and sends the browser to the dashboard (so the login link leaves the address bar). */
function startSession(res: ServerResponse, session: Session, secure: boolean): void {
  res.writeHead(303, { Location: DASHBOARD_PATH, 'Set-Cookie': sessionCookie(session, secure), ...PAGE_HEADERS });
  res.end();
}

/** A login or logout posted from another origin (login CSRF, logout CSRF) is refused. */
function foreignOrigin(req: IncomingMessage, what: 'login' | 'logout'): PortholeError | null {
  // Under the pages' `Referrer-Policy: no-referrer` a browser posts the form with `Origin: null`; its own Sec-Fetch-Site tells where from.
  if (req.headers.origin === 'null' && req.headers['sec-fetch-site'] === 'same-origin') return null;
  return fromOtherOrigin(req) ? new CsrfError(`dashboard: a ${what} posted from ${req.headers.origin} is refused`) : null;
}

async function serveFile(req: IncomingMessage, res: ServerResponse, rel: string, uiDir: string, vendor: Record<string, string>): Promise<void> {
  let name: string;
  try {
    name = decodeURIComponent(rel);
  } catch {
    return sendText(res, new BadRequestError('dashboard: the file name is not valid percent-encoding'));
  }
  const parts = name.split('/');
  // No dot files, no `..`, no empty segment, no backslash: only the folder's own files.
  const safe = parts.every((p) => p !== '' && !p.startsWith('.') && !p.includes('\\') && !p.includes('\0'));
  let file: string | undefined;
  if (safe && parts.length === 2 && parts[0] === 'vendor') file = Object.hasOwn(vendor, parts[1]) ? vendor[parts[1]] : undefined;
  else if (safe && TYPES[extname(name)]) file = join(uiDir, ...parts);
  if (file && !file.startsWith(uiDir.endsWith(sep) ? uiDir : uiDir + sep) && !Object.values(vendor).includes(file)) file = undefined;
  try {
    if (!file) throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
    const st = await stat(file);
    if (!st.isFile()) throw Object.assign(new Error('not a file'), { code: 'ENOENT' });
    const etag = `"${st.size.toString(36)}-${Math.floor(st.mtimeMs).toString(36)}"`;
    const headers = {
      'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
      'Cache-Control': 'no-cache',
      ETag: etag,
      'X-Content-Type-Options': 'nosniff',
      'Cross-Origin-Resource-Policy': 'same-origin',
    };
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, headers);
      return void res.end();
    }
    const body = await readFile(file);
    res.writeHead(200, { ...headers, 'Content-Length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
  } catch {
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
    res.end(`dashboard: no file ${UI}${rel}\n`);
  }
}

function sendText(res: ServerResponse, err: PortholeError): void {
  const body = `${err.message}\n`;
  res.writeHead(err.status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'X-Porthole-Error': err.code, 'Cache-Control': 'no-store' });
  res.end(body);
}

function sendPage(res: ServerResponse, status: number, html: string, err?: PortholeError): void {
  if (res.headersSent) return void res.end();
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': Buffer.byteLength(html),
    ...PAGE_HEADERS,
    ...(err ? { 'X-Porthole-Error': err.code } : {}),
  });
  res.end(html);
}

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function head(extra = ''): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${extra}<title>Porthole</title>
<link rel="stylesheet" href="${UI}style.css">`;
}

/** The login page: works without JavaScript. */
export function loginPage(error?: string): string {
  return `${head()}
</head>
<body class="login-page">
<main>
<form class="login" method="post" action="/_porthole/login">
<h1>Porthole</h1>
<p>Open the login link <code>porthole serve</code> printed, or paste the admin token.</p>
${error ? `<p class="error" role="alert">${escape(error)}</p>\n` : ''}<label for="token">Admin token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Log in</button>
</form>
</main>
</body>
</html>
`;
}

/** The dashboard's shell: the session's CSRF secret, the import map and the page's module. */
export function shellPage(session: Session): string {
  return `${head(`<meta name="porthole-csrf" content="${escape(session.csrf)}">\n`)}
<script type="importmap">${IMPORT_MAP}</script>
<script type="module" src="${UI}app.js"></script>
</head>
<body>
<div id="app"></div>
</body>
</html>
`;
}
