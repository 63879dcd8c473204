// Probes GET /_porthole/health every INTERVAL ms on a fresh connection and prints
// "ms status time" per probe (time: Date.now() when it was sent): run in a process of its own (test/reliability/
// slow-clients.test.ts) so the latency measured is the gateway's, not the test's.
import http from 'node:http';

const [port, interval = '20'] = process.argv.slice(2);
const probe = () =>
  new Promise((ok) => {
    const t0 = performance.now();
    const sent = Date.now();
    const req = http.get({ host: '127.0.0.1', port: Number(port), path: '/_porthole/health', agent: false, timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => ok([performance.now() - t0, res.statusCode, sent]));
      res.on('error', () => ok([performance.now() - t0, 0, sent]));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => ok([performance.now() - t0, 0, sent]));
  });
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
for (;;) {
  const [ms, status, at] = await probe();
  process.stdout.write(`${ms.toFixed(2)} ${status} ${at}\n`);
  await new Promise((r) => setTimeout(r, Number(interval)));
}
