/**
 * `workers` values and the combinations that one process only supports yet: refused at
 * load (exit code 2) with a message that names them, never started half working.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parseConfig } from '../../src/config/schema.js';
import { ConfigError } from '../../src/errors.js';
import { runCli, startServe } from '../helpers/cli.js';

const dirs: string[] = [];
function configFile(text: string): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'porthole-workers-'));
  dirs.push(dir);
  const file = join(dir, 'porthole.yaml');
  writeFileSync(file, text);
  return { dir, file };
}
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

async function refused(config: string, args: string[] = []): Promise<string> {
  const { dir, file } = configFile(config);
  const run = runCli(['serve', '--listen', '127.0.0.1:0', '--config', file, '--data', dir, ...args]);
  assert.equal(await run.exited, 2, run.stderr());
  return run.stderr();
}

function problems(raw: unknown): string[] {
  try {
    parseConfig(raw);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  return [];
}

describe('workers: config errors', () => {
  test('a value that is not 1–64 or auto: exit code 2 naming the key and what it takes', async () => {
    for (const bad of ['0', '65', '1.5', '"many"', '[2]']) {
      assert.match(await refused(`workers: ${bad}\n`), /workers: expected an integer from 1 to 64, or "auto" \(one per core\)/, bad);
    }
  });

  test('--workers takes the same values', async () => {
    assert.match(await refused('', ['--workers', 'many']), /--workers: expected an integer from 1 to 64, or "auto"/);
    assert.match(await refused('', ['--workers', '0']), /--workers: expected an integer from 1 to 64/);
  });

  test('TLS, stdio apps and --workers over a config that has them: refused with what is not supported yet', async () => {
    assert.match(await refused('workers: 2\ntls: internal\n'), /workers: 2: not supported with tls yet/);
    assert.match(await refused('workers: 2\napps:\n  - name: sh\n    stdio: cat\n'), /apps\[0\]\.stdio: not supported with workers: 2 yet/);
    assert.match(await refused('tls: internal\n', ['--workers', '3']), /--workers 3: not supported with tls yet|--workers: 3: not supported with tls yet/);
  });

  test('a cluster node and login or token sessions are one process only, yet', () => {
    const cluster = problems({ workers: 2, store: 'redis://127.0.0.1:6379/0', cluster: { listen: '127.0.0.1:50001' } });
    assert.ok(cluster.some((p) => /^workers: 2: not supported with cluster yet/.test(p)), cluster.join('\n'));
    const login = problems({ workers: 'auto', auth: 'login' });
    assert.ok(login.some((p) => /^workers: auto: not supported with auth: login or token yet/.test(p)), login.join('\n'));
    const perApp = problems({ workers: 2, apps: [{ name: 'a', port: 9000, auth: 'token' }] });
    assert.ok(perApp.some((p) => /^apps\[0\]\.auth: token is not supported with workers: 2 yet/.test(p)), perApp.join('\n'));
    assert.deepEqual(problems({ workers: 1, tls: 'internal' }), [], 'one process takes all of it');
  });

  test('workers: auto starts one worker per core; SIGTERM right after the listening line drains (exit 0)', async () => {
    const { dir, file } = configFile('workers: auto\n');
    const run = await startServe(['--config', file, '--data', dir]);
    try {
      const cores = availableParallelism();
      if (cores > 1) assert.match(run.stderr(), new RegExp(`\\(0 apps, ${cores} workers\\)`));
      else assert.doesNotMatch(run.stderr(), /workers\)/);
    } finally {
      assert.equal(await run.stop(), 0);
    }
  });
});
