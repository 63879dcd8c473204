/**
 * The `porthole conformance` recipe of docs/toolkit.md, run as written with
 * bash in a scratch folder inside the checkout (so `npx porthole` is this
 * checkout's CLI): `porthole echo` on the recipe's port, a full run, two
 * family 9 cases, and a JSON and HTML report of families 3 and 7.9.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ConformanceReport } from '../../src/toolkit/conformance/report.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function recipe(): string {
  const doc = readFileSync(join(ROOT, 'docs/toolkit.md'), 'utf8');
  const at = doc.indexOf('<!-- recipe: conformance -->');
  assert.ok(at !== -1, 'docs/toolkit.md has the conformance recipe');
  const m = /```sh\n([\s\S]*?)```/.exec(doc.slice(at));
  assert.ok(m);
  return m[1];
}

function listening(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), ok(true)));
    s.once('error', () => ok(false));
  });
}

test('docs/toolkit.md conformance recipe: porthole echo passes, the family 9 cases pass, report.json is written', async (t) => {
  assert.equal(await listening(9471), false, 'port 9471, which the recipe uses, is free');
  mkdirSync(join(ROOT, '.porthole-data'), { recursive: true }); // git-ignored
  const scratch = mkdtempSync(join(ROOT, '.porthole-data/conformance-'));
  t.after(() => rmSync(scratch, { recursive: true, force: true }));
  const child = spawn('bash', ['-e', '-c', recipe()], { cwd: scratch, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  t.after(() => {
    // The whole group: npx and the echo server it started.
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      /* already gone */
    }
  });
  const code = await new Promise<number | null>((ok) => {
    const timer = setTimeout(() => {
      process.kill(-child.pid!, 'SIGKILL');
    }, 120_000);
    child.on('exit', (c) => {
      clearTimeout(timer);
      ok(c);
    });
  });
  assert.equal(code, 0, `recipe failed\n--- stdout ---\n${out}\n--- stderr ---\n${err}`);
  assert.match(out, /^porthole conformance ws:\/\/127\.0\.0\.1:9471\/: 247 cases in [\d.]+ s$/m);
  assert.match(out, /^porthole conformance ws:\/\/127\.0\.0\.1:9471\/: 2 cases in [\d.]+ s$/m);
  assert.equal(out.match(/^result: nothing FAILED$/gm)?.length, 2);
  const report = JSON.parse(readFileSync(join(scratch, 'report.json'), 'utf8')) as ConformanceReport;
  assert.equal(report.summary.total, 16);
  assert.equal(report.summary.FAILED, 0);
  assert.deepEqual([...new Set(report.cases.map((c) => c.family))], ['3', '7']);
  // --html beside --json: the same document, and the page.
  const written = JSON.parse(readFileSync(join(scratch, 'report/report.json'), 'utf8')) as ConformanceReport;
  assert.deepEqual(written.cases.map((c) => c.id), report.cases.map((c) => c.id));
  assert.match(readFileSync(join(scratch, 'report/index.html'), 'utf8'), /^<!doctype html>/i);
  assert.match(err, /report written to .*report\/index\.html/);
});
