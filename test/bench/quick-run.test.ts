import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PEERS = ['direct', 'porthole', 'nginx', 'nginx (auto)', 'haproxy', 'http-proxy'];

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
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
