/**
 * The store's URL is shown in `GET /cluster`, `porthole nodes`, events and
 * errors without its password. A password written without the colon before
 * it (`redis://PASSWORD@host`, a common slip) lands in the URL's user part:
 * it is not shown either.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'porthole';
import { startRedis } from '../helpers/redis.js';

/** What the node shows of its store: the start error's message, or GET /cluster's store.url. */
async function shownStore(t: TestContext, name: string, url: string): Promise<string> {
  const dataDir = mkdtempSync(join(tmpdir(), `ph-url-${name}-`));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const server = createServer({ config: { store: { url, prefix: `t${process.pid}:` }, cluster: { listen: '127.0.0.1:0', heartbeat_ttl: '2s' } }, node: name, dataDir, listen: { port: 0 } });
  t.after(() => server.close());
  const started = await server.listen().catch((err: Error) => err);
  if (started instanceof Error) return `${started.message} ${(started.cause as Error | undefined)?.message ?? ''}`;
  const res = await fetch(`${started.url}/_porthole/api/cluster`, { headers: { authorization: `Bearer ${started.token}` } });
  return JSON.stringify(await res.json());
}

test('a password in the user part of the store URL is shown neither by GET /cluster nor by a start that fails', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  const one = await shownStore(t, 'a', `redis://S3cretPassw0rd@127.0.0.1:${redis.port}/0`);
  assert.ok(!one.includes('S3cretPassw0rd'), `the node shows it: ${one}`);
  assert.match(one, new RegExp(`redis://\\*\\*\\*@127\\.0\\.0\\.1:${redis.port}/0`));
  // With user and password: the user (an ACL name, not a secret) stays, the password does not.
  const two = await shownStore(t, 'b', `redis://default:An0therSecret@127.0.0.1:${redis.port}/0`);
  assert.ok(!two.includes('An0therSecret'), two);
  assert.match(two, new RegExp(`redis://default:\\*\\*\\*@127\\.0\\.0\\.1:${redis.port}/0`));
});
