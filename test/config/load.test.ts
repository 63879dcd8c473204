import assert from 'node:assert/strict';
import { renameSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { loadConfigFile, watchConfigFile } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { tempDir, until, type TempDir } from '../helpers/http.js';
import { sleep } from '../helpers/net.js';

/** The ConfigError that loading `file` throws. */
function loadError(file: string): ConfigError {
  try {
    loadConfigFile(file);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail(`${file} was accepted`);
}

describe('loadConfigFile', () => {
  let dir: TempDir;
  before(() => {
    dir = tempDir();
  });
  after(() => dir.remove());

  test('an app\'s relative cwd is resolved next to the config file, an absolute one kept', () => {
    const file = dir.file('cwd.yaml');
    writeFileSync(file, ['apps:', '  - name: rel', '    cmd: "true"', '    cwd: ./apps/rel', '  - name: abs', '    cmd: "true"', '    cwd: /srv/abs', ''].join('\n'));
    const cfg = loadConfigFile(file);
    assert.equal(cfg.apps[0].cwd, dir.file('apps/rel'));
    assert.equal(cfg.apps[1].cwd, '/srv/abs');
    assert.ok(Object.isFrozen(cfg.apps[0]));
  });

  test('a valid YAML file parses to a frozen config with durations in ms', () => {
    const file = dir.file('ok.yaml');
    writeFileSync(file, ['connect_timeout: 500ms', 'apps:', '  - name: notebook', '    port: 8888', '    idle_timeout: 2m', '    hosts: ["nb.example.test"]', ''].join('\n'));
    const cfg = loadConfigFile(file);
    assert.equal(cfg.connect_timeout, 500);
    assert.equal(cfg.apps[0].name, 'notebook');
    assert.equal(cfg.apps[0].idle_timeout, 120_000);
    assert.ok(Object.isFrozen(cfg.apps[0].hosts));
  });

  test('an empty file is the default config', () => {
    const file = dir.file('empty.yaml');
    writeFileSync(file, '');
    assert.deepEqual(loadConfigFile(file).apps, []);
  });

  test('bad YAML gives the line and column, once, and names the file', () => {
    const file = dir.file('bad.yaml');
    writeFileSync(file, 'apps:\n  - name: a\n    port: 1\n   bad: x\n');
    const err = loadError(file);
    assert.equal(err.problems.length, 1);
    assert.match(err.problems[0], /^line 4, column \d+: /);
    assert.doesNotMatch(err.problems[0], /at line \d+, column \d+/, 'the position is repeated');
    assert.ok(err.message.startsWith(`${file}: invalid configuration`));
  });

  test('tabs and duplicate keys are YAML errors with a position', () => {
    const tabs = dir.file('tabs.yaml');
    writeFileSync(tabs, 'apps:\n\t- name: a\n');
    assert.match(loadError(tabs).problems[0], /^line 2, column 1: .*[Tt]ab/);
    const dup = dir.file('dup.yaml');
    writeFileSync(dup, 'apps: []\nconnect_timeout: 1\nconnect_timeout: 2\n');
    assert.match(loadError(dup).problems[0], /^line 3, column 1: .*unique/);
  });

  test('schema problems keep their key path and the file name', () => {
    const file = dir.file('typo.yaml');
    writeFileSync(file, 'apps:\n  - name: a\n    port: 1\n    wsport: 2\n');
    const err = loadError(file);
    assert.deepEqual(err.problems, ['apps[0].wsport: unknown key, did you mean ws_port?']);
    assert.match(err.message, /typo\.yaml: invalid configuration\n {2}apps\[0\]\.wsport/);
  });

  test('a missing file is a ConfigError with the errno code', () => {
    const err = loadError(dir.file('nope.yaml'));
    assert.deepEqual(err.problems, ['cannot read the file (ENOENT)']);
  });
});

describe('watchConfigFile', () => {
  test('fires when the file is replaced by rename (as editors do), not for other files', async () => {
    const dir = tempDir();
    const file = dir.file('porthole.yaml');
    writeFileSync(file, 'apps: []\n');
    let fired = 0;
    const stop = watchConfigFile(file, () => fired++, 50);
    try {
      await sleep(100); // let the watcher settle
      // Another file in the same directory: no callback.
      writeFileSync(dir.file('other.yaml'), 'x: 1\n');
      await sleep(400);
      assert.equal(fired, 0, 'a change to another file fired the watcher');

      writeFileSync(dir.file('.porthole.yaml.swp'), 'apps:\n  - name: new\n    port: 9\n');
      renameSync(dir.file('.porthole.yaml.swp'), file);
      await until(() => fired > 0, 10_000, 'the watcher to fire after a rename');
      assert.equal(loadConfigFile(file).apps[0].name, 'new');

      // It keeps watching the new file (a new inode) afterwards.
      const before = fired;
      writeFileSync(dir.file('tmp-2'), 'apps:\n  - name: newer\n    port: 9\n');
      renameSync(dir.file('tmp-2'), file);
      await until(() => fired > before, 10_000, 'the watcher to fire after a second rename');
      // And for a write in place.
      const beforeWrite = fired;
      writeFileSync(file, 'apps: []\n');
      await until(() => fired > beforeWrite, 10_000, 'the watcher to fire after a write in place');
    } finally {
      stop();
      dir.remove();
    }
  });

  test('debounces a burst of changes into one call, and stops when asked', async () => {
    const dir = tempDir();
    const file = dir.file('porthole.yaml');
    writeFileSync(file, 'apps: []\n');
    let fired = 0;
    const stop = watchConfigFile(file, () => fired++, 200);
    try {
      await sleep(100);
      for (let i = 0; i < 5; i++) writeFileSync(file, `apps: []\n# ${i}\n`);
      await until(() => fired > 0, 10_000, 'the debounced call');
      await sleep(500);
      assert.equal(fired, 1, 'a burst of writes gave more than one call');
      stop();
      writeFileSync(file, 'apps: []\n# after stop\n');
      await sleep(500);
      assert.equal(fired, 1, 'the watcher fired after stop()');
    } finally {
      stop();
      dir.remove();
    }
  });
});
