/**
 * A bridge app whose tokens are in Redis (websockify's TokenRedis) reads the
 * key the client names in `?token=`. Without a namespace any key of the db is
 * a token; on the cluster's own Redis that includes `{prefix}secret`, the key
 * to every node's peer listener (admin without a token). Whatever a token's
 * key holds, the client is never shown its value.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { startRedis } from '../helpers/redis.js';
import { closeTokenRedisClients } from '../../src/gateway/bridge-token-redis.js';
import { startNode } from './helpers.js';

/** What a client learns from a refused bridge connection: the handshake's answer or the close reason. */
function refusal(url: string): Promise<string> {
  return new Promise((ok) => {
    const ws = new WebSocket(url);
    ws.on('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => ok(`${res.statusCode} ${Buffer.concat(chunks).toString('utf8')}`));
    });
    ws.on('close', (code, reason) => ok(`${code} ${reason.toString()}`));
    ws.on('error', () => {});
  });
}

test('a bridge token that names another key of the store never shows that key’s value (the cluster secret included)', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  t.after(() => closeTokenRedisClients());
  const r = new Redis(redis.url, { lazyConnect: true, retryStrategy: () => null });
  await r.connect();
  t.after(() => r.disconnect());
  const a = await startNode(t, 'a', redis.url);
  // The bridge reads the cluster's own Redis (db 0), tokens without a namespace: websockify's default.
  const put = await a.api('PUT', '/apps/desks', { bridge_token_redis: redis.url });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  const secret = a.server.node!.secret();
  assert.ok(secret.length >= 16);
  await r.set('session:42', 'user=root;pass=hunter2-hunter2');

  const base = `${a.url.replace('http', 'ws')}/desks/websockify?token=`;
  const leaked = await refusal(base + encodeURIComponent(`t${process.pid}:secret`));
  assert.ok(!leaked.includes(secret), `the client was shown the cluster secret: ${leaked}`);
  assert.ok(!leaked.includes(secret.slice(0, 12)), `the client was shown part of the cluster secret: ${leaked}`);
  const other = await refusal(base + 'session:42');
  assert.ok(!other.includes('hunter2'), `the client was shown another key's value: ${other}`);
  // It still says which token is wrong, and why.
  assert.match(other, /session:42/);
});
