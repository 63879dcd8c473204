/**
 * Issue 8, item 7: forwarding headers spoofed by spelling. `X_Forwarded_For`
 * and `X_Real_IP` used to pass through, and servers that fold `_` into `-`
 * (Werkzeug, CGI-style stacks) merged them with the gateway's own. Every
 * header that is a forwarding header once `_` is read as `-` and case is
 * ignored is dropped unless `trust_forwarded` is on.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { fixture, startPython } from '../helpers/python.js';
import { httpUpstream, openWs, startGateway, wsUpstream } from '../helpers/net.js';

/** Spellings a client may use to pose as a proxy. */
const SPOOFS: [string, string][] = [
  ['X_Forwarded_For', '6.6.6.1'],
  ['x_real_ip', '6.6.6.2'],
  ['X-Real_IP', '6.6.6.3'],
  ['X_FORWARDED_HOST', 'evil.example'],
  ['x-forwarded_proto', 'https'],
  ['X_Forwarded_Prefix', '/evil'],
  ['X-Forwarded-Server', 'evil'],
  ['X-Client-IP', '6.6.6.4'],
  ['X_Client_IP', '6.6.6.5'],
  ['True-Client-IP', '6.6.6.6'],
  ['CF-Connecting-IP', '6.6.6.7'],
  ['X-Cluster-Client-IP', '6.6.6.8'],
  ['X-Original-Forwarded-For', '6.6.6.9'],
  ['Forwarded', 'for=6.6.6.10'],
  ['FORWARDED', 'for=6.6.6.11'],
  ['X-Forwarded-For', '6.6.6.12'],
  ['X-Real-IP', '6.6.6.13'],
];

function send(port: number, path: string, extra: [string, string][] = SPOOFS): Promise<{ status: number; body: string }> {
  const headers: string[] = ['Host', `127.0.0.1:${port}`];
  for (const [n, v] of extra) headers.push(n, v);
  return new Promise((ok, fail) => {
    const r = http.request({ host: '127.0.0.1', port, path, headers: headers as unknown as http.OutgoingHttpHeaders, agent: false, setHost: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => ok({ status: res.statusCode ?? 0, body }));
    });
    r.on('error', fail);
    r.end();
  });
}

async function nodeUpstream() {
  return httpUpstream((req, res) => {
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify(req.rawHeaders));
  });
}

test('no spelling of a forwarding header reaches a Node upstream from an untrusted client', async () => {
  const up = await nodeUpstream();
  const g = await startGateway({ apps: [{ name: 'n', port: up.port }] });
  try {
    const r = await send(g.port, '/n/');
    const raw = JSON.parse(r.body) as string[];
    const text = raw.join('\n');
    assert.doesNotMatch(text, /6\.6\.6\.|evil/, text);
    const names = raw.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    assert.equal(names.filter((n) => n === 'x-forwarded-for').length, 1);
    assert.equal(raw[raw.findIndex((v, i) => i % 2 === 0 && v.toLowerCase() === 'x-forwarded-for') + 1], '127.0.0.1');
    for (const n of names) assert.ok(!n.includes('_'), `${n} reached the upstream`);
  } finally {
    await g.close();
    await up.close();
  }
});

test('Werkzeug (Flask) sees only the gateway\'s X-Forwarded-For and no X-Real-IP', async () => {
  const flask = await startPython(fixture('flask_headers.py'));
  const g = await startGateway({ apps: [{ name: 'f', port: flask.port }] });
  try {
    const r = await send(g.port, '/f/');
    assert.equal(r.status, 200, r.body);
    const seen = JSON.parse(r.body) as { environ: Record<string, string>; access_route: string[] };
    assert.equal(seen.environ.HTTP_X_FORWARDED_FOR, '127.0.0.1', JSON.stringify(seen.environ));
    assert.deepEqual(seen.access_route, ['127.0.0.1']);
    assert.equal(seen.environ.HTTP_X_REAL_IP, undefined);
    assert.equal(seen.environ.HTTP_X_FORWARDED_HOST, `127.0.0.1:${g.port}`);
    assert.equal(seen.environ.HTTP_X_FORWARDED_PROTO, 'http');
    assert.equal(seen.environ.HTTP_X_FORWARDED_PREFIX, '/f');
    for (const [k, v] of Object.entries(seen.environ)) assert.doesNotMatch(v, /6\.6\.6\.|evil/, `${k}=${v}`);
  } finally {
    await g.close();
    await flask.stop();
  }
});

test('with trust_forwarded the proxy\'s canonical headers pass, but underscore spellings never do', async () => {
  const up = await nodeUpstream();
  const g = await startGateway({ trust_forwarded: true, apps: [{ name: 'n', port: up.port }] });
  try {
    const r = await send(g.port, '/n/');
    const raw = JSON.parse(r.body) as string[];
    const get = (name: string) => raw.filter((_, i) => i > 0 && raw[i - 1].toLowerCase() === name);
    assert.deepEqual(get('x-forwarded-for'), ['6.6.6.12, 127.0.0.1']);
    assert.deepEqual(get('x-client-ip'), ['6.6.6.4']);
    assert.deepEqual(get('true-client-ip'), ['6.6.6.6']);
    assert.deepEqual(get('x-real-ip'), ['6.6.6.13']);
    for (let i = 0; i < raw.length; i += 2) assert.ok(!raw[i].includes('_'), `${raw[i]} reached the upstream`);
  } finally {
    await g.close();
    await up.close();
  }
});

test('no spelling of a forwarding header reaches the upstream of a WebSocket upgrade', async () => {
  const up = await wsUpstream();
  const g = await startGateway({ apps: [{ name: 'w', port: up.port }] });
  try {
    const ws = await openWs(`${g.wsUrl}/w/`, undefined, { headers: Object.fromEntries(SPOOFS) });
    ws.close();
    const raw = up.handshakes[0].rawHeaders;
    assert.doesNotMatch(raw.join('\n'), /6\.6\.6\.|evil/, raw.join('\n'));
    for (let i = 0; i < raw.length; i += 2) assert.ok(!raw[i].includes('_'), `${raw[i]} reached the upstream`);
  } finally {
    await g.close();
    await up.close();
  }
});
