// HTTP workload at a fixed rate (open loop): N keep-alive connections, each
// sending GETs on a fixed schedule (`rate` per second), one at a time; a
// request that falls behind its schedule is sent at once and its latency is
// counted from when it was due (no coordinated omission). Every proxy then
// carries the same load, so their CPU per request compares at equal load.
// argv: url connections rate seconds. Prints JSON {done, errors, seconds, p50, p99, p999} (ms).
import http from 'node:http';

const [url, conns = '64', rate = '10', secs = '10'] = process.argv.slice(2);
const interval = 1000 / Number(rate);
const lat = [];
let errors = 0;
const start = performance.now() + 50;
const end = start + Number(secs) * 1000;

function get(agent) {
  return new Promise((ok) => {
    const req = http.get(url, { agent }, (res) => {
      res.resume();
      res.on('end', () => ok(res.statusCode === 200));
      res.on('error', () => ok(false));
    });
    req.setTimeout(10_000, () => req.destroy());
    req.on('error', () => ok(false));
  });
}

async function connection(i) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  // Spread the connections' schedules over one interval.
  for (let due = start + (interval * i) / Number(conns); due < end; due += interval) {
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const ok = await get(agent);
    if (ok) lat.push(performance.now() - due);
    else errors++;
  }
  agent.destroy();
}

await Promise.all(Array.from({ length: Number(conns) }, (_, i) => connection(i)));
const seconds = (performance.now() - start) / 1000;
lat.sort((a, b) => a - b);
const q = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : null);
console.log(JSON.stringify({ done: lat.length, errors, seconds, p50: q(0.5), p99: q(0.99), p999: q(0.999) }));
