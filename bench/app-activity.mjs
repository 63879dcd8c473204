#!/usr/bin/env node
// What idle_stop's activity tracking costs a busy app (issue 12, section 3).
//   node bench/app-activity.mjs [--seconds 4] [--rounds 3]
// 1. The hook alone: ns per begin/end pair (what every forwarded request pays).
// 2. Requests through an in-process gateway to a keep-alive upstream, 32 at a time,
//    with the hook as it is (A) and replaced by no-ops (B), in A B B A … order:
//    the gateway process's CPU time per request and the request rate of each.
import http from 'node:http';
import { AppActivity } from '../dist/gateway/app-activity.js';
import { createGateway } from '../dist/index.js';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? dflt : Number(process.argv[i + 1]);
};
const seconds = arg('seconds', 4);
const rounds = arg('rounds', 3);

// 1. The hook alone.
{
  const activity = new AppActivity();
  const names = Array.from({ length: 50 }, (_, i) => `app-${i}`);
  const n = 5_000_000;
  for (let i = 0; i < 100_000; i++) activity.end(activity.begin(names[i % 50]));
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) activity.end(activity.begin(names[i % 50]));
  const ns = Number(process.hrtime.bigint() - t0) / n;
  console.log(`hook alone: ${ns.toFixed(1)} ns per request (begin + end, 50 apps)`);
}

// 2. Through the gateway.
const upstream = http.createServer((_req, res) => res.end('ok'));
await new Promise((r) => upstream.listen(0, '127.0.0.1', r));
const gw = createGateway({ apps: [{ name: 'busy', port: upstream.address().port }] });
const { port } = await gw.listen('127.0.0.1', 0);
const real = { begin: gw.activity.begin, end: gw.activity.end };
const dummy = { inflight: 0, last: 0 };
const noop = { begin: () => dummy, end: () => {} };

async function load(ms) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  let done = 0;
  const until = Date.now() + ms;
  const worker = () =>
    new Promise((resolve) => {
      const next = () => {
        if (Date.now() >= until) return resolve();
        http.get({ host: '127.0.0.1', port, path: '/busy/', agent }, (res) => {
          res.resume();
          res.on('end', () => {
            done++;
            next();
          });
        });
      };
      next();
    });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: 32 }, worker));
  const cpu = process.cpuUsage(cpu0);
  agent.destroy();
  return { rate: done / ((performance.now() - t0) / 1000), cpuUs: (cpu.user + cpu.system) / done };
}

// Client, gateway and upstream share this process: CPU per request covers all three,
// so the hook's share is an upper bound on what it adds to the whole.
await load(1000); // warm-up
const results = { A: [], B: [] };
for (let r = 0; r < rounds; r++) {
  for (const which of r % 2 ? ['B', 'A'] : ['A', 'B']) {
    Object.assign(gw.activity, which === 'A' ? real : noop);
    results[which].push(await load(seconds * 1000));
  }
}
const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const [k, label] of [['A', 'with the activity hook'], ['B', 'hook replaced by no-ops']]) {
  console.log(`  ${k} rounds: ${results[k].map((x) => `${Math.round(x.rate)} req/s ${x.cpuUs.toFixed(0)} µs`).join(' | ')}`);
  console.log(`${label}: ${Math.round(median(results[k].map((x) => x.rate)))} req/s, ${median(results[k].map((x) => x.cpuUs)).toFixed(1)} µs CPU per request (client + gateway + upstream, median of ${rounds})`);
}
await gw.drain(100);
upstream.close();
