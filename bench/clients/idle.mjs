// Idle tunnels: open N WebSockets (at most 256 handshakes in flight) and hold them.
// argv: url count. Prints "open {json}" when all are open, then waits for a line on stdin
// (or SIGTERM) to close them all and exit.
import WebSocket from 'ws';

const [url, count = '9000'] = process.argv.slice(2);
const n = Number(count);
const sockets = [];
let errors = 0;
let next = 0;
const t0 = performance.now();
await Promise.all(
  Array.from({ length: 256 }, async () => {
    while (next < n) {
      next++;
      await new Promise((ok) => {
        const ws = new WebSocket(url, { perMessageDeflate: false });
        ws.on('open', () => {
          sockets.push(ws);
          ok();
        });
        ws.on('error', () => {
          errors++;
          ok();
        });
      });
    }
  }),
);
const seconds = (performance.now() - t0) / 1000;
console.log(`open ${JSON.stringify({ open: sockets.length, errors, seconds })}`);
const done = () => {
  for (const ws of sockets) ws.terminate();
  process.exit(0);
};
process.stdin.on('data', done);
process.stdin.on('end', done);
process.on('SIGTERM', done);
