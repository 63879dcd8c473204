/**
 * Issue 8, new-user item 2: apps that do not know their prefix (noVNC's
 * default WebSocket path, Jupyter without base_url) work at the root of the
 * app's own host name: `{name}.localhost[:PORT]` always, `{name}.{base_domain}`
 * when configured. Nothing is stripped, no prefix is added or rewritten.
 */
import assert from 'node:assert/strict';
import type http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { createGateway } from '../../src/gateway/gateway.js';
import { request } from '../helpers/http.js';
import { httpUpstream, nextMessage, openWs, startGateway, wsUpstream, type TestGateway, type WsUpstream } from '../helpers/net.js';

describe('every app at its own host name', () => {
  let vncPages: Awaited<ReturnType<typeof httpUpstream>> & { seen: http.IncomingMessage[] };
  let other: Awaited<ReturnType<typeof httpUpstream>>;
  let ws: WsUpstream;
  let gw: TestGateway;

  before(async () => {
    const seen: http.IncomingMessage[] = [];
    vncPages = Object.assign(
      await httpUpstream((req, res) => {
        seen.push(req);
        res.writeHead(200, { 'Content-Type': 'text/plain', Location: '/vnc.html', 'Set-Cookie': 'a=1; Path=/' });
        res.end(`vnc ${req.url}`);
      }),
      { seen },
    );
    other = await httpUpstream((req, res) => res.end(`other ${req.url}`));
    ws = await wsUpstream();
    gw = await startGateway({
      base_domain: 'apps.example.net',
      apps: [
        { name: 'vnc', port: vncPages.port, ws_port: ws.port },
        // Takes over jup.localhost on purpose: explicit hosts win over another app's automatic name.
        { name: 'other', port: other.port, hosts: ['jup.localhost', '*.apps.example.net'] },
        { name: 'jup', port: vncPages.port, prefix: '/lab/jupyter' },
      ],
    });
  });
  after(async () => {
    await gw.close();
    await Promise.all([vncPages.close(), other.close(), ws.close()]);
  });

  test('vnc.localhost:PORT/vnc.html reaches the app at its root: nothing stripped, no X-Forwarded-Prefix, Location and cookies untouched', async () => {
    const r = await request(`${gw.url}/vnc.html?autoconnect=1`, { headers: { Host: `vnc.localhost:${gw.port}` } });
    assert.equal(r.status, 200);
    assert.equal(r.text, 'vnc /vnc.html?autoconnect=1');
    assert.equal(r.headers.location, '/vnc.html', 'no prefix added to Location');
    assert.deepEqual(r.headers['set-cookie'], ['a=1; Path=/']);
    const seen = vncPages.seen.at(-1)!;
    assert.equal(seen.headers['x-forwarded-prefix'], undefined);
    assert.equal(seen.headers.host, `vnc.localhost:${gw.port}`, 'the Host the browser used is kept');
    // A path that looks like the prefix is not stripped either.
    assert.equal((await request(`${gw.url}/vnc/x`, { headers: { Host: 'VNC.localhost' } })).text, 'vnc /vnc/x');
  });

  test('the prefix URL still works beside it', async () => {
    assert.equal((await request(`${gw.url}/vnc/vnc.html`)).text, 'vnc /vnc.html');
  });

  test('an upgrade to /websockify at vnc.localhost goes to the app\'s ws_port, at the path the page asked for', async () => {
    const sock = await openWs(`${gw.wsUrl}/websockify`, undefined, { headers: { Host: `vnc.localhost:${gw.port}` }, origin: `http://vnc.localhost:${gw.port}` });
    sock.send('rfb');
    assert.equal((await nextMessage(sock)).data.toString(), 'rfb');
    sock.close();
    assert.equal(ws.handshakes.at(-1)!.url, '/websockify');
  });

  test('{name}.{base_domain} routes like {name}.localhost; the app\'s own automatic name wins over a *.base_domain wildcard', async () => {
    assert.equal((await request(`${gw.url}/a`, { headers: { Host: 'vnc.apps.example.net' } })).text, 'vnc /a');
    assert.equal((await request(`${gw.url}/a`, { headers: { Host: 'zzz.apps.example.net' } })).text, 'other /a', 'no app zzz: the wildcard takes it');
  });

  test('explicit hosts of another app win over the automatic name; the app keeps its prefix and base_domain name', async () => {
    assert.equal((await request(`${gw.url}/x`, { headers: { Host: 'jup.localhost' } })).text, 'other /x');
    assert.equal((await request(`${gw.url}/lab/jupyter/x`)).text, 'vnc /x');
    assert.equal((await request(`${gw.url}/x`, { headers: { Host: 'jup.apps.example.net' } })).text, 'vnc /x');
  });

  test('at an app\'s host name every path is the app\'s, the gateway\'s own paths too', async () => {
    assert.equal((await request(`${gw.url}/_porthole/health`, { headers: { Host: 'vnc.localhost' } })).text, 'vnc /_porthole/health');
    assert.equal((await request(`${gw.url}/webapp`, { headers: { Host: 'vnc.localhost' } })).text, 'vnc /webapp');
    const own = await request(`${gw.url}/_porthole/health`);
    assert.equal(JSON.parse(own.text).status, 'ok');
  });

  test('an explicit host that is an IP address still routes (addresses get no automatic names); a trailing dot is the same name', async () => {
    const g = await startGateway({ apps: [{ name: 'ip', port: other.port, hosts: ['127.0.0.2', 'Dotted.example.'] }] });
    try {
      assert.equal((await request(`${g.url}/page`, { headers: { Host: `127.0.0.2:${g.port}` } })).text, 'other /page');
      assert.equal((await request(`${g.url}/d`, { headers: { Host: 'dotted.example' } })).text, 'other /d');
      assert.equal((await request(`${g.url}/d`, { headers: { Host: `dotted.example.:${g.port}` } })).text, 'other /d');
      assert.equal((await request(`${g.url}/page`)).status, 404, '127.0.0.1 is not that app\'s host');
    } finally {
      await g.close();
    }
  });

  test('a name under .localhost that is no app (or is nested) is the gateway itself', async () => {
    assert.equal((await request(`${gw.url}/vnc/a`, { headers: { Host: 'nothing.localhost' } })).text, 'vnc /a');
    assert.equal((await request(`${gw.url}/vnc/a`, { headers: { Host: 'a.vnc.localhost' } })).text, 'vnc /a', 'only one label before .localhost');
    assert.equal((await request(`${gw.url}/a`, { headers: { Host: 'nothing.localhost' } })).status, 404);
  });

  test('the URLs of each app: prefix on the listen address, {name}.localhost and {name}.{base_domain}', () => {
    assert.deepEqual(gw.gw.appUrls(), {
      vnc: [`http://127.0.0.1:${gw.port}/vnc/`, `http://vnc.localhost:${gw.port}/`, `http://vnc.apps.example.net:${gw.port}/`],
      other: [`http://127.0.0.1:${gw.port}/other/`, `http://other.localhost:${gw.port}/`, `http://other.apps.example.net:${gw.port}/`],
      jup: [`http://127.0.0.1:${gw.port}/lab/jupyter/`, `http://jup.localhost:${gw.port}/`, `http://jup.apps.example.net:${gw.port}/`],
    });
  });
});

