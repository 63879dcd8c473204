/**
 * Issue 10, section 1: `porthole trust` says where the local CA is and
 * installs it. Into a fresh NSS database (the one Chromium reads is
 * `~/.pki/nssdb`) and a CA directory of the test's own; and, once, into the
 * machine's real system store, which the test puts back as it was.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ensureTools } from '../../scripts/ensure-tools.mjs';
import { localCaPaths } from '../../src/tls/local-ca.js';
import { runCli } from '../helpers/cli.js';
import { startGateway } from '../helpers/net.js';
import { servedCertificate, tempDir } from './tls-helpers.js';

ensureTools([{ check: '/usr/bin/certutil', pkg: 'libnss3-tools' }]);

const tmp = tempDir('porthole-trust-');
after(() => tmp.remove());

async function trust(args: string[]): Promise<{ code: number | string; out: string; err: string }> {
  const run = runCli(['trust', ...args]);
  const code = await run.exited;
  return { code, out: run.stdout(), err: run.stderr() };
}

test('porthole trust makes the CA, adds it to an NSS database (certutil -L lists it, trusted C,,) and copies it for update-ca-certificates', async () => {
  const data = join(tmp.dir, 'data');
  const nss = join(tmp.dir, 'nssdb');
  const caDir = join(tmp.dir, 'ca-certificates');
  const r = await trust(['--data', data, '--nssdb', nss, '--system-dir', caDir]);
  assert.equal(r.code, 0, r.out + r.err);
  const caFile = localCaPaths(data).cert;
  assert.match(r.out, new RegExp(`^CA certificate: ${caFile} \\(made now\\)$`, 'm'));
  assert.match(r.out, /SHA-256 fingerprint: ([0-9A-F]{2}:){31}[0-9A-F]{2}/);
  assert.match(r.out, new RegExp(`NSS database ${nss}: created the database and added "Porthole Local CA`));
  const name = /name: (.+)/.exec(r.out)![1];
  const listed = execFileSync('/usr/bin/certutil', ['-L', '-d', `sql:${nss}`]).toString();
  const row = listed.split('\n').find((l) => l.startsWith(name));
  assert.ok(row, `certutil -L lists ${name}:\n${listed}`);
  assert.match(row, /\sC,,\s*$/);
  // The same certificate in both places.
  const inDb = execFileSync('/usr/bin/certutil', ['-L', '-d', `sql:${nss}`, '-n', name, '-a']).toString();
  const pem = readFileSync(caFile, 'utf8');
  assert.equal(inDb.replace(/\s+/g, ''), pem.replace(/\s+/g, ''));
  const copied = readdirSync(caDir);
  assert.equal(copied.length, 1);
  assert.match(copied[0], /^porthole-local-ca-[0-9a-f]{16}\.crt$/);
  assert.equal(readFileSync(join(caDir, copied[0]), 'utf8'), pem);
  assert.match(r.out, /update-ca-certificates not run: .* is not \/usr\/local\/share\/ca-certificates/);

  // Again: nothing changes, and it says so.
  const again = await trust(['--data', data, '--nssdb', nss, '--system-dir', caDir]);
  assert.equal(again.code, 0);
  assert.doesNotMatch(again.out, /made now/);
  assert.match(again.out, /already trusted there/);
  assert.match(again.out, /already in /);

  // The gateway with tls: internal on that data directory serves leaves of this CA.
  const gw = await startGateway({ tls: 'internal' }, { dataDir: data });
  try {
    const served = await servedCertificate(gw.port, { ca: pem });
    assert.equal(served.authorized, true, served.authorizationError);
  } finally {
    await gw.close();
  }
});

test('porthole trust says what it could not do and exits 1', async () => {
  const blocker = join(tmp.dir, 'a-file');
  writeFileSync(blocker, '');
  const r = await trust(['--data', join(tmp.dir, 'data2'), '--no-nssdb', '--system-dir', join(blocker, 'sub')]);
  assert.equal(r.code, 1);
  assert.match(r.out, /CA directory .*: NOT installed: could not copy the CA to .*: ENOTDIR/);
  const none = await trust(['--data', join(tmp.dir, 'data2'), '--no-nssdb', '--no-system']);
  assert.equal(none.code, 0);
  assert.match(none.out, /nothing installed/);
});

test('porthole trust into the real system store: update-ca-certificates runs and curl trusts the gateway; the store is put back after', async (t) => {
  assert.equal(process.getuid?.(), 0, 'this test changes /usr/local/share/ca-certificates: run it as root (CI does)');
  ensureTools([{ check: '/usr/sbin/update-ca-certificates', pkg: 'ca-certificates' }]);
  const data = join(tmp.dir, 'system-data');
  const before = readdirSync('/usr/local/share/ca-certificates');
  t.after(() => {
    for (const f of readdirSync('/usr/local/share/ca-certificates')) if (!before.includes(f)) rmSync(join('/usr/local/share/ca-certificates', f), { force: true });
    execFileSync('/usr/sbin/update-ca-certificates', [], { stdio: 'ignore' });
  });
  const r = await trust(['--data', data, '--no-nssdb']);
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /and ran update-ca-certificates/);
  const added = readdirSync('/usr/local/share/ca-certificates').filter((f) => !before.includes(f));
  assert.equal(added.length, 1);
  const pem = readFileSync(localCaPaths(data).cert, 'utf8');
  assert.ok(readFileSync('/etc/ssl/certs/ca-certificates.crt', 'utf8').includes(pem.trim().split('\n').slice(1, -1).join('\n')), 'the bundle has the CA');
  const gw = await startGateway({ tls: 'internal' }, { dataDir: data });
  try {
    // curl reads the system bundle: no --cacert, no -k. (Asynchronously: the gateway answers from this process.)
    const out = await new Promise<string>((ok, fail) => execFile('/usr/bin/curl', ['-sS', '--max-time', '20', `https://localhost:${gw.port}/_porthole/health`], (err, stdout, stderr) => (err ? fail(new Error(`${err.message}\n${stderr}`)) : ok(stdout))));
    assert.match(out, /"status":"ok"/);
  } finally {
    await gw.close();
  }
});
