import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PEERS = ['direct', 'porthole', 'porthole (Node handshakes)', 'porthole (JS tunnel)', 'porthole (no metrics)', 'porthole (B direct)', 'porthole (A→B)', 'nginx', 'nginx (auto)', 'haproxy', 'http-proxy'];
/** The two rows of the cluster (Redis and nodes A and B, the app on B): straight to B, and through A. */
const HOP_ROWS = ['porthole (B direct)', 'porthole (A→B)'];
const CLUSTER_ONLY = /^(A|B|redis) CPU/;

/**
 * Starts `npm run bench -- --quick …args`; `done` resolves with its output once it exits 0 and
 * rejects with its stderr otherwise. `tmp`: its own session (see sessionPids) and TMPDIR, so that
 * whatever it starts and leaves behind can be found.
 */
function startBench(args: string[], tmp?: string): { pid: number; done: Promise<{ stdout: string; stderr: string }> } {
  const run = spawn('npm', ['run', 'bench', '--', '--quick', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], ...(tmp ? { detached: true, env: { ...process.env, TMPDIR: tmp } } : {}) });
  let stdout = '';
  let stderr = '';
  run.stdout.on('data', (d) => (stdout += d));
  run.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<{ stdout: string; stderr: string }>((ok, fail) => run.on('exit', (code) => (code === 0 ? ok({ stdout, stderr }) : fail(new Error(`npm run bench exited ${code}: ${stderr}`)))));
  return { pid: run.pid!, done };
}

