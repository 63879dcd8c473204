/**
 * The CLI against any node shows the whole cluster: `porthole nodes`, and
 * `porthole apps ls` with the node that runs each app; `porthole apps add
 * --node` registers an app for another node; `--node` outside a cluster is
 * refused with a clear message.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, startServe } from '../helpers/cli.js';
import { startRedis } from '../helpers/redis.js';
import { startNode, until } from './helpers.js';

test('porthole nodes and porthole apps ls through either node show every node and where each app runs', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  const a = await startNode(t, 'a', redis.url);
  const b = await startNode(t, 'b', redis.url);
  await until('a sees b', async () => ((await a.api('GET', '/cluster')).body.cluster.nodes.filter((n: { up: boolean }) => n.up).length === 2 ? true : undefined));

  const env = { PORTHOLE_TOKEN: a.started.token };
  const add = runCli(['apps', 'add', 'web', '--port', '9', '--node', 'b', '--gateway', a.url], { env });
  assert.equal(await add.exited, 0, add.stderr());
  assert.match(add.stdout(), /^\s+node\s+b$/m);

  const nodes = runCli(['nodes', '--gateway', a.url], { env });
  assert.equal(await nodes.exited, 0, nodes.stderr());
  const out = nodes.stdout();
  assert.match(out, /^NODE\s+STATE\s+ROLE\s+PEER ADDRESS/m);
  assert.match(out, /^a\s+up\s+.*this node/m);
  assert.match(out, /^b\s+up\s+.*127\.0\.0\.1:\d+.*web/m);
  assert.match(out, new RegExp(`store redis://127\\.0\\.0\\.1:${redis.port}/?: up, registry version \\d+`));

  // Through b, with b's token: the same apps, the node column.
  await until('b has web', async () => ((await b.api('GET', '/apps/web')).status === 200 ? true : undefined));
  const ls = runCli(['apps', 'ls', '--gateway', b.url], { env: { PORTHOLE_TOKEN: b.started.token } });
  assert.equal(await ls.exited, 0, ls.stderr());
  assert.match(ls.stdout(), /^NAME\s+STATE\s+NODE\s+PID/m);
  assert.match(ls.stdout(), /^web\s+external\s+b\s/m);
});

test('--node outside a cluster, and porthole nodes against a gateway that is not in one, say so', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ph-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'porthole.yaml'), 'apps: []\n');
  const serve = runCli(['serve', '--config', join(dir, 'porthole.yaml'), '--data', join(dir, 'data'), '--listen', '127.0.0.1:0', '--node', 'x']);
  assert.equal(await serve.exited, 2);
  assert.match(serve.stderr(), /--node: this gateway is not a node of a cluster/);

  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'store: redis://127.0.0.1:1\n');
  const noCluster = runCli(['serve', '--config', bad, '--data', join(dir, 'data'), '--listen', '127.0.0.1:0']);
  assert.equal(await noCluster.exited, 2);
  assert.match(noCluster.stderr(), /store: a Redis store makes this gateway a node of a cluster: add cluster: \{ listen: HOST:PORT \}/);

  const plain = await startServe(['--config', join(dir, 'porthole.yaml'), '--data', join(dir, 'plain')]);
  t.after(() => plain.stop());
  const nodes = runCli(['nodes', '--gateway', plain.url, '--data', join(dir, 'plain')]);
  assert.equal(await nodes.exited, 1);
  assert.match(nodes.stderr(), /this gateway is not a node of a cluster/);
});

test('a node whose Redis cannot be reached at start exits 1 naming the store, without its password', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ph-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const cfg = join(dir, 'porthole.yaml');
  writeFileSync(cfg, 'store: redis://:hunter2-secret@127.0.0.1:1/0\ncluster:\n  listen: 127.0.0.1:0\n');
  const serve = runCli(['serve', '--config', cfg, '--data', join(dir, 'data'), '--listen', '127.0.0.1:0', '--node', 'a']);
  assert.equal(await serve.exited, 1, serve.stderr());
  assert.match(serve.stderr(), /cannot reach the store: the store at redis:\/\/:\*\*\*@127\.0\.0\.1:1\/0 cannot be reached/);
  assert.doesNotMatch(serve.stderr() + serve.stdout(), /hunter2/);
});

test('porthole nodes --forget: refused while the node is up or apps name it, then the node is gone from every list', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  const a = await startNode(t, 'a', redis.url);
  const b = await startNode(t, 'b', redis.url);
  const env = { PORTHOLE_TOKEN: a.started.token };
  const forget = async () => {
    const r = runCli(['nodes', '--forget', 'b', '--gateway', a.url], { env });
    return { code: await r.exited, out: r.stdout() + r.stderr() };
  };
  await until('a sees b', async () => ((await a.api('GET', '/cluster')).body.cluster.nodes.some((n: { name: string; up: boolean }) => n.name === 'b' && n.up) ? true : undefined));
  const whileUp = await forget();
  assert.equal(whileUp.code, 1);
  assert.match(whileUp.out, /node b is up: stop it first .*\[PH_ERR_CONFLICT\]/);
  assert.equal((await a.api('PUT', '/apps/web', { port: 9, node: 'b' })).status, 200);
  await b.close();
  await until('a sees b down', async () => ((await a.api('GET', '/cluster')).body.cluster.nodes.some((n: { name: string; up: boolean }) => n.name === 'b' && !n.up) ? true : undefined));
  const withApps = await forget();
  assert.equal(withApps.code, 1);
  assert.match(withApps.out, /apps still run on node b: web/);
  assert.equal((await a.api('DELETE', '/apps/web')).status, 200);
  const done = await forget();
  assert.equal(done.code, 0, done.out);
  assert.match(done.out, /forgot node b/);
  const nodes = (await a.api('GET', '/cluster')).body.cluster.nodes.map((n: { name: string }) => n.name);
  assert.deepEqual(nodes, ['a']);
  const unknown = await forget();
  assert.equal(unknown.code, 1);
  assert.match(unknown.out, /no node named "b"/);
});
