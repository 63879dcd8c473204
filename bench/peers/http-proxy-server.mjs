// node http-proxy configured as in seeds 001/002: ws, changeOrigin, xfwd, timeouts.
// argv: listenPort targetPort. Prints its port.
import { createServer } from 'node:http';
import httpProxy from 'http-proxy';

const [port, target] = process.argv.slice(2);
const proxy = httpProxy.createProxyServer({
  target: `http://127.0.0.1:${target}`,
  ws: true,
  changeOrigin: true,
  xfwd: true,
  timeout: 3_600_000,
  proxyTimeout: 3_600_000,
});
proxy.on('error', (err, req, res) => {
  if (res && res.writeHead && !res.headersSent) {
    res.writeHead(502, { 'Content-Type': 'text/plain' });
    res.end(`proxy error: ${err.message}`);
  } else if (res && res.destroy) res.destroy();
});
const server = createServer((req, res) => proxy.web(req, res));
server.on('upgrade', (req, socket, head) => {
  socket.on('error', () => {});
  proxy.ws(req, socket, head);
});
server.listen(Number(port), '127.0.0.1', () => console.log(server.address().port));
