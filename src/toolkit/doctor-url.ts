/**
 * Step 1 of `porthole doctor`: is the URL one a browser can open, from the
 * page that will open it? `http(s)://` is read as `ws(s)://`; a `ws://` socket
 * for an `https://` page is mixed content, which browsers refuse outright
 * (the seed's "1006 from localhost to a remote ws://" story).
 */
import { makeStep, type DoctorStep } from './doctor-step.js';

export interface UrlCheck {
  /** The ws:// or wss:// URL to test; undefined when the input is unusable. */
  url: URL | undefined;
  step: DoctorStep;
  /** The page's origin (`https://app.example.com`), when --page-origin was given and valid. */
  pageOrigin: string | undefined;
}

/** Parses what the user typed; null when it is not a URL the doctor can test. */
export function parseTarget(input: string): { url: URL; notes: string[] } | { error: string } {
  const notes: string[] = [];
  let text = input.trim();
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    text = `ws://${text}`;
    notes.push('no scheme given: tested as ws://');
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { error: `${JSON.stringify(input)} is not a URL` };
  }
  if (url.protocol === 'http:' || url.protocol === 'https:') {
    const from = url.protocol;
    url.protocol = from === 'http:' ? 'ws:' : 'wss:';
    notes.push(`${from}// is tested as ${url.protocol}// (the same host and port, with a WebSocket upgrade)`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') return { error: `${url.protocol}// is not a WebSocket scheme: use ws://, wss://, http:// or https://` };
  if (!url.hostname) return { error: 'the URL has no host' };
  if (url.hash) {
    // RFC 6455 §3: a WebSocket URI has no fragment; browsers strip it (older ones throw).
    notes.push(`the #fragment (${url.hash}) is not part of a WebSocket URL and was dropped`);
    url.hash = '';
  }
  return { url, notes };
}

export function checkUrl(input: string, pageOriginInput: string | undefined): UrlCheck {
  const parsed = parseTarget(input);
  if ('error' in parsed) {
    return {
      url: undefined,
      pageOrigin: undefined,
      step: makeStep('url', 'fail', parsed.error, { fix: 'pass a URL like ws://127.0.0.1:8080/ws or wss://example.com/socket' }),
    };
  }
  const { url, notes } = parsed;
  const warnings: string[] = [];
  const problems: { detail: string; explanation: string; fix: string }[] = [];

  if (url.protocol === 'ws:' && url.port === '443') warnings.push('ws:// on port 443, which usually speaks TLS: did you mean wss://?');
  if (url.protocol === 'wss:' && url.port === '80') warnings.push('wss:// on port 80, which usually speaks plain HTTP: did you mean ws://?');

  let pageOrigin: string | undefined;
  if (pageOriginInput !== undefined) {
    let page: URL | undefined;
    try {
      page = new URL(pageOriginInput);
    } catch {
      page = undefined;
    }
    if (!page || (page.protocol !== 'http:' && page.protocol !== 'https:')) {
      problems.push({
        detail: `--page-origin ${pageOriginInput} is not an http(s) URL`,
        explanation: 'The page origin is where the page that opens the socket was loaded from.',
        fix: 'pass it like --page-origin https://app.example.com',
      });
    } else {
      pageOrigin = page.origin;
      if (page.protocol === 'https:' && url.protocol === 'ws:') {
        problems.push({
          detail: `mixed content: a page on ${pageOrigin} may not open ${url.protocol}//${url.host}`,
          explanation:
            'Browsers refuse an unencrypted ws:// socket from a page loaded over https:// — Chrome throws "An insecure WebSocket connection may not be initiated from a page loaded over HTTPS", ' +
            'other browsers fail it as 1006. No server or proxy setting changes that: the socket must be wss://, or come from the page’s own origin.',
          fix:
            `serve the socket as wss://${url.host}${url.pathname}, or put it behind the page's own origin (e.g. Porthole in front of both) ` +
            "and build the URL from the page: `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/app/path`",
        });
      } else {
        const socketOrigin = `${url.protocol === 'wss:' ? 'https' : 'http'}://${url.host}`;
        if (socketOrigin !== pageOrigin) notes.push(`cross-origin from ${pageOrigin}: a browser sends Origin: ${pageOrigin}`);
      }
    }
  }

  const extra = { data: { url: url.href, ...(pageOrigin ? { pageOrigin } : {}) } };
  if (problems.length) {
    const [first, ...rest] = problems;
    return {
      url,
      pageOrigin,
      step: makeStep('url', 'fail', [first.detail, ...rest.map((p) => p.detail)].join('; '), {
        explanation: [first.explanation, ...notes, ...warnings].join(' '),
        fix: first.fix,
        ...extra,
      }),
    };
  }
  const detail = [url.href, ...notes, ...warnings].join('; ');
  return { url, pageOrigin, step: makeStep('url', warnings.length ? 'warn' : 'pass', detail, extra) };
}
