/**
 * Issue 8, security item 10: a page on evil.example whose name is rebound to
 * 127.0.0.1 sends `Host: evil.example:PORT` with a matching Origin, so the
 * same-origin check passes. On a loopback listener such a Host is refused
 * with 421 (PH_ERR_HOST_REFUSED, close 1008 for upgrades) before any app, the
 * health path or the 404 page answers; loopback names, the machine's
 * addresses, app hosts, automatic `{app}.localhost` names and `server_names`
 * pass. On other addresses `server_names`, when set, restricts Host the same way.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { after, before, describe, test } from 'node:test';
import { createGateway } from '../../src/gateway/gateway.js';
import { request } from '../helpers/http.js';
import { closeServer, collect, httpUpstream, nextMessage, openWs, rawRequest, startGateway, wsCloseOf, wsUpstream, type TestGateway, type WsUpstream } from '../helpers/net.js';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

function upgradeText(path: string, host: string, extra = ''): string {
  return `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;
}

/** The close frame the gateway sent after its 101, read from raw bytes. */
function closeOf(raw: string): { code: number; reason: string } | null {
  const at = raw.indexOf('\r\n\r\n');
  if (!raw.startsWith('HTTP/1.1 101') || at === -1) return null;
  const frame = Buffer.from(raw.slice(at + 4), 'latin1');
  if (frame[0] !== 0x88) return null;
  const len = frame[1] & 0x7f;
  return { code: frame.readUInt16BE(2), reason: frame.subarray(4, 2 + len).toString('utf8') };
}

/** A non-loopback IPv4 address of this machine, if it has one. */
function lanAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return undefined;
}

