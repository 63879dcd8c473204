#!/usr/bin/env node
// Porthole's benchmark: the same workloads through every proxy, side by side in
// one run, on loopback. See BENCHMARKS.md for what each figure means.
//
//   npm run bench                       full run (< 15 min)
//   npm run bench -- --quick            every workload briefly (< 2 min)
//   npm run bench -- --only echo,http   some workloads
//   npm run bench -- --proxies porthole,nginx
//   npm run bench -- --only echo,http --proxies porthole,porthole-no-metrics --rounds 4   the cost of metrics
//   npm run bench -- --only hop --rounds 4   the cost of the hop between cluster nodes (echo and http,
//                                            through node A to node B against straight to B)
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { sample, selfCpu } from './lib/proc.mjs';
import { BRIDGES, H2_PROXIES, PROXIES, ROOT, ensureInstalled, startCUpstream, startTcpSource, startUpstream } from './lib/peers.mjs';
import { startChain, startCluster } from './lib/cluster.mjs';

const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const opt = (name) => {
  const i = args.indexOf(name);
  return i === -1 ? undefined : args[i + 1];
};
if (flag('--help')) {
  console.log(`usage: npm run bench [-- --quick] [--only echo,stream,small-writes,handshakes,idle,http,h2,bridge,cores,hop] [--proxies direct,porthole,porthole-node,porthole-js,porthole-no-metrics,porthole-w2,porthole-w2-rr,porthole-base,porthole-b-direct,porthole-hop,porthole-chain,nginx,nginx-auto,haproxy,http-proxy] [--rounds N] [--rate N] [--out DIR] [--cpu-prof DIR]
  hop: echo and http with --proxies porthole-b-direct,porthole-hop (a cluster: Redis and nodes A and B, the app on B);
       porthole-chain (two plain gateways in a row, no cluster) is the hop's control, run when --proxies names it
  --rate N: echo at N messages per second on each of its 64 connections (open loop) instead of as fast as echoes
            return (http is unchanged: wrk, closed loop)
  --cpu-prof DIR: the cluster nodes and porthole (porthole-js) run with node --cpu-prof, their profiles written to DIR
  porthole-base: \`porthole serve\` of another checkout (PORTHOLE_BENCH_BASE=DIR, its dist/ and addon built), beside this
                 one in the same run: a change's before and after (--proxies porthole,porthole-base --rounds 5)`);
  process.exit(0);
}
const quick = flag('--quick');
const ALL = ['echo', 'stream', 'small-writes', 'handshakes', 'idle', 'http', 'h2', 'bridge', 'cores'];
/** The cluster's two entries: straight to node B (which runs the app), and through node A (A → B → app). */
const HOP_PROXIES = ['porthole-b-direct', 'porthole-hop'];
/** The hop's control (named with --proxies only): two plain single-node gateways in a row, no cluster. */
const MULTI_PROCESS = [...HOP_PROXIES, 'porthole-chain'];
const HOP_WORKLOADS = ['echo', 'http'];
// `--only hop`: the hop's workloads, and (unless --proxies says otherwise) the hop's two entries only; with other
// workloads beside it (`--only hop,stream`), every proxy, the cluster's among them for echo and http.
const hopOnly = opt('--only') === 'hop';
const only = [...new Set((opt('--only') ?? ALL.join(',')).split(',').flatMap((w) => (w === 'hop' ? HOP_WORKLOADS : [w])))];
for (const w of only) if (!ALL.includes(w)) {
  console.error(`unknown workload ${w} (one of ${ALL.join(', ')}, hop)`);
  process.exit(2);
}
const proxyNames = (opt('--proxies') ?? (hopOnly ? HOP_PROXIES.join(',') : 'direct,porthole,porthole-node,porthole-js,porthole-no-metrics,porthole-w2,porthole-b-direct,porthole-hop,nginx,nginx-auto,haproxy,http-proxy')).split(',');
/** Porthole with its metrics off runs where metrics cost something per unit of work (unless --proxies names it). */
const NO_METRICS_WORKLOADS = ['echo', 'http'];
// The cluster runs echo and http only: its CPU is read per node, which those two workloads report.
/** The JavaScript tunnel runs where the tunnel engine matters, `workers: 2` where more processes could add throughput (unless --proxies names them). */
const ENGINE_WORKLOADS = ['echo', 'stream', 'small-writes', 'handshakes', 'idle'];
const WORKER_WORKLOADS = ['handshakes', 'http', 'cores'];
/** The cores workload (peers in C, so that the proxies get the cores): one process and two, for Porthole and for nginx. */
const CORES_PROXIES = ['porthole', 'porthole-w2', 'nginx', 'nginx-auto'];
/** Node's handshake path (no front) where the front does something (handshakes) or could cost something (a connection's first request, echo's tunnels). */
const FRONT_WORKLOADS = ['handshakes', 'echo', 'http'];
const skip = (proxy, workload) =>
  (proxy === 'porthole-no-metrics' && !opt('--proxies') && !NO_METRICS_WORKLOADS.includes(workload)) ||
  (proxy === 'porthole-js' && !opt('--proxies') && !ENGINE_WORKLOADS.includes(workload)) ||
  (proxy === 'porthole-w2' && !opt('--proxies') && !WORKER_WORKLOADS.includes(workload)) ||
  (proxy === 'porthole-node' && !opt('--proxies') && !FRONT_WORKLOADS.includes(workload)) || (MULTI_PROCESS.includes(proxy) && !HOP_WORKLOADS.includes(workload)) ||
  (workload === 'cores' && !opt('--proxies') && !CORES_PROXIES.includes(proxy));
