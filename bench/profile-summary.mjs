#!/usr/bin/env node
// Where a process spent its busy time, from a V8 CPU profile (`node
// --cpu-prof`, or `npm run bench -- --only hop --cpu-prof DIR` for the cluster
// nodes): self time grouped by where the code comes from (Porthole's dist/,
// an npm package, Node's own library, native code, GC) and the top functions,
// as shares of the busy samples (idle left out).
//
//   node bench/profile-summary.mjs FILE.cpuprofile [top N, default 25] [--from S]
//
// --from S leaves out the first S seconds (start-up: loading modules, joining
// the cluster) so the shares are those of the load.
import { readFileSync } from 'node:fs';

const argv = process.argv.slice(2);
const fromAt = argv.indexOf('--from');
const fromS = fromAt === -1 ? 0 : Number(argv.splice(fromAt, 2)[1]);
const [file, topArg = '25'] = argv;
if (!file || !(fromS >= 0)) {
  console.error('usage: node bench/profile-summary.mjs FILE.cpuprofile [top N] [--from S]');
  process.exit(2);
}
const prof = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(prof.nodes.map((n) => [n.id, n]));

// Self time per profile node: each sample's time delta belongs to the node it hit.
const self = new Map();
let at = prof.startTime;
prof.samples.forEach((id, i) => {
  at += prof.timeDeltas[i] ?? 0;
  if (at - prof.startTime < fromS * 1e6) return;
  self.set(id, (self.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0));
});

function origin(cf) {
  const { url, functionName } = cf;
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1];
  const dist = /\/dist\/(.+)$/.exec(url);
  if (dist) return `porthole ${dist[1].split('/')[0]}/`;
  return url;
}

const groups = new Map();
const funcs = new Map();
let busy = 0;
let idle = 0;
for (const [id, us] of self) {
  const cf = byId.get(id).callFrame;
  if (cf.functionName === '(idle)') {
    idle += us;
    continue;
  }
  busy += us;
  const o = origin(cf);
  groups.set(o, (groups.get(o) ?? 0) + us);
  const where = cf.url ? `${cf.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${cf.lineNumber + 1}` : '';
  const key = `${cf.functionName || '(anonymous)'} ${where}`.trim();
  funcs.set(key, (funcs.get(key) ?? 0) + us);
}

const pct = (us) => `${((us / busy) * 100).toFixed(1)} %`;
const wall = (prof.endTime - prof.startTime) / 1e6;
console.log(`${file}: ${wall.toFixed(1)} s profiled${fromS ? ` (the first ${fromS} s left out)` : ''}, ${(busy / 1e6).toFixed(2)} s busy (${((busy / (busy + idle)) * 100).toFixed(0)} % of the samples)\n`);
console.log('| where | share of busy time |\n|---|---:|');
for (const [k, v] of [...groups].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`| ${k} | ${pct(v)} |`);
console.log(`\n| function (self time) | share |\n|---|---:|`);
for (const [k, v] of [...funcs].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg))) console.log(`| ${k.replaceAll('|', '\\|')} | ${pct(v)} |`);
