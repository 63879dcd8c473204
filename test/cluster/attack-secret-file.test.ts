/**
 * `cluster.secret_file` holds the key to every node's admin API (the peer
 * listener answers /_porthole/ to whoever has it). A file other users of the
 * machine can read hands it to them: the node refuses to start with it, as
 * ssh refuses a private key others can read, and says how to fix it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'porthole';
import { startRedis } from '../helpers/redis.js';
import { startNode } from './helpers.js';

test('a cluster secret file that other users can read is refused at start, naming the file and the fix; mode 0600 is taken', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  const dir = mkdtempSync(join(tmpdir(), 'ph-secret-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'cluster.secret');
  writeFileSync(file, 'a-secret-of-32-characters-length\n');
  chmodSync(file, 0o644);
  const server = createServer({
    config: { store: { url: redis.url, prefix: `t${process.pid}:` }, cluster: { listen: '127.0.0.1:0', heartbeat_ttl: '2s', secret_file: file } },
    node: 'open',
    dataDir: join(dir, 'data'),
    listen: { port: 0 },
  });
  t.after(() => server.close());
  await assert.rejects(server.listen(), (err: Error) => {
    assert.match(err.message, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*(readable|mode 0?644).*chmod 600`, 's'));
    return true;
  });
  chmodSync(file, 0o600);
  const ok = await startNode(t, 'closed', redis.url, {}, { secret_file: file });
  assert.equal(ok.server.node!.secret(), 'a-secret-of-32-characters-length');
});
