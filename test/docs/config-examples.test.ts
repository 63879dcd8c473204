/**
 * Every YAML example in the README and docs/ is a config Porthole accepts:
 * a renamed or removed key fails here before a reader copies it.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { parseConfig } from '../../src/config/schema.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DOCS = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

test('every ```yaml block of the README and docs/ passes the config schema', () => {
  let blocks = 0;
  for (const doc of DOCS) {
    const text = readFileSync(join(ROOT, doc), 'utf8');
    for (const m of text.matchAll(/```yaml\n([\s\S]*?)```/g)) {
      blocks++;
      const line = text.slice(0, m.index).split('\n').length;
      assert.doesNotThrow(() => parseConfig(parse(m[1])), `${doc}:${line}: the example is a valid config`);
    }
  }
  assert.ok(blocks >= 6, `found ${blocks} examples`);
});
