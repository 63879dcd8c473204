/**
 * Issue 10, section 1: `porthole serve` with TLS says https:// in its
 * "listening on" line and in the dashboard link it prints; a certificate
 * that does not load stops the start (exit 1, PH_ERR_TLS_CERT named), and a
 * config edit naming such files is rejected while the running certificate
 * stays.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { localCaPaths } from '../../src/tls/local-ca.js';
import { jsonLines, runCli, startServe } from '../helpers/cli.js';
import { waitFor } from '../helpers/net.js';
import { httpsRequest, selfSigned, servedCertificate, tempDir } from './tls-helpers.js';

const tmp = tempDir('porthole-serve-tls-');
after(() => tmp.remove());

test('porthole serve with tls: internal listens on https:// and prints an https:// dashboard link that works', async (t) => {
  const cfg = join(tmp.dir, 'internal.yaml');
  const data = join(tmp.dir, 'data');
  writeFileSync(cfg, 'tls: internal\napps: []\n');
  const serve = await startServe(['--config', cfg, '--data', data, '--log-format', 'json']);
  t.after(() => serve.stop());
  assert.match(serve.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const link = await waitFor(() => /dashboard \(this link logs in once\): (\S+)/.exec(serve.stderr())?.[1], 5000, 'the dashboard line');
  assert.ok(link?.startsWith(`https://127.0.0.1:${serve.port}/_porthole/?login=`), serve.stderr());
  const ca = readFileSync(localCaPaths(data).cert, 'utf8');
  const r = await httpsRequest(link, ca);
  assert.ok(r.status < 400, `the dashboard link answers ${r.status}`);
  const loaded = jsonLines(serve.stdout()).find((l) => l.event === 'tls' && l.action === 'loaded');
  assert.equal(loaded?.source, 'internal', serve.stdout());
  assert.ok((loaded?.names as string[]).includes('localhost'));
});

test('porthole serve: a bad pair stops the start with exit 1 and PH_ERR_TLS_CERT; a config edit naming bad files is rejected and the certificate stays', async (t) => {
  const good = selfSigned(tmp.dir, 'good');
  selfSigned(tmp.dir, 'other');
  const cfg = join(tmp.dir, 'files.yaml');
  writeFileSync(cfg, 'tls: { cert: good.crt, key: other.key }\n');
  const bad = runCli(['serve', '--listen', '127.0.0.1:0', '--config', cfg, '--data', join(tmp.dir, 'data2')]);
  assert.equal(await bad.exited, 1);
  assert.match(bad.stderr(), /PH_ERR_TLS_CERT: tls\.key .*other\.key with tls\.cert .*good\.crt: the key is not the certificate's/);

  writeFileSync(cfg, 'tls: { cert: good.crt, key: good.key }\n');
  const serve = await startServe(['--config', cfg, '--data', join(tmp.dir, 'data2'), '--log-format', 'json']);
  t.after(() => serve.stop());
  writeFileSync(cfg, 'tls: { cert: missing.crt, key: good.key }\n');
  const rejected = await waitFor(() => jsonLines(serve.stdout()).find((l) => l.event === 'config' && l.action === 'rejected' && l.code === 'PH_ERR_TLS_CERT'), 10_000, 'config rejected');
  assert.match(JSON.stringify(rejected), /missing\.crt: cannot be read \(ENOENT\)/);
  const served = await servedCertificate(serve.port, { ca: good.cert });
  assert.equal(served.authorized, true, served.authorizationError);
});
