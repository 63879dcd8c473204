// Handshake workload: open a WebSocket, one echo, close; `inflight` at a time, for D seconds.
// argv: url inflight seconds. Prints JSON {done, errors, seconds, p50, p99 (ms per cycle)}.
import WebSocket from 'ws';

const [url, inflight = '32', secs = '10'] = process.argv.slice(2);
const deadline = performance.now() + Number(secs) * 1000;
const times = [];
let errors = 0;
const payload = Buffer.alloc(64, 1);

function cycle() {
  return new Promise((ok) => {
    const t0 = performance.now();
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.on('open', () => ws.send(payload));
    ws.on('message', () => ws.close(1000));
    ws.on('close', (code) => {
      if (code === 1000) times.push(performance.now() - t0);
      else errors++;
      ok();
    });
    ws.on('error', () => {});
  });
}

const t0 = performance.now();
await Promise.all(
  Array.from({ length: Number(inflight) }, async () => {
    while (performance.now() < deadline) await cycle();
  }),
);
const seconds = (performance.now() - t0) / 1000;
times.sort((a, b) => a - b);
const q = (p) => times[Math.min(times.length - 1, Math.floor(p * times.length))] ?? 0;
console.log(JSON.stringify({ done: times.length, errors, seconds, p50: q(0.5), p99: q(0.99), cpu: (process.cpuUsage().user + process.cpuUsage().system) / 1e6 }));
process.exit(0);