const cpuProf = opt('--cpu-prof');
// --rate N: echo at N messages per second per connection (open loop), the same load for every proxy, so their CPU
// per message compares at equal load rather than each at its own pace (a slower path also batches less per wake-up,
// which raises its CPU per message). http stays closed loop (wrk has no fixed rate).
const rate = opt('--rate');
if (rate !== undefined && !(Number(rate) > 0)) {
  console.error(`--rate: expected messages per second per connection, got ${rate}`);
  process.exit(2);
}
const outDir = opt('--out') ?? join(ROOT, 'bench/results');
const T = quick ? 2 : 10; // seconds per measurement
// Each proxy measured N times, in A B … B A order so drift of a shared machine's load falls on both; the median of each figure is shown.
const rounds = Number(opt('--rounds') ?? 1);
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 20) {
  console.error(`--rounds: expected 1–20, got ${opt('--rounds')}`);
  process.exit(2);
}

const CLI = join(ROOT, 'dist/cli/main.js');

/** Runs a child to completion; returns its stdout and its own CPU seconds (from /proc, sampled at the end). */
function runChild(cmd, argv, { onLine } = {}) {
  return new Promise((ok, fail) => {
    const child = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let cpu = 0;
    child.stdout.on('data', (d) => {
      out += d;
      if (onLine) for (const l of String(d).split('\n')) if (l) onLine(l, child);
    });
    child.stderr.on('data', (d) => (err = (err + d).slice(-4000)));
    const poll = setInterval(() => {
      try {
        cpu = sample(child.pid).cpu;
      } catch {
        /* exited */
      }
    }, 200);
    child.on('exit', (code) => {
      clearInterval(poll);
      if (code !== 0 && !out) fail(new Error(`${cmd} ${argv.join(' ')} exited ${code}: ${err}`));
      else ok({ out, err, cpu, child });
    });
  });
}

function proxyStarter(name) {
  if (name === 'porthole-hop') return (up) => startCluster(up, { entry: 'a', cpuProf });
  if (name === 'porthole-b-direct') return (up) => startCluster(up, { entry: 'b', cpuProf });
  if (name === 'porthole-chain') return (up) => startChain(up);
  if (name === 'nginx-auto') return (up) => PROXIES.nginx(up, 'auto');
  if (name === 'porthole-no-metrics') return (up) => PROXIES.porthole(up, { metrics: false });
  // The JavaScript tunnel, where `porthole` uses the native one when its addon is built.
  if (name === 'porthole-js') return (up) => PROXIES.porthole(up, { engine: 'js', cpuProf });
  if (name === 'porthole') return (up) => PROXIES.porthole(up, { cpuProf });
  // Another build beside this one, for a change's before and after in one run: a checkout with its dist/ and addon built.
  if (name === 'porthole-base') {
    const root = process.env.PORTHOLE_BENCH_BASE;
    if (!root || !existsSync(join(root, 'dist/cli/main.js'))) throw new Error('porthole-base: set PORTHOLE_BENCH_BASE to a checkout with dist/ built (npm install there)');
    return (up) => PROXIES.porthole(up, { root, label: ' (base)' });
  }
  if (name === 'porthole-node') return (up) => PROXIES.porthole(up, { nodeHandshakes: true, cpuProf });
  // workers: 2 (docs/workers.md); -rr: the primary hands out connections round-robin instead of the workers accepting.
  if (name === 'porthole-w2') return (up) => PROXIES.porthole(up, { workers: 2 });
  if (name === 'porthole-w2-rr') return (up) => PROXIES.porthole(up, { workers: 2, sched: 'rr' });
  if (!PROXIES[name]) throw new Error(`unknown proxy ${name}`);
  return PROXIES[name];
}

