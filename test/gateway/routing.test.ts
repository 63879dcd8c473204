import assert from 'node:assert/strict';
import type http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { request } from '../helpers/http.js';
import { httpUpstream, startGateway, type TestGateway } from '../helpers/net.js';

type Upstream = Awaited<ReturnType<typeof httpUpstream>>;

/** An upstream that answers `<tag> <path as received>` and remembers the requests. */
async function tagged(tag: string): Promise<Upstream & { seen: http.IncomingMessage[] }> {
  const seen: http.IncomingMessage[] = [];
  const up = await httpUpstream((req, res) => {
    seen.push(req);
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end(`${tag} ${req.url}`);
  });
  return Object.assign(up, { seen });
}

describe('routing', () => {
  let one: Awaited<ReturnType<typeof tagged>>;
  let two: Awaited<ReturnType<typeof tagged>>;
  let full: Awaited<ReturnType<typeof tagged>>;
  let vnc: Awaited<ReturnType<typeof tagged>>;
  let api: Awaited<ReturnType<typeof tagged>>;
  let wild: Awaited<ReturnType<typeof tagged>>;
  let gw: TestGateway;

  before(async () => {
    [one, two, full, vnc, api, wild] = await Promise.all(['one', 'two', 'full', 'vnc', 'api', 'wild'].map(tagged));
    gw = await startGateway({
      // Names the gateway answers under (not apps): on loopback any other name is refused with 421 before routing.
      server_names: ['example.test', 'evilexample.test'],
      apps: [
        { name: 'secret-app-one', port: one.port },
        { name: 'hosted', port: two.port, hosts: ['hosted.example.test'] },
        { name: 'wild', port: wild.port, hosts: ['*.example.test'] },
        { name: 'full', port: full.port, strip_prefix: false },
        { name: 'api', port: api.port },
        { name: 'vnc', port: vnc.port, prefix: '/api/vnc' },
      ],
    });
  });
  after(async () => {
    await gw.close();
    await Promise.all([one, two, full, vnc, api, wild].map((u) => u.close()));
  });

  test('/{app} redirects 301 to /{app}/ and keeps the query', async () => {
    const r = await request(`${gw.url}/secret-app-one?a=1&b=two`);
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, '/secret-app-one/?a=1&b=two');
    const bare = await request(`${gw.url}/secret-app-one`);
    assert.equal(bare.status, 301);
    assert.equal(bare.headers.location, '/secret-app-one/');
    assert.equal(one.seen.length, 0, 'the redirect is answered by the gateway, not the app');
  });

  test('/{app}/path reaches the app with the prefix stripped and the query kept', async () => {
    const r = await request(`${gw.url}/secret-app-one/a/b?x=1`);
    assert.equal(r.status, 200);
    assert.equal(r.text, 'one /a/b?x=1');
    const root = await request(`${gw.url}/secret-app-one/`);
    assert.equal(root.text, 'one /');
  });

  test('a path that only starts like a prefix is not routed to that app', async () => {
    const r = await request(`${gw.url}/secret-app-onex/`);
    assert.equal(r.status, 404);
  });

  test('an unknown path gets a 404 HTML page that does not list the configured apps', async () => {
    const r = await request(`${gw.url}/nope/x?y=1`, { headers: { Accept: 'text/html' } });
    assert.equal(r.status, 404);
    assert.match(String(r.headers['content-type']), /^text\/html/);
    assert.equal(r.headers['x-porthole-error'], 'PH_ERR_NOT_FOUND');
    assert.match(r.text, /<html/);
    assert.match(r.text, /\/nope\/x/);
    for (const name of ['secret-app-one', 'hosted', 'wild', 'full', 'vnc', 'api']) {
      assert.ok(!r.text.includes(name), `the 404 page reveals the app name ${name}`);
    }
  });

  test('a path with markup is escaped on the 404 page', async () => {
    const r = await request(`${gw.url}/%3Cscript%3E<b>x</b>`);
    assert.equal(r.status, 404);
    assert.ok(!r.text.includes('<b>x</b>'), 'request path reflected unescaped');
  });

  test('an unknown path gets a JSON 404 when the client asks for JSON', async () => {
    const r = await request(`${gw.url}/nope`, { headers: { Accept: 'application/json' } });
    assert.equal(r.status, 404);
    assert.match(String(r.headers['content-type']), /^application\/json/);
    const body = JSON.parse(r.text);
    assert.equal(body.error.code, 'PH_ERR_NOT_FOUND');
    assert.equal(body.error.status, 404);
    assert.equal(typeof body.error.message, 'string');
    assert.ok(!r.text.includes('secret-app-one'));
  });

  test('/_porthole/health answers 200 JSON with the number of apps', async () => {
    const r = await request(`${gw.url}/_porthole/health`);
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^application\/json/);
    const body = JSON.parse(r.text);
    assert.equal(body.status, 'ok');
    assert.equal(body.apps, 6);
    const q = await request(`${gw.url}/_porthole/health?probe=1`);
    assert.equal(q.status, 200);
  });

  test('hosts: [name] routes by Host header without stripping any prefix', async () => {
    const r = await request(`${gw.url}/hosted/page?q=1`, { headers: { Host: 'hosted.example.test' } });
    assert.equal(r.status, 200);
    assert.equal(r.text, 'two /hosted/page?q=1');
    const withPort = await request(`${gw.url}/x`, { headers: { Host: `HOSTED.example.test:${gw.port}` } });
    assert.equal(withPort.text, 'two /x', 'host match ignores case and the port');
    const req = two.seen.at(-1)!;
    assert.equal(req.headers['x-forwarded-prefix'], undefined, 'no prefix when routed by host');
  });

  test('a host-routed app is still reachable under its prefix', async () => {
    const r = await request(`${gw.url}/hosted/y`);
    assert.equal(r.text, 'two /y');
  });

  test('a *.example.test wildcard matches sub-domains, an exact host wins over it', async () => {
    const sub = await request(`${gw.url}/z`, { headers: { Host: 'a.b.example.test' } });
    assert.equal(sub.text, 'wild /z');
    const exact = await request(`${gw.url}/z`, { headers: { Host: 'hosted.example.test' } });
    assert.equal(exact.text, 'two /z');
    const apex = await request(`${gw.url}/z`, { headers: { Host: 'example.test' } });
    assert.equal(apex.status, 404, 'the wildcard does not match the apex domain');
    const lookalike = await request(`${gw.url}/z`, { headers: { Host: 'evilexample.test' } });
    assert.equal(lookalike.status, 404);
  });

  test('strip_prefix: false sends the full path', async () => {
    const r = await request(`${gw.url}/full/a/b?c=d`);
    assert.equal(r.text, 'full /full/a/b?c=d');
    assert.equal(full.seen.at(-1)!.headers['x-forwarded-prefix'], '/full');
  });

  test('prefix: /api/vnc mounts an app at a custom path', async () => {
    const r = await request(`${gw.url}/api/vnc/vnc.html?autoconnect=1`);
    assert.equal(r.text, 'vnc /vnc.html?autoconnect=1');
    assert.equal(vnc.seen.at(-1)!.headers['x-forwarded-prefix'], '/api/vnc');
    const redirect = await request(`${gw.url}/api/vnc`);
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.location, '/api/vnc/');
    const byName = await request(`${gw.url}/vnc/`);
    assert.equal(byName.status, 404, 'an app with a custom prefix is not also mounted at /{name}');
  });

  test('the longest prefix wins: /api/vnc/… goes to vnc, /api/… to api', async () => {
    assert.equal((await request(`${gw.url}/api/vnc/x`)).text, 'vnc /x');
    assert.equal((await request(`${gw.url}/api/vncx`)).text, 'api /vncx');
    assert.equal((await request(`${gw.url}/api/other`)).text, 'api /other');
  });

  test('a reload swaps the routes: a removed app is 404, a new one answers', async () => {
    const g = await startGateway({ apps: [{ name: 'a', port: one.port }] });
    try {
      assert.equal((await request(`${g.url}/a/`)).text, 'one /');
      g.gw.reload({ apps: [{ name: 'b', port: two.port }] });
      assert.equal((await request(`${g.url}/a/`)).status, 404);
      assert.equal((await request(`${g.url}/b/`)).text, 'two /');
      assert.throws(() => g.gw.reload({ apps: [{ name: 'c' }] }), /needs one of port, url or socket/);
      assert.equal((await request(`${g.url}/b/`)).text, 'two /', 'a rejected config leaves the old one in force');
    } finally {
      await g.close();
    }
  });
});

test('a POST to /{app} is redirected with 308, which keeps the method and body', async () => {
  const g = await startGateway({ apps: [{ name: 'app', port: 9 }] });
  try {
    const res = await fetch(`${g.url}/app?x=1`, { method: 'POST', body: 'data', redirect: 'manual' });
    assert.equal(res.status, 308);
    assert.equal(res.headers.get('location'), '/app/?x=1');
  } finally {
    await g.close();
  }
});
