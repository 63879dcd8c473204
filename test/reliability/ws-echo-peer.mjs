// A WebSocket echo server in a process of its own (test/reliability/peers.ts
// starts it): prints its port, then answers "count" on stdin with the number
// of open connections. Its sockets do not count against the test's fd limit.
import http from 'node:http';
import { createInterface } from 'node:readline';
import { WebSocketServer } from 'ws';

const server = http.createServer((req, res) => res.end('ok\n'));
const wss = new WebSocketServer({ server, perMessageDeflate: false });
wss.on('connection', (ws) => {
  ws.on('error', () => ws.terminate());
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() === 'count') process.stdout.write(`${wss.clients.size}\n`);
});
process.stdin.on('end', () => process.exit(0));
