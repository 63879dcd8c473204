/**
 * docs/cluster.md's "Try it on one machine", run as written, line by line:
 * Redis, two nodes, an app registered through node a for node b, a WebSocket
 * through a that reaches it, and `porthole nodes` through b.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { listening, newRun, readRecipe, ROOT, runRecipe } from '../helpers/recipe.js';

test('docs/cluster.md: two nodes on one machine, an app registered through a runs behind b and is reached through a', async (t) => {
  // Below the kernel's ephemeral range (32768-60999): no outgoing connection of a test running alongside can hold one.
  const ports = [6390, 8100, 8101, 8200, 8201, 9101];
  for (const port of ports) assert.equal(await listening(port), false, `port ${port}, which the recipe uses, is free`);
  const lines = readRecipe('docs/cluster.md', 'cluster');
  assert.equal(lines.length, 9, 'the test knows every line of the recipe');
  mkdirSync(join(ROOT, '.porthole-data'), { recursive: true });
  const scratch = mkdtempSync(join(ROOT, '.porthole-data/cluster-'));
  const { PORTHOLE_URL: _url, PORTHOLE_TOKEN: _token, ...env } = process.env;
  const run = newRun();
  t.after(async () => {
    await run.stop();
    rmSync(scratch, { recursive: true, force: true });
  });
  const portOf = (command: string) => Number(/--listen [\d.]+:(\d+)/.exec(command)?.[1] ?? /--port (\d+)/.exec(command)?.[1]);
  const { outputs } = await runRecipe(lines, { cwd: scratch, env, portOf }, run);
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
