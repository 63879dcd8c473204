// A two-node Porthole cluster for the hop benchmark: one Debian redis-server
// and two `porthole serve` processes (nodes a and b) on loopback, each with its
// own data dir and config file, sharing the registry in Redis. The upstream is
// registered on node b as an external app (`port: N`, `node: b`), so a request
// to node a goes a → b's peer listener → the upstream, and one to node b goes
// b → the upstream. docs/cluster.md describes the hop.
//
// Every process is started under `setpriv --pdeathsig KILL` (when present):
// if the harness dies, the kernel ends them too. stop() ends them in order
// (the nodes, then Redis) and removes the directories.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ROOT, freePort, waitPort } from './peers.mjs';

export const REDIS_SERVER = '/usr/bin/redis-server';
const SETPRIV = '/usr/bin/setpriv';
const CLI = join(ROOT, 'dist/cli/main.js');
/** The app's name on the cluster: requests go to /bench/… on either node. */
const APP = 'bench';
const START_MS = 20_000;
const STOP_MS = 5_000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Spawns `cmd` so that it dies with this process; `onLine` sees each stderr line. */
function launch(name, cmd, args, onLine) {
  const [bin, argv] = existsSync(SETPRIV) ? [SETPRIV, ['--pdeathsig', 'KILL', cmd, ...args]] : [cmd, args];
  const child = spawn(bin, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  let partial = '';
  child.stdout.resume(); // the request log: read and dropped, as the single-node peer does
  child.stderr.on('data', (d) => {
    tail = (tail + d).slice(-4000);
    partial += d;
    const lines = partial.split('\n');
    partial = lines.pop();
    for (const l of lines) onLine?.(l);
  });
  const exited = new Promise((ok) => child.once('exit', (code, sig) => ok(code ?? sig)));
  child.once('exit', (code, sig) => {
    if (!child.stopping) process.stderr.write(`bench: ${name} exited (${code ?? sig}): ${tail}\n`);
  });
  const stop = async () => {
    child.stopping = true;
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_MS);
    await exited;
    clearTimeout(timer);
  };
  return { child, exited, stop, tail: () => tail };
}

