// The embedded registry store: {dataDir}/apps.json, written atomically and
// durably before put/delete resolve, serialized so concurrent writes never
// lose each other — and what was acknowledged survives kill -9.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test, type TestContext } from 'node:test';
import type { AppConfig } from '../../src/config/schema.js';
import { FileStore, type StoredApp } from '../../src/store/file-store.js';

const WRITER = fileURLToPath(new URL('../fixtures/apps/store-writer.ts', import.meta.url));

function tempDir(t: TestContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'porthole-store-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const names = (apps: StoredApp[]) => apps.map((a) => a.name).sort();

test('put, delete and load round-trip through apps.json', async (t) => {
  const dir = tempDir(t);
  const store = new FileStore(dir);
  assert.deepEqual(await store.load(), [], 'a missing file loads as empty');

  const web: StoredApp = { name: 'web', port: 9001, cmd: 'python app.py', env: { A: '1' }, autostart: true };
  await store.put(web);
  await store.put({ name: 'vnc', port: 9002, ws_port: 6080 });
  await store.put({ ...web, port: 9003 }); // replaces
  await store.delete('vnc');
  await store.delete('never-there'); // not an error

  const onDisk = JSON.parse(fs.readFileSync(path.join(dir, 'apps.json'), 'utf8'));
  assert.deepEqual(onDisk, { version: 1, apps: { web: { ...web, port: 9003 } } });
  assert.equal(fs.statSync(path.join(dir, 'apps.json')).mode & 0o777, 0o600, 'apps carry env: owner-only');
  assert.deepEqual(await new FileStore(dir).load(), [{ ...web, port: 9003 }], 'a new store reads it back');
  assert.deepEqual(fs.readdirSync(dir), ['apps.json'], 'no temp file left behind');
});

test('an AppConfig can be stored as it is', async (t) => {
  const store = new FileStore(tempDir(t));
  const config: AppConfig = { name: 'typed', port: 9000, strip_prefix: true, ws_errors: 'ws', tls_verify: true, autostart: false, restart: 'on-failure' };
  await store.put(config); // type-checks: AppConfig is a StoredApp
  assert.deepEqual(await store.load(), [config]);
});

test('50 concurrent puts are all stored', async (t) => {
  const dir = tempDir(t);
  const store = new FileStore(dir);
  const expected = Array.from({ length: 50 }, (_, i) => `app-${i}`);
  await Promise.all(expected.map((name, i) => store.put({ name, port: 9000 + i })));
  assert.deepEqual(names(await new FileStore(dir).load()), [...expected].sort());
});

test('a put before load keeps what is already on disk', async (t) => {
  const dir = tempDir(t);
  await new FileStore(dir).put({ name: 'old' });
  await new FileStore(dir).put({ name: 'new' });
  assert.deepEqual(names(await new FileStore(dir).load()), ['new', 'old']);
});

test('a corrupt file is an error with code PH_ERR_STORE_CORRUPT, and is not overwritten', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'apps.json');
  for (const bad of ['{"version":1,"apps":{"a":', '', '[]', '{"version":2,"apps":{}}', '{"version":1,"apps":{"a":{"name":"b"}}}']) {
    fs.writeFileSync(file, bad);
    await assert.rejects(new FileStore(dir).load(), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'PH_ERR_STORE_CORRUPT');
      assert.match(err.message, /apps\.json is corrupt/);
      return true;
    });
    await assert.rejects(new FileStore(dir).put({ name: 'x' }), { code: 'PH_ERR_STORE_CORRUPT' });
    assert.equal(fs.readFileSync(file, 'utf8'), bad, 'the corrupt file is left for a human');
  }
});

test('a put that cannot be written fails alone: nothing changes, later writes still work', async (t) => {
  const dir = tempDir(t);
  const store = new FileStore(dir);
  await store.put({ name: 'kept' });
  const circular: StoredApp = { name: 'bad' };
  circular.self = circular;
  await assert.rejects(store.put(circular), TypeError);
  await store.put({ name: 'after' });
  assert.deepEqual(names(await new FileStore(dir).load()), ['after', 'kept']);
});

/** Runs the writer until it has printed a random number of acks, then SIGKILLs it; returns the acked names. */
function writeAndKill(dir: string, prefix: string, killAfter: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WRITER, dir, prefix, '200'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const acked: string[] = [];
    let buffer = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      const lines = buffer.split('\n');
      buffer = lines.pop()!;
      for (const line of lines) {
        const m = /^ack (\d+)$/.exec(line);
        if (!m) continue;
        acked.push(`${prefix}-${m[1]}`);
        // Kill right away: the next put is typically mid-write now.
        if (acked.length === killAfter) child.kill('SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`writer ended with ${code ?? signal} before the kill (after ${acked.length} acks)`));
      else resolve(acked);
    });
  });
}

test('kill -9 at random moments: the file stays valid and holds every acknowledged app', async (t) => {
  const dir = tempDir(t);
  const acknowledged: string[] = [];
  for (let round = 0; round < 5; round++) {
    const killAfter = 1 + Math.floor(Math.random() * 150);
    const acked = await writeAndKill(dir, `r${round}`, killAfter);
    assert.ok(acked.length >= killAfter);
    acknowledged.push(...acked);

    const text = fs.readFileSync(path.join(dir, 'apps.json'), 'utf8');
    assert.doesNotThrow(() => JSON.parse(text), `round ${round}: valid JSON after kill -9 at ack ${killAfter}`);
    const stored = new Set(names(await new FileStore(dir).load()));
    const lost = acknowledged.filter((name) => !stored.has(name));
    assert.deepEqual(lost, [], `round ${round}: every acknowledged put survived`);
  }
});