const cpuOf = (pid) => (pid ? sample(pid).cpu : 0);

/**
 * Measures `fn` with the CPU time of the proxy, the upstream, and (for a
 * cluster) each node in `proxy.parts` and each helper in `proxy.side` around it.
 */
async function measured(proxy, up, fn) {
  const watched = [['proxy', proxy.pid], ['upstream', up.pid], ...[...(proxy.parts ?? []), ...(proxy.side ?? [])].map((p) => [p.label, p.pid])];
  const before = watched.map(([, pid]) => cpuOf(pid));
  const t0 = performance.now();
  const r = await fn();
  const wall = (performance.now() - t0) / 1000;
  const cpu = Object.fromEntries(watched.map(([k, pid], i) => [k, pid ? cpuOf(pid) - before[i] : null]));
  return { ...r, wall, proxyCpu: cpu.proxy, upstreamCpu: cpu.upstream, cpu };
}

/**
 * The proxy's CPU per unit of work (`unit`: "µs/msg", `units` of work, `scale` to
 * µs): one figure; for a cluster, the sum over its nodes (the whole cost of a
 * unit of work) and each node's own, a node off the clients' path as null.
 */
function proxyCpu(proxy, r, unit, units, scale) {
  if (!proxy.parts) return { [`proxy CPU ${unit}`]: proxy.pid ? (r.proxyCpu / units) * scale : null };
  const each = {};
  let sum = 0;
  for (const p of proxy.parts) {
    const c = r.cpu[p.label];
    each[`${p.label} CPU ${unit}`] = c === null ? null : (c / units) * scale;
    sum += c ?? 0;
  }
  return { [`proxy CPU ${unit}`]: (sum / units) * scale, ...each };
}

/** A cluster's helpers (Redis): their share of one core, which should stay near zero (nothing on a request's path asks Redis). */
function sideCpu(proxy, r) {
  return Object.fromEntries((proxy.side ?? []).map((p) => [`${p.label} CPU %`, (r.cpu[p.label] / r.wall) * 100]));
}

