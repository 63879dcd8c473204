// Issue 8, item 2a: the token and the registry live in DATA/private (0700),
// apps' directories in DATA/apps, and a data dir of an older gateway (token,
// apps.json, run/ and logs/ at its top) is migrated in place.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readToken } from '../../src/admin/token.js';
import { startAdmin } from '../helpers/admin.js';

test('a data dir of an older gateway is migrated into private/: same token, same apps, no token left at the top', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-legacy-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const legacyToken = 'legacy-token-0123456789abcdef';
  writeFileSync(join(dataDir, 'token'), `${legacyToken}\n`, { mode: 0o600 });
  writeFileSync(join(dataDir, 'apps.json'), JSON.stringify({ version: 1, apps: { old: { name: 'old', port: 9 } } }), { mode: 0o600 });
  mkdirSync(join(dataDir, 'logs'));
  writeFileSync(join(dataDir, 'logs', 'old.log'), 'a line\n');
  mkdirSync(join(dataDir, 'apps', 'old'), { recursive: true });
  assert.equal(readToken(dataDir), legacyToken, 'a CLI client finds the token of a gateway not upgraded yet');

  const gw = await startAdmin({ dataDir });
  t.after(() => gw.cleanup());
  assert.equal(gw.token, legacyToken, 'the token survived the upgrade');
  assert.equal(readToken(dataDir), legacyToken);
  assert.equal(existsSync(join(dataDir, 'token')), false, 'no token where apps used to find it (../../token)');
  assert.equal(existsSync(join(dataDir, 'apps.json')), false);
  assert.equal(readFileSync(join(dataDir, 'private', 'logs', 'old.log'), 'utf8'), 'a line\n');
  const list = await gw.api('GET', '/_porthole/api/apps');
  assert.deepEqual(list.body.apps.map((a: { name: string }) => a.name), ['old'], 'the registry survived the upgrade');
  assert.equal(statSync(join(dataDir, 'private')).mode & 0o777, 0o700);
  assert.equal(statSync(join(dataDir, 'private', 'token')).mode & 0o777, 0o600);
  assert.equal(statSync(dataDir).mode & 0o777, 0o711, 'others may pass through to their app dir, not list');
});

test('an app without cwd runs in DATA/apps/{name}, outside the directory that holds the token', async (t) => {
  const gw = await startAdmin();
  t.after(() => gw.cleanup());
  const reg = await gw.api('PUT', '/_porthole/api/apps/where', { cmd: 'pwd > here.txt; exec sleep 300', port: 9, stop_timeout: 1000 });
  assert.equal(reg.status, 200);
  assert.equal((await gw.api('POST', '/_porthole/api/apps/where/start')).status, 200);
  const file = join(gw.dataDir, 'apps', 'where', 'here.txt');
  for (let i = 0; i < 200 && !existsSync(file); i++) await new Promise((r) => setTimeout(r, 25));
  assert.equal(readFileSync(file, 'utf8').trim(), join(gw.dataDir, 'apps', 'where'));
  assert.equal(existsSync(join(gw.dataDir, 'apps', 'where', '..', '..', 'token')), false);
  assert.equal(existsSync(join(gw.dataDir, 'private', 'token')), true);
  await gw.api('POST', '/_porthole/api/apps/where/stop');
});
