/**
 * The page a browser gets while an app wakes (`wake_on_request`): the app's
 * name and state, and a reload every second until the app answers with its
 * own page. No script: the reload is a `<meta http-equiv="refresh">` (which
 * CSP does not govern), and the one inline style is allowed by its hash, as
 * on the login page.
 */
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { AppWakingError } from '../errors.js';

/** Seconds between reloads; also the 503's Retry-After. */
export const WAKING_RELOAD_S = 1;

const STYLE = `body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:4em auto;padding:0 1em;color:#222}
h1{font-size:1.4em}code{background:#f2f2f2;padding:.1em .3em;border-radius:3px}.state{color:#555}`;
const STYLE_HASH = createHash('sha256').update(STYLE).digest('base64');

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function wakingPage(app: string, state: string): string {
  const name = escapeHtml(app);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="${WAKING_RELOAD_S}">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>${name} is starting</title>
<style>${STYLE}</style></head>
<body><h1><code>${name}</code> is starting</h1>
<p class="state">State: <strong id="state">${escapeHtml(state)}</strong></p>
<p>It was asleep and a request woke it. This page reloads by itself and shows the app as soon as it is ready.</p>
</body></html>
`;
}

/** 503 with the waiting page; the request's `code` is the error's (PH_ERR_APP_WAKING). */
export function sendWakingPage(res: ServerResponse, err: AppWakingError): void {
  if (res.headersSent || res.destroyed) return void res.destroy();
  const body = wakingPage(err.app ?? '', err.state);
  res.writeHead(err.status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    'Retry-After': String(WAKING_RELOAD_S),
    'Content-Security-Policy': `default-src 'none'; style-src 'sha256-${STYLE_HASH}'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'`,
    'X-Content-Type-Options': 'nosniff',
    'X-Porthole-Error': err.code,
  });
  res.end(body);
}
