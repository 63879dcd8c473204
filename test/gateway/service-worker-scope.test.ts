/**
 * An app behind a prefix shares the gateway's origin with every other app
 * and the dashboard. A service worker it registers with a wider scope (the
 * app sends `Service-Worker-Allowed: /`) would see all their pages, so the
 * gateway lets only a scope under the app's prefix through.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from '../helpers/http.js';
import { httpUpstream, startGateway } from '../helpers/net.js';

test('Service-Worker-Allowed from a prefixed app: kept (and moved under the prefix) when inside it, dropped when wider', async (t) => {
  const up = await httpUpstream((req, res) => {
    res.setHeader('Service-Worker-Allowed', decodeURIComponent(new URL(req.url!, 'http://x').searchParams.get('scope') ?? '/'));
    res.end('sw');
  });
  t.after(() => up.close());
  const gw = await startGateway({
    apps: [
      { name: 'strip', port: up.port },
      { name: 'keep', port: up.port, strip_prefix: false },
      { name: 'own', port: up.port, hosts: ['own.example'] },
    ],
  });
  t.after(() => gw.close());
  const scope = async (path: string, host?: string) => (await request(`${gw.url}${path}`, host ? { headers: { Host: host } } : {})).headers['service-worker-allowed'];
  // The app thinks its root is `/`: that is its prefix here.
  assert.equal(await scope('/strip/sw.js?scope=/'), '/strip/');
  assert.equal(await scope('/strip/sw.js?scope=/sub/'), '/strip/sub/');
  // An app that knows its prefix: its own subtree passes, the origin's root or a neighbour does not.
  assert.equal(await scope('/keep/sw.js?scope=/keep/'), '/keep/');
  assert.equal(await scope('/keep/sw.js?scope=/'), undefined);
  assert.equal(await scope('/keep/sw.js?scope=/_porthole/'), undefined);
  assert.equal(await scope('/keep/sw.js?scope=/keep/../'), undefined);
  assert.equal(await scope('/keep/sw.js?scope=/keeper/'), undefined);
  assert.equal(await scope(`/keep/sw.js?scope=${encodeURIComponent('http://127.0.0.1/')}`), undefined);
  // At its own host name the app owns the whole origin.
  assert.equal(await scope('/sw.js?scope=/', `own.example:${gw.port}`), '/');
});
