/**
 * A store that asks who connects: Redis with a password (`requirepass`, in
 * the URL or in `store.password_file`) and Redis over TLS (`rediss://`, its
 * certificate checked against `store.tls.ca`, a client certificate from
 * `store.tls.cert`/`key` when Redis asks for one). Nodes connected that way
 * share the registry and forward to each other; a node without the password,
 * with a wrong one, without the CA or without the client certificate does
 * not start, and says why without ever showing the password.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'porthole';
import { freePort, redisCertificates, startRedis } from '../helpers/redis.js';
import { startNode, until, type TestNode } from './helpers.js';

const APP = fileURLToPath(new URL('../fixtures/cluster/echo-app.mjs', import.meta.url));
const PASSWORD = 'redis-Pa55word-for-the-store';

function tempDir(t: TestContext, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The store config of a test node: its own prefix, so tests can share a Redis. */
const storeOf = (url: string, more: Record<string, unknown> = {}) => ({ store: { url, prefix: `t${process.pid}:`, ...more } });

/** Starts a node with this store and answers the start's error (message and its cause's), or fails if it starts. */
async function startFails(t: TestContext, name: string, store: Record<string, unknown>): Promise<{ code: string; text: string }> {
  const dataDir = tempDir(t, `ph-store-auth-${name}-`);
  const server = createServer({ config: { store, cluster: { listen: '127.0.0.1:0', heartbeat_ttl: '2s' } }, node: name, dataDir, listen: { port: 0 } });
  t.after(() => server.close());
  const started = await server.listen().then(
    () => undefined,
    (err: Error & { code?: string; cause?: Error & { code?: string } }) => err,
  );
  assert.ok(started, `node ${name} started with store ${JSON.stringify(store)}`);
  t.diagnostic(`${name}: ${started.message}`);
  return { code: `${started.code}/${started.cause?.code}`, text: `${started.message} | ${started.cause?.message ?? ''}` };
}

/** Registers the echo app on `owner` through `through`, then reaches it over HTTP through `via`. */
async function shared(through: TestNode, owner: TestNode, via: TestNode): Promise<void> {
  assert.equal((await through.api('PUT', '/apps/echo', { cmd: `${process.execPath} ${APP}`, node: owner.name })).status, 200);
  await until(`${owner.name} runs echo, started through ${through.name}`, async () => ((await through.api('POST', '/apps/echo/start')).status === 200 ? true : undefined));
  const body = await until(`${via.name} forwards to ${owner.name}`, async () => {
    const r = await fetch(`${via.url}/echo/x`);
    return r.status === 200 ? ((await r.json()) as { cwd: string }) : undefined;
  });
  assert.ok(body.cwd.startsWith(owner.server.dataDir), `answered from ${body.cwd}`);
  const nodes = (await via.api('GET', '/cluster')).body.cluster.nodes as { name: string; up: boolean }[];
  assert.deepEqual(nodes.filter((n) => n.up).map((n) => n.name).sort(), [through.name, owner.name, via.name].filter((v, i, a) => a.indexOf(v) === i).sort());
}

test('Redis with requirepass: nodes with the password in the URL or in store.password_file share the registry; without it, or with a wrong one, a node does not start and says why', async (t) => {
  const redis = await startRedis({ password: PASSWORD });
  t.after(() => redis.close());
  const dir = tempDir(t, 'ph-store-pw-');
  const pwFile = join(dir, 'redis-password');
  writeFileSync(pwFile, `${PASSWORD}\n`, { mode: 0o600 });

  const a = await startNode(t, 'a', `redis://:${encodeURIComponent(PASSWORD)}@127.0.0.1:${redis.port}/0`);
  const b = await startNode(t, 'b', '', storeOf(`redis://127.0.0.1:${redis.port}/0`, { password_file: pwFile }));
  await shared(a, b, a);
  // What b shows of its store names neither the password nor the file's content.
  const cluster = JSON.stringify((await b.api('GET', '/cluster')).body);
  assert.ok(!cluster.includes(PASSWORD), cluster);

  const none = await startFails(t, 'c', storeOf(`redis://127.0.0.1:${redis.port}/0`).store);
  assert.equal(none.code, 'PH_ERR_START/PH_ERR_STORE_UNAVAILABLE');
  assert.match(none.text, /NOAUTH/);
  const wrongFile = join(dir, 'wrong');
  writeFileSync(wrongFile, 'not-the-password', { mode: 0o600 });
  const wrong = await startFails(t, 'd', storeOf(`redis://127.0.0.1:${redis.port}/0`, { password_file: wrongFile }).store);
  assert.equal(wrong.code, 'PH_ERR_START/PH_ERR_STORE_UNAVAILABLE');
  assert.match(wrong.text, /WRONGPASS|invalid password/i);
  assert.ok(!wrong.text.includes('not-the-password'), wrong.text);
  const wrongUrl = await startFails(t, 'e', storeOf(`redis://:WrongPass-in-url@127.0.0.1:${redis.port}/0`).store);
  assert.match(wrongUrl.text, /WRONGPASS|invalid password/i);
  assert.ok(!wrongUrl.text.includes('WrongPass-in-url'), wrongUrl.text);
});

