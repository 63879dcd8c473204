// Issue 8, item 2c: what /proc/PID/environ shows of the gateway is cleared,
// while the process keeps every variable (for error pages' ${VAR}, for TLS
// settings read by OpenSSL, for the allowlist apps get).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const MODULE = fileURLToPath(new URL('../../src/cli/clear-environ.ts', import.meta.url));

test('clearStartupEnviron leaves only NUL bytes in /proc/self/environ and every variable in process.env and in children', () => {
  const secret = `s-${randomBytes(12).toString('hex')}`;
  // A fresh process, so that the block being cleared is that process's own startup environment.
  const script = `
    import { readFileSync } from 'node:fs';
    import { execFileSync } from 'node:child_process';
    const { clearStartupEnviron } = await import(${JSON.stringify(MODULE)});
    const before = JSON.stringify(Object.entries(process.env).sort());
    const seenBefore = readFileSync('/proc/self/environ').includes(process.env.SECRET_UNDER_TEST);
    const result = clearStartupEnviron();
    const environ = readFileSync('/proc/self/environ');
    const child = execFileSync('/usr/bin/env', { encoding: 'utf8' });
    console.log(JSON.stringify({
      result, seenBefore,
      allNul: environ.length > 0 && environ.every((b) => b === 0),
      same: before === JSON.stringify(Object.entries(process.env).sort()),
      childHasIt: child.split('\\n').includes('SECRET_UNDER_TEST=' + process.env.SECRET_UNDER_TEST),
    }));
  `;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, SECRET_UNDER_TEST: secret } });
  const r = JSON.parse(out.trim().split('\n').pop()!);
  assert.equal(r.seenBefore, true, 'the secret was in /proc/self/environ before: the check is real');
  assert.equal(r.result.cleared, true, JSON.stringify(r.result));
  assert.equal(r.allNul, true, '/proc/self/environ shows nothing');
  assert.equal(r.same, true, 'process.env is unchanged');
  assert.equal(r.childHasIt, true, 'children spawned with process.env still get it');
});
