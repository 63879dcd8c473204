/**
 * cluster.tls: the peer listeners speak TLS with the nodes' certificate, and
 * each node checks the others' against the cluster's CA, for forwarded
 * requests and WebSockets and for the calls nodes make to each other (start,
 * stop, logs of another node's app). Cleartext to a peer listener gets nowhere.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { startRedis } from '../helpers/redis.js';
import { selfSigned, tempDir } from '../tls/tls-helpers.js';
import { startNode, until } from './helpers.js';

const APP = fileURLToPath(new URL('../fixtures/cluster/echo-app.mjs', import.meta.url));

test('with cluster.tls, requests, WebSockets and start/stop go between the nodes over TLS; cleartext to the peer listener is refused', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  const dir = tempDir('ph-cluster-tls-');
  t.after(() => dir.remove());
  // One certificate for both nodes (IP 127.0.0.1), its own CA.
  const cert = selfSigned(dir.dir, 'nodes', ['127.0.0.1']);
  const tls = { tls: { cert: cert.certFile, key: cert.keyFile, ca: cert.certFile } };
  const a = await startNode(t, 'a', redis.url, {}, tls);
  const b = await startNode(t, 'b', redis.url, {}, tls);
  assert.equal((await a.api('PUT', '/apps/echo', { cmd: `${process.execPath} ${APP}`, node: 'b' })).status, 200);
  const started = await until('start through a, carried out by b over TLS', async () => {
    const r = await a.api('POST', '/apps/echo/start');
    return r.status === 200 ? r.body.app : undefined;
  });
  assert.equal(started.node, 'b');
  const body = await until('a forwards to b over TLS', async () => {
    const r = await fetch(`${a.url}/echo/x`);
    return r.status === 200 ? ((await r.json()) as { cwd: string }) : undefined;
  });
  assert.ok(body.cwd.startsWith(b.server.dataDir));
  const ws = new WebSocket(`${a.url.replace('http', 'ws')}/echo/`);
  await new Promise((ok, fail) => (ws.once('open', ok), ws.once('error', fail)));
  ws.send('tls hop');
  assert.equal((await new Promise<Buffer>((ok) => ws.once('message', (d) => ok(d as Buffer)))).toString(), 'tls hop');
  ws.close();

  // b's peer listener speaks only TLS: a cleartext request gets no HTTP answer.
  const peer = b.started.node!.peer;
  const [host, port] = [peer.slice(0, peer.lastIndexOf(':')), Number(peer.slice(peer.lastIndexOf(':') + 1))];
  const cleartext = await new Promise<string>((ok) => {
    const req = http.get({ host, port, path: '/echo/', headers: { 'x-porthole-peer': 'guess' } }, (res) => ok(`status ${res.statusCode}`));
    req.on('error', (err) => ok(`error ${(err as NodeJS.ErrnoException).code}`));
    req.setTimeout(3000, () => req.destroy(new Error('timeout')));
  });
  assert.match(cleartext, /^(error|status 400)/);
});

test('cluster.tls with a file that cannot be read is a config error naming the key', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  await assert.rejects(startNode(t, 'a', redis.url, {}, { tls: { cert: '/nonexistent/c.pem', key: '/nonexistent/k.pem', ca: '/nonexistent/ca.pem' } }), /cluster\.tls\.cert: cannot read \/nonexistent\/c\.pem \(ENOENT\)/);
});
