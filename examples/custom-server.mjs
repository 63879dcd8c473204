// Seed 001/002 with Porthole: an existing Node server (a Next.js custom server,
// say) proxies noVNC WebSockets under one path to a backend, so the browser sees
// them as same-origin. Everything else stays the server's own.
//
//   BACKEND=http://127.0.0.1:4000 node examples/custom-server.mjs
import { createServer } from 'node:http';
import { createGateway, startLogger } from 'porthole';

const gateway = createGateway({
  apps: [
    {
      name: 'novnc',
      url: process.env.BACKEND ?? 'http://127.0.0.1:4000',
      prefix: '/api/auth/session', // mounted where the backend already serves it
      strip_prefix: false, // the backend expects the full path
      upstream_host: 'upstream', // the backend sees its own Host (http-proxy's changeOrigin)
    },
  ],
});
startLogger();

const server = createServer((req, res) => {
  // Your own routes (Next.js's `handle(req, res)` in the seed).
  res.end('the app itself\n');
});

server.on('upgrade', (req, socket, head) => {
  const { pathname } = new URL(req.url ?? '/', 'http://x');
  if (pathname.includes('/novnc/websock') && gateway.handleUpgrade(req, socket, head)) return;
  socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
});

server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => console.log(`ready on http://127.0.0.1:${server.address().port}`));