async function startRedis(dir) {
  const port = await freePort();
  const p = launch('redis-server', REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--daemonize', 'no', '--dir', dir, '--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--logfile', '']);
  await Promise.race([waitPort(port, START_MS), p.exited.then((c) => Promise.reject(new Error(`redis-server exited (${c}): ${p.tail()}`)))]);
  return { port, pid: p.child.pid, stop: p.stop };
}

/**
 * One `porthole serve` on 127.0.0.1 port 0 with the config `yaml`; resolves
 * with its port (and, for a cluster node, its peer listener's address) once
 * it listens.
 */
async function startGateway(name, dir, yaml, { args = [], cluster = false, cpuProf, profName } = {}) {
  mkdirSync(dir, { recursive: true });
  const cfg = join(dir, 'porthole.yaml');
  writeFileSync(cfg, yaml);
  let url;
  let peer;
  let ready;
  const up = new Promise((ok) => (ready = ok));
  const prof = cpuProf ? ['--cpu-prof', '--cpu-prof-dir', cpuProf, '--cpu-prof-name', profName] : [];
  const p = launch(name, process.execPath, [...prof, CLI, 'serve', '--listen', '127.0.0.1:0', '--config', cfg, '--data', dir, '--log-format', 'json', ...args], (line) => {
    url ??= /listening on (http:\/\/\S+)/.exec(line)?.[1];
    peer ??= /peer listener on (\S+)/.exec(line)?.[1];
    if (url && (peer || !cluster)) ready();
  });
  let timer;
  const late = new Promise((_, fail) => (timer = setTimeout(() => fail(new Error(`${name} did not start in ${START_MS} ms: ${p.tail()}`)), START_MS)));
  try {
    await Promise.race([up, late, p.exited.then((c) => Promise.reject(new Error(`${name} exited (${c}): ${p.tail()}`)))]);
  } catch (err) {
    await p.stop();
    throw err;
  } finally {
    clearTimeout(timer);
  }
  const port = Number(new URL(url).port);
  return { name, port, peer, pid: p.child.pid, token: () => readFileSync(join(dir, 'private', 'token'), 'utf8').trim(), stop: p.stop };
}

/** A node of the cluster: `porthole serve --node NAME` with the Redis store and a peer listener on port 0. */
function startNode(name, redisPort, dir, { cpuProf, profName, config = '' } = {}) {
  // The heartbeat at its default (5 s): nothing about it is on a request's path.
  const yaml = `store: { url: "redis://127.0.0.1:${redisPort}", prefix: "bench:" }\ncluster: { listen: "127.0.0.1:0" }\n${config}`;
  return startGateway(`porthole node ${name}`, dir, yaml, { args: ['--node', name], cluster: true, cpuProf, profName });
}

/** Polls until GET {base}/bench/page answers 200 with the upstream's body. */
async function waitRoute(base, what) {
  const deadline = Date.now() + START_MS;
  let last = '';
  for (;;) {
    try {
      const res = await fetch(`${base}/${APP}/page`, { signal: AbortSignal.timeout(2_000) });
      const body = await res.text();
      if (res.status === 200 && body.startsWith('hello from the upstream')) return;
      last = `${res.status} ${body.slice(0, 200)}`;
    } catch (err) {
      last = err.message;
    }
    if (Date.now() > deadline) throw new Error(`${what}: /${APP}/page did not reach the upstream within ${START_MS} ms (last: ${last})`);
    await sleep(50);
  }
}

/**
 * Starts Redis and nodes a and b, registers `up` on node b, and waits until
 * both nodes route to it. `entry` is the node the clients talk to: 'a' (the
 * hop: a → b → app) or 'b' (direct: b → app). Returns a proxy for run.mjs:
 * `parts` are the nodes (their CPU is read apart; a node off the clients' path
 * has pid null), `side` is Redis (its share of a core). `config`: YAML lines
 * added to both nodes' config files (to try a setting's effect on the hop).
 */
export async function startCluster(up, { entry, cpuProf, config } = {}) {
  if (cpuProf) mkdirSync(cpuProf, { recursive: true });
  if (!existsSync(REDIS_SERVER)) throw new Error(`${REDIS_SERVER} is missing (apt-get install redis-server)`);
  const dir = mkdtempSync(join(tmpdir(), 'bench-cluster-'));
  const stops = [];
  const stop = async () => {
    // Nodes first (they leave the cluster through Redis), then Redis.
    for (const s of stops.reverse()) await s().catch(() => {});
    stops.length = 0;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const redis = await startRedis(dir);
    stops.push(redis.stop);
    // Both at once; a node that started is stopped with the rest even when the other one failed.
    const started = await Promise.allSettled(['a', 'b'].map((name) => startNode(name, redis.port, join(dir, name), { cpuProf: cpuProf && resolve(cpuProf), profName: `node-${name}-entry-${entry}-${Date.now()}.cpuprofile`, config })));
    const nodes = started.filter((r) => r.status === 'fulfilled').map((r) => r.value);
    stops.push(async () => void (await Promise.all(nodes.map((n) => n.stop()))));
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    const [a, b] = nodes;
    const res = await fetch(`http://127.0.0.1:${b.port}/_porthole/api/apps/${APP}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${b.token()}`, 'content-type': 'application/json' },
      body: JSON.stringify({ port: up.port, node: 'b' }),
      signal: AbortSignal.timeout(START_MS),
    });
    if (res.status !== 200) throw new Error(`registering the upstream on node b answered ${res.status}: ${await res.text()}`);
    // Both ready whichever is measured: the cluster is the same in both rows.
    await waitRoute(`http://127.0.0.1:${b.port}`, 'node b');
    await waitRoute(`http://127.0.0.1:${a.port}`, 'node a (through b)');
    const front = entry === 'a' ? a : b;
    return {
      name: entry === 'a' ? 'porthole (A→B)' : 'porthole (B direct)',
      port: front.port,
      pid: null,
      parts: [
        { label: 'A', pid: entry === 'a' ? a.pid : null },
        { label: 'B', pid: b.pid },
      ],
      side: [{ label: 'redis', pid: redis.pid }],
      path: `/${APP}/`,
      nodes: { a, b },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * The control for the hop: two ordinary single-node gateways in a row, no
 * Redis, no cluster. B has the upstream as its app; A has B as its app
 * (`url: http://127.0.0.1:B/bench`). Clients go to A: client → A → B → app, the
 * path of the hop through two plain gateways, so the difference from the
 * cluster's A→B row is what the cluster's own code costs.
 */
export async function startChain(up) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-chain-'));
  const stops = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => {});
    stops.length = 0;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const b = await startGateway('porthole chain b', join(dir, 'b'), `apps:\n  - name: ${APP}\n    port: ${up.port}\n`);
    stops.push(b.stop);
    const a = await startGateway('porthole chain a', join(dir, 'a'), `apps:\n  - name: ${APP}\n    url: http://127.0.0.1:${b.port}/${APP}\n`);
    stops.push(a.stop);
    await waitRoute(`http://127.0.0.1:${a.port}`, 'gateway a (through b)');
    return {
      name: 'porthole chain (A→B)',
      port: a.port,
      pid: null,
      parts: [
        { label: 'A', pid: a.pid },
        { label: 'B', pid: b.pid },
      ],
      path: `/${APP}/`,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
