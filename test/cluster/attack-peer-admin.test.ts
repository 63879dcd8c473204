/**
 * Attacks on the peer listener's admin powers from outside the cluster.
 *
 * The peer listener answers `/_porthole/` with the admin API, without a token,
 * for whoever carries the cluster secret (the nodes' calls to each other). A
 * client's request that node A forwards to node B carries A's secret too: it
 * must never reach B's admin API, whatever Host and path the client chose.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startRedis } from '../helpers/redis.js';
import { startNode, until } from './helpers.js';

/** A request with a Host of the client's choosing (fetch does not let one set Host). */
function raw(url: string, method: string, path: string, host: string, body?: string, extra: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  const u = new URL(url);
  return new Promise((ok, fail) => {
    const req = http.request({ host: u.hostname, port: u.port, method, path, headers: { host, ...extra, ...(body ? { 'content-type': 'application/json' } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => ok({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', fail);
    req.end(body);
  });
}

test('a client of node A cannot reach node B’s admin API through an app host name that B does not route', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  // A is the edge with a wildcard domain; B (an inner node) has none: each node has its own porthole.yaml.
  const a = await startNode(t, 'a', redis.url, { base_domain: 'apps.test' });
  const b = await startNode(t, 'b', redis.url);
  await until('a sees b', async () => ((await a.api('GET', '/cluster')).body.cluster.nodes.length === 2 ? true : undefined));
  const put = await a.api('PUT', '/apps/web', { port: 9, node: 'b' });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  await until('b has web', async () => ((await b.api('GET', '/apps/web')).status === 200 ? true : undefined));

  // No token: A routes web.apps.test to app web on B; B does not know that name.
  const list = await raw(a.url, 'GET', '/_porthole/api/apps', 'web.apps.test');
  assert.doesNotMatch(list.text, /"ok":true/, `B answered its admin API to a client without a token: ${list.status} ${list.text.slice(0, 200)}`);
  const pwn = await raw(a.url, 'PUT', '/_porthole/api/apps/pwn', 'web.apps.test', JSON.stringify({ cmd: 'sleep 1000', node: 'b' }));
  assert.doesNotMatch(pwn.text, /"ok":true/, `a client registered an app with a cmd through B's peer listener: ${pwn.status} ${pwn.text.slice(0, 200)}`);
  // Nor with the header the nodes' own admin calls carry, in any spelling: a client's copy never passes a node.
  for (const name of ['X-Porthole-Registry-Version', 'X_Porthole_Registry_Version']) {
    const forged = await raw(a.url, 'PUT', '/_porthole/api/apps/pwn', 'web.apps.test', JSON.stringify({ cmd: 'sleep 1000', node: 'b' }), { [name]: '0' });
    assert.doesNotMatch(forged.text, /"ok":true/, `${name}: ${forged.status} ${forged.text.slice(0, 200)}`);
  }
  assert.equal((await a.api('GET', '/apps/pwn')).status, 404);
  // The nodes' own calls still work: a stop of B's app through A is carried out by B.
  const echo = await a.api('PUT', '/apps/sleeper', { cmd: 'sleep 1000', node: 'b' });
  assert.equal(echo.status, 200, JSON.stringify(echo.body));
  const stop = await a.api('POST', '/apps/sleeper/stop');
  assert.equal(stop.status, 200, JSON.stringify(stop.body));
  assert.equal(stop.body.app.node, 'b');
});
