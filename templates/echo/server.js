// An echo app that works behind Porthole: pages over HTTP on PORT, WebSocket
// upgrades at ws on PORT (or on WS_PORT when the app is registered with one).
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { WebSocketServer } from 'ws';

const PORT = Number(process.env.PORT ?? 8080);
const WS_PORT = Number(process.env.WS_PORT ?? PORT);
// Where the gateway mounts the app (/echo/). With strip_prefix (the default) requests
// arrive without it; with strip_prefix: false they carry it. Both are served.
const BASE_PATH = process.env.BASE_PATH ?? '/';

function appPath(url) {
  const path = new URL(url, 'http://app').pathname;
  return BASE_PATH !== '/' && path.startsWith(BASE_PATH) ? path.slice(BASE_PATH.length - 1) : path;
}

const page = await readFile(new URL('./public/index.html', import.meta.url));

function onRequest(req, res) {
  if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405, { Allow: 'GET, HEAD' }).end();
  if (appPath(req.url) !== '/') return void res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-cache' }).end(req.method === 'HEAD' ? undefined : page);
}

// 64 KiB is plenty for a chat line; ws closes bigger messages with 1009.
const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});

function onUpgrade(req, socket, head) {
  if (appPath(req.url) !== '/ws') return void socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
}

// Loopback only: the gateway is the way in.
const http = createServer(onRequest).listen(PORT, '127.0.0.1');
if (WS_PORT === PORT) http.on('upgrade', onUpgrade);
else createServer((req, res) => res.writeHead(426).end()).on('upgrade', onUpgrade).listen(WS_PORT, '127.0.0.1');
console.log(`echo: pages on 127.0.0.1:${PORT}, WebSocket on 127.0.0.1:${WS_PORT} at ws, mounted at ${BASE_PATH}`);

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => {
    for (const ws of wss.clients) ws.close(1001, 'server stopping');
    process.exit(0);
  });
}
