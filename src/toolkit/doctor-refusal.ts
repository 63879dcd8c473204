/**
 * Why a WebSocket handshake did not get `101 Switching Protocols`, read from
 * the answer itself (status, Server, Via, X-Porthole-Error, the body) and,
 * where one more request settles it, from a probe: the same handshake with
 * the server's own Origin, with ngrok's skip header, with the trailing slash
 * toggled, or at a path that cannot exist.
 *
 * The causes are the ones in the seed write-ups: a proxy that drops
 * `Upgrade` (nginx without `proxy_http_version 1.1`), an Origin check behind
 * a tunnel ("Cross origin websockets not allowed"), ngrok's interstitial page,
 * a backend that is down (502/503/504), a wrong path.
 */
import type { Duplex } from 'node:stream';
import { headerValue, type UpgradeFailure, type UpgradeRequest, type UpgradeResponse } from './doctor-http.js';
import { printableBody } from './payload.js';

export interface Attempt {
  request: UpgradeRequest;
  result: UpgradeResponse | UpgradeFailure;
  /** Open after a 101; the owner of the attempt closes it. */
  socket?: Duplex;
}

export interface ProbeChange {
  path?: string;
  origin?: string;
  addHeaders?: [string, string][];
}

/** One more handshake on a fresh connection, with a change. */
export type Probe = (change: ProbeChange) => Promise<Attempt | { error: string }>;

export interface RefusalContext {
  url: URL;
  /** The Origin the handshake carried, if any. */
  originSent: string | undefined;
  /** The Sec-WebSocket-Version the handshake carried (13 unless -H changed it). */
  versionSent: string;
  /** The Host the handshake carried (the URL's unless -H changed it). */
  hostSent?: string;
  probe: Probe;
}

/** Stable names for the causes, for `--json` and tests (`data.cause`). */
export type RefusalCause =
  | 'upgrade-dropped'
  | 'not-websocket'
  | 'wrong-path'
  | 'origin'
  | 'ngrok-interstitial'
  | 'ngrok-error'
  | 'redirect'
  | 'upgrade-headers-missing'
  | 'version'
  | 'tls-expected'
  | 'backend-down'
  | 'auth'
  | 'forbidden'
  | 'porthole'
  | 'host-refused'
  | 'server-error'
  | 'refused'
  | 'no-answer'
  | 'not-http';

export interface Refusal {
  cause: RefusalCause;
  /** One line: what came back. */
  detail: string;
  explanation: string;
  fix?: string;
  /** Probes made and what they got, one line each. */
  probes: string[];
  /** A probe that got 101: the doctor carries on over its connection. */
  continueWith?: Attempt & { socket: Duplex; result: UpgradeResponse };
}

/** What nginx needs to pass an upgrade (https://nginx.org/en/docs/http/websocket.html). */
export const NGINX_UPGRADE_LINES = ['proxy_http_version 1.1;', 'proxy_set_header Upgrade $http_upgrade;', 'proxy_set_header Connection "upgrade";'];

const NGROK_INTERSTITIAL = /You are about to visit|ngrok-skip-browser-warning|ERR_NGROK_6024/i;
const NGROK_CODE = /ERR_NGROK_(\d+)/;
const ORIGIN_WORDING = /origin|cross[- ]?site|CORS/i;

/** The proxy that answered, if the answer names one. */
export function detectProxy(res: Pick<UpgradeResponse, 'headers'>): { name: string; evidence: string } | undefined {
  const server = headerValue(res, 'server');
  if (server) {
    const known: [RegExp, string][] = [
      [/nginx|openresty|tengine/i, 'nginx'],
      [/apache/i, 'Apache'],
      [/envoy/i, 'Envoy'],
      [/caddy/i, 'Caddy'],
      [/cloudflare/i, 'Cloudflare'],
      [/awselb|elb/i, 'AWS ELB'],
      [/haproxy/i, 'HAProxy'],
      [/varnish/i, 'Varnish'],
      [/litespeed/i, 'LiteSpeed'],
    ];
    for (const [re, name] of known) if (re.test(server)) return { name, evidence: `Server: ${server}` };
  }
  const via = headerValue(res, 'via');
  if (via) return { name: 'a proxy', evidence: `Via: ${via}` };
  const porthole = headerValue(res, 'x-porthole-error');
  if (porthole) return { name: 'Porthole', evidence: `X-Porthole-Error: ${porthole}` };
  return undefined;
}

