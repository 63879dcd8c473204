/**
 * The dashboard's live feed (`GET /_porthole/api/live`) in a cluster: it
 * carries the cluster view as a `cluster` event when it opens and whenever
 * it changes (a node up or down, the store down and back), and it sends the
 * apps again when another node's apps change state (which this node only
 * learns from that node's heartbeats). Two nodes in this process, a real
 * redis-server.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { createServer } from 'porthole';
import { startAdmin } from '../helpers/admin.js';
import { startRedis } from '../helpers/redis.js';
import { followSse, type SseMessage } from '../helpers/sse.js';
import { startNode, until } from '../cluster/helpers.js';

const APP = fileURLToPath(new URL('../fixtures/cluster/echo-app.mjs', import.meta.url));
const TTL_MS = 2_000;
/**
 * Added to the heartbeat TTL in the waits: a loaded machine (the test suite
 * runs beside other work) delays the nodes' Redis reads; the time actually
 * taken is reported with t.diagnostic.
 */
const SLACK_MS = 3_000;

type NodeView = { name: string; up: boolean; self: boolean; leader: boolean; apps: string[]; last_seen: string | null; advertise: string | null };
const nodeOf = (m: SseMessage, name: string): NodeView | undefined => m.data.cluster?.nodes.find((n: NodeView) => n.name === name);
const appOf = (m: SseMessage, name: string) => (m.data.apps as { name: string; state: string; node?: string; error?: { code: string }; message?: string }[]).find((a) => a.name === name);

test('the live feed carries the cluster: both nodes when it opens, then node b down once b stops (the time taken reported, bounded by the heartbeat TTL plus a margin for a loaded machine), and b\u2019s app marked PH_ERR_NODE_DOWN', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  const a = await startNode(t, 'a', redis.url);
  const b = await startNode(t, 'b', redis.url);
  const put = await a.api('PUT', '/apps/echo', { cmd: `${process.execPath} ${APP}`, node: 'b', autostart: true });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  await until('a sees echo running on b', async () => ((await a.api('GET', '/apps/echo')).body.app?.state === 'running' ? true : undefined), 15_000);

  const feed = await followSse(t, `${a.url}/_porthole/api/live`, a.started.token);
  // A second dashboard on the same node: the streams share one watch of the cluster, and each is told.
  const other = await followSse(t, `${a.url}/_porthole/api/live`, a.started.token);
  const first = await feed.next((m) => m.event === 'cluster', 'the first cluster event', { past: true });
  assert.equal(first.data.cluster.node, 'a');
  assert.equal(first.data.cluster.store.up, true);
  assert.equal(first.data.cluster.store.kind, 'redis');
  assert.equal(first.data.cluster.heartbeat_ttl_ms, TTL_MS);
  assert.deepEqual(
    first.data.cluster.nodes.map((n: NodeView) => [n.name, n.up, n.self]),
    [
      ['a', true, true],
      ['b', true, false],
    ],
  );
  assert.deepEqual(nodeOf(first, 'b')?.apps, ['echo']);
  assert.match(nodeOf(first, 'b')?.advertise ?? '', /^127\.0\.0\.1:\d+$/);
  assert.equal(first.data.cluster.nodes.filter((n: NodeView) => n.leader).length, 1, 'one leader');
  const apps = await feed.next((m) => m.event === 'apps', 'the first apps event', { past: true });
  assert.equal(appOf(apps, 'echo')?.node, 'b');
  assert.equal(appOf(apps, 'echo')?.state, 'running');

  // Node b goes: a's feed says so, without a reload, within the heartbeat TTL.
  // b's close may take a while (it drains); a may say so before it returns.
  const mark = feed.messages.length;
  const closing = performance.now();
  await b.close();
  const down = await feed.next((m) => m.event === 'cluster' && nodeOf(m, 'b')?.up === false, 'node b down in a cluster event', { from: mark, timeoutMs: TTL_MS + SLACK_MS });
  t.diagnostic(`node b reported down on a's live feed ${Math.round(down.at - closing)} ms after it began to stop (heartbeat TTL ${TTL_MS} ms)`);
  await other.next((m) => m.event === 'cluster' && nodeOf(m, 'b')?.up === false, 'node b down on the second stream', { past: true, timeoutMs: SLACK_MS });
  other.close();
  // A stream opened after the change starts from the view as it is now.
  const late = await followSse(t, `${a.url}/_porthole/api/live`, a.started.token);
  const lateFirst = await late.next((m) => m.event === 'cluster', 'the late stream’s first cluster event', { past: true });
  assert.equal(nodeOf(lateFirst, 'b')?.up, false);
  late.close();
  assert.equal(nodeOf(down, 'a')?.up, true);
  assert.ok(nodeOf(down, 'b')?.last_seen, 'a down node keeps the time it was last seen');
  assert.deepEqual(nodeOf(down, 'b')?.apps, ['echo'], 'its apps are still its');
  const gone = await feed.next((m) => m.event === 'apps' && appOf(m, 'echo')?.error?.code === 'PH_ERR_NODE_DOWN', 'echo marked node down in an apps event', { from: mark, timeoutMs: TTL_MS + SLACK_MS });
  assert.match(appOf(gone, 'echo')?.message ?? '', /node b/);
  // Every cluster event is a change: an up node's last_seen moving with each heartbeat is not one.
  await new Promise((r) => setTimeout(r, 1_500));
  const unchanged = (m: SseMessage) => JSON.stringify({ ...m.data.cluster, nodes: m.data.cluster.nodes.map((n: NodeView) => ({ ...n, last_seen: n.up ? null : n.last_seen })) });
  const sentViews = feed.messages.filter((m) => m.event === 'cluster').map(unchanged);
  assert.ok(sentViews.length >= 2);
  sentViews.slice(1).forEach((v, i) => assert.notEqual(v, sentViews[i], `cluster event ${i + 1} repeats the one before it`));
});

