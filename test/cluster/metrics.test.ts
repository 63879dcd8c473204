/**
 * A cluster node's metrics: every node's up/down as it sees it, its store,
 * its registry version and lease, and the cluster events.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis } from '../helpers/redis.js';
import { startNode, until, type TestNode } from './helpers.js';

const scrape = async (n: TestNode) => (await fetch(`${n.url}/_porthole/metrics`, { headers: { authorization: `Bearer ${n.started.token}` } })).text();

test('metrics show each node up, then node b down once it leaves, with the store up, the version and one leader', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  const a = await startNode(t, 'a', redis.url);
  const b = await startNode(t, 'b', redis.url);
  await until('a sees b up', async () => ((await scrape(a)).includes('porthole_cluster_node_up{node="b"} 1') ? true : undefined));
  const text = await scrape(a);
  assert.match(text, /^porthole_cluster_node_up\{node="a"\} 1$/m);
  assert.match(text, /^porthole_cluster_store_up 1$/m);
  assert.match(text, /^porthole_cluster_registry_version \d+$/m);
  await until('one leader', async () => {
    const [la, lb] = await Promise.all([scrape(a), scrape(b)]).then((x) => x.map((s) => Number(/^porthole_cluster_leader (\d)$/m.exec(s)?.[1])));
    return la + lb === 1 ? true : undefined;
  });
  await b.close();
  const after = await until('a sees b down', async () => {
    const s = await scrape(a);
    return s.includes('porthole_cluster_node_up{node="b"} 0') ? s : undefined;
  });
  assert.match(after, /^porthole_cluster_events_total\{action="node_down"\} 1$/m);
  assert.match(after, /^porthole_cluster_leader 1$/m, 'a holds the lease once b is gone');
});
