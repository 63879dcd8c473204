// The page of the desktop and noVNC's modules (from the @novnc/novnc package)
// on PORT. The WebSocket is not served here: Porthole bridges it to the VNC
// server (ws_bridge), so this server only answers GETs.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const PORT = Number(process.env.PORT ?? 8080);
// Where the gateway mounts the app (/vnc/): requests carry it only with strip_prefix: false.
const BASE_PATH = process.env.BASE_PATH ?? '/';
// The package's root: its "exports" is core/rfb.js.
const NOVNC = dirname(dirname(fileURLToPath(import.meta.resolve('@novnc/novnc'))));
const TYPES = { '.js': 'text/javascript; charset=utf-8', '.html': 'text/html; charset=utf-8', '.css': 'text/css; charset=utf-8' };

function appPath(url) {
  const path = decodeURIComponent(new URL(url, 'http://app').pathname);
  return BASE_PATH !== '/' && path.startsWith(BASE_PATH) ? path.slice(BASE_PATH.length - 1) : path;
}

/** The file a path names: the page, or a file of noVNC's core/ and vendor/ (nothing else of the disk). */
function fileFor(path) {
  if (path === '/') return fileURLToPath(new URL('./public/index.html', import.meta.url));
  const m = /^\/novnc\/((?:core|vendor)\/.+\.js)$/.exec(path);
  if (!m) return undefined;
  const file = normalize(join(NOVNC, m[1]));
  return file.startsWith(NOVNC + sep) ? file : undefined;
}

createServer(async (req, res) => {
  if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405, { Allow: 'GET, HEAD' }).end();
  let file;
  try {
    file = fileFor(appPath(req.url));
  } catch {
    file = undefined; // a path that is not valid percent-encoding
  }
  const body = file && (await readFile(file).catch(() => undefined));
  if (!body) return void res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
  res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream', 'Cache-Control': 'no-cache' });
  res.end(req.method === 'HEAD' ? undefined : body);
}).listen(PORT, '127.0.0.1'); // loopback only: the gateway is the way in
console.log(`vnc: page on 127.0.0.1:${PORT}, mounted at ${BASE_PATH}; noVNC from ${NOVNC}`);
process.once('SIGTERM', () => process.exit(0));