test('a node killed with SIGKILL (no goodbye) shows down on the other node’s live feed once its heartbeat expires', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  const a = await startNode(t, 'a', redis.url);
  // Node b is a real `porthole serve`, so that it can die without a word.
  const b = await startAdmin({
    config: `store:\n  url: ${redis.url}\n  prefix: "t${process.pid}:"\ncluster:\n  listen: 127.0.0.1:0\n  heartbeat_ttl: 2s\n`,
    args: ['--node', 'b'],
  });
  t.after(() => b.cleanup());
  const feed = await followSse(t, `${a.url}/_porthole/api/live`, a.started.token);
  await feed.next((m) => m.event === 'cluster' && nodeOf(m, 'b')?.up === true, 'node b up', { past: true, timeoutMs: TTL_MS + SLACK_MS });
  const mark = feed.messages.length;
  const killed = performance.now();
  b.child.kill('SIGKILL');
  await b.exited;
  const down = await feed.next((m) => m.event === 'cluster' && nodeOf(m, 'b')?.up === false, 'node b down', { from: mark, timeoutMs: TTL_MS + SLACK_MS });
  const ms = Math.round(down.at - killed);
  t.diagnostic(`node b (SIGKILL) reported down on a's live feed ${ms} ms after the kill (heartbeat TTL ${TTL_MS} ms)`);
  // Its last heartbeat had to expire first: not before a third of the TTL (it beats every TTL/3).
  assert.ok(ms >= TTL_MS / 3 - 100, `down after ${ms} ms: sooner than its heartbeat could expire`);
  assert.ok(nodeOf(down, 'b')?.last_seen);
});

test('the live feed sends the apps again when another node\u2019s app changes state, known only from that node\u2019s heartbeat', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  const a = await startNode(t, 'a', redis.url);
  const b = await startNode(t, 'b', redis.url);
  assert.equal((await a.api('PUT', '/apps/echo', { cmd: `${process.execPath} ${APP}`, node: 'b' })).status, 200);
  await until('b has echo', async () => ((await b.api('GET', '/apps/echo')).status === 200 ? true : undefined));
  const feed = await followSse(t, `${a.url}/_porthole/api/live`, a.started.token);
  await feed.next((m) => m.event === 'apps' && appOf(m, 'echo')?.state === 'stopped', 'echo stopped', { past: true });

  // Started through b itself: a hears of it only through b's heartbeat.
  let mark = feed.messages.length;
  assert.equal((await b.api('POST', '/apps/echo/start')).status, 200);
  const running = await feed.next((m) => m.event === 'apps' && appOf(m, 'echo')?.state === 'running', 'echo running on a\u2019s feed', { from: mark, timeoutMs: TTL_MS + SLACK_MS });
  assert.equal(appOf(running, 'echo')?.node, 'b');
  mark = feed.messages.length;
  assert.equal((await b.api('POST', '/apps/echo/stop')).status, 200);
  await feed.next((m) => m.event === 'apps' && appOf(m, 'echo')?.state === 'stopped', 'echo stopped again on a\u2019s feed', { from: mark, timeoutMs: TTL_MS + SLACK_MS });
});

