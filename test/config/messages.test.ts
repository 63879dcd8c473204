// Messages a new user reads (issue 8, new-user item 6): no "undefined" where a
// value is missing, and a YAML error shows the offending line with a caret.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { loadConfigFile } from '../../src/config/load.js';
import { parseApp } from '../../src/config/schema.js';
import { ConfigError } from '../../src/errors.js';
import { tempDir, type TempDir } from '../helpers/http.js';

function problemsOf(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
  assert.fail('accepted');
}

test('a missing name says "required", not "got undefined undefined"', () => {
  const problems = problemsOf(() => parseApp({ port: 9001 }));
  assert.deepEqual(problems, ['app.name: required (a name of lowercase letters, digits and dashes (^[a-z0-9][a-z0-9-]{0,62}$))']);
  const config = problemsOf(() => parseApp({ name: 'x', port: 9001, strip_prefix: 'yes', env: { A: 1 } }));
  assert.ok(config.every((p) => !p.includes('undefined')), config.join('\n'));
  assert.ok(config.includes('app.strip_prefix: expected true or false, got string "yes"'), config.join('\n'));
});

describe('a YAML syntax error shows the offending line with a caret under the column', () => {
  let dir: TempDir;
  before(() => {
    dir = tempDir();
  });
  after(() => dir.remove());

  const messageOf = (name: string, text: string): string => {
    const file = dir.file(name);
    writeFileSync(file, text);
    try {
      loadConfigFile(file);
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return err.message;
    }
    assert.fail('accepted');
  };

  test('a key indented one space short', () => {
    const msg = messageOf('indent.yaml', 'apps:\n  - name: a\n    port: 1\n   cmd: x\n');
    assert.match(msg, /line 4, column 1: Sequence item without - indicator\n/);
    assert.ok(msg.includes('\n    4 |    cmd: x\n      | ^'), msg);
    assert.ok(!msg.includes('port: 1'), 'only the offending line, not the one above');
  });

  test('a duplicate key: the caret is under the column', () => {
    const msg = messageOf('dup.yaml', 'apps:\n  - name: a\n    port: 1\n    port: 2\n');
    assert.ok(msg.includes('line 4, column 5: Map keys must be unique'), msg);
    assert.ok(msg.includes('\n    4 |     port: 2\n      |     ^'), msg);
  });

  test('a tab as indentation: shown as a space so the caret stays aligned', () => {
    const msg = messageOf('tab.yaml', 'apps:\n  - name: a\n\tport: 1\n');
    assert.ok(msg.includes('\n    3 |  port: 1\n      | ^'), msg);
  });

  test('an error at the end of the file names it and shows the last line', () => {
    const msg = messageOf('eof.yaml', 'apps:\n  - name: a\n    port: [1, 2\n');
    assert.match(msg, /line 4, column 1 \(the end of the file\)/);
    assert.ok(msg.includes('\n    3 |     port: [1, 2\n'), msg);
  });
});

test('a huge unknown key or value is not echoed whole, and gets no "did you mean" search', () => {
  const key = 'k'.repeat(1_000_000);
  const problems = problemsOf(() => parseApp({ name: 'x', port: 9001, [key]: 1, url: 'u'.repeat(100_000) }));
  assert.ok(problems.every((p) => p.length < 1000), problems.map((p) => p.length).join(', '));
  assert.ok(problems.some((p) => /^app\.k{64}… \(1000000 characters\): unknown key \(valid keys:/.test(p)), problems.join('\n'));
});

test('many unknown keys: ten are named, the rest counted, and the valid keys listed once', () => {
  const raw: Record<string, unknown> = { name: 'x', port: 9001 };
  for (let i = 0; i < 50; i++) raw[`zz${i}`] = i;
  const problems = problemsOf(() => parseApp(raw));
  assert.equal(problems.length, 11);
  assert.equal(problems.filter((p) => p.includes('valid keys')).length, 1);
  assert.equal(problems[10], 'app: 40 more unknown keys');
});
