/**
 * Two nodes started at the same moment under one name (a copied unit file, a
 * container image with a fixed --node): only one may join. Two live nodes of
 * one name would both run that node's apps and overwrite each other's heartbeat.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'porthole';
import { startRedis } from '../helpers/redis.js';

test('two nodes started together under one name: exactly one joins, the other fails with PH_ERR_NODE_NAME_TAKEN', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  const twin = (name: string) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ph-twin-'));
    t.after(() => rmSync(dataDir, { recursive: true, force: true }));
    const server = createServer({
      config: { store: { url: redis.url, prefix: `t${process.pid}:` }, cluster: { listen: '127.0.0.1:0', heartbeat_ttl: '2s' } },
      node: name,
      dataDir,
      listen: { port: 0 },
    });
    t.after(() => server.close());
    return server.listen();
  };
  // Several pairs at once: the race between two starts is not left to chance.
  const names = ['twin0', 'twin1', 'twin2', 'twin3', 'twin4', 'twin5'];
  const pairs = await Promise.all(names.map((name) => Promise.allSettled([twin(name), twin(name)])));
  pairs.forEach((results, i) => {
    const joined = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(joined.length, 1, `${joined.length} nodes named ${names[i]} joined the cluster`);
    assert.match(String(refused[0]?.reason?.message), new RegExp(`another live node is named ${names[i]}`));
  });
});
