/**
 * Static files for `porthole bridge --web DIR` (noVNC's pages, like
 * websockify's `--web`): GET and HEAD only, no path outside DIR, a content
 * type browsers accept for ES modules, `index.html` (or noVNC's `vnc.html`)
 * for a directory.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, resolve, sep } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  // Browsers refuse a module script without a JavaScript type (noVNC is ES modules).
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.oga': 'audio/ogg',
  '.ogg': 'audio/ogg',
  '.mp3': 'audio/mpeg',
  '.wav': 'audio/wav',
};

/** Files tried, in order, for a directory. */
export const INDEX_FILES = ['index.html', 'vnc.html'];

export function contentType(file: string): string {
  return TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
}

/**
 * Serves `req` from `root`. Paths are checked segment by segment after
 * percent-decoding, so `/../x`, `/%2e%2e/x` and `..\x` are refused (403)
 * before the file system is asked; symbolic links inside `root` are
 * followed, as the person who put them there meant (Debian's noVNC links
 * its vendored libraries).
 */
export async function serveStatic(req: IncomingMessage, res: ServerResponse, root: string): Promise<void> {
  const method = req.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD') return text(res, 405, `${method} is not served here: GET or HEAD files, or open a WebSocket.\n`, { Allow: 'GET, HEAD' });
  const raw = (req.url ?? '/').split(/[?#]/)[0];
  let pathname: string;
  try {
    pathname = decodeURIComponent(raw);
  } catch {
    return text(res, 400, 'The path is not valid percent-encoding.\n');
  }
  const segments = pathname.split(/[/\\]/);
  if (!pathname.startsWith('/') || pathname.includes('\0') || segments.includes('..')) {
    return text(res, 403, 'The path leaves the web directory.\n');
  }
  const base = resolve(root);
  let file = resolve(join(base, ...segments.filter((s) => s && s !== '.')));
  // The segment check above already rules this out; kept so a future change cannot reopen it.
  if (file !== base && !file.startsWith(base + sep)) return text(res, 403, 'The path leaves the web directory.\n');

  let st = await stat(file).catch(() => null);
  if (st?.isDirectory()) {
    if (!pathname.endsWith('/')) {
      // Relative links in the page need the trailing slash.
      const q = (req.url ?? '').slice(raw.length);
      res.writeHead(301, { Location: `${raw}/${q}`, 'Content-Length': '0' });
      return void res.end();
    }
    let found: string | null = null;
    for (const name of INDEX_FILES) {
      const s = await stat(join(file, name)).catch(() => null);
      if (s?.isFile()) {
        found = join(file, name);
        st = s;
        break;
      }
    }
    if (!found) return text(res, 404, `No ${INDEX_FILES.join(' or ')} in ${pathname}\n`);
    file = found;
  }
  if (!st?.isFile()) return text(res, 404, `Not found: ${pathname}\n`);

  res.writeHead(200, {
    'Content-Type': contentType(file),
    'Content-Length': st.size,
    'Last-Modified': st.mtime.toUTCString(),
    'Cache-Control': 'no-cache',
    'X-Content-Type-Options': 'nosniff',
  });
  if (method === 'HEAD') return void res.end();
  const stream = createReadStream(file);
  stream.on('error', () => res.destroy());
  res.on('close', () => stream.destroy());
  stream.pipe(res);
}

function text(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'X-Content-Type-Options': 'nosniff', ...headers });
  res.end(body);
}
