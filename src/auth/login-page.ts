/**
 * The gateway's login page (`auth: login`): server-rendered, no script, its
 * one inline style allowed by hash, never framed.
 */
import { createHash } from 'node:crypto';

const STYLE = `body{font:16px/1.5 system-ui,sans-serif;max-width:22em;margin:5em auto;padding:0 1em;color:#222}
h1{font-size:1.4em}label{display:block;margin-top:.8em}input{width:100%;box-sizing:border-box;padding:.4em;font:inherit}
button{margin-top:1.2em;padding:.4em 1.2em;font:inherit}.error{color:#a00}`;
const STYLE_HASH = createHash('sha256').update(STYLE).digest('base64');

/** The page's headers: `formTo` adds the origin a successful login is sent on to (an app's own host name). */
export function pageHeaders(formTo?: string): Record<string, string> {
  return {
    'Content-Type': 'text/html; charset=utf-8',
    // Chromium applies form-action to the redirects that follow a POST too: the app host a login hands off to must be allowed.
    'Content-Security-Policy': `default-src 'none'; style-src 'sha256-${STYLE_HASH}'; form-action 'self'${formTo ? ` ${formTo}` : ''}; frame-ancestors 'none'; base-uri 'none'`,
    'X-Frame-Options': 'DENY',
    // Not no-referrer: Chromium then sends `Origin: null` with the form's POST, which the
    // login-CSRF check must refuse. same-origin keeps the page's URL (its `next`) from other sites.
    'Referrer-Policy': 'same-origin',
    'X-Content-Type-Options': 'nosniff',
    'Cache-Control': 'no-store',
  };
}

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

export function loginPage(opts: { next: string; host?: string; nonce?: string; error?: string }): string {
  return page(
    'Log in',
    `<form method="post" action="/_porthole/auth/login">
<h1>Log in</h1>
${opts.error ? `<p class="error" role="alert">${escape(opts.error)}</p>\n` : ''}<input type="hidden" name="next" value="${escape(opts.next)}">
${opts.host ? `<input type="hidden" name="host" value="${escape(opts.host)}">\n` : ''}${opts.host && opts.nonce ? `<input type="hidden" name="nonce" value="${escape(opts.nonce)}">\n` : ''}<label for="user">User</label>
<input id="user" name="user" autocomplete="username" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Log in</button>
</form>`,
  );
}

export function logoutPage(loggedIn: boolean): string {
  return page(
    'Log out',
    loggedIn
      ? `<form method="post" action="/_porthole/auth/logout">
<h1>Log out</h1>
<p>This ends your session on every app of this gateway.</p>
<button type="submit">Log out</button>
</form>`
      : `<h1>Logged out</h1>
<p><a href="/_porthole/auth/login">Log in again</a></p>`,
  );
}

export function messagePage(title: string, message: string): string {
  return page(title, `<h1>${escape(title)}</h1>\n<p>${escape(message)}</p>\n<p><a href="/_porthole/auth/login">Log in</a></p>`);
}