test('config errors: a server_names entry that is an app\'s automatic or explicit name, a wildcard or localhost base_domain', () => {
  assert.throws(() => createGateway({ server_names: ['vnc.localhost'], apps: [{ name: 'vnc', port: 1 }] }), /server_names\[0\]: "vnc\.localhost" is app vnc's automatic name/);
  assert.throws(() => createGateway({ base_domain: 'x.test', server_names: ['vnc.x.test'], apps: [{ name: 'vnc', port: 1 }] }), /server_names\[0\]: "vnc\.x\.test" is app vnc's automatic name/);
  assert.throws(() => createGateway({ server_names: ['a.example'], apps: [{ name: 'vnc', port: 1, hosts: ['a.example'] }] }), /server_names\[0\]: "a\.example" is in the hosts of app vnc/);
  assert.throws(() => createGateway({ base_domain: '*.x.test' }), /base_domain: "\*\.x\.test" is not a lowercase domain name/);
  assert.throws(() => createGateway({ base_domain: 'localhost' }), /base_domain: every app already has \{name\}\.localhost/);
  assert.throws(() => createGateway({ base_domain: 'x.test:8080' }), /base_domain/);
  assert.throws(() => createGateway({ ws_errors: 'html' }), /ws_errors: expected one of "ws", "http"/);
  const g = createGateway({ server_names: ['gw.example'], base_domain: 'x.test', apps: [{ name: 'vnc', port: 1 }] });
  assert.deepEqual(g.config.server_names, ['gw.example']);
});

test('a reload announces a new app\'s URLs in an app event (state routed) on a listening gateway', async () => {
  const up = await httpUpstream((req, res) => res.end(`up ${req.url}`));
  const gw = await startGateway({ apps: [{ name: 'a', port: up.port }] });
  const { collect } = await import('../helpers/net.js');
  const events = collect('app');
  try {
    gw.gw.reload({ apps: [{ name: 'a', port: up.port }, { name: 'b', port: up.port }] });
    const routed = events.events.filter((e) => e.state === 'routed');
    assert.deepEqual(routed, [{ app: 'b', state: 'routed', urls: [`http://127.0.0.1:${gw.port}/b/`, `http://b.localhost:${gw.port}/`] }]);
    assert.equal((await request(`${gw.url}/q`, { headers: { Host: `b.localhost:${gw.port}` } })).text, 'up /q');
  } finally {
    events.stop();
    await gw.close();
    await up.close();
  }
});

test('app URLs by listen address: every address and :: show localhost; a LAN-only listener has no .localhost URL; IPv6 in brackets', async () => {
  const { appUrls } = await import('../../src/gateway/app-urls.js');
  const app = { name: 'vnc', port: 1, strip_prefix: true, ws_errors: 'ws', tls_verify: true, autostart: false, restart: 'on-failure' } as const;
  assert.deepEqual(appUrls(app, {}, { host: '0.0.0.0', port: 8080 }), ['http://localhost:8080/vnc/', 'http://vnc.localhost:8080/']);
  assert.deepEqual(appUrls(app, {}, { host: '::', port: 8080 }), ['http://localhost:8080/vnc/', 'http://vnc.localhost:8080/']);
  assert.deepEqual(appUrls(app, {}, { host: '::1', port: 8080 }), ['http://[::1]:8080/vnc/', 'http://vnc.localhost:8080/']);
  assert.deepEqual(appUrls(app, { base_domain: 'x.test' }, { host: '192.0.2.2', port: 80 }), ['http://192.0.2.2:80/vnc/', 'http://vnc.x.test:80/']);
  assert.deepEqual(appUrls({ ...app, prefix: '/api/vnc' }, {}), ['/api/vnc/', 'http://vnc.localhost/'], 'not listening: relative forms');
});