/** `HTTP/1.1 200 OK (nginx/1.22.1)` */
export function statusLine(res: UpgradeResponse): string {
  const server = headerValue(res, 'server');
  return `HTTP/${res.httpVersion} ${res.status}${res.reason ? ` ${res.reason}` : ''}${server ? ` from ${server}` : ''}`;
}

function bodyText(res: UpgradeResponse): string {
  return res.body.toString('utf8');
}

function isHtml(res: UpgradeResponse): boolean {
  return /text\/html/i.test(headerValue(res, 'content-type') ?? '') || /^\s*<(!doctype|html)/i.test(bodyText(res));
}

/** The first words of a body, for quoting in an explanation. */
function quote(res: UpgradeResponse, max = 80): string {
  const text = printableBody(res.body).replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim();
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** The server's own origin, as a browser on a page it served would send it. */
export function ownOrigin(url: URL): string {
  return `${url.protocol === 'wss:' ? 'https' : 'http'}://${url.host}`;
}

function upgradeDroppedFix(proxy: string | undefined, path: string): string {
  const nginx = `in the nginx location that proxies ${path}:\n    ${NGINX_UPGRADE_LINES.join('\n    ')}`;
  if (proxy === 'Apache')
    return 'Apache: load mod_proxy_wstunnel and add upgrade=websocket to the ProxyPass line (2.4.47+), e.g. ProxyPass /ws http://backend/ws upgrade=websocket';
  if (proxy && proxy !== 'nginx' && proxy !== 'a proxy')
    return `make ${proxy} forward Upgrade and Connection to the backend over HTTP/1.1; for nginx that is, ${nginx}`;
  return `${nginx}\n(or put Porthole in front: it forwards upgrades untouched)`;
}

function retryLine(what: string, a: Attempt | { error: string }): string {
  if ('error' in a) return `* retried ${what}: ${a.error}`;
  if ('status' in a.result) return `* retried ${what}: HTTP/${a.result.httpVersion} ${a.result.status} ${a.result.reason}`.trimEnd();
  return `* retried ${what}: ${describeFailure(a.result)}`;
}

function got101(a: Attempt | { error: string }): a is Attempt & { socket: Duplex; result: UpgradeResponse } {
  return !('error' in a) && 'status' in a.result && a.result.status === 101 && a.socket !== undefined;
}

function discard(a: Attempt | { error: string }): void {
  if (!('error' in a)) a.socket?.destroy();
}

export function describeFailure(f: UpgradeFailure): string {
  switch (f.kind) {
    case 'timeout':
      return f.received.length ? `an incomplete answer (${f.received.length} bytes) and then silence` : 'no answer';
    case 'closed':
      return `the connection was ${f.how === 'fin' ? 'closed' : `reset${f.errorCode ? ` (${f.errorCode})` : ''}`} after ${f.received.length} bytes`;
    case 'not-http':
      return `an answer that is not HTTP (${f.received.length} bytes)`;
    case 'head-too-large':
      return 'a response head over 64 KiB';
  }
}

/** Explains an attempt that got no HTTP answer at all. */
export function diagnoseFailure(f: UpgradeFailure, url: URL, timeoutMs: number, speaksTls = false): Refusal {
  const tlsPort = url.protocol === 'ws:';
  const wss = `wss://${url.host}${url.pathname}${url.search}`;
  if (speaksTls)
    return {
      cause: 'tls-expected',
      detail: `${f.kind === 'timeout' ? 'no answer to the upgrade' : 'the server hung up on the upgrade'}: this port speaks TLS`,
      explanation: `The plain-HTTP handshake got ${describeFailure(f)}, and a TLS handshake on the same port succeeded: the server wants wss://. (Browsers fail ws:// to a TLS port with 1006.)`,
      fix: `use ${wss}`,
      probes: ['* a TLS handshake on the same port: succeeded'],
    };
  if (f.kind === 'not-http') {
    const tlsAlert = f.received[0] === 0x15 && f.received[1] === 0x03;
    return {
      cause: tlsAlert ? 'tls-expected' : 'not-http',
      detail: tlsAlert ? 'the server answered with a TLS alert, not HTTP' : `the server answered with bytes that are not HTTP: ${JSON.stringify(printableBody(f.received.subarray(0, 40)))}`,
      explanation: tlsAlert
        ? 'Bytes 15 03 start a TLS record: this port speaks TLS and the doctor spoke plain HTTP to it.'
        : 'Whatever listens on this port does not speak HTTP, so it cannot take a WebSocket handshake (a database, SSH, a raw TCP service, or a VNC server without websockify).',
      fix: tlsAlert ? `use ${wss}` : 'point the URL at the WebSocket server’s port (for VNC: websockify’s port, not 5900)',
      probes: [],
    };
  }
  if (f.kind === 'head-too-large')
    return { cause: 'not-http', detail: 'the answer had no end of headers within 64 KiB', explanation: 'Whatever answered is not a well-behaved HTTP server.', probes: [] };
  if (f.kind === 'timeout')
    return {
      cause: 'no-answer',
      detail: `no answer to the upgrade within ${timeoutMs / 1000} s`,
      explanation:
        'The server accepted the TCP connection but said nothing to the handshake. ' +
        (tlsPort ? 'If this port speaks TLS it waits for a ClientHello that never comes: try wss://. ' : '') +
        'Otherwise something in between holds the request (a proxy waiting for a backend that does not answer, a WAF), or the server is stuck.',
      fix: tlsPort ? `try wss://${url.host}${url.pathname}${url.search}, or raise --timeout` : 'raise --timeout; check the server’s logs for the request',
      probes: [],
    };
  return {
    cause: 'no-answer',
    detail: `the server ${f.how === 'fin' ? 'closed' : 'reset'} the connection without answering the upgrade`,
    explanation:
      'Nothing came back, not even an error page. Servers do this when an upgrade handler matches nothing and destroys the socket ' +
      '(a Node server whose upgrade handler calls socket.destroy() for unknown paths, as in the custom-server write-up), ' +
      (tlsPort ? 'when the port speaks TLS and got plain HTTP (try wss://), ' : '') +
      'or when a firewall or proxy cuts WebSocket requests.',
    fix: 'check the path against the server’s upgrade handler, and its logs for the request',
    probes: [],
  };
}

/** Explains a non-101 answer; may probe once or twice. */
export async function diagnoseRefusal(res: UpgradeResponse, ctx: RefusalContext): Promise<Refusal> {
  const body = bodyText(res);
  const proxy = detectProxy(res);
  const path = ctx.url.pathname;
  const line = statusLine(res);
  const probes: string[] = [];
  const phError = headerValue(res, 'x-porthole-error');
  const ngrokCode = NGROK_CODE.exec(headerValue(res, 'ngrok-error-code') ?? '')?.[0] ?? NGROK_CODE.exec(body)?.[0];

  // ngrok first: its pages come with any status (200 for the interstitial, 404 for an offline endpoint).
  if (NGROK_INTERSTITIAL.test(body) || ngrokCode === 'ERR_NGROK_6024') {
    const retry = await ctx.probe({ addHeaders: [['ngrok-skip-browser-warning', 'true']] });
    probes.push(retryLine('with ngrok-skip-browser-warning: true', retry));
    const worked = got101(retry);
    if (!worked) discard(retry);
    return {
      cause: 'ngrok-interstitial',
      detail: `${line}: ngrok’s "You are about to visit" interstitial page, not your server`,
      explanation:
        'ngrok’s free tier answers browser-like requests with an interstitial warning page (ERR_NGROK_6024) instead of passing them to the tunnel, ' +
        'so the upgrade never reaches the app. A page’s WebSocket cannot add headers, so browsers cannot skip it themselves. ' +
        (worked ? 'With the skip header the same handshake got 101.' : 'The retry with the skip header did not get 101 either: see its answer.'),
      fix:
        'send the header ngrok-skip-browser-warning: true with the upgrade, from a proxy in front of the tunnel:\n' +
        '    Porthole: set_headers: { ngrok-skip-browser-warning: "true" }\n' +
        '    nginx:    proxy_set_header ngrok-skip-browser-warning "true";\n' +
        '(or use a paid ngrok plan / your own domain)',
      probes,
      continueWith: worked ? retry : undefined,
    };
  }
  if (ngrokCode) {
    const n = ngrokCode.slice('ERR_NGROK_'.length);
    const meaning =
      n === '3200'
        ? 'the tunnel is offline: no ngrok agent is connected for this address (it stopped, or a free URL changed when it restarted)'
        : n === '8012'
          ? 'the ngrok agent is running but could not connect to the local service it forwards to (the app is down or on another port)'
          : `ngrok reports ${ngrokCode}`;
    return {
      cause: 'ngrok-error',
      detail: `${line} with ${ngrokCode}`,
      explanation: `The answer comes from ngrok, not from your server: ${meaning}.`,
      fix: n === '3200' ? 'start the tunnel (ngrok http PORT) and use the URL it prints' : n === '8012' ? 'start the app, or point ngrok at the port it listens on' : `see https://ngrok.com/docs/errors/err_ngrok_${n}`,
      probes,
    };
  }

  const s = res.status;
  if (s === 403 && (ORIGIN_WORDING.test(body) || phError === 'PH_ERR_ORIGIN_REFUSED' || ctx.originSent !== undefined)) {
    const own = ownOrigin(ctx.url);
    if (ctx.originSent?.toLowerCase() !== own.toLowerCase()) {
      const retry = await ctx.probe({ origin: own });
      probes.push(retryLine(`with Origin: ${own}`, retry));
      if (got101(retry)) {
        const sent = ctx.originSent === undefined ? 'a handshake without Origin' : `Origin: ${ctx.originSent}`;
        return {
          cause: 'origin',
          detail: `${line}${body.trim() ? ` "${quote(res)}"` : ''}: the server checks Origin`,
          explanation:
            `The server refused ${sent} and accepted its own origin ${own}. It compares Origin with its Host, as Tornado, Jupyter and Streamlit do. ` +
            'A browser always sends the origin of the page, so behind a proxy or tunnel that changes the host (ngrok, a custom domain) every WebSocket is refused — the page sees 1006.',
          fix:
            phError === 'PH_ERR_ORIGIN_REFUSED'
              ? `add the page's origin to this app's allowed_origins in porthole.yaml (e.g. allowed_origins: ["${ctx.originSent ?? own}"])`
              : `rewrite the Origin header on the proxy in front of it to ${own}:\n` +
                `    nginx:    proxy_set_header Origin ${own};\n` +
                '    Porthole: upstream_origin: upstream\n' +
                '(or allow the page’s origin in the server: Tornado check_origin, Jupyter allow_origin)',
          probes,
          continueWith: retry,
        };
      }
      discard(retry);
    }
    if (ORIGIN_WORDING.test(body) || phError === 'PH_ERR_ORIGIN_REFUSED')
      return {
        cause: 'origin',
        detail: `${line} "${quote(res)}": the server checks Origin`,
        explanation: `The answer names the Origin check, and even the server's own origin ${own} was refused: it allows a fixed list of origins.`,
        fix: phError === 'PH_ERR_ORIGIN_REFUSED' ? 'add the page’s origin to the app’s allowed_origins' : 'pass the page’s origin with --origin, and add it to the server’s allowed origins',
        probes,
      };
  }

  if (phError === 'PH_ERR_HOST_REFUSED') return { cause: 'host-refused', detail: `${line} with X-Porthole-Error: ${phError}`, ...hostRefusedAdvice(ctx.hostSent ?? ctx.url.host), probes };
  if (phError) {
    const porthole = portholeAdvice(phError);
    if (porthole)
      return { cause: s >= 502 && s <= 504 ? 'backend-down' : 'porthole', detail: `${line} with X-Porthole-Error: ${phError}`, ...porthole, probes };
  }

  if (s >= 200 && s < 300) {
    if (proxy) {
      return {
        cause: 'upgrade-dropped',
        detail: `${line} instead of 101: the proxy did not pass the upgrade on (${isHtml(res) ? 'it served an HTML page' : 'the answer is one to a plain GET'})`,
        explanation:
          `${proxy.name} (${proxy.evidence}) answered the upgrade with ${s}${isHtml(res) ? ' and an HTML page' : ''}: most likely it passed the request on as a plain GET — ` +
          'Upgrade and Connection are hop-by-hop headers, which a proxy drops unless told to forward them (nginx by default also talks HTTP/1.0 to the backend) — ' +
          `and the app answered it like a page request. Less likely: ${path} is not a WebSocket endpoint at all. The browser sees 1006.`,
        fix: upgradeDroppedFix(proxy.name, path),
        probes,
      };
    }
    const random = `/porthole-doctor-${Math.random().toString(36).slice(2, 10)}`;
    const other = await ctx.probe({ path: random });
    probes.push(retryLine(`at ${random}`, other));
    discard(other);
    const everywhere = !('error' in other) && 'status' in other.result && other.result.status >= 200 && other.result.status < 300;
    return {
      cause: 'not-websocket',
      detail: `${line} instead of 101: ${everywhere ? 'the server answers 200 to any path' : `${path} is served as plain HTTP`}`,
      explanation: everywhere
        ? `The server answered ${s} here and at a path that cannot exist (${random}): it answers every request as HTTP (a catch-all or single-page-app fallback) and does not speak WebSocket at ${path} — ` +
          'or a proxy that does not name itself dropped the Upgrade header on the way.'
        : `The server has an HTTP resource at ${path} but did not upgrade: the WebSocket lives at another path, or something on the way dropped the Upgrade and Connection headers.`,
      fix: `point the client at the server's WebSocket path; if a proxy sits in between, make it pass Upgrade and Connection (nginx: ${NGINX_UPGRADE_LINES.join(' ')})`,
      probes,
    };
  }

  if (s >= 300 && s < 400) {
    const location = headerValue(res, 'location');
    let target: URL | undefined;
    try {
      target = location ? new URL(location, `${ownOrigin(ctx.url)}${path}`) : undefined;
    } catch {
      target = undefined;
    }
    const wsTarget = target ? `${target.protocol === 'https:' ? 'wss' : target.protocol === 'http:' ? 'ws' : target.protocol.slice(0, -1)}://${target.host}${target.pathname}${target.search}` : undefined;
    const explanationEnd = ' Browsers never follow a redirect on a WebSocket handshake: the page gets 1006.';
    if (target && target.host === ctx.url.host && target.pathname !== path && target.pathname.replace(/\/$/, '') === path.replace(/\/$/, ''))
      return {
        cause: 'redirect',
        detail: `${line} to ${location}: the path needs ${target.pathname.endsWith('/') ? 'a' : 'no'} trailing slash`,
        explanation: `The server redirects ${path} to ${target.pathname}.${explanationEnd}`,
        fix: `use ${wsTarget}`,
        probes,
      };
    if (target && target.protocol === 'https:' && ctx.url.protocol === 'ws:')
      return { cause: 'tls-expected', detail: `${line} to ${location}`, explanation: `The server sends plain HTTP to HTTPS.${explanationEnd}`, fix: `use ${wsTarget}`, probes };
    if (target && /login|signin|sign_in|auth|sso|oauth/i.test(target.pathname + target.search))
      return {
        cause: 'auth',
        detail: `${line} to a login page (${location})`,
        explanation: `The request is not authenticated and the server (or an auth proxy in front of it) sends it to log in.${explanationEnd}`,
        fix: 'send the session cookie or token the page would have (-H "Cookie: …"); browsers send cookies with WebSocket handshakes to the same site',
        probes,
      };
    if (proxy)
      return {
        cause: 'upgrade-dropped',
        detail: `${line} to ${location ?? '(no Location)'}: a redirect, as for a plain GET`,
        explanation:
          `${proxy.name} (${proxy.evidence}) answered the upgrade with a redirect: most likely it passed the request on without Upgrade and Connection and the app redirected what it saw as a page request; ` +
          `or the WebSocket really lives at ${location}.${explanationEnd}`,
        fix: `${upgradeDroppedFix(proxy.name, path)}\nif the WebSocket lives at the new address, use ${wsTarget ?? 'it'}`,
        probes,
      };
    return { cause: 'redirect', detail: `${line} to ${location ?? '(no Location)'}`, explanation: `The server redirects the handshake.${explanationEnd}`, fix: wsTarget ? `use ${wsTarget}` : 'use the final URL', probes };
  }

  if (s === 400) {
    if (/plain HTTP request was sent to HTTPS port/i.test(body))
      return { cause: 'tls-expected', detail: `${line}: "${quote(res)}"`, explanation: 'This port speaks TLS.', fix: `use wss://${ctx.url.host}${path}${ctx.url.search}`, probes };
    if (/can "?upgrade"? only to "?websocket"?|upgrade header|connection header|"?connection"? must|"?upgrade"? must|missing.*upgrade|not a websocket/i.test(body))
      return {
        cause: 'upgrade-headers-missing',
        detail: `${line}: "${quote(res)}"`,
        explanation:
          'The server got the request without a valid "Upgrade: websocket" / "Connection: Upgrade" pair. The doctor sent both over HTTP/1.1, so something in between removed them ' +
          '(they are hop-by-hop headers), or it forwarded the request over HTTP/2, where the HTTP/1.1 upgrade does not exist (WebSocket over HTTP/2 needs RFC 8441, which few servers support). ' +
          'Browsers that reach a proxy over HTTP/2 are fine as long as the proxy talks HTTP/1.1 with the upgrade headers to the backend.',
        fix: upgradeDroppedFix(proxy?.name, path),
        probes,
      };
    return {
      cause: 'refused',
      detail: `${line}${body.trim() ? `: "${quote(res)}"` : ''}`,
      explanation: 'The server (or a proxy) found the handshake malformed. The body usually says which header it disliked; a proxy that rewrites Sec-WebSocket-* headers or drops Connection causes this.',
      fix: `compare the request below with what the server expects; if a proxy is in between: ${NGINX_UPGRADE_LINES.join(' ')}`,
      probes,
    };
  }

  if (s === 401)
    return {
      cause: 'auth',
      detail: line,
      explanation:
        'The handshake needs credentials. A browser’s WebSocket cannot set Authorization: it sends cookies for the site, or the app puts a token in the URL or in the first message.',
      fix: 'pass what the page would send: -H "Cookie: …", a token in the query string, or -H "Authorization: …" for non-browser clients',
      probes,
    };

  if (s === 403)
    return {
      cause: 'forbidden',
      detail: `${line}${body.trim() ? `: "${quote(res)}"` : ''}`,
      explanation: 'Refused without a word about Origin: a missing cookie or token, an IP allowlist, or a WAF rule. The doctor also retried with the server’s own Origin when one was sent.',
      fix: 'send what the page would send (-H "Cookie: …", --origin of the real page) and check the server’s access rules',
      probes,
    };

  if (s === 404) {
    const toggled = path.endsWith('/') ? path.replace(/\/+$/, '') || '/' : `${path}/`;
    let slashWorks = false;
    if (toggled !== path) {
      const retry = await ctx.probe({ path: toggled });
      probes.push(retryLine(`at ${toggled}`, retry));
      slashWorks = got101(retry);
      discard(retry);
    }
    const nginxOwn = /<center>nginx/i.test(body);
    const from = nginxOwn
      ? 'nginx answered with its own 404 page: no location matches this path.'
      : proxy
        ? `The 404 comes from the app behind ${proxy.name}.`
        : 'The server has nothing at this path.';
    return {
      cause: 'wrong-path',
      detail: `${line}: nothing at ${path}${slashWorks ? `, but ${toggled} upgrades` : ''}`,
      explanation:
        `${from} ${slashWorks ? `${toggled} (with${toggled.endsWith('/') ? '' : 'out'} the trailing slash) is the WebSocket endpoint.` : 'The WebSocket path is wrong, or a proxy strips or adds a prefix on the way (Porthole strips /{app} unless strip_prefix: false).'}` +
        (proxy && !nginxOwn && !slashWorks ? ` Less likely: ${proxy.name} dropped Upgrade and the app has no page at this path (a WebSocket-only route).` : ''),
      fix: slashWorks
        ? `use ${ctx.url.protocol}//${ctx.url.host}${toggled}${ctx.url.search}`
        : nginxOwn
          ? `add a location for ${path} that proxies to the WebSocket server, with ${NGINX_UPGRADE_LINES.join(' ')}`
          : 'check the path the server handles WebSockets on (and any prefix a proxy adds or strips)',
      probes,
    };
  }

  if (s === 405)
    return { cause: 'not-websocket', detail: line, explanation: `${path} does not accept GET: it is an API endpoint, not a WebSocket.`, fix: 'use the server’s WebSocket path', probes };

  if (s === 426) {
    const versions = headerValue(res, 'sec-websocket-version');
    const upgrade = headerValue(res, 'upgrade');
    if (versions) {
      const speaks13 = versions.split(',').some((v) => v.trim() === '13');
      return {
        cause: 'version',
        detail: `${line}: the server wants Sec-WebSocket-Version ${versions}, the handshake sent ${ctx.versionSent}`,
        explanation: speaks13
          ? `The server speaks version 13 (RFC 6455), which every browser sends; this handshake sent ${ctx.versionSent}. A client or proxy that rewrites Sec-WebSocket-Version causes this.`
          : `The handshake sent ${ctx.versionSent}; browsers only ever send 13 (RFC 6455 §4.4), and this server does not speak it: its WebSocket library predates RFC 6455.`,
        fix: speaks13 ? 'send Sec-WebSocket-Version: 13 (and let proxies pass it untouched)' : 'upgrade the server’s WebSocket library to one that implements RFC 6455',
        probes,
      };
    }
    if (upgrade && /tls/i.test(upgrade))
      return { cause: 'tls-expected', detail: `${line}: Upgrade: ${upgrade}`, explanation: 'The server requires TLS (RFC 2817).', fix: `use wss://${ctx.url.host}${path}`, probes };
    return {
      cause: 'upgrade-dropped',
      detail: `${line}${body.trim() ? `: "${quote(res)}"` : ''}`,
      explanation:
        `"Upgrade Required" is what a WebSocket server (ws, websockify) answers to a plain GET: it did not see the Upgrade header the doctor sent. ${proxy ? `${proxy.name} (${proxy.evidence})` : 'Something in between'} dropped Upgrade and Connection.`,
      fix: upgradeDroppedFix(proxy?.name, path),
      probes,
    };
  }

  if (s === 429)
    return { cause: 'refused', detail: line, explanation: 'Rate limited: too many connections from this address.', fix: `wait${headerValue(res, 'retry-after') ? ` ${headerValue(res, 'retry-after')} s` : ''}, or raise the limit`, probes };

  if (s === 502 || s === 503 || s === 504) {
    const who = proxy ? `${proxy.name} (${proxy.evidence})` : 'A proxy or load balancer';
    const what =
      s === 502 ? 'could not connect to the WebSocket server behind it, or got garbage from it' : s === 503 ? 'has no healthy backend (it is stopped, starting, or overloaded)' : 'gave up waiting for the WebSocket server behind it';
    return {
      cause: 'backend-down',
      detail: line,
      explanation: `${who} ${what}. The problem is behind the proxy, not in the handshake.`,
      fix: 'start the backend, and check the address and port the proxy forwards to (nginx proxy_pass, Porthole port/ws_port/url)',
      probes,
    };
  }

  if (s >= 500)
    return { cause: 'server-error', detail: `${line}${body.trim() ? `: "${quote(res)}"` : ''}`, explanation: 'The server failed while handling the handshake: its logs say why.', probes };

  return {
    cause: 'refused',
    detail: `${line}${body.trim() ? `: "${quote(res)}"` : ''}`,
    explanation: `The server answered ${s} instead of 101 Switching Protocols; the answer below says more.`,
    probes,
  };
}

/**
 * Porthole refused the Host (PH_ERR_HOST_REFUSED, as 421 or as close 1008
 * after a 101): on loopback it answers only under loopback names, the
 * machine's addresses and names it was told about — a tunnel (ngrok,
 * cloudflared) passes its public name as Host.
 */
export function hostRefusedAdvice(host: string, reason = ''): { explanation: string; fix: string } {
  const name = host.replace(/:\d+$/, '');
  // `porthole bridge` refuses with the same code; its reason names its flag, as it has no porthole.yaml.
  if (reason.includes('--server-name')) {
    return {
      explanation:
        `porthole bridge refused the Host ${host}: on a loopback address it answers only under loopback names (localhost, *.localhost, 127.0.0.1), ` +
        "the machine's name and addresses and its --server-name names, so a web page whose DNS name was re-pointed at 127.0.0.1 (DNS rebinding) cannot reach the TCP service behind it.",
      fix: `if ${name} is the bridge's name (a tunnel, a DNS name, a proxy's), restart it with --server-name ${name}`,
    };
  }
  return {
    explanation:
      `Porthole refused the Host ${host}: it is not one of the gateway's names. A gateway on a loopback address answers only under loopback names (localhost, *.localhost, 127.0.0.1), ` +
      "the machine's addresses, the apps' host names and the names in server_names, so a web page whose DNS name was re-pointed at 127.0.0.1 (DNS rebinding) cannot reach the apps. " +
      'A tunnel such as ngrok forwards its own public name as Host, which is refused until it is listed.',
    fix: `if ${name} is your gateway's name (a tunnel, a DNS name), add it to server_names in porthole.yaml:\n    server_names: [${name}]\n(the file is reloaded on save)`,
  };
}

function portholeAdvice(code: string): { explanation: string; fix: string } | undefined {
  const table: Record<string, [string, string]> = {
    PH_ERR_NOT_FOUND: ['Porthole has no app at this path or host.', 'check the /{app}/ prefix, or open the app at its own host name ({app}.localhost), or the app’s hosts in porthole.yaml'],
    PH_ERR_BAD_HOST: ['Porthole found the Host header malformed: it must be host[:port].', 'send a plain Host header (no user@, path or spaces)'],
    PH_ERR_WS_PATH_REFUSED: ['Porthole refused the path: it is not in the app’s ws_paths.', 'add the path to ws_paths, or fix the client’s path'],
    PH_ERR_BAD_HANDSHAKE: ['Porthole found the handshake malformed.', 'see the body for the header it refused'],
    PH_ERR_WS_VERSION: ['Porthole accepts only Sec-WebSocket-Version 13.', 'use an RFC 6455 client'],
    PH_ERR_APP_STOPPED: ['Porthole has the app, but it is stopped or failed.', 'start it: porthole apps start NAME (and read its log)'],
    PH_ERR_APP_STARTING: ['The app did not become ready in its start_timeout.', 'read the app’s log; raise start_timeout if it is just slow'],
    PH_ERR_DRAINING: ['The gateway is shutting down.', 'retry once it is back'],
    PH_ERR_UPSTREAM_REFUSED: ['Porthole could not connect to the app: nothing listens at its port.', 'start the app, or fix port / ws_port / url in porthole.yaml'],
    PH_ERR_UPSTREAM_RESET: ['The app closed the connection before answering the upgrade.', 'check that the app speaks WebSocket at this path (and its log)'],
    PH_ERR_UPSTREAM_CONNECT_TIMEOUT: ['Connecting to the app timed out.', 'check the app’s address and any firewall'],
    PH_ERR_UPSTREAM_TIMEOUT: ['The app did not answer the upgrade in response_timeout.', 'check the app; raise response_timeout if it is slow'],
    PH_ERR_UPSTREAM_BAD_RESPONSE: ['The app answered with something that is not HTTP.', 'point ws_port at the WebSocket server'],
    PH_ERR_UPSTREAM_TLS: ['TLS to the app failed (certificate or name).', 'fix the app’s certificate, or set tls_verify: false for a self-signed one'],
    PH_ERR_UPSTREAM_DNS: ['The app’s host name does not resolve.', 'fix url in porthole.yaml'],
  };
  const row = table[code];
  return row ? { explanation: row[0], fix: row[1] } : undefined;
}
