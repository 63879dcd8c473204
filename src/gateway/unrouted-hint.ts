/**
 * What to tell a WebSocket client that dialled a path no app owns. The usual
 * cause is a page served under a prefix that does not know it: noVNC's
 * `vnc.html` under `/vnc/` dials `/websockify` at the root. The handshake
 * carries nothing that names the page (browsers send Origin, which has no
 * path, and no Referer on WebSocket handshakes), so the hint comes from the
 * path itself: an app whose `ws_path`/`ws_paths` end like it, or the only
 * app with a bridge. The reason fits a close frame (123 bytes).
 */
import { parseHostHeader, isLoopbackName } from './host-header.js';
import type { Route, RouteTable } from './router.js';

export interface UnroutedHint {
  /** For the HTTP answer and the log. */
  message: string;
  /** For the close frame: at most 123 bytes. */
  reason: string;
  /** The app the hint points at, if any. */
  app?: string;
}

const fits = (s: string) => Buffer.byteLength(s) <= 123;
const cut = (s: string, max: number) => (s.length > max ? `${s.slice(0, max - 3)}...` : s);

function lastSegment(path: string): string | undefined {
  return path.split('/').filter(Boolean).pop();
}

/**
 * The app the path most likely belongs to: one whose upgrade paths end like
 * it, else the only app with a bridge, else the only app with a WebSocket
 * server of its own (`ws_port`, websockify's place), else — for
 * `/websockify`, noVNC's default — the only app with "vnc" in its name or
 * prefix, else the only app.
 */
function likelyApp(pathname: string, table: RouteTable): Route | undefined {
  const last = lastSegment(pathname);
  const byPath = table.routes.find((r) =>
    [r.app.ws_path, ...(r.app.ws_paths ?? [])].some((p) => p !== undefined && (p === pathname || (last !== undefined && lastSegment(p) === last))),
  );
  if (byPath) return byPath;
  const only = (routes: readonly Route[]) => (routes.length === 1 ? routes[0] : undefined);
  return (
    only(table.routes.filter((r) => r.bridge !== null)) ??
    only(table.routes.filter((r) => r.app.ws_port !== undefined)) ??
    (last === 'websockify' ? only(table.routes.filter((r) => /vnc/i.test(r.app.name) || /vnc/i.test(r.prefix))) : undefined) ??
    only(table.routes)
  );
}

export function unroutedHint(url: string, hostHeader: string | undefined, table: RouteTable): UnroutedHint {
  const q = url.indexOf('?');
  const pathname = (q === -1 ? url : url.slice(0, q)) || '/';
  const shownPath = cut(pathname.replace(/[^\x21-\x7e]/g, '?'), 32);
  const message = `no app at ${shownPath}`;
  const route = likelyApp(pathname, table);
  if (!route) {
    const reason = `${message}: WebSocket URLs start with /{app}/, or use http://{app}.localhost/`;
    return { message: `No app is routed at ${shownPath}. WebSocket URLs start with an app's prefix (/{app}/), or open the app at http://{app}.localhost/.`, reason: fits(reason) ? reason : message };
  }
  const name = route.app.name;
  const host = hostHeader ? parseHostHeader(hostHeader) : null;
  const base = table.config.base_domain;
  const port = host?.port !== undefined ? `:${host.port}` : '';
  // The app's own name on the domain the client used: base_domain unless it came by a loopback name.
  const domain = base && host && !isLoopbackName(host) && host.ip === 0 ? base : 'localhost';
  const open = `http://${name}.${domain}${port}/`;
  const prefixed = `${route.prefix.slice(1)}${pathname}`;
  const alt = lastSegment(pathname) === 'websockify' || route.bridge ? `path=${prefixed}` : `/${prefixed}`;
  const candidates = [
    `${message}; page under ${route.prefix}/? open ${open} or use ${alt}`,
    `${message}; open the page at ${open} or use ${alt}`,
    `${message}; open the page at ${open}`,
    `${message}; try app ${cut(name, 40)}`,
  ];
  const reason = candidates.find(fits) ?? message;
  return {
    app: name,
    message: `No app is routed at ${shownPath}. A page under ${route.prefix}/ may not know its prefix: open it at ${open} (the app at the root of its own host name), or connect to /${prefixed}.`,
    reason,
  };
}
