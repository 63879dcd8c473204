// Stream workload client: N connections read 1 MiB frames from /stream for D seconds.
// argv: url connections seconds. Prints JSON {bytes, seconds, frames, errors}.
import WebSocket from 'ws';

const [url, conns = '8', secs = '10'] = process.argv.slice(2);
let bytes = 0;
let frames = 0;
let errors = 0;
const sockets = [];
let started = 0;
await Promise.all(
  Array.from({ length: Number(conns) }, () => new Promise((ok) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
    ws.on('open', ok);
    ws.on('message', (d) => {
      if (!started) return;
      bytes += d.length;
      frames++;
    });
    ws.on('error', () => { errors++; ok(); });
    sockets.push(ws);
  })),
);
started = performance.now();
await new Promise((r) => setTimeout(r, Number(secs) * 1000));
const seconds = (performance.now() - started) / 1000;
const result = { bytes, frames, seconds, errors, cpu: (process.cpuUsage().user + process.cpuUsage().system) / 1e6 };
for (const ws of sockets) ws.terminate();
console.log(JSON.stringify(result));
process.exit(0);
