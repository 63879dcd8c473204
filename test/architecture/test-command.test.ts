/**
 * The test command itself (scripts/test.mjs): how many test files run at a
 * time is PORTHOLE_TEST_CONCURRENCY's, and a value that is not a count stops
 * the run before anything is installed, built or run.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

test('PORTHOLE_TEST_CONCURRENCY that is not a whole number from 1 stops npm test at once, naming the value', () => {
  for (const bad of ['0', 'two', '-1', '1.5']) {
    const r = spawnSync(process.execPath, ['scripts/test.mjs', 'test/architecture/no-such-file.test.ts'], { cwd: ROOT, env: { ...process.env, PORTHOLE_TEST_CONCURRENCY: bad }, encoding: 'utf8' });
    assert.equal(r.status, 2, `${bad}: ${r.stderr}`);
    assert.equal(r.stderr.trim(), `npm test: PORTHOLE_TEST_CONCURRENCY=${bad}: expected how many test files run at a time, a whole number from 1`);
    assert.equal(r.stdout, '', 'nothing was installed, built or run');
  }
});
