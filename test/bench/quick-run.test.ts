import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PEERS = ['direct', 'porthole', 'porthole (no metrics)', 'nginx', 'nginx (auto)', 'haproxy', 'http-proxy'];

test('npm run bench -- --quick --only echo: a row for every peer, every figure a positive number', { timeout: 300_000 }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'porthole-bench-'));
  try {
    const run = spawn('npm', ['run', 'bench', '--', '--quick', '--only', 'echo', '--out', out], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    run.stdout.on('data', (d) => (stdout += d));
    run.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise((ok) => run.on('exit', ok));
    assert.equal(code, 0, stderr);
    const { results, meta } = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8'));
    assert.equal(meta.quick, true);
    const rows = results.echo as Record<string, number | string | null>[];
    assert.deepEqual(rows.map((r) => r.proxy), PEERS);
    for (const row of rows) {
      for (const [k, v] of Object.entries(row)) {
        if (k === 'proxy' || k === 'errors') continue;
        if (row.proxy === 'direct' && k.startsWith('proxy CPU')) {
          assert.equal(v, null, 'direct has no proxy');
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
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('npm run bench -- --only http --proxies porthole,porthole-no-metrics --rounds 2: metrics on and off, each measured twice, the medians side by side', { timeout: 300_000 }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'porthole-bench-'));
  try {
    const run = spawn('npm', ['run', 'bench', '--', '--quick', '--only', 'http', '--proxies', 'porthole,porthole-no-metrics', '--rounds', '2', '--out', out], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    run.stderr.on('data', (d) => (stderr += d));
    run.stdout.resume();
    const code = await new Promise((ok) => run.on('exit', ok));
    assert.equal(code, 0, stderr);
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