test('store.password_file: readable by every user, missing, or beside a password in the URL, is a config error that says what to do', async (t) => {
  const redis = await startRedis({ password: PASSWORD });
  t.after(() => redis.close());
  const dir = tempDir(t, 'ph-store-pwfile-');
  const open = join(dir, 'open');
  writeFileSync(open, PASSWORD);
  chmodSync(open, 0o644);
  const make = (store: Record<string, unknown>) => () => createServer({ config: { store, cluster: { listen: '127.0.0.1:0' } }, node: 'x', dataDir: dir, listen: { port: 0 } });
  assert.throws(make({ url: `redis://127.0.0.1:${redis.port}`, password_file: open }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'PH_ERR_CONFIG');
    assert.match(err.message, new RegExp(`store\\.password_file: Redis's password in ${open} is readable by every user of this machine \\(mode 0644\\): chmod 600 ${open}`));
    return true;
  });
  assert.throws(make({ url: `redis://127.0.0.1:${redis.port}`, password_file: join(dir, 'missing') }), /store\.password_file: cannot read Redis's password in .*missing \(ENOENT\)/);
  assert.throws(make({ url: `redis://:x@127.0.0.1:${redis.port}`, password_file: open }), /store\.password_file: the url has a password already/);
  // Relative to the config file's directory, as every other path of the config.
  chmodSync(open, 0o600);
  const node = createServer({ config: { store: { url: `redis://127.0.0.1:${redis.port}/0`, prefix: `t${process.pid}r:`, password_file: 'open' }, cluster: { listen: '127.0.0.1:0' } }, node: 'rel', dataDir: dir, baseDir: dir, listen: { port: 0 } });
  t.after(() => node.close());
  await node.listen();
});

test('rediss:// with store.tls: nodes check Redis against the CA and show their client certificate; without the CA or the certificate they do not start', async (t) => {
  const dir = tempDir(t, 'ph-store-tls-');
  const c = redisCertificates(dir);
  const tlsPort = await freePort();
  // Redis's default: clients must show a certificate signed by its CA (tls-auth-clients yes); and a password too.
  const redis = await startRedis({ password: PASSWORD, args: ['--tls-port', String(tlsPort), '--tls-cert-file', c.serverCert, '--tls-key-file', c.serverKey, '--tls-ca-cert-file', c.ca, '--tls-auth-clients', 'yes', '--bind', '127.0.0.1', '127.0.0.2'] });
  t.after(() => redis.close());
  const tls = { ca: c.ca, cert: c.clientCert, key: c.clientKey };
  const pw = encodeURIComponent(PASSWORD);

  // By name and by address: the certificate is checked against either.
  const a = await startNode(t, 'a', '', storeOf(`rediss://:${pw}@localhost:${tlsPort}/0`, { tls }));
  const b = await startNode(t, 'b', '', storeOf(`rediss://:${pw}@127.0.0.1:${tlsPort}/0`, { tls }));
  await shared(b, a, b);
  const cluster = (await a.api('GET', '/cluster')).body.cluster;
  assert.equal(cluster.store.url, `rediss://:***@localhost:${tlsPort}/0`);
  assert.equal(cluster.store.up, true);

  // Redis's certificate from an unknown CA (the system's roots are used without store.tls.ca).
  const noCa = await startFails(t, 'c', storeOf(`rediss://:${pw}@localhost:${tlsPort}/0`, { tls: { cert: c.clientCert, key: c.clientKey } }).store);
  assert.equal(noCa.code, 'PH_ERR_START/PH_ERR_STORE_UNAVAILABLE');
  assert.match(noCa.text, /self[- ]signed|unable to (verify|get local issuer)/i);
  // No client certificate: Redis ends the handshake.
  const noCert = await startFails(t, 'd', storeOf(`rediss://:${pw}@localhost:${tlsPort}/0`, { tls: { ca: c.ca } }).store);
  assert.equal(noCert.code, 'PH_ERR_START/PH_ERR_STORE_UNAVAILABLE');
  assert.match(noCert.text, new RegExp(`the store at rediss://:\\*\\*\\*@localhost:${tlsPort}/0 cannot be reached`));
  assert.match(noCert.text, /does Redis want a client certificate \(store\.tls\.cert and key\)\?/);
  // An address the certificate does not carry (Redis listens there too).
  const otherName = await startFails(t, 'e', storeOf(`rediss://:${pw}@127.0.0.2:${tlsPort}/0`, { tls }).store);
  assert.match(otherName.text, /IP: 127\.0\.0\.2 is not in the cert's list|does not match|altnames/i);
  // Cleartext to the TLS port is not Redis to a node.
  const cleartext = await startFails(t, 'f', storeOf(`redis://:${pw}@127.0.0.1:${tlsPort}/0`).store);
  assert.equal(cleartext.code, 'PH_ERR_START/PH_ERR_STORE_UNAVAILABLE');
  assert.match(cleartext.text, /is this a TLS port \(rediss:\/\/\)\?/);
});

test('store.tls is a config error with a redis:// URL, with a cert but no key, or with a file that cannot be read', () => {
  const make = (store: Record<string, unknown>) => () => createServer({ config: { store, cluster: { listen: '127.0.0.1:0' } }, node: 'x', listen: { port: 0 } });
  assert.throws(make({ url: 'redis://127.0.0.1:6379/0', tls: { ca: '/etc/ssl/certs/ca-certificates.crt' } }), /store\.tls: only a rediss:\/\/ url speaks TLS; write rediss:\/\/127\.0\.0\.1:6379\/0/);
  assert.throws(make({ url: 'rediss://127.0.0.1:6379/0', tls: { cert: '/nonexistent/c.pem' } }), /store\.tls: cert and key go together/);
  assert.throws(make({ url: 'rediss://127.0.0.1:6379/0', tls: { ca: '/nonexistent/ca.pem' } }), /store\.tls\.ca: cannot read \/nonexistent\/ca\.pem \(ENOENT\)/);
  assert.throws(make({ url: 'rediss://127.0.0.1:6379/0', tls: { ca: 'x', pem: 'y' } }), /store\.tls\.pem: unknown key/);
});
