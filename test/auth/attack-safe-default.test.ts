/**
 * Attack on the safe default's idea of loopback: a listen host that merely
 * starts like a loopback address (`127.example.com`, a DNS name that may
 * resolve anywhere) is not loopback, and a config without `auth` must not
 * start there.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { AuthUnsetError, createServer } from 'porthole';
import { isLoopbackListen } from '../../src/auth/safe-default.js';

test('a host name that starts with "127." is not loopback to the safe default', (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-auth-default-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  for (const host of ['127.example.com', '127.0.0.1.example.com', '::ffff:127.example.com']) {
    assert.equal(isLoopbackListen(host), false, host);
    assert.throws(() => createServer({ listen: { host, port: 0 }, dataDir, config: { apps: [{ name: 'demo', port: 9 }] } }), AuthUnsetError, host);
  }
  for (const host of ['127.0.0.1', '127.3.2.1', '::1', '[::1]', '::ffff:127.0.0.1', 'localhost', 'LOCALHOST']) assert.equal(isLoopbackListen(host), true, host);
});