const WORKLOADS = {
  async echo(proxy, up) {
    const url = `ws://127.0.0.1:${proxy.port}${proxy.path}echo`;
    // Warm up (JIT, connection pools) outside the measurement.
    await runChild(process.execPath, [CLI, 'bench', url, '--connections', '8', '--size', '1024', '--duration', '1', '--json', '--no-progress']);
    const r = await measured(proxy, up, async () => {
      const { out, cpu } = await runChild(process.execPath, [CLI, 'bench', url, '--connections', '64', '--size', '1024', '--duration', String(T), ...(rate ? ['--rate', rate] : []), '--binary', '--json', '--no-progress']);
      return { bench: JSON.parse(out), loadCpu: cpu };
    });
    const b = r.bench;
    const msgs = b.messages.received;
    return {
      'msgs/s': b.messages.perSecond,
      'p50 ms': b.latency.p50Ms,
      'p99 ms': b.latency.p99Ms,
      'p99.9 ms': b.latency.p999Ms,
      ...proxyCpu(proxy, r, 'µs/msg', msgs, 1e6),
      'loadgen CPU %': (r.loadCpu / r.wall) * 100,
      'upstream CPU %': (r.upstreamCpu / r.wall) * 100,
      ...sideCpu(proxy, r),
      errors: b.errors.total,
    };
  },

  async stream(proxy, up) {
    const url = `ws://127.0.0.1:${proxy.port}${proxy.path}stream`;
    const r = await measured(proxy, up, async () => {
      const { out, cpu } = await runChild(process.execPath, [join(ROOT, 'bench/clients/stream.mjs'), url, '8', String(T)]);
      return { s: JSON.parse(out), loadCpu: cpu };
    });
    const mib = r.s.bytes / 1048576;
    return {
      'MiB/s': mib / r.s.seconds,
      'proxy CPU ms/MiB': proxy.pid ? (r.proxyCpu / mib) * 1000 : null,
      'loadgen CPU %': (r.loadCpu / r.wall) * 100,
      'upstream CPU %': (r.upstreamCpu / r.wall) * 100,
      errors: r.s.errors,
    };
  },

  /**
   * Autobahn's 9.5.1 as a workload: a 1 MiB message written by the client in 64-byte pieces, each
   * its own write on its own turn of the event loop, echoed back whole. What it shows is latency
   * (how long the pieces wait in the proxy or in the kernel), and CPU per piece.
   */
  async 'small-writes'(proxy, up) {
    const url = `ws://127.0.0.1:${proxy.port}${proxy.path}small`;
    const messages = quick ? 2 : 8;
    const client = (nodelay) => runChild(process.execPath, [join(ROOT, 'bench/clients/small-writes.mjs'), url, String(1 << 20), '64', String(messages), '1', String(T * 3), nodelay]);
    const r = await measured(proxy, up, async () => {
      const { out, cpu } = await client('1');
      return { s: JSON.parse(out), loadCpu: cpu };
    });
    // The same with Nagle's algorithm on the client's socket (Node's default for a bare net.Socket):
    // the kernel then coalesces the pieces while one is unacknowledged, and a delayed ACK on a leg
    // of the proxy would show here as tens of milliseconds per message.
    const nagle = JSON.parse((await client('0')).out);
    return {
      'ms/message': r.s.p50,
      'p99 ms': r.s.p99,
      'µs/piece': (r.s.p50 * 1000) / Math.ceil((1 << 20) / 64),
      'ms/message (client Nagle)': nagle.p50,
      'proxy CPU µs/piece': proxy.pid ? (r.proxyCpu / Math.max(1, r.s.pieces)) * 1e6 : null,
      'loadgen CPU %': (r.loadCpu / r.wall) * 100,
      'upstream CPU %': (r.upstreamCpu / r.wall) * 100,
      errors: r.s.errors + nagle.errors,
    };
  },

  async handshakes(proxy, up) {
    const r = await measured(proxy, up, async () => {
      const { out, cpu } = await runChild(cBuild('handshakes', 'bench/clients/handshakes.c', ['-lpthread']), ['127.0.0.1', String(proxy.port), `${proxy.path}hs`, '32', String(T)]);
      return { h: JSON.parse(out), loadCpu: cpu };
    });
    return {
      'conns/s': r.h.done / r.h.seconds,
      'p50 ms': r.h.p50,
      'p99 ms': r.h.p99,
      'proxy CPU µs/conn': proxy.pid ? (r.proxyCpu / r.h.done) * 1e6 : null,
      'loadgen CPU %': (r.loadCpu / r.wall) * 100,
      'upstream CPU %': (r.upstreamCpu / r.wall) * 100,
      errors: r.h.errors,
    };
  },

  async idle(proxy, up) {
    const n = quick ? 500 : 9000;
    const url = `ws://127.0.0.1:${proxy.port}${proxy.path}idle`;
    const rss = () => (proxy.pid ? sample(proxy.pid).rss : 0);
    // Opens `count` tunnels from a new client process and reads the proxy's RSS once they settle.
    const openBatch = (count) =>
      new Promise((ok, fail) => {
        const child = spawn(process.execPath, [join(ROOT, 'bench/clients/idle.mjs'), url, String(count)], { stdio: ['pipe', 'pipe', 'inherit'] });
        let buf = '';
        child.stdout.on('data', async (d) => {
          buf += d;
          const m = /open (\{.*\})/.exec(buf);
          if (!m) return;
          buf = '';
          // Let the proxy settle before reading its memory: GC and buffers, and Porthole's collection
          // after a burst, which comes once two seconds passed without new connections (docs/configuration.md).
          await new Promise((r) => setTimeout(r, 4000));
          ok({ ...JSON.parse(m[1]), rss: rss(), close: () => new Promise((done) => (child.once('exit', done), child.stdin.end('x\n'))) });
        });
        child.once('error', fail);
      });
    const before = rss();
    const first = await openBatch(n / 2);
    const second = await openBatch(n / 2);
    await first.close();
    await second.close();
    const open = first.open + second.open;
    return {
      tunnels: open,
      'open s': first.seconds + second.seconds,
      'RSS growth MiB': proxy.pid ? (second.rss - before) / 1024 : null,
      'KiB/tunnel': proxy.pid ? (second.rss - before) / open : null,
      // The second half's cost alone: fixed one-time growth (heap spaces, pools) left out.
      'KiB/tunnel marginal': proxy.pid ? (second.rss - first.rss) / second.open : null,
      errors: first.errors + second.errors,
    };
  },

  async http(proxy, up) {
    const url = `http://127.0.0.1:${proxy.port}${proxy.path}page`;
    await runChild('/usr/bin/wrk', ['-t1', '-c64', '-d1s', url]);
    const r = await measured(proxy, up, async () => {
      const { out, cpu } = await runChild('/usr/bin/wrk', ['-t1', '-c64', `-d${T}s`, '--latency', url]);
      return { out, loadCpu: cpu };
    });
    const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.out)?.[1] ?? 0);
    const total = Number(/(\d+) requests in/.exec(r.out)?.[1] ?? 0);
    const p99 = wrkMs(/99%\s+([\d.]+\w+)/.exec(r.out)?.[1]);
    const p50 = wrkMs(/50%\s+([\d.]+\w+)/.exec(r.out)?.[1]);
    const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(r.out)?.[1] ?? 0);
    const sockErr = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(r.out);
    return {
      'req/s': rps,
      'p50 ms': p50,
      'p99 ms': p99,
      ...proxyCpu(proxy, r, 'µs/req', total, 1e6),
      'loadgen CPU %': (r.loadCpu / r.wall) * 100,
      'upstream CPU %': (r.upstreamCpu / r.wall) * 100,
      ...sideCpu(proxy, r),
      errors: non2xx + (sockErr ? sockErr.slice(1).reduce((a, b) => a + Number(b), 0) : 0),
    };
  },
};

