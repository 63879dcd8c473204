/**
 * Issue 10, section 1: `tls: internal`. The gateway makes a CA in its data
 * directory (key 0600 in a 0700 directory), kept across restarts, and
 * serves leaves it signs for every name it answers under; a leaf is issued
 * again when the names change, and renewed at two thirds of its lifetime
 * (a very short one here) without dropping a tunnel.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createGateway } from '../../src/gateway/gateway.js';
import { ensureLocalCa, localCaPaths } from '../../src/tls/local-ca.js';
import { collect, nextMessage, openWs, startGateway, waitFor, wsUpstream, type TestGateway, type WsUpstream } from '../helpers/net.js';
import { httpsRequest, servedCertificate, tempDir } from './tls-helpers.js';

describe('tls: internal', () => {
  const tmp = tempDir();
  const paths = localCaPaths(tmp.dir);
  let up: WsUpstream;
  let gw: TestGateway;
  const config = (extra: object[] = []) => ({
    tls: 'internal',
    server_names: ['porthole.test'],
    base_domain: 'apps.example.com',
    admin: { hosts: ['admin.example.net'] },
    apps: [{ name: 'ws', port: up.port, hosts: ['ws.example.org', '*.wild.example.org'] }, ...extra],
  });
  before(async () => {
    up = await wsUpstream();
    gw = await startGateway(config(), { dataDir: tmp.dir });
  });
  after(async () => {
    await gw.close();
    await up.close();
    tmp.remove();
  });

  test('the CA is made in DATA/private/tls: key 0600, directory 0700', () => {
    assert.equal(statSync(paths.key).mode & 0o777, 0o600);
    assert.equal(statSync(paths.dir).mode & 0o777, 0o700);
    const ca = new X509Certificate(readFileSync(paths.cert));
    assert.equal(ca.ca, true);
    assert.match(ca.subject, /CN=Porthole Local CA/);
    assert.ok(new Date(ca.validTo).getTime() - Date.now() > 9 * 365 * 24 * 3600_000, 'the CA lives about ten years');
  });

  test('the leaf verifies against the CA for every name the gateway answers under, and its addresses', async () => {
    const ca = readFileSync(paths.cert, 'utf8');
    const served = await servedCertificate(gw.port, { ca });
    assert.equal(served.authorized, true, served.authorizationError);
    const san = served.subjectaltname ?? '';
    for (const name of ['localhost', '*.localhost', 'ws.localhost', 'ws.example.org', '*.wild.example.org', 'porthole.test', 'apps.example.com', '*.apps.example.com', 'ws.apps.example.com', 'admin.example.net']) {
      assert.ok(san.includes(`DNS:${name}`), `${name} in ${san}`);
    }
    assert.match(san, /IP Address:127\.0\.0\.1/);
    assert.match(san, /IP Address:0:0:0:0:0:0:0:1/);
    for (const a of Object.values(networkInterfaces()).flat()) {
      if (a && a.family === 'IPv4') assert.ok(san.includes(`IP Address:${a.address}`), `${a.address} in ${san}`);
    }
    // A real client checks the name it dialled: an app's own name, and a name under base_domain.
    for (const servername of ['ws.localhost', 'ws.apps.example.com', 'porthole.test']) {
      const r = await httpsRequest(`https://127.0.0.1:${gw.port}/_porthole/health`, ca, { servername, headers: { Host: `${servername}:${gw.port}` } });
      assert.equal(r.status, 200, `${servername}: ${r.status} ${r.body}`);
    }
  });

  test('a restart keeps the CA (browsers that trust it keep trusting) and issues a new leaf from it', async () => {
    const before = readFileSync(paths.cert, 'utf8');
    const again = await startGateway(config(), { dataDir: tmp.dir });
    try {
      assert.equal(readFileSync(paths.cert, 'utf8'), before);
      const served = await servedCertificate(again.port, { ca: before });
      assert.equal(served.authorized, true, served.authorizationError);
    } finally {
      await again.close();
    }
  });

  test('a new app name on reload gets a new leaf that includes it', async () => {
    const events = collect('tls', gw.gw.id);
    const ca = readFileSync(paths.cert, 'utf8');
    assert.ok(!(await servedCertificate(gw.port, { ca })).subjectaltname?.includes('DNS:extra.localhost'));
    gw.gw.reload(config([{ name: 'extra', port: up.port }]));
    await waitFor(() => events.events.some((e) => e.action === 'renewed'), 10_000, 'tls renewed');
    const served = await servedCertificate(gw.port, { ca, servername: 'extra.localhost' });
    assert.ok(served.subjectaltname?.includes('DNS:extra.localhost'), served.subjectaltname);
    assert.equal(served.authorized, true);
    // The same names again issue nothing.
    const n = events.events.length;
    gw.gw.reload(config([{ name: 'extra', port: up.port }]));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(events.events.length, n);
    events.stop();
  });

  test('two makers at once (porthole trust beside a first serve) end with one CA, the one on disk', async () => {
    const fresh = tempDir();
    try {
      const [a, b] = await Promise.all([ensureLocalCa(fresh.dir), ensureLocalCa(fresh.dir)]);
      assert.equal(a.fingerprint, b.fingerprint);
      assert.deepEqual([a.created, b.created].sort(), [false, true]);
      assert.equal(new X509Certificate(readFileSync(localCaPaths(fresh.dir).cert)).fingerprint256, a.fingerprint);
      assert.equal(statSync(localCaPaths(fresh.dir).key).mode & 0o777, 0o600);
      assert.equal(statSync(localCaPaths(fresh.dir).dir).mode & 0o777, 0o700);
    } finally {
      fresh.remove();
    }
  });

  test('a CA that cannot be read stops the start with PH_ERR_TLS_CA', async () => {
    const broken = tempDir();
    try {
      const p = localCaPaths(broken.dir);
      const g = createGateway({ tls: 'internal' }, { dataDir: broken.dir });
      await g.listen('127.0.0.1', 0);
      await g.drain(0);
      writeFileSync(p.cert, 'garbage\n');
      const err = (await createGateway({ tls: 'internal' }, { dataDir: broken.dir })
        .listen('127.0.0.1', 0)
        .catch((e: unknown) => e)) as { code?: string; message: string };
      assert.equal(err.code, 'PH_ERR_TLS_CA');
      assert.match(err.message, /not usable .*move it and its key away/);
      const noDir = (await createGateway({ tls: 'internal' }).listen('127.0.0.1', 0).catch((e: unknown) => e)) as { code?: string; message: string };
      assert.equal(noDir.code, 'PH_ERR_TLS_CA');
      assert.match(noDir.message, /data directory/);
    } finally {
      broken.remove();
    }
  });
});

describe('tls: internal renewal', () => {
  const tmp = tempDir();
  let up: WsUpstream;
  let gw: TestGateway;
  before(async () => {
    up = await wsUpstream();
    // Leaves of 4 s: renewed at two thirds, about every 3 s.
    gw = await startGateway({ tls: 'internal', apps: [{ name: 'ws', port: up.port }] }, { dataDir: tmp.dir, internalCertLifetimeMs: 4000 });
  });
  after(async () => {
    await gw.close();
    await up.close();
    tmp.remove();
  });

  test('a leaf near expiry is renewed; a tunnel opened before outlives both its certificate and the renewal', async () => {
    const ca = readFileSync(localCaPaths(tmp.dir).cert, 'utf8');
    const events = collect('tls', gw.gw.id);
    const first = await servedCertificate(gw.port, { ca });
    assert.equal(first.authorized, true, first.authorizationError);
    const ws = await openWs(`wss://localhost:${gw.port}/ws/`, undefined, { ca });
    ws.send('one');
    assert.equal((await nextMessage(ws)).data.toString(), 'one');

    const renewed = await waitFor(() => events.events.find((e) => e.action === 'renewed'), 8000, 'tls renewed');
    const issuedAt = Date.now();
    const second = await servedCertificate(gw.port, { ca });
    assert.notEqual(second.serial, first.serial);
    assert.equal(second.authorized, true, second.authorizationError);
    assert.equal(second.serial.toLowerCase().replace(/^0+/, ''), renewed.serial?.toLowerCase().replace(/^0+/, ''));
    // Renewed before the first leaf ran out.
    assert.ok(issuedAt < new Date(first.validTo).getTime() + 1000, `renewed at ${new Date(issuedAt).toISOString()}, first leaf valid to ${first.validTo}`);

    // Past the first leaf's expiry, the tunnel still carries messages: certificates are checked at the handshake only.
    await waitFor(() => Date.now() > new Date(first.validTo).getTime() + 500, 8000, 'first leaf expired');
    ws.send('two');
    assert.equal((await nextMessage(ws)).data.toString(), 'two');
    const third = await servedCertificate(gw.port, { ca });
    assert.equal(third.authorized, true, `a fresh connection after the first leaf expired: ${third.authorizationError}`);
    ws.close();
    events.stop();
  });
});
