/**
 * Issue 10, section 1: `tls: { cert, key }` files are read at start (a bad
 * pair stops the start with PH_ERR_TLS_CERT), and read again when they
 * change: new connections get the new certificate while a tunnel opened
 * before keeps exchanging messages. A change to files that do not load is
 * reported and the certificate in force stays; a config reload naming
 * such files is rejected.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createGateway } from '../../src/gateway/gateway.js';
import { createServer } from '../../src/server/create-server.js';
import { collect, nextMessage, openWs, startGateway, waitFor, wsUpstream, type TestGateway, type WsUpstream } from '../helpers/net.js';
import { selfSigned, servedCertificate, tempDir } from './tls-helpers.js';

describe('tls: { cert, key } at start', () => {
  const tmp = tempDir();
  const good = selfSigned(tmp.dir, 'good');
  const other = selfSigned(tmp.dir, 'other');
  writeFileSync(join(tmp.dir, 'garbage.crt'), 'not a certificate\n');
  after(() => tmp.remove());

  const startFails = async (tls: unknown) => {
    const gw = createGateway({ tls }, { baseDir: tmp.dir });
    const err = (await gw.listen('127.0.0.1', 0).then(
      () => gw.drain(0).then(() => null),
      (e: unknown) => e,
    )) as { code?: string; message: string } | null;
    assert.ok(err, 'the gateway did not start');
    return err;
  };

  test('a missing file, a file that is not PEM, and a key that is not the certificate\'s stop the start with PH_ERR_TLS_CERT', async () => {
    const missing = await startFails({ cert: 'nope.crt', key: 'good.key' });
    assert.equal(missing.code, 'PH_ERR_TLS_CERT');
    assert.match(missing.message, /tls\.cert .*nope\.crt: cannot be read \(ENOENT\)/);
    const garbage = await startFails({ cert: 'garbage.crt', key: 'good.key' });
    assert.equal(garbage.code, 'PH_ERR_TLS_CERT');
    assert.match(garbage.message, /garbage\.crt: no PEM certificate/);
    const mismatch = await startFails({ cert: 'good.crt', key: 'other.key' });
    assert.equal(mismatch.code, 'PH_ERR_TLS_CERT');
    assert.match(mismatch.message, /other\.key with tls\.cert .*good\.crt: the key is not the certificate's/);
    const dir = await startFails({ cert: tmp.dir, key: 'good.key' });
    assert.match(dir.message, /not a regular file/);
    void other;
  });

  test('the schema wants cert and key, or internal, not both', () => {
    assert.throws(() => createGateway({ tls: { cert: 'a.crt' } }), /tls: needs cert and key \(PEM files\), or internal: true/);
    assert.throws(() => createGateway({ tls: { internal: true, cert: 'a.crt', key: 'a.key' } }), /tls: give either internal: true or cert and key, not both/);
    assert.throws(() => createGateway({ tls: 'yes' }), /tls: expected "internal" or a mapping/);
    assert.throws(() => createGateway({ tls: { cert: 'a', key: 'b', redirect_htp: false } }), /tls\.redirect_htp: unknown key, did you mean redirect_http\?/);
  });

  test('porthole serve\'s server: relative paths are read next to the config file, and a bad pair is a start error naming PH_ERR_TLS_CERT', async () => {
    const cfgFile = join(tmp.dir, 'porthole.yaml');
    writeFileSync(cfgFile, 'tls: { cert: good.crt, key: good.key }\n');
    const server = createServer({ configFile: cfgFile, dataDir: join(tmp.dir, 'data'), listen: { port: 0 }, metrics: false });
    const started = await server.listen();
    try {
      assert.match(started.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      assert.equal((await servedCertificate(started.port)).fingerprint, fingerprintOf(good.cert));
    } finally {
      await server.close();
    }
    writeFileSync(cfgFile, 'tls: { cert: good.crt, key: other.key }\n');
    const bad = createServer({ configFile: cfgFile, dataDir: join(tmp.dir, 'data'), listen: { port: 0 }, metrics: false });
    const err = (await bad.listen().catch((e: unknown) => e)) as Error & { cause?: { code?: string } };
    assert.equal(err.cause?.code, 'PH_ERR_TLS_CERT');
    assert.match(err.message, /the key is not the certificate's/);
  });
});

describe('tls: { cert, key } files changed while running', () => {
  const tmp = tempDir();
  let up: WsUpstream;
  let gw: TestGateway;
  let first: ReturnType<typeof selfSigned>;
  before(async () => {
    up = await wsUpstream();
    first = selfSigned(tmp.dir, 'live');
    gw = await startGateway({ tls: { cert: 'live.crt', key: 'live.key' }, apps: [{ name: 'ws', port: up.port }] }, { baseDir: tmp.dir });
  });
  after(async () => {
    await gw.close();
    await up.close();
    tmp.remove();
  });

  test('new connections get the new certificate; a tunnel opened before keeps exchanging messages', async () => {
    const events = collect('tls', gw.gw.id);
    const ws = await openWs(`wss://localhost:${gw.port}/ws/`, undefined, { ca: first.cert });
    ws.send('before');
    assert.equal((await nextMessage(ws)).data.toString(), 'before');
    assert.equal((await servedCertificate(gw.port)).fingerprint, fingerprintOf(first.cert));

    const second = selfSigned(tmp.dir, 'live');
    await waitFor(() => events.events.some((e) => e.action === 'reloaded'), 5000, 'tls reloaded event');
    assert.equal((await servedCertificate(gw.port)).fingerprint, fingerprintOf(second.cert));
    // The old tunnel is still the same connection and still carries messages both ways.
    ws.send('after');
    assert.equal((await nextMessage(ws)).data.toString(), 'after');
    // And a new one verifies against the new certificate only.
    const ws2 = await openWs(`wss://localhost:${gw.port}/ws/`, undefined, { ca: second.cert });
    ws2.send('new');
    assert.equal((await nextMessage(ws2)).data.toString(), 'new');
    ws2.close();
    ws.close();
    events.stop();
  });

  test('a change to files that do not load is reported (PH_ERR_TLS_CERT) and the certificate in force stays', async () => {
    const inForce = (await servedCertificate(gw.port)).fingerprint;
    const events = collect('tls', gw.gw.id);
    const errors = collect('error', gw.gw.id);
    writeFileSync(join(tmp.dir, 'live.crt'), 'half-written\n');
    await waitFor(() => events.events.some((e) => e.action === 'rejected'), 5000, 'tls rejected event');
    const rejected = events.events.find((e) => e.action === 'rejected')!;
    assert.equal(rejected.code, 'PH_ERR_TLS_CERT');
    assert.match(errors.events.map((e) => e.message).join('\n'), /live\.crt: no PEM certificate in it.*the certificate in force stays/);
    assert.equal((await servedCertificate(gw.port)).fingerprint, inForce);
    // The pair completed later is picked up.
    const fixed = selfSigned(tmp.dir, 'live');
    await waitFor(() => events.events.some((e) => e.action === 'reloaded'), 5000, 'tls reloaded event');
    assert.equal((await servedCertificate(gw.port)).fingerprint, fingerprintOf(fixed.cert));
    events.stop();
    errors.stop();
  });

  test('a config reload naming files that do not load is refused with PH_ERR_TLS_CERT; turning TLS off takes a restart', () => {
    assert.throws(() => gw.gw.validate({ tls: { cert: 'missing.crt', key: 'live.key' }, apps: [{ name: 'ws', port: up.port }] }), (e: { code?: string }) => e.code === 'PH_ERR_TLS_CERT');
    assert.throws(() => gw.gw.validate({ apps: [{ name: 'ws', port: up.port }] }), /tls: turning TLS off takes a restart/);
  });

  test('a reload (SIGHUP) reads the files again at once, without waiting for the watcher', async () => {
    const events = collect('tls', gw.gw.id);
    const cfg = { tls: { cert: 'live.crt', key: 'live.key' }, apps: [{ name: 'ws', port: up.port }] };
    const fresh = selfSigned(tmp.dir, 'live');
    gw.gw.reload(cfg);
    assert.equal((await servedCertificate(gw.port)).fingerprint, fingerprintOf(fresh.cert));
    assert.equal(events.events.filter((e) => e.action === 'reloaded').length, 1);
    // The watcher, firing later, finds the same files: nothing more is swapped.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(events.events.filter((e) => e.action === 'reloaded').length, 1);
    events.stop();
  });

  test('a reload naming other valid files switches to them', async () => {
    const events = collect('tls', gw.gw.id);
    const next = selfSigned(tmp.dir, 'next');
    const cfg = { tls: { cert: 'next.crt', key: 'next.key' }, apps: [{ name: 'ws', port: up.port }] };
    gw.gw.validate(cfg);
    gw.gw.reload(cfg);
    assert.equal((await servedCertificate(gw.port)).fingerprint, fingerprintOf(next.cert));
    assert.ok(events.events.some((e) => e.action === 'reloaded'));
    events.stop();
  });
});

function fingerprintOf(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}