/**
 * Throughput against the cores a proxy gets: HTTP (wrk) and the handshake cycle (bench/clients/handshakes.c)
 * against the C upstream, so that the load generator and the upstream take a small share of the two cores and a
 * second proxy process has a core to use. Each figure beside the proxy's CPU (% of one core) and the peers'.
 */
WORKLOADS.cores = async (proxy, up) => {
  const base = `127.0.0.1:${proxy.port}`;
  await runChild('/usr/bin/wrk', ['-t1', '-c64', '-d1s', `http://${base}${proxy.path}page`]);
  const h = await measured(proxy, up, async () => {
    const { out, cpu } = await runChild('/usr/bin/wrk', ['-t1', '-c64', `-d${T}s`, `http://${base}${proxy.path}page`]);
    return { out, loadCpu: cpu };
  });
  const total = Number(/(\d+) requests in/.exec(h.out)?.[1] ?? 0);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(h.out)?.[1] ?? 0);
  const sockErr = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(h.out);
  const w = await measured(proxy, up, async () => {
    const { out, cpu } = await runChild(cBuild('handshakes', 'bench/clients/handshakes.c', ['-lpthread']), ['127.0.0.1', String(proxy.port), `${proxy.path}hs`, '32', String(T)]);
    return { hs: JSON.parse(out), loadCpu: cpu };
  });
  const pct = (cpu, r) => (cpu / r.wall) * 100;
  return {
    'req/s': total / h.wall,
    'HTTP proxy CPU %': pct(h.proxyCpu, h),
    'HTTP µs/req': (h.proxyCpu / total) * 1e6,
    'HTTP peers CPU %': pct(h.loadCpu + h.upstreamCpu, h),
    'conns/s': w.hs.done / w.hs.seconds,
    'handshake proxy CPU %': pct(w.proxyCpu, w),
    'µs/conn': (w.proxyCpu / w.hs.done) * 1e6,
    'handshake peers CPU %': pct(w.loadCpu + w.upstreamCpu, w),
    errors: non2xx + (sockErr ? sockErr.slice(1).reduce((a, b) => a + Number(b), 0) : 0) + w.hs.errors,
  };
};

/** Each figure's median over the rounds (errors: their sum). */
function medianRow(rows) {
  if (rows.length === 1) return rows[0];
  const out = { proxy: rows[0].proxy };
  for (const key of Object.keys(rows[0])) {
    if (key === 'proxy') continue;
    const vs = rows.map((r) => r[key]);
    if (key === 'errors') out[key] = vs.reduce((a, b) => a + b, 0);
    else if (vs.some((v) => typeof v !== 'number')) out[key] = vs[0];
    else {
      const sorted = [...vs].sort((a, b) => a - b);
      const mid = sorted.length >> 1;
      out[key] = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
  }
  return out;
}

function wrkMs(v) {
  if (!v) return null;
  const m = /([\d.]+)(us|ms|s)/.exec(v);
  if (!m) return null;
  return Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1);
}