test('an app registered or removed through node b reaches node a’s live feed with the new registry version, with no event of a’s own', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  const a = await startNode(t, 'a', redis.url);
  const b = await startNode(t, 'b', redis.url);
  const feed = await followSse(t, `${a.url}/_porthole/api/live`, a.started.token);
  const before = await feed.next((m) => m.event === 'cluster', 'the first cluster event', { past: true });
  await feed.next((m) => m.event === 'apps', 'the first apps event', { past: true });
  // No process, so no app state event anywhere: only the registry changes.
  let mark = feed.messages.length;
  const put = await b.api('PUT', '/apps/notes', { url: 'http://127.0.0.1:9' });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  await feed.next((m) => m.event === 'cluster' && m.data.cluster.version > before.data.cluster.version, 'a new version on a’s feed', { from: mark, timeoutMs: TTL_MS + SLACK_MS });
  const listed = await feed.next((m) => m.event === 'apps' && appOf(m, 'notes') !== undefined, 'notes in an apps event', { from: mark, timeoutMs: TTL_MS + SLACK_MS });
  assert.equal(appOf(listed, 'notes')?.node, 'b');
  mark = feed.messages.length;
  assert.equal((await b.api('DELETE', '/apps/notes')).status, 200);
  await feed.next((m) => m.event === 'apps' && appOf(m, 'notes') === undefined, 'notes gone from an apps event', { from: mark, timeoutMs: TTL_MS + SLACK_MS });
});

test('the live feed says when the store goes down (and since when) and when it is back', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  const a = await startNode(t, 'a', redis.url);
  const feed = await followSse(t, `${a.url}/_porthole/api/live`, a.started.token);
  await feed.next((m) => m.event === 'cluster' && m.data.cluster.store.up === true, 'the store up', { past: true });
  let mark = feed.messages.length;
  const stopped = Date.now();
  await redis.stop();
  const down = await feed.next((m) => m.event === 'cluster' && m.data.cluster.store.up === false, 'the store down', { from: mark, timeoutMs: 10_000 });
  const since = Date.parse(down.data.cluster.store.down_since);
  assert.ok(since >= stopped - 1_000 && since <= Date.now(), `down_since ${down.data.cluster.store.down_since} is when it stopped`);
  assert.equal(nodeOf(down, 'a')?.up, true, 'a node that cannot see the store marks no node down');
  mark = feed.messages.length;
  await redis.restart();
  const back = await feed.next((m) => m.event === 'cluster' && m.data.cluster.store.up === true, 'the store back', { from: mark, timeoutMs: 15_000 });
  assert.equal(back.data.cluster.store.down_since, undefined);
});

test('outside a cluster the live feed sends one cluster event, null, and GET /cluster answers null', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-dashboard-nocluster-'));
  const server = createServer({ listen: { port: 0 }, dataDir, config: { apps: [] } });
  t.after(async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const start = await server.listen();
  const feed = await followSse(t, `${start.url}/_porthole/api/live`, start.token);
  const first = await feed.next((m) => m.event === 'cluster', 'the cluster event', { past: true });
  assert.deepEqual(first.data, { cluster: null });
  await feed.next((m) => m.event === 'apps', 'the apps', { past: true });
  const res = await fetch(`${start.url}/_porthole/api/cluster`, { headers: { authorization: `Bearer ${start.token}` } });
  assert.deepEqual(await res.json(), { ok: true, cluster: null });
});
