/**
 * `porthole passwd`: a scrypt hash read from stdin that the config accepts
 * and that verifies (timing-safe) against the password, and `--token`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { hashPassword, tokenDigest, verifyPassword } from '../../src/auth/password.js';
import { parseConfig } from '../../src/config/schema.js';
import { CLI } from '../helpers/cli.js';

function passwd(args: string[], stdin: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((ok) => {
    const child = spawn(process.execPath, [CLI, 'passwd', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => ok({ code, out, err }));
    child.stdin.end(stdin);
  });
}

test('porthole passwd prints a scrypt hash with its parameters and salt, which the config takes and which verifies', async () => {
  const r = await passwd([], 'correct horse\n');
  assert.equal(r.code, 0, r.err);
  const hash = r.out.trim();
  assert.match(hash, /^scrypt\$32768\$8\$3\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
  assert.equal(await verifyPassword('correct horse', hash), true);
  assert.equal(await verifyPassword('correct horsf', hash), false);
  assert.equal(parseConfig({ auth: 'login', users: [{ name: 'alice', password_hash: hash }] }).users[0].name, 'alice');
  const again = await passwd([], 'correct horse\n');
  assert.notEqual(again.out.trim(), hash, 'a fresh salt each time');
});

test('porthole passwd --name prints a users entry; an empty password is refused', async () => {
  const r = await passwd(['--name', 'alice'], 'pw\n');
  assert.match(r.out, /^users:\n {2}- name: alice\n {4}password_hash: "scrypt\$/);
  const empty = await passwd([], '\n');
  assert.equal(empty.code, 2);
  assert.match(empty.err, /empty password/);
});

test('porthole passwd --token prints a token and the sha256 that auth_tokens holds', async () => {
  const r = await passwd(['--token', '--name', 'agent'], '');
  const token = /^token: (\S+)$/m.exec(r.out)![1];
  const sha = /sha256: ([0-9a-f]{64})$/m.exec(r.out)![1];
  assert.equal(sha, tokenDigest(token));
  assert.equal(parseConfig({ auth: 'token', auth_tokens: [{ name: 'agent', sha256: sha }] }).auth_tokens.length, 1);
});

test('a malformed or absurd hash matches nothing', async () => {
  const good = await hashPassword('pw', { n: 1024 });
  assert.equal(await verifyPassword('pw', good), true);
  assert.equal(await verifyPassword('pw', good.replace('$1024$', '$1000$')), false, 'N must be a power of two');
  assert.equal(await verifyPassword('pw', good.replace('$1024$', `$${2 ** 24}$`)), false, 'no gigabytes for a hand-edited hash');
  assert.equal(await verifyPassword('pw', 'plain'), false);
});