/**
 * HTTP/2 over TLS to the proxy (h2load: 10 connections, 10 streams each, a small GET), HTTP/1.1
 * from the proxy to the upstream. Each proxy is measured with its own TLS: the cost includes it.
 */
async function h2Workload(names) {
  const rows = [];
  for (const name of names) {
    const up = await startUpstream();
    // Started inside the try: a proxy that fails to start must not leave the upstream running.
    let proxy;
    try {
      proxy = await H2_PROXIES[name](up);
      process.stderr.write(`bench:   ${proxy.name}\n`);
      const url = `https://127.0.0.1:${proxy.port}${proxy.path}page`;
      await runChild('/usr/bin/h2load', ['-c', '10', '-m', '10', '-D', '1', url]);
      const r = await measured(proxy, up, async () => {
        const { out, cpu } = await runChild('/usr/bin/h2load', ['-c', '10', '-m', '10', '-D', String(T), url]);
        return { out, loadCpu: cpu };
      });
      const done = /requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(r.out);
      const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(r.out);
      const protocol = /Application protocol: (\S+)/.exec(r.out)?.[1];
      if (protocol !== 'h2') throw new Error(`${proxy.name}: h2load did not speak h2 (${protocol}):\n${r.out}`);
      const succeeded = Number(done?.[2] ?? 0);
      const seconds = Number(/finished in ([\d.]+)s/.exec(r.out)?.[1] ?? r.wall);
      rows.push({
        proxy: proxy.name,
        'req/s': succeeded / seconds,
        // h2load's line is min, max, mean, sd.
        'mean ms': wrkMs(/time for request:\s+\S+\s+\S+\s+(\S+)/.exec(r.out)?.[1]),
        'proxy CPU µs/req': (r.proxyCpu / Math.max(1, succeeded)) * 1e6,
        'loadgen CPU %': (r.loadCpu / r.wall) * 100,
        'upstream CPU %': (r.upstreamCpu / r.wall) * 100,
        errors: Number(done?.[3] ?? 0) + Number(done?.[4] ?? 0) + Number(done?.[5] ?? 0) + (codes ? Number(codes[2]) + Number(codes[3]) + Number(codes[4]) : 0),
      });
    } finally {
      await proxy?.stop();
      await up.stop();
    }
  }
  return rows;
}

