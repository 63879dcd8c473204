/**
 * `porthole serve` start failures after createServer took over the
 * composition: a config the gateway cannot build is an invalid config
 * (exit 2, one message, no token), not a crash with a stack trace.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli } from '../helpers/cli.js';

test('an error_page that cannot be read at start is exit code 2 with the config message, no stack trace and no token', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'porthole-serve-start-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'porthole.yaml');
  writeFileSync(file, 'error_page: missing.html\napps: []\n');
  const run = runCli(['serve', '--listen', '127.0.0.1:0', '--config', file, '--data', join(dir, 'data')]);
  assert.equal(await run.exited, 2);
  assert.equal(run.stderr(), `porthole: invalid configuration\n  error_page: cannot read missing.html (ENOENT)\n`);
  assert.equal(existsSync(join(dir, 'data', 'private', 'token')), false);
});
