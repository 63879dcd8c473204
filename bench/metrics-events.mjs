#!/usr/bin/env node
// What the Prometheus metrics cost per event, in isolation: the CPU time of
// publishing request, upgrade and tunnel.close events with the metrics
// subscribed, minus the same without them (the logger's subscription is there
// in both, as in `porthole serve`). The end-to-end figures (`npm run bench --
// --only echo,http --proxies porthole,porthole-no-metrics`) move by ±10 % from
// run to run on a shared machine; this one tells what the subscribers add.
//
//   node bench/metrics-events.mjs [events per kind, default 1000000]
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from './lib/peers.mjs';

const { createMetrics } = await import(pathToFileURL(join(ROOT, 'dist/metrics/metrics.js')).href);
const { emit, subscribe } = await import(pathToFileURL(join(ROOT, 'dist/events.js')).href);

const N = Number(process.argv[2] ?? 1_000_000);
const GW = 'bench-gateway';
const METHODS = ['GET', 'GET', 'GET', 'POST'];
const KINDS = {
  request: (i) => ({ app: i % 3 ? 'b' : 'c', method: METHODS[i & 3], path: '/page', status: i % 50 ? 200 : 404, ms: (i % 40) / 10, gateway: GW }),
  upgrade: (i) => ({ app: 'b', path: '/ws', accepted: true, ms: (i % 40) / 10, gateway: GW }),
  'tunnel.close': (i) => ({ app: 'b', path: '/ws', ms: i % 100000, bytesIn: 4096, bytesOut: 8192, framesIn: 8, framesOut: 9, closeCode: 1000, closedBy: 'client', gateway: GW }),
};

/** CPU µs per event of `kind`. */
function perEvent(kind) {
  const make = KINDS[kind];
  const t0 = process.cpuUsage();
  for (let i = 0; i < N; i++) emit(kind, make(i));
  const d = process.cpuUsage(t0);
  return (d.user + d.system) / N;
}

const offs = Object.keys(KINDS).map((k) => subscribe(k, () => {}));
const rows = [];
for (const kind of Object.keys(KINDS)) {
  perEvent(kind); // warm-up (JIT)
  const off = perEvent(kind);
  const metrics = createMetrics({ gatewayId: GW, processMetrics: false });
  perEvent(kind);
  const on = perEvent(kind);
  metrics.close();
  rows.push({ kind, off, on, added: on - off });
}
for (const off of offs) off();
console.log(`| event | µs/event, metrics off | µs/event, metrics on | added µs/event |\n|---|---:|---:|---:|`);
for (const r of rows) console.log(`| ${r.kind} | ${r.off.toFixed(3)} | ${r.on.toFixed(3)} | ${r.added.toFixed(3)} |`);
