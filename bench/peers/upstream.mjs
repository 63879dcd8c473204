// The upstream every proxy talks to, the same program for all of them:
// - WebSocket echo on any path;
// - /stream: sends 1 MiB binary frames as fast as the reader takes them;
// - plain HTTP GET: a small fixed answer.
// Prints its port on stdout.
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';

const body = Buffer.from('hello from the upstream\n');
const server = createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 65_000;
const frame = Buffer.alloc(1024 * 1024, 0x5a);
const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
wss.on('connection', (ws, req) => {
  ws._socket.setNoDelay(true);
  if (req.url.includes('/stream')) {
    const pump = () => {
      while (ws.readyState === 1 && ws._socket.writableLength < 4 * 1024 * 1024) ws.send(frame, { binary: true });
    };
    ws._socket.on('drain', pump);
    pump();
    return;
  }
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => console.log(server.address().port));
