/**
 * The safe default: off loopback, a config without `auth` does not start
 * (PH_ERR_AUTH_UNSET, naming `auth: login` and `auth: none`); loopback keeps
 * today's behaviour; `auth: none` is the explicit opt-out.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { AuthUnsetError, createServer } from 'porthole';
import { runCli } from '../helpers/cli.js';
import { collect } from '../helpers/net.js';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'porthole-auth-default-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

for (const host of ['0.0.0.0', '::', '192.0.2.7']) {
  test(`createServer refuses to listen on ${host} with no auth in the config`, (t) => {
    const dataDir = tempDir(t);
    const errors = collect('error');
    t.after(errors.stop);
    assert.throws(
      () => createServer({ listen: { host, port: 0 }, dataDir, config: { apps: [{ name: 'demo', port: 9 }] } }),
      (err: unknown) => {
        assert.ok(err instanceof AuthUnsetError);
        assert.equal(err.code, 'PH_ERR_AUTH_UNSET');
        assert.match(err.message, /auth: login/);
        assert.match(err.message, /auth: none/);
        return true;
      },
    );
    assert.deepEqual(errors.events.map((e) => e.code), ['PH_ERR_AUTH_UNSET']);
  });
}

test('auth: none is the explicit opt-out off loopback, and loopback needs no auth at all', async (t) => {
  const dataDir = tempDir(t);
  const open = createServer({ listen: { host: '0.0.0.0', port: 0 }, dataDir, config: { auth: 'none', apps: [{ name: 'demo', port: 9 }] } });
  await open.close();
  for (const host of ['127.0.0.1', '::1', 'localhost', '127.0.0.2']) {
    const local = createServer({ listen: { host, port: 0 }, dataDir, config: { apps: [{ name: 'demo', port: 9 }] } });
    await local.close();
  }
});

test('a reload that drops auth from a gateway configured off loopback is rejected', async (t) => {
  const dataDir = tempDir(t);
  const server = createServer({ listen: { host: '0.0.0.0', port: 0 }, dataDir, config: { auth: 'none' } });
  t.after(() => server.close());
  await assert.rejects(server.reload({}), (err: unknown) => err instanceof AuthUnsetError);
  assert.equal(server.config.auth?.mode, 'none');
});

test('porthole serve --listen 0.0.0.0 with no auth exits 2 with PH_ERR_AUTH_UNSET and names both settings', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'p.yaml');
  writeFileSync(file, 'apps:\n  - name: demo\n    port: 9\n');
  const run = runCli(['serve', '--listen', '0.0.0.0:0', '--config', file, '--data', dir]);
  assert.equal(await run.exited, 2);
  assert.match(run.stderr(), /PH_ERR_AUTH_UNSET/);
  assert.match(run.stderr(), /auth: login/);
  assert.match(run.stderr(), /auth: none/);
});
