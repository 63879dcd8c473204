/**
 * What a client gets when something fails: an HTML page (templated, per app
 * or global), JSON when it asks for JSON, or — for a WebSocket client, which
 * cannot read an HTTP status from a failed handshake — a completed handshake
 * followed by a close frame whose code and reason say what happened.
 */
import crypto from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { PortholeError } from '../errors.js';
import { closeFrame } from './frames.js';

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/**
 * One-shot hashing (Node 20.12 on) is a third of the cost of a Hash object, and every proxied
 * handshake computes this key once; older Node 20 releases build the object.
 */
const sha1Base64: (text: string) => string =
  typeof crypto.hash === 'function' ? (text) => crypto.hash('sha1', text, 'base64') : (text) => crypto.createHash('sha1').update(text).digest('base64');

export function acceptKey(key: string): string {
  return sha1Base64(key + WS_GUID);
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  413: 'Content Too Large',
  421: 'Misdirected Request',
  426: 'Upgrade Required',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const DEFAULT_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>\${PORTHOLE_STATUS} \${PORTHOLE_TITLE}</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:4em auto;padding:0 1em;color:#222}
h1{font-size:1.4em}code{background:#f2f2f2;padding:.1em .3em;border-radius:3px}</style></head>
<body><h1>\${PORTHOLE_STATUS} \${PORTHOLE_TITLE}</h1>
<p>\${PORTHOLE_MESSAGE}</p>
<p><small>Error <code>\${PORTHOLE_CODE}</code> from Porthole.</small></p>
</body></html>
`;

export interface PageVars {
  status: number;
  code: string;
  message: string;
  app?: string;
}

/**
 * Fills `${VAR}` in a template: `PORTHOLE_STATUS`, `PORTHOLE_TITLE`,
 * `PORTHOLE_CODE`, `PORTHOLE_MESSAGE`, `PORTHOLE_APP`, then the environment
 * (for an invite link or a contact address). Every value is HTML-escaped;
 * an unknown variable becomes empty.
 */
export function renderPage(template: string | undefined, vars: PageVars, env: NodeJS.ProcessEnv = process.env): string {
  const own: Record<string, string> = {
    PORTHOLE_STATUS: String(vars.status),
    PORTHOLE_TITLE: (Object.hasOwn(STATUS_TEXT, vars.status) && STATUS_TEXT[vars.status]) || 'Error',
    PORTHOLE_CODE: vars.code,
    PORTHOLE_MESSAGE: vars.message,
    PORTHOLE_APP: vars.app ?? '',
  };
  // Own keys only: `${toString}` or `${__proto__}` once read Object.prototype and made the
  // gateway exit on the first error page it rendered (issue 8, item 6).
  const lookup = (name: string): string => {
    const v = Object.hasOwn(own, name) ? own[name] : Object.hasOwn(env, name) ? env[name] : undefined;
    return typeof v === 'string' ? v : '';
  };
  return (template ?? DEFAULT_PAGE).replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => escapeHtml(lookup(name)));
}

/** True when the client prefers JSON to HTML (an API client, `fetch` with Accept: application/json). */
export function wantsJson(accept: string | undefined): boolean {
  if (!accept) return false;
  const a = accept.toLowerCase();
  const json = a.indexOf('json');
  if (json === -1) return false;
  const html = a.indexOf('text/html');
  return html === -1 || json < html;
}

export function sendHttpError(res: ServerResponse, err: PortholeError, accept: string | undefined, template?: string, extraHeaders: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const json = wantsJson(accept);
  const body = json
    ? JSON.stringify({ error: { code: err.code, status: err.status, message: err.message, ...(err.app ? { app: err.app } : {}) } })
    : renderPage(template, { status: err.status, code: err.code, message: err.message, app: err.app });
  res.writeHead(err.status, {
    'Content-Type': json ? 'application/json' : 'text/html; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    'X-Porthole-Error': err.code,
    ...extraHeaders,
  });
  res.end(body);
}

/** Writes a whole HTTP response on a raw socket (an upgrade request we will not upgrade), then closes it. */
export function writeRawResponse(socket: Duplex, status: number, headers: Record<string, string>, body: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const buf = Buffer.from(body);
  let head = `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\n`;
  for (const [k, v] of Object.entries({ ...headers, 'Content-Length': String(buf.length), Connection: 'close' })) head += `${k}: ${v}\r\n`;
  socket.end(Buffer.concat([Buffer.from(`${head}\r\n`), buf]));
  discardUntilClosed(socket, false);
}

/**
 * For a connection we answer and close without upgrading it: whatever the
 * client still sends is read and dropped — bytes left unread would keep its
 * FIN from being seen, and the socket (half-open allowed) would stay open for
 * good (test/gateway/refused-upgrade-fd.test.ts) — and a client that never
 * closes is cut `graceMs` after our answer (or at once when `afterAnswer` is
 * false: the answer is small and already queued).
 */
export function discardUntilClosed(socket: Duplex, afterAnswer: boolean, graceMs = 5000): void {
  socket.resume();
  const cut = () => {
    const timer = setTimeout(() => socket.destroy(), graceMs);
    timer.unref?.();
    socket.once('close', () => clearTimeout(timer));
  };
  if (!afterAnswer || socket.writableFinished) cut();
  else socket.once('finish', cut);
}

export function sendRawHttpError(socket: Duplex, err: PortholeError, accept: string | undefined, template?: string, extraHeaders: Record<string, string> = {}): void {
  const json = wantsJson(accept);
  const body = json
    ? JSON.stringify({ error: { code: err.code, status: err.status, message: err.message } })
    : renderPage(template, { status: err.status, code: err.code, message: err.message, app: err.app });
  writeRawResponse(socket, err.status, { 'Content-Type': json ? 'application/json' : 'text/html; charset=utf-8', 'X-Porthole-Error': err.code, ...extraHeaders }, body);
}

/**
 * Completes the client's handshake ourselves, then closes with a code and a
 * reason, so a browser sees "1014: app x: upstream refused" instead of a bare
 * 1006. Echoes the first offered subprotocol: a browser that offered one fails
 * a handshake that selects none, and would never see the close frame.
 */
export function acceptAndClose(socket: Duplex, key: string, offeredProtocols: string | undefined, code: number, reason: string, graceMs = 2000): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const protocol = offeredProtocols?.split(',')[0]?.trim();
  const head =
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${acceptKey(key)}\r\n` +
    (protocol ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : '') +
    '\r\n';
  socket.write(head);
  socket.write(closeFrame(code, reason, false));
  // The client answers with its own close frame and waits for us to close TCP (RFC 6455 §7.1.1);
  // anything else it sends meanwhile is discarded.
  const done = () => {
    clearTimeout(timer);
    socket.end();
  };
  const timer = setTimeout(() => socket.destroy(), graceMs);
  timer.unref?.();
  socket.on('data', () => done());
  socket.once('end', () => done());
  socket.once('close', () => clearTimeout(timer));
  socket.resume();
}
