/**
 * `porthole serve` start failures after createServer took over the
 * composition: a config the gateway cannot build is an invalid config
 * (exit 2, one message, no token), not a crash with a stack trace.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

test('a corrupt registry file is exit code 2, naming the data dir; it is left as it was and no token is created', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'porthole-serve-start-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'private'), { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, 'private', 'apps.json'), '{"apps": [');
  const run = runCli(['serve', '--listen', '127.0.0.1:0', '--data', dir]);
  assert.equal(await run.exited, 2);
  assert.match(run.stderr(), new RegExp(`^porthole: cannot load the app registry in ${dir}: `));
  assert.equal(readFileSync(join(dir, 'private', 'apps.json'), 'utf8'), '{"apps": [');
  assert.equal(existsSync(join(dir, 'private', 'token')), false);
});

test('a data dir that cannot be made is exit code 1 with one message', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'porthole-serve-start-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const notADir = join(dir, 'file');
  writeFileSync(notADir, 'x');
  const run = runCli(['serve', '--listen', '127.0.0.1:0', '--data', notADir]);
  assert.equal(await run.exited, 1);
  assert.match(run.stderr(), new RegExp(`^porthole: cannot prepare the data directory ${notADir}: EEXIST`));
  assert.equal(run.stderr().split('\n').length, 2, 'one line');
});