describe('DNS rebinding: Host on a loopback listener', () => {
  let up: WsUpstream;
  let gw: TestGateway;
  let hits = 0;

  before(async () => {
    up = await wsUpstream({}, (ws) => {
      hits++;
      ws.on('message', (d, b) => ws.send(d, { binary: b }));
    });
    up.server.prependListener('request', () => hits++);
    gw = await startGateway({
      server_names: ['agent.ngrok-free.app', '*.tunnel.example'],
      apps: [
        { name: 'vnc', port: up.port },
        { name: 'named', port: up.port, hosts: ['named.example.org'] },
        { name: 'strict', port: up.port, ws_errors: 'http' },
      ],
    });
  });
  after(async () => {
    await gw.close();
    await up.close();
  });

  test('a request with Host evil.example:PORT and a matching Origin is refused with 421 before it reaches the app', async () => {
    const before = hits;
    const events = collect('request', gw.gw.id);
    try {
      const r = await request(`${gw.url}/vnc/`, { headers: { Host: `evil.example:${gw.port}`, Origin: `http://evil.example:${gw.port}`, Accept: 'application/json' } });
      assert.equal(r.status, 421);
      assert.equal(r.headers['x-porthole-error'], 'PH_ERR_HOST_REFUSED');
      const body = JSON.parse(r.text);
      assert.equal(body.error.code, 'PH_ERR_HOST_REFUSED');
      assert.match(body.error.message, /server_names/);
      assert.match(body.error.message, /evil\.example/);
      assert.equal(hits, before, 'the app saw nothing');
      assert.equal(events.events.at(-1)?.code, 'PH_ERR_HOST_REFUSED');
      assert.equal(events.events.at(-1)?.status, 421);
    } finally {
      events.stop();
    }
  });

  test('the health path, the 404 page and a POST are refused under a rebinding Host too', async () => {
    for (const path of ['/_porthole/health', '/nothing/here', '/vnc/x', '/vnc']) {
      const r = await request(`${gw.url}${path}`, { method: path === '/vnc/x' ? 'POST' : 'GET', body: path === '/vnc/x' ? 'data' : undefined, headers: { Host: 'rebind.attacker.test' } });
      assert.equal(r.status, 421, path);
      assert.equal(r.headers['x-porthole-error'], 'PH_ERR_HOST_REFUSED', path);
    }
  });

  test('an upgrade with Host evil.example:PORT and a matching Origin gets a completed handshake and close 1008 naming server_names', async () => {
    const before = hits;
    const close = await wsCloseOf(`${gw.wsUrl}/vnc/ws`, undefined, { headers: { Host: `evil.example:${gw.port}` }, origin: `http://evil.example:${gw.port}` });
    assert.equal(close.code, 1008);
    assert.match(close.reason, /PH_ERR_HOST_REFUSED/);
    assert.match(close.reason, /server_names/);
    assert.ok(Buffer.byteLength(close.reason) <= 123);
    assert.equal(hits, before, 'the app saw no handshake');
  });

  test('an upgrade to an app with ws_errors: http gets a plain 421', async () => {
    const raw = await rawRequest(gw.port, upgradeText('/strict/ws', `evil.example:${gw.port}`, `Origin: http://evil.example:${gw.port}\r\n`));
    assert.match(raw, /^HTTP\/1\.1 421 /);
    assert.match(raw, /X-Porthole-Error: PH_ERR_HOST_REFUSED/i);
  });

  test('a rebinding Host with a very long name still gets a close reason of at most 123 bytes', async () => {
    const long = `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.example`;
    const raw = await rawRequest(gw.port, upgradeText("/vnc/ws", long), 500);
    const close = closeOf(raw);
    assert.ok(close, raw.slice(0, 200));
    assert.equal(close.code, 1008);
    assert.ok(Buffer.byteLength(close.reason) <= 123, close.reason);
    assert.match(close.reason, /PH_ERR_HOST_REFUSED/);
  });

  test('loopback names, the machine\'s addresses and no Host at all pass', async () => {
    const hosts = ['localhost', `localhost:${gw.port}`, 'LOCALHOST', 'localhost.', `127.0.0.1:${gw.port}`, '127.9.8.7', `[::1]:${gw.port}`, 'anything.localhost', `vnc.localhost:${gw.port}`, `${hostname()}:${gw.port}`];
    const lan = lanAddress();
    if (lan) hosts.push(`${lan}:${gw.port}`);
    for (const host of hosts) {
      const r = await request(`${gw.url}/vnc/ok`, { headers: { Host: host } });
      assert.equal(r.status, 200, `Host: ${host} → ${r.status} ${r.text}`);
    }
    // HTTP/1.0 without Host cannot come from a browser.
    const raw = await rawRequest(gw.port, 'GET /vnc/ok HTTP/1.0\r\n\r\n');
    assert.match(raw, /^HTTP\/1\.1 200 /);
  });

  test('an app\'s hosts and the names in server_names (exact and wildcard) pass; a lookalike does not', async () => {
    assert.equal((await request(`${gw.url}/vnc/a`, { headers: { Host: 'named.example.org' } })).status, 200);
    const ngrok = await request(`${gw.url}/vnc/a`, { headers: { Host: 'agent.ngrok-free.app', Origin: 'https://agent.ngrok-free.app' } });
    assert.equal(ngrok.status, 200);
    assert.equal(ngrok.text, 'http-ok /a');
    assert.equal((await request(`${gw.url}/vnc/a`, { headers: { Host: 'x.tunnel.example:443' } })).status, 200);
    assert.equal((await request(`${gw.url}/vnc/a`, { headers: { Host: 'tunnel.example' } })).status, 421, 'a wildcard does not match its apex');
    assert.equal((await request(`${gw.url}/vnc/a`, { headers: { Host: 'agent.ngrok-free.app.evil.test' } })).status, 421);
    const ws = await openWs(`${gw.wsUrl}/vnc/ws`, undefined, { headers: { Host: 'agent.ngrok-free.app' }, origin: 'http://agent.ngrok-free.app' });
    ws.send('through the tunnel name');
    assert.equal((await nextMessage(ws)).data.toString(), 'through the tunnel name');
    ws.close();
  });

  test('spellings of a rebinding name are refused too: upper case, a trailing dot, lookalikes of loopback names', async () => {
    for (const host of ['EVIL.EXAMPLE', 'evil.example.', `evil.example.:${gw.port}`, 'localhost.evil.example', 'evil-localhost', '127.0.0.1.nip.io', '0x7f.1', '2130706433', 'localhostx']) {
      const r = await request(`${gw.url}/vnc/`, { headers: { Host: host } });
      assert.equal(r.status, 421, `Host: ${host}`);
    }
  });

  test('a pipelined request under a rebinding name after an allowed one is refused, and the connection closed', async () => {
    const raw = await rawRequest(gw.port, `GET /vnc/a HTTP/1.1\r\nHost: localhost\r\n\r\nGET /vnc/b HTTP/1.1\r\nHost: evil.example\r\n\r\nGET /vnc/c HTTP/1.1\r\nHost: localhost\r\n\r\n`);
    const statuses = [...raw.matchAll(/^HTTP\/1\.1 (\d+)/gm)].map((m) => Number(m[1]));
    assert.deepEqual(statuses, [200, 421]);
    assert.ok(!raw.includes('http-ok /c'), 'nothing after the refusal is read as a request');
  });

  test('a Host that is not host[:port] is answered 400 PH_ERR_BAD_HOST', async () => {
    for (const host of [`127.0.0.1:${gw.port}@evil.com`, 'localhost:80x', 'local host', 'localhost:99999', '[::1', 'a/b', 'user@localhost', 'localhost:+80', '%6cocalhost']) {
      const raw = await rawRequest(gw.port, `GET /vnc/ HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      assert.match(raw, /^HTTP\/1\.1 400 /, `Host: ${host}\n${raw.slice(0, 300)}`);
      assert.match(raw, /X-Porthole-Error: PH_ERR_BAD_HOST/i, `Host: ${host}`);
    }
  });
});

test('the ngrok-style name is refused until it is listed in server_names, then passes (reload)', async () => {
  const up = await httpUpstream((_req, res) => res.end('ok'));
  const gw = await startGateway({ apps: [{ name: 'app', port: up.port }] });
  try {
    const host = 'abc-123.ngrok-free.app';
    const refused = await request(`${gw.url}/app/`, { headers: { Host: host } });
    assert.equal(refused.status, 421);
    assert.match(refused.text, /server_names/);
    gw.gw.reload({ server_names: [host], apps: [{ name: 'app', port: up.port }] });
    const ok = await request(`${gw.url}/app/`, { headers: { Host: host } });
    assert.equal(ok.status, 200);
    assert.equal(ok.text, 'ok');
  } finally {
    await gw.close();
    await up.close();
  }
});

test('as a library in another server: handleRequest and handleUpgrade refuse a rebinding Host by the socket\'s local address; other paths fall through untouched', async () => {
  const up = await wsUpstream();
  const gateway = createGateway({ apps: [{ name: 'app', port: up.port }] });
  const server = http.createServer((req, res) => {
    if (gateway.handleRequest(req, res)) return;
    res.end('mine');
  });
  server.on('upgrade', (req, socket, head) => {
    if (gateway.handleUpgrade(req, socket, head)) return;
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as net.AddressInfo).port;
  try {
    const r = await request(`http://127.0.0.1:${port}/app/`, { headers: { Host: `evil.example:${port}` } });
    assert.equal(r.status, 421);
    const mine = await request(`http://127.0.0.1:${port}/other`, { headers: { Host: `evil.example:${port}` } });
    assert.equal(mine.text, 'mine', 'a path the gateway does not own is left to the host server');
    const close = await wsCloseOf(`ws://127.0.0.1:${port}/app/ws`, undefined, { headers: { Host: `evil.example:${port}` }, origin: `http://evil.example:${port}` });
    assert.equal(close.code, 1008);
    assert.match(close.reason, /server_names/);
    assert.equal(up.handshakes.length, 0);
  } finally {
    await closeServer(server);
    await gateway.drain(100);
    await up.close();
  }
});

test('on a non-loopback address (decided by the socket\'s local address), any Host passes without server_names, and only the names the gateway knows with it', () => {
  // Tests listen only on loopback, so the policy is asked directly with the local address a LAN listener would see.
  const open = createGateway({ apps: [{ name: 'app', port: 9 }] });
  const listed = createGateway({ server_names: ['gw.example.com'], base_domain: 'apps.example.net', apps: [{ name: 'app', port: 9, hosts: ['app.example.org'] }] });
  const lan = lanAddress() ?? '192.0.2.2';
  assert.equal(open.checkHost('whatever.example', lan), null);
  assert.equal(open.checkHost('whatever.example', '127.0.0.1')?.code, 'PH_ERR_HOST_REFUSED');
  assert.equal(open.checkHost('whatever.example', '::ffff:127.0.0.1')?.code, 'PH_ERR_HOST_REFUSED', 'an IPv4-mapped loopback address is loopback');
  assert.equal(open.checkHost('whatever.example', '::1')?.code, 'PH_ERR_HOST_REFUSED');
  assert.equal(listed.checkHost('whatever.example', lan)?.code, 'PH_ERR_HOST_REFUSED');
  assert.equal(listed.checkHost('whatever.example', lan)?.status, 421);
  for (const ok of ['gw.example.com', 'GW.example.com:8443', 'localhost', 'app.example.org', 'app.apps.example.net', '127.0.0.1:80']) assert.equal(listed.checkHost(ok, lan), null, ok);
  assert.equal(listed.checkHost('nope.apps.example.net', lan)?.code, 'PH_ERR_HOST_REFUSED', 'only app names under base_domain');
  assert.equal(listed.checkHost('x@gw.example.com', lan)?.code, 'PH_ERR_BAD_HOST', 'a malformed Host is refused on every listener');
  assert.equal(open.checkHost('x@gw.example.com', lan)?.status, 400);
});

test('the local address comes from the connection\'s server when it listens on one address, and from the socket when it listens on all', () => {
  const open = createGateway({ apps: [{ name: 'app', port: 9 }] });
  const lan = lanAddress() ?? '192.0.2.2';
  // What a socket accepted by a Node server carries: its local address, and `server`.
  const accepted = (local: string, bound: string) => ({ localAddress: local, server: { address: () => ({ address: bound, family: 'IPv4', port: 80 }) } });
  // One address: the server's answers (the same for every connection it accepts), and the
  // socket is not asked (here its address would say loopback, which cannot happen for real).
  assert.equal(open.checkHost('whatever.example', accepted(lan, lan)), null);
  assert.equal(open.checkHost('whatever.example', accepted('127.0.0.1', lan)), null);
  assert.equal(open.checkHost('whatever.example', accepted('127.0.0.1', '127.0.0.1'))?.code, 'PH_ERR_HOST_REFUSED');
  // All addresses (0.0.0.0, ::): the socket's own address decides, connection by connection.
  assert.equal(open.checkHost('whatever.example', accepted('127.0.0.1', '0.0.0.0'))?.code, 'PH_ERR_HOST_REFUSED', 'loopback through a wildcard listener');
  assert.equal(open.checkHost('whatever.example', accepted(lan, '0.0.0.0')), null);
  assert.equal(open.checkHost('whatever.example', accepted('::1', '::'))?.code, 'PH_ERR_HOST_REFUSED');
  // A server not listening (no address): the socket answers.
  const unbound = { localAddress: '127.0.0.1', server: { address: () => null } };
  assert.equal(open.checkHost('whatever.example', unbound)?.code, 'PH_ERR_HOST_REFUSED');
});
