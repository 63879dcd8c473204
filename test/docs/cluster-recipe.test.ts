/**
 * docs/cluster.md's "Try it on one machine", run as written, line by line:
 * Redis, two nodes, an app registered through node a for node b, a WebSocket
 * through a that reaches it, and `porthole nodes` through b.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function recipe(): string[] {
  const doc = readFileSync(join(ROOT, 'docs/cluster.md'), 'utf8');
  const at = doc.indexOf('<!-- recipe: cluster -->');
  assert.ok(at !== -1, 'docs/cluster.md has the recipe');
  const m = /```sh\n([\s\S]*?)```/.exec(doc.slice(at));
  assert.ok(m);
  return m[1].trim().split('\n');
}

function listening(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), ok(true)));
    s.once('error', () => ok(false));
  });
}

test('docs/cluster.md: two nodes on one machine, an app registered through a runs behind b and is reached through a', async (t) => {
  const ports = [6390, 50100, 50101, 50200, 50201, 9101];
  for (const port of ports) assert.equal(await listening(port), false, `port ${port}, which the recipe uses, is free`);
  const lines = recipe();
  assert.equal(lines.length, 9, 'the test knows every line of the recipe');
  mkdirSync(join(ROOT, '.porthole-data'), { recursive: true });
  const scratch = mkdtempSync(join(ROOT, '.porthole-data/cluster-'));
  const { PORTHOLE_URL: _url, PORTHOLE_TOKEN: _token, ...env } = process.env;
  const background: ChildProcess[] = [];
  t.after(async () => {
    for (const c of background.reverse()) {
      const exited = c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise((r) => c.once('exit', r));
      try {
        process.kill(-c.pid!, 'SIGTERM');
      } catch {
        /* already gone */
      }
      await exited;
    }
    rmSync(scratch, { recursive: true, force: true });
  });
  const outputs: { status: number | null; out: string }[] = [];
  for (const line of lines) {
    const command = line.replace(/\s+#.*$/, '');
    if (command.endsWith('&')) {
      const child = spawn('/bin/sh', ['-c', `exec ${command.slice(0, -1).trim()}`], { cwd: scratch, env, stdio: 'ignore', detached: true });
      background.push(child);
      const port = Number(/--listen [\d.]+:(\d+)/.exec(command)?.[1] ?? /--port (\d+)/.exec(command)?.[1]);
      const deadline = Date.now() + 30_000;
      while (!(await listening(port))) {
        assert.ok(Date.now() < deadline, `${command}: nothing listens on ${port}`);
        assert.equal(child.exitCode, null, `${command} exited ${child.exitCode}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      outputs.push({ status: null, out: '' });
      continue;
    }
    const r = spawnSync('/bin/sh', ['-c', command], { cwd: scratch, env, encoding: 'utf8', timeout: 60_000 });
    outputs.push({ status: r.status, out: `${r.stdout}${r.stderr}` });
  }
  const [, a, b, , , , add, connect, nodes] = outputs;
  assert.equal(a.status, 0, a.out);
  assert.equal(b.status, 0, b.out);
  assert.equal(add.status, 0, add.out);
  assert.match(add.out, /node\s+b/);
  assert.equal(connect.status, 0, connect.out);
  assert.match(connect.out, /hello/);
  assert.equal(nodes.status, 0, nodes.out);
  assert.match(nodes.out, /^a\s+up\s/m);
  assert.match(nodes.out, /^b\s+up\s.*this node.*echo/m);
});
