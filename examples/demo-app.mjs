// A small app with a page and a WebSocket on one port, to try Porthole with.
// Reads PORT (default 9101) and BASE_PATH (default /demo/).
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';

const port = Number(process.env.PORT ?? 9101);
const page = `<!doctype html><meta charset="utf-8"><title>Porthole demo</title>
<h1>Porthole demo</h1><p id="state">connecting…</p><input id="msg" value="hello"><button id="send">send</button><pre id="log"></pre>
<script>
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  // Relative to the page, so it works under any prefix the gateway mounts it at.
  const ws = new WebSocket(proto + '//' + location.host + location.pathname.replace(/[^/]*$/, '') + 'ws');
  const log = (t) => (document.getElementById('log').textContent += t + '\\n');
  ws.onopen = () => (document.getElementById('state').textContent = 'connected');
  ws.onmessage = (e) => log('< ' + e.data);
  ws.onclose = (e) => (document.getElementById('state').textContent = 'closed ' + e.code + ' ' + e.reason);
  document.getElementById('send').onclick = () => ws.send(document.getElementById('msg').value);
</script>`;

const server = createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
  res.end(page);
});
new WebSocketServer({ server }).on('connection', (ws) => ws.on('message', (data, binary) => ws.send(binary ? data : `echo: ${data}`)));
server.listen(port, '127.0.0.1', () => console.log(`demo app on http://127.0.0.1:${port}`));
