/**
 * `porthole connect wss://…` against a real Python `websockets` server behind
 * a self-signed certificate made with openssl for this run.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { runCli, startRecordingServer } from './helpers.js';

function selfSignedCert(t: TestContext): { cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'porthole-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  // prettier-ignore
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ], { stdio: 'pipe' });
  return { cert, key };
}

test('wss:// with a self-signed certificate: refused with a hint by default, works with --insecure and with --ca', async (t) => {
  const tls = selfSignedCert(t);
  const server = await startRecordingServer(t, tls);
  const url = server.url('/echo', 'wss');

  const refused = await runCli(['connect', url, '-x', 'hi']);
  assert.equal(refused.code, 1, refused.output);
  assert.match(refused.stderr, /self-signed certificate/);
  assert.match(refused.stderr, /DEPTH_ZERO_SELF_SIGNED_CERT/);
  assert.match(refused.stderr, /^hint: .*--ca FILE.*--insecure/m);
  assert.equal(refused.stdout, '');

  const insecure = await runCli(['connect', url, '--insecure', '-x', 'over tls']);
  assert.equal(insecure.code, 0, insecure.output);
  assert.equal(insecure.stdout, '< over tls\n');
  assert.match(insecure.stderr, new RegExp(`^connected to wss://127\\.0\\.0\\.1:${server.port}/echo$`, 'm'));

  const trusted = await runCli(['connect', url, '--ca', tls.cert, '-x', 'trusted']);
  assert.equal(trusted.code, 0, trusted.output);
  assert.equal(trusted.stdout, '< trusted\n');

  // Only the two successful connections reached the WebSocket handler.
  assert.deepEqual(await server.waitForMessages(2), ['over tls', 'trusted']);
});

test('plain ws:// to a TLS port fails with exit 1 and a hint to use wss://', async (t) => {
  const server = await startRecordingServer(t, selfSignedCert(t));
  const r = await runCli(['connect', server.url('/echo', 'ws'), '-x', 'hi']);
  assert.equal(r.code, 1, r.output);
  assert.match(r.stderr, /^connection to ws:\/\/127\.0\.0\.1:\d+\/echo failed: /m);
  assert.match(r.stderr, /^hint: .*is it TLS \(wss:\/\/\)/m);
});
