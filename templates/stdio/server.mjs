// The page of the stdio app on PORT. The program itself is not here: its
// WebSocket is the stdio app "{{NAME}}-program" at /{{NAME}}/ws/ (porthole.yaml).
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';

const PORT = Number(process.env.PORT ?? 8080);
// Where the gateway mounts the page (/{{NAME}}/): requests carry it only with strip_prefix: false.
const BASE_PATH = process.env.BASE_PATH ?? '/';
const page = await readFile(new URL('./public/index.html', import.meta.url));

createServer((req, res) => {
  const path = new URL(req.url, 'http://app').pathname;
  const inApp = BASE_PATH !== '/' && path.startsWith(BASE_PATH) ? path.slice(BASE_PATH.length - 1) : path;
  if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405, { Allow: 'GET, HEAD' }).end();
  if (inApp !== '/') return void res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-cache' }).end(req.method === 'HEAD' ? undefined : page);
}).listen(PORT, '127.0.0.1'); // loopback only: the gateway is the way in
console.log(`stdio page on 127.0.0.1:${PORT}, mounted at ${BASE_PATH}`);
process.once('SIGTERM', () => process.exit(0));