/** The bridge workload's reader (clients/stream-reader.c), built once per run with the system's C compiler. */
const built = new Map();
/** A C peer of the benchmark (`src` under the project), built once per run with the system's compiler; its path. */
function cBuild(name, src, libs) {
  if (built.has(name)) return built.get(name);
  const dir = join(os.tmpdir(), `porthole-bench-${process.pid}`);
  if (built.size === 0) {
    mkdirSync(dir, { recursive: true });
    // The run's programs go with it, however it ends.
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  const bin = join(dir, name);
  execFileSync('gcc', ['-O2', '-o', bin, join(ROOT, src), ...libs], { stdio: 'inherit' });
  built.set(name, bin);
  return bin;
}

async function bridgeWorkload(names) {
  const rows = [];
  const reader = cBuild('stream-reader', 'bench/clients/stream-reader.c', ['-lpthread']);
  const src = await startTcpSource();
  try {
    for (const name of names) {
      const bridge = await BRIDGES[name](src);
      try {
        const url = `ws://127.0.0.1:${bridge.port}${bridge.path}`;
        const r = await measured(bridge, src, async () => {
          const { out, cpu } = await runChild(reader, ['127.0.0.1', String(bridge.port), bridge.path, '4', String(T)]);
          return { s: JSON.parse(out), loadCpu: cpu };
        });
        const mib = r.s.bytes / 1048576;
        rows.push({
          proxy: bridge.name,
          'MiB/s': mib / r.s.seconds,
          'proxy CPU ms/MiB': (r.proxyCpu / mib) * 1000,
          'loadgen CPU %': (r.loadCpu / r.wall) * 100,
          'upstream CPU %': (r.upstreamCpu / r.wall) * 100,
          errors: r.s.errors,
        });
      } finally {
        await bridge.stop();
      }
    }
  } finally {
    await src.stop();
  }
  return rows;
}

const MAIN = { echo: 'msgs/s', stream: 'MiB/s', 'small-writes': 'ms/message', handshakes: 'conns/s', idle: 'KiB/tunnel', http: 'req/s', h2: 'req/s', bridge: 'MiB/s' };
const COST = { echo: 'proxy CPU µs/msg', stream: 'proxy CPU ms/MiB', 'small-writes': 'proxy CPU µs/piece', handshakes: 'proxy CPU µs/conn', http: 'proxy CPU µs/req', h2: 'proxy CPU µs/req', bridge: 'proxy CPU ms/MiB' };

function fmt(v) {
  if (v === null || v === undefined) return '–';
  if (typeof v !== 'number') return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1000 ? Math.round(v).toLocaleString('en-US') : a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : v.toFixed(3);
}

function ratio(rows, metric, a, b) {
  const x = rows.find((r) => r.proxy === a)?.[metric];
  const y = rows.find((r) => r.proxy === b)?.[metric];
  return typeof x === 'number' && typeof y === 'number' && y !== 0 ? x / y : null;
}

/** Every row's columns, in order: a column only some rows have (a cluster's nodes) comes after the one it follows in them. */
function columns(rows) {
  const cols = [];
  for (const r of rows) {
    let at = 0;
    for (const k of Object.keys(r)) {
      if (k === 'proxy') continue;
      const i = cols.indexOf(k);
      if (i === -1) cols.splice(at++, 0, k);
      else at = i + 1;
    }
  }
  return cols;
}

/** The names of the cluster's two rows: straight to B, and through A. */
const HOP_ROWS = ['porthole (B direct)', 'porthole (A→B)'];

/** Through A against straight to B: throughput, latency and CPU, and what the hop adds per unit of work. */
function hopNotes(rows, main, cost) {
  const [direct, hop] = HOP_ROWS.map((n) => rows.find((r) => r.proxy === n));
  if (!direct || !hop) return [];
  const notes = [];
  for (const m of [main, 'p50 ms', 'p99 ms', cost]) {
    const r = ratio(rows, m, HOP_ROWS[1], HOP_ROWS[0]);
    if (r !== null) notes.push(`hop/direct ${m === cost ? `${m} (A+B)` : m}: **${r.toFixed(2)}**`);
  }
  const unit = cost.slice('proxy CPU '.length);
  const a = hop[`A CPU ${unit}`];
  const bExtra = hop[`B CPU ${unit}`] - direct[`B CPU ${unit}`];
  if (typeof a === 'number' && Number.isFinite(bExtra)) notes.push(`the hop adds **${fmt(a + bExtra)} ${unit}** of CPU (A ${fmt(a)}, B's extra ${fmt(bExtra)})`);
  return notes;
}

function table(workload, rows) {
  const cols = columns(rows);
  const lines = [`| proxy | ${cols.join(' | ')} |`, `|---|${cols.map(() => '---:').join('|')}|`];
  for (const r of rows) lines.push(`| ${r.proxy} | ${cols.map((c) => fmt(r[c])).join(' | ')} |`);
  const main = MAIN[workload];
  const cost = COST[workload];
  const notes = [];
  const base = workload === 'bridge' ? 'websockify' : 'nginx';
  const rn = ratio(rows, main, 'porthole', base);
  if (rn !== null) notes.push(`porthole/${base} ${main}: **${rn.toFixed(2)}**`);
  const rd = ratio(rows, main, 'porthole', 'direct');
  if (rd !== null && workload !== 'idle') notes.push(`porthole/direct ${main}: **${rd.toFixed(2)}**`);
  if (cost) {
    const rc = ratio(rows, cost, 'porthole', base);
    if (rc !== null) notes.push(`porthole/${base} ${cost}: **${rc.toFixed(2)}**`);
  }
  // The JavaScript tunnel against nginx, and what a second worker process changes.
  for (const m of [main, cost]) {
    const r = m && ratio(rows, m, 'porthole (JS tunnel)', base);
    if (r) notes.push(`porthole (JS tunnel)/${base} ${m}: **${r.toFixed(2)}**`);
  }
  // The bridge's JavaScript engine, and the native one without splice, against websockify.
  for (const name of ['porthole (JS bridge)', 'porthole (no splice)']) {
    for (const m of [main, cost]) {
      const r = m && ratio(rows, m, name, base);
      if (r) notes.push(`${name}/${base} ${m}: **${r.toFixed(2)}**`);
    }
  }
  for (const m of [main, cost]) {
    const r = m && ratio(rows, m, 'porthole (2 workers)', 'porthole');
    if (r) notes.push(`2 workers/1 ${m}: **${r.toFixed(2)}**`);
  }
  // The cost of the Prometheus metrics: on (porthole) over off.
  for (const m of [main, cost]) {
    const r = m && ratio(rows, m, 'porthole', 'porthole (no metrics)');
    if (r) notes.push(`metrics on/off ${m}: **${r.toFixed(3)}**`);
  }
  if (cost) notes.push(...hopNotes(rows, main, cost));
  // What a second process adds when the peers leave it a core: Porthole's workers, and nginx's for comparison.
  if (workload === 'cores') {
    for (const [two, one, label] of [['porthole (2 workers)', 'porthole', 'porthole 2 workers/1'], ['nginx (auto)', 'nginx', 'nginx auto/1']]) {
      for (const m of ['req/s', 'HTTP proxy CPU %', 'conns/s', 'handshake proxy CPU %']) {
        const r = ratio(rows, m, two, one);
        if (r) notes.push(`${label} ${m}: **${r.toFixed(2)}**`);
      }
    }
  }
  return `${lines.join('\n')}\n\n${notes.join(' · ')}\n`;
}

async function main() {
  ensureInstalled();
  const started = Date.now();
  const results = {};
  /** With --rounds: every round's row, per workload and proxy. */
  const raw = {};
  const meta = {
    date: new Date().toISOString(),
    quick,
    seconds: T,
    rounds,
    ...(rate ? { echoRate: Number(rate) } : {}),
    machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}`,
    node: process.version,
  };
  for (const workload of only) {
    process.stderr.write(`bench: ${workload}\n`);
    if (workload === 'h2') {
      results.h2 = await h2Workload(['porthole', 'nginx', 'haproxy'].filter((n) => !opt('--proxies') || proxyNames.includes(n)));
      continue;
    }
    if (workload === 'bridge') {
      results.bridge = await bridgeWorkload(['porthole', 'porthole-js', 'porthole-nosplice', 'websockify']);
      continue;
    }
    const runs = new Map();
    const names = proxyNames.filter((name) => !skip(name, workload));
    for (let round = 0; round < rounds; round++) {
      for (const name of round % 2 ? [...names].reverse() : names) {
        const up = workload === 'cores' ? await startCUpstream(cBuild('c-upstream', 'bench/peers/c-upstream.c', ['-lcrypto'])) : await startUpstream();
        // Started inside the try: a proxy that fails to start must not leave the upstream running.
        let proxy;
        try {
          proxy = await proxyStarter(name)(up);
          process.stderr.write(`bench:   ${proxy.name}${rounds > 1 ? ` (round ${round + 1}/${rounds})` : ''}\n`);
          const row = { proxy: proxy.name, ...(await WORKLOADS[workload](proxy, up)) };
          runs.set(name, [...(runs.get(name) ?? []), row]);
        } finally {
          await proxy?.stop();
          await up.stop();
        }
      }
    }
    results[workload] = names.map((name) => medianRow(runs.get(name)));
    if (rounds > 1) raw[workload] = Object.fromEntries(runs);
  }
  meta.totalSeconds = Math.round((Date.now() - started) / 1000);
  meta.harnessCpu = selfCpu();
  let md = `# Porthole benchmark${quick ? ' (quick)' : ''}\n\n${meta.date} · ${meta.machine} · Node ${meta.node} · ${T} s per measurement${rate ? ` · echo at ${rate} msgs/s per connection (open loop)` : ''}${rounds > 1 ? ` · median of ${rounds} rounds` : ''} · ${meta.totalSeconds} s in all\n\n`;
  // A workload no named proxy runs (`--only stream --proxies porthole-hop`) has no table.
  for (const [w, rows] of Object.entries(results)) if (rows.length) md += `## ${w}\n\n${table(w, rows)}\n`;
  process.stdout.write(md);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'latest.md'), md);
  writeFileSync(join(outDir, 'latest.json'), `${JSON.stringify({ meta, results, ...(rounds > 1 ? { raw } : {}) }, null, 2)}\n`);
}

main().catch((err) => {
  console.error(`bench: ${err.stack ?? err}`);
  process.exit(1);
});
