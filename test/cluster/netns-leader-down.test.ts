/**
 * kill -9 of the node holding the placement lease (the leader), on separate
 * hosts: the lease expires with it, another node takes it, and the `node: any`
 * app that ran on the dead leader is placed on a live node and answers again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ECHO_CMD, echoJson, startNsCluster, until, withLogs, type NsNode } from './netns-helpers.js';

test('kill -9 of the leader: another node takes the lease and moves the leader\'s node: any app to a live node', { timeout: 180_000 }, async (t) => {
  const cl = await startNsCluster(t);
  await withLogs(cl, async () => {
    const leaderName = await until('a leader', async () => {
      const nodes = (await cl.nodes[0]!.api('GET', '/cluster')).body.cluster.nodes as { name: string; leader: boolean }[];
      return nodes.find((n) => n.leader)?.name;
    }, 10_000, 20);
    const leader = cl.nodes.find((n) => n.name === leaderName)!;
    const others = cl.nodes.filter((n) => n !== leader) as [NsNode, NsNode];
    // One app on each of the others: the leader runs the fewest, so roamer goes there.
    for (const n of others) assert.equal((await n.api('PUT', `/apps/pad-${n.name}`, { port: 7001 })).status, 200);
    assert.equal((await others[0].api('PUT', '/apps/roamer', { cmd: ECHO_CMD, node: 'any', autostart: true })).status, 200);
    const placed = await until('roamer answers', () => echoJson(`${others[0].url}/roamer/`), 10_000);
    assert.ok(placed.cwd.startsWith(leader.dataDir), `roamer runs on the leader ${leader.name} (cwd ${placed.cwd})`);

    const killed = performance.now();
    await leader.kill9();
    const newLeader = await until('another node holds the lease', async () => {
      const nodes = (await others[0].api('GET', '/cluster')).body.cluster.nodes as { name: string; leader: boolean }[];
      const l = nodes.find((n) => n.leader)?.name;
      return l && l !== leader.name ? l : undefined;
    }, cl.ttlMs * 3, 20);
    const leaseMs = performance.now() - killed;
    const moved = await until('roamer answers again', () => echoJson(`${others[1].url}/roamer/`), 15_000, 20);
    const movedMs = performance.now() - killed;
    assert.ok(others.some((n) => moved.cwd.startsWith(n.dataDir)), `roamer runs on a live node now (cwd ${moved.cwd})`);
    assert.equal((await echoJson(`${others[0].url}/roamer/`))?.pid, moved.pid, 'both live nodes route roamer to the same process');
    console.log(`leader ${leader.name} killed: ${newLeader} took the lease in ${leaseMs.toFixed(0)} ms; roamer answered again in ${movedMs.toFixed(0)} ms (heartbeat_ttl ${cl.ttlMs} ms)`);
  });
});
