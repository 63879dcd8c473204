// `porthole serve` creates the admin token only once it listens (issue 8,
// new-user item 6): a start that fails on a port in use leaves no token behind
// and prints none.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli, startServe } from '../helpers/cli.js';
import { closeServer, listen } from '../helpers/net.js';

test('a serve that cannot listen (port in use) exits 1 without creating or printing a token; the next start creates it', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-token-'));
  const busy = net.createServer();
  const port = await listen(busy);
  t.after(async () => {
    await closeServer(busy);
    rmSync(dataDir, { recursive: true, force: true });
  });
  const run = runCli(['serve', '--listen', `127.0.0.1:${port}`, '--data', dataDir, '--log-format', 'json']);
  assert.equal(await run.exited, 1);
  assert.match(run.stderr(), /the port is already in use/);
  assert.doesNotMatch(run.stderr(), /admin token/);
  assert.equal(existsSync(join(dataDir, 'private', 'token')), false);

  const gw = await startServe(['--data', dataDir, '--log-format', 'json']);
  t.after(() => gw.stop());
  const token = readFileSync(join(dataDir, 'private', 'token'), 'utf8').trim();
  assert.match(gw.stderr(), new RegExp(`admin token .*${token}`));
  const res = await fetch(`${gw.url}/_porthole/api/apps`, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200);
  assert.equal((await fetch(`${gw.url}/_porthole/api/apps`, { headers: { Authorization: 'Bearer wrong' } })).status, 401);
});
