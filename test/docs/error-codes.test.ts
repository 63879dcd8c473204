import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import * as errors from '../../src/errors.js';

const readme = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');

test('every error code is documented in docs/errors.md with its HTTP status and close code', () => {
  const classes = (Object.values(errors) as unknown[]).filter(
    (v): v is new (...a: never[]) => errors.PortholeError => typeof v === 'function' && v.prototype instanceof errors.PortholeError,
  );
  const seen = new Set<string>();
  for (const Cls of classes) {
    const e = new (Cls as unknown as new (m: string | string[]) => errors.PortholeError)(['x']);
    seen.add(e.code);
    const row = readme.split('\n').find((l) => l.startsWith(`| \`${e.code}\``));
    assert.ok(row, `${e.code} has a row in docs/errors.md`);
    assert.ok(row.includes(`| ${e.status} |`), `${e.code}: docs/errors.md says HTTP ${e.status}`);
    assert.ok(row.includes(`| ${e.closeCode} |`), `${e.code}: docs/errors.md says close ${e.closeCode}`);
  }
  assert.deepEqual([...seen].sort(), [...errors.ERROR_CODES].sort(), 'ERROR_CODES lists exactly the classes');
});
