/**
 * Issue 10, section 1: with `tls: internal`, an app registered through the
 * admin API (over HTTPS) gets a certificate name at once: the gateway issues
 * a new leaf that includes `{name}.localhost`, and the API shows the app's
 * URLs as https://.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { createServer } from '../../src/server/create-server.js';
import { localCaPaths } from '../../src/tls/local-ca.js';
import { collect, httpUpstream, waitFor } from '../helpers/net.js';
import { httpsRequest, selfSigned, servedCertificate, tempDir } from './tls-helpers.js';

test('an app registered through the admin API over HTTPS gets its name in a new certificate, and https:// URLs', async (t) => {
  const tmp = tempDir();
  const up = await httpUpstream((_req, res) => res.end('app-ok'));
  const server = createServer({ config: { tls: 'internal' }, dataDir: join(tmp.dir, 'data'), listen: { port: 0 }, metrics: false });
  t.after(async () => {
    await server.close();
    await up.close();
    tmp.remove();
  });
  const started = await server.listen();
  const ca = readFileSync(localCaPaths(server.dataDir).cert, 'utf8');
  const events = collect('tls', server.gateway.id);
  assert.ok(!(await servedCertificate(started.port, { ca })).subjectaltname?.includes('DNS:late.localhost'));

  const put = await httpsRequest(`https://localhost:${started.port}/_porthole/api/apps/late`, ca, {
    method: 'PUT',
    headers: { Authorization: `Bearer ${started.token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'late', port: up.port }),
  });
  assert.ok(put.status === 200 || put.status === 201, `${put.status} ${put.body}`);
  assert.deepEqual(JSON.parse(put.body).app.urls, [`https://127.0.0.1:${started.port}/late/`, `https://late.localhost:${started.port}/`]);

  await waitFor(() => events.events.some((e) => e.action === 'renewed' && e.names?.includes('late.localhost')), 10_000, 'a leaf with late.localhost');
  const served = await servedCertificate(started.port, { ca, servername: 'late.localhost' });
  assert.equal(served.authorized, true, served.authorizationError);
  assert.ok(served.subjectaltname?.includes('DNS:late.localhost'));
  const page = await httpsRequest(`https://127.0.0.1:${started.port}/`, ca, { servername: 'late.localhost', headers: { Host: `late.localhost:${started.port}` } });
  assert.equal(page.body, 'app-ok');
  events.stop();
});

test('an app registered while the certificate files are being replaced (not loadable for a moment) is not refused for them', async (t) => {
  const tmp = tempDir();
  const pair = selfSigned(tmp.dir, 'gw');
  const up = await httpUpstream((_req, res) => res.end('app-ok'));
  const server = createServer({ config: { tls: { cert: pair.certFile, key: pair.keyFile } }, dataDir: join(tmp.dir, 'data'), listen: { port: 0 }, metrics: false });
  t.after(async () => {
    await server.close();
    await up.close();
    tmp.remove();
  });
  const started = await server.listen();
  const events = collect('tls', server.gateway.id);
  writeFileSync(pair.certFile, '');
  await waitFor(() => events.events.some((e) => e.action === 'rejected'), 5000, 'tls rejected');
  const put = await httpsRequest(`https://localhost:${started.port}/_porthole/api/apps/during`, pair.cert, {
    method: 'PUT',
    headers: { Authorization: `Bearer ${started.token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'during', port: up.port }),
  });
  assert.ok(put.status === 200 || put.status === 201, `${put.status} ${put.body}`);
  const page = await httpsRequest(`https://localhost:${started.port}/during/`, pair.cert);
  assert.equal(page.body, 'app-ok');
  events.stop();
});
