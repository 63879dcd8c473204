/**
 * A node that is up (it beats) but whose peer listener accepts and never
 * answers (a hung process, a firewall that drops after the handshake, a wrong
 * `advertise` that lands on some other service): a call about one of its apps
 * through another node's API is answered within a bound, never held for ever.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startRedis } from '../helpers/redis.js';
import { startNode, until } from './helpers.js';

/** Node a, and node b whose advertised peer address is a socket that accepts and never answers. */
async function withSilentPeer(t: TestContext) {
  const redis = await startRedis();
  t.after(() => redis.close());
  // Accepts every connection, reads (and so sees a close), never writes.
  const sockets = new Set<net.Socket>();
  const hole = net.createServer((s) => (sockets.add(s), s.resume(), s.on('error', () => {}), s.on('close', () => sockets.delete(s))));
  await new Promise<void>((ok) => hole.listen(0, '127.0.0.1', ok));
  t.after(() => new Promise<void>((ok) => (sockets.forEach((s) => s.destroy()), hole.close(() => ok()))));
  const holePort = (hole.address() as net.AddressInfo).port;

  const a = await startNode(t, 'a', redis.url);
  const b = await startNode(t, 'b', redis.url, {}, { advertise: `127.0.0.1:${holePort}` });
  await until('a sees b', async () => ((await a.api('GET', '/cluster')).body.cluster.nodes.some((n: { name: string; up: boolean }) => n.name === 'b' && n.up) ? true : undefined));
  const put = await b.api('PUT', '/apps/sl', { cmd: 'sleep 1000', start_timeout: '1s', stop_timeout: '1s' });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  await until('a has sl', async () => ((await a.api('GET', '/apps/sl')).status === 200 ? true : undefined));
  return { a, sockets };
}

test('a call about an app whose node accepts but never answers gets 504 within a bound, never hangs', async (t) => {
  const { a } = await withSilentPeer(t);

  // The two calls at the same time: each waits out the same bound (the app's start and stop timeouts and a grace).
  const calls = [
    ['POST', '/apps/sl/stop'],
    ['GET', '/apps/sl/logs?lines=5'],
  ] as const;
  await Promise.all(
    calls.map(async ([method, path]) => {
      const began = Date.now();
      const res = await fetch(`${a.url}/_porthole/api${path}`, { method, headers: { authorization: `Bearer ${a.started.token}` }, signal: AbortSignal.timeout(20_000) }).catch((err: Error) => err);
      assert.ok(!(res instanceof Error), `${method} ${path} through a was held for ${Date.now() - began} ms without an answer (${(res as Error).message})`);
      const text = await res.text();
      assert.equal(res.status, 504, `${method} ${path}: ${res.status} ${text}`);
      const body = JSON.parse(text) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'PH_ERR_UPSTREAM_TIMEOUT');
      assert.match(body.error.message, /node b/);
    }),
  );
});

test('a client that gives up on a forwarded call closes the call to the other node', async (t) => {
  const { a, sockets } = await withSilentPeer(t);
  const ac = new AbortController();
  const follow = fetch(`${a.url}/_porthole/api/apps/sl/logs?follow=1`, { headers: { authorization: `Bearer ${a.started.token}` }, signal: ac.signal }).catch(() => undefined);
  await until('a called b', () => (sockets.size > 0 ? true : undefined));
  ac.abort();
  await follow;
  // Nobody waits for the answer any more: the connection to b is not left open (with a log follow, for ever).
  await until('a closed its call to b', () => (sockets.size === 0 ? true : undefined), 2_000);
});