test('npm run bench -- --quick --only echo: a row for every peer, every figure a positive number', { timeout: 300_000 }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'porthole-bench-'));
  try {
    const { stdout } = await startBench(['--only', 'echo', '--out', out]).done;
    const { results, meta } = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8'));
    assert.equal(meta.quick, true);
    const rows = results.echo as Record<string, number | string | null>[];
    assert.deepEqual(rows.map((r) => r.proxy), PEERS);
    for (const row of rows) {
      const cluster = HOP_ROWS.includes(row.proxy as string);
      for (const [k, v] of Object.entries(row)) {
        if (k === 'proxy' || k === 'errors') continue;
        if (row.proxy === 'direct' && k.startsWith('proxy CPU')) {
          assert.equal(v, null, 'direct has no proxy');
          continue;
        }
        assert.ok(cluster || !CLUSTER_ONLY.test(k), `${row.proxy} has no nodes, yet reports ${k}`);
        if (row.proxy === 'porthole (B direct)' && k.startsWith('A CPU')) {
          assert.equal(v, null, 'node A is off the path when clients go straight to B');
          continue;
        }
        if (k === 'redis CPU %') {
          // Nothing on a message's path asks Redis: its share may round to 0 ticks in a quick run.
          assert.ok(typeof v === 'number' && Number.isFinite(v) && v >= 0, `${row.proxy} ${k} = ${v}`);
          continue;
        }
        assert.ok(typeof v === 'number' && Number.isFinite(v) && v > 0, `${row.proxy} ${k} = ${v}`);
      }
      assert.equal(row.errors, 0, `${row.proxy} had errors`);
    }
    // The Markdown table is printed and written, with the ratios against nginx and direct.
    const md = readFileSync(join(out, 'latest.md'), 'utf8');
    assert.ok(stdout.includes('| proxy | msgs/s |'));
    assert.match(md, /porthole\/nginx msgs\/s: \*\*\d+\.\d\d\*\*/);
    assert.match(md, /porthole\/direct msgs\/s: \*\*\d+\.\d\d\*\*/);
    // The cost of the metrics: Porthole with them on over Porthole with them off.
    assert.match(md, /metrics on\/off msgs\/s: \*\*\d+\.\d{3}\*\*/);
    assert.match(md, /metrics on\/off proxy CPU µs\/msg: \*\*\d+\.\d{3}\*\*/);
    // The cluster's rows: through A over straight to B.
    assert.match(md, /hop\/direct msgs\/s: \*\*\d+\.\d\d\*\*/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('npm run bench -- --only http --proxies porthole,porthole-no-metrics --rounds 2: metrics on and off, each measured twice, the medians side by side', { timeout: 300_000 }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'porthole-bench-'));
  try {
    const { stderr } = await startBench(['--only', 'http', '--proxies', 'porthole,porthole-no-metrics', '--rounds', '2', '--out', out]).done;
    // A B, then B A: the order alternates so a drift of the machine's load falls on both.
    assert.deepEqual(
      [...stderr.matchAll(/bench: {3}(.+) \(round (\d)\/2\)/g)].map((m) => `${m[1]} ${m[2]}`),
      ['porthole 1', 'porthole (no metrics) 1', 'porthole (no metrics) 2', 'porthole 2'],
    );
    const { results, raw, meta } = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8'));
    assert.equal(meta.rounds, 2);
    const rows = results.http as Record<string, number | string>[];
    assert.deepEqual(rows.map((r) => r.proxy), ['porthole', 'porthole (no metrics)']);
    for (const row of rows) {
      const runs = raw.http[row.proxy === 'porthole' ? 'porthole' : 'porthole-no-metrics'] as Record<string, number>[];
      assert.equal(runs.length, 2);
      // The median of two is their mean.
      const cost = 'proxy CPU µs/req';
      assert.ok(Math.abs((row[cost] as number) - (runs[0][cost] + runs[1][cost]) / 2) < 1e-9);
      assert.ok((row[cost] as number) > 0);
      assert.equal(row.errors, 0);
    }
    const md = readFileSync(join(out, 'latest.md'), 'utf8');
    assert.match(md, /median of 2 rounds/);
    assert.match(md, /metrics on\/off proxy CPU µs\/req: \*\*\d+\.\d{3}\*\*/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

/** Pids of the processes in session `sid` (a run started detached leads its own session). */
function sessionPids(sid: number): number[] {
  const pids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = readFileSync(`/proc/${d}/stat`, 'latin1');
      // after the name: state ppid pgrp session …
      if (Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[3]) === sid) pids.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return pids;
}

test('npm run bench -- --quick --only hop: echo and http straight to node B and through node A, CPU per node and summed, nothing left running', { timeout: 300_000 }, async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'porthole-bench-hop-'));
  const out = join(tmp, 'out');
  const prof = join(tmp, 'prof');
  // Its own session (detached) and TMPDIR: whatever the run starts and leaves behind is found by session, its directories under tmp.
  const run = startBench(['--only', 'hop', '--out', out, '--cpu-prof', prof], tmp);
  try {
    await run.done;
    const { results } = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8'));
    assert.deepEqual(Object.keys(results), ['echo', 'http']);
    for (const [workload, unit] of [['echo', 'µs/msg'], ['http', 'µs/req']] as const) {
      const rows = results[workload] as Record<string, number | string | null>[];
      assert.deepEqual(rows.map((r) => r.proxy), HOP_ROWS);
      const [direct, hop] = rows;
      assert.equal(direct[`A CPU ${unit}`], null, 'node A is off the path when clients go straight to B');
      for (const row of rows) {
        for (const k of [workload === 'echo' ? 'msgs/s' : 'req/s', 'p50 ms', 'p99 ms', `B CPU ${unit}`, 'upstream CPU %']) {
          assert.ok(typeof row[k] === 'number' && (row[k] as number) > 0, `${workload} ${row.proxy} ${k} = ${row[k]}`);
        }
        assert.equal(row.errors, 0, `${workload} ${row.proxy} had errors`);
        assert.ok(typeof row['redis CPU %'] === 'number' && row['redis CPU %'] >= 0);
      }
      assert.ok(typeof hop[`A CPU ${unit}`] === 'number' && (hop[`A CPU ${unit}`] as number) > 0, `${workload} through A: A's CPU = ${hop[`A CPU ${unit}`]}`);
      // The proxy's cost is the nodes' sum: A's (when on the path) plus B's.
      for (const row of rows) {
        const sum = ((row[`A CPU ${unit}`] as number | null) ?? 0) + (row[`B CPU ${unit}`] as number);
        assert.ok(Math.abs((row[`proxy CPU ${unit}`] as number) - sum) < 1e-6 * sum, `${workload} ${row.proxy}: ${row[`proxy CPU ${unit}`]} ≠ A + B = ${sum}`);
      }
    }
    const md = readFileSync(join(out, 'latest.md'), 'utf8');
    for (const [main, unit] of [['msgs/s', 'µs/msg'], ['req/s', 'µs/req']]) {
      assert.match(md, new RegExp(`hop/direct ${main}: \\*\\*\\d+\\.\\d\\d\\*\\*`));
      assert.match(md, new RegExp(`hop/direct proxy CPU ${unit} \\(A\\+B\\): \\*\\*\\d+\\.\\d\\d\\*\\*`));
      assert.match(md, new RegExp(`the hop adds \\*\\*-?[\\d.,]+ ${unit}\\*\\* of CPU \\(A [\\d.,]+, B's extra -?[\\d.,]+\\)`));
    }
    // --cpu-prof: a profile of each node of every cluster (2 workloads × 2 entries × nodes a and b), which the summary reads.
    const profiles = readdirSync(prof).sort();
    assert.equal(profiles.length, 8, profiles.join(' '));
    for (const n of ['a', 'b']) assert.equal(profiles.filter((f) => f.startsWith(`node-${n}-entry-`)).length, 4);
    const summary = await new Promise<string>((ok, fail) => {
      const s = spawn(process.execPath, [join(ROOT, 'bench/profile-summary.mjs'), join(prof, profiles.find((f) => f.startsWith('node-a-entry-a'))!)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      s.stdout.on('data', (d) => (text += d));
      s.on('exit', (c) => (c === 0 ? ok(text) : fail(new Error(`profile-summary exited ${c}`))));
    });
    assert.match(summary, /\| where \| share of busy time \|/);
    assert.match(summary, /\| porthole gateway\/ \| \d+\.\d %/);
    // Everything the run started has ended (Redis and both nodes of every cluster), and their directories are gone.
    let left = sessionPids(run.pid);
    for (let i = 0; left.length && i < 40; i++) {
      await new Promise((r) => setTimeout(r, 50));
      left = sessionPids(run.pid);
    }
    assert.deepEqual(left.map((p) => readFileSync(`/proc/${p}/cmdline`, 'latin1').replaceAll('\0', ' ')), []);
    assert.deepEqual(readdirSync(tmp).filter((f) => f.startsWith('bench-')), []);
  } finally {
    try {
      process.kill(-run.pid, 'SIGKILL');
    } catch {
      /* the session's group is gone */
    }
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('npm run bench -- --quick --only http --proxies porthole-chain: the hop\'s control, two plain gateways in a row, CPU per gateway and summed, nothing left running', { timeout: 300_000 }, async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'porthole-bench-chain-'));
  const out = join(tmp, 'out');
  const run = startBench(['--only', 'http', '--proxies', 'porthole-chain', '--out', out], tmp);
  try {
    await run.done;
    const { results } = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8'));
    const rows = results.http as Record<string, number | string | null>[];
    assert.deepEqual(rows.map((r) => r.proxy), ['porthole chain (A→B)']);
    const [row] = rows;
    for (const k of ['req/s', 'p50 ms', 'A CPU µs/req', 'B CPU µs/req']) assert.ok(typeof row[k] === 'number' && (row[k] as number) > 0, `${k} = ${row[k]}`);
    assert.ok(Math.abs((row['proxy CPU µs/req'] as number) - (row['A CPU µs/req'] as number) - (row['B CPU µs/req'] as number)) < 1e-6 * (row['proxy CPU µs/req'] as number));
    assert.equal('redis CPU %' in row, false, 'no Redis in the chain');
    assert.equal(row.errors, 0);
    let left = sessionPids(run.pid);
    for (let i = 0; left.length && i < 40; i++) {
      await new Promise((r) => setTimeout(r, 50));
      left = sessionPids(run.pid);
    }
    assert.deepEqual(left.map((p) => readFileSync(`/proc/${p}/cmdline`, 'latin1').replaceAll('\0', ' ')), []);
    assert.deepEqual(readdirSync(tmp).filter((f) => f.startsWith('bench-')), []);
  } finally {
    try {
      process.kill(-run.pid, 'SIGKILL');
    } catch {
      /* the session's group is gone */
    }
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('npm run bench -- --quick --only small-writes: a 1 MiB message in 64-byte writes through each proxy, with TCP_NODELAY and with Nagle, every message echoed whole', { timeout: 300_000 }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'porthole-bench-'));
  try {
    await startBench(['--only', 'small-writes', '--proxies', 'direct,porthole,nginx', '--out', out]).done;
    const rows = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')).results['small-writes'] as Record<string, number | string | null>[];
    assert.deepEqual(rows.map((r) => r.proxy), ['direct', 'porthole', 'nginx']);
    for (const row of rows) {
      for (const k of ['ms/message', 'p99 ms', 'µs/piece', 'ms/message (client Nagle)', 'upstream CPU %']) {
        assert.ok(typeof row[k] === 'number' && (row[k] as number) > 0, `${row.proxy} ${k} = ${row[k]}`);
      }
      assert.equal(row.errors, 0, `${row.proxy} had errors`);
      if (row.proxy === 'direct') assert.equal(row['proxy CPU µs/piece'], null);
      else assert.ok((row['proxy CPU µs/piece'] as number) > 0, `${row.proxy} proxy CPU µs/piece = ${row['proxy CPU µs/piece']}`);
    }
    assert.match(readFileSync(join(out, 'latest.md'), 'utf8'), /porthole\/nginx ms\/message: \*\*\d+\.\d\d\*\*/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('npm run bench -- --quick --only handshakes: the C client\'s cycle through each proxy, every step checked, a positive figure in every column', { timeout: 300_000 }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'porthole-bench-hs-'));
  try {
    const { stdout } = await startBench(['--only', 'handshakes', '--proxies', 'direct,porthole,porthole-node,nginx', '--out', out], out).done;
    const rows = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')).results.handshakes as Record<string, number | string | null>[];
    assert.deepEqual(rows.map((r) => r.proxy), ['direct', 'porthole', 'porthole (Node handshakes)', 'nginx']);
    for (const row of rows) {
      for (const [k, v] of Object.entries(row)) {
        if (k === 'proxy' || k === 'errors') continue;
        if (row.proxy === 'direct' && k.startsWith('proxy CPU')) {
          assert.equal(v, null, 'direct has no proxy');
          continue;
        }
        assert.ok(typeof v === 'number' && Number.isFinite(v) && v > 0, `${row.proxy} ${k} = ${v}`);
      }
      // bench/clients/handshakes.c counts any miss: a refusal, a wrong accept key, a lost echo, another close code.
      assert.equal(row.errors, 0, `${row.proxy} had errors`);
    }
    // The C programs built for the run went with it.
    assert.deepEqual(readdirSync(out).filter((d) => d.startsWith('porthole-bench-')), []);
    assert.ok(stdout.includes('| proxy | conns/s |'));
    assert.match(readFileSync(join(out, 'latest.md'), 'utf8'), /porthole\/nginx proxy CPU µs\/conn: \*\*\d+\.\d\d\*\*/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('npm run bench -- --quick --only cores: one process and two, Porthole and nginx, against the C peers; every figure positive, the ratios printed', { timeout: 300_000 }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'porthole-bench-cores-'));
  try {
    // Its TMPDIR under `out`: the C peers it builds go with it.
    await startBench(['--only', 'cores', '--out', out], out).done;
    const { results } = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8'));
    const rows = results.cores as Record<string, number | string>[];
    assert.deepEqual(rows.map((r) => r.proxy), ['porthole', 'porthole (2 workers)', 'nginx', 'nginx (auto)']);
    for (const row of rows) {
      for (const [k, v] of Object.entries(row)) {
        if (k === 'proxy' || k === 'errors') continue;
        assert.ok(typeof v === 'number' && Number.isFinite(v) && v > 0, `${row.proxy} ${k} = ${v}`);
      }
      // The C client checks every step of its cycle (the 101's accept key, the echo, the close code, the FIN): any miss counts.
      assert.equal(row.errors, 0, `${row.proxy} had errors`);
    }
    const md = readFileSync(join(out, 'latest.md'), 'utf8');
    assert.match(md, /porthole 2 workers\/1 req\/s: \*\*\d+\.\d\d\*\*/);
    assert.match(md, /porthole 2 workers\/1 conns\/s: \*\*\d+\.\d\d\*\*/);
    assert.match(md, /nginx auto\/1 conns\/s: \*\*\d+\.\d\d\*\*/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('npm run bench -- --proxies porthole,porthole-base: another checkout beside this one (PORTHOLE_BENCH_BASE), named apart; without the variable, the run says what is missing', { timeout: 300_000 }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'porthole-bench-base-'));
  const env = process.env.PORTHOLE_BENCH_BASE;
  let failing: ReturnType<typeof startBench> | undefined;
  try {
    // This checkout stands for the other one: what is tested is that the run starts it and names its row.
    process.env.PORTHOLE_BENCH_BASE = ROOT;
    await startBench(['--only', 'http', '--proxies', 'porthole,porthole-base', '--out', out]).done;
    const rows = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')).results.http as Record<string, number | string>[];
    assert.deepEqual(rows.map((r) => r.proxy), ['porthole', 'porthole (base)']);
    for (const row of rows) assert.ok((row['proxy CPU µs/req'] as number) > 0 && row.errors === 0, JSON.stringify(row));
    delete process.env.PORTHOLE_BENCH_BASE;
    // Its own session: the upstream it started before the proxy failed must be gone with it.
    failing = startBench(['--only', 'http', '--proxies', 'porthole-base', '--out', out], out);
    await assert.rejects(failing.done, /porthole-base: set PORTHOLE_BENCH_BASE to a checkout with dist\/ built/);
    let left = sessionPids(failing.pid);
    for (let i = 0; left.length && i < 40; i++) {
      await new Promise((r) => setTimeout(r, 50));
      left = sessionPids(failing.pid);
    }
    assert.deepEqual(left.map((p) => readFileSync(`/proc/${p}/cmdline`, 'latin1').replaceAll('\0', ' ')), [], 'nothing the failed run started is left running');
  } finally {
    try {
      if (failing) process.kill(-failing.pid, 'SIGKILL');
    } catch {
      /* the session's group is gone */
    }
    if (env === undefined) delete process.env.PORTHOLE_BENCH_BASE;
    else process.env.PORTHOLE_BENCH_BASE = env;
    rmSync(out, { recursive: true, force: true });
  }
});
