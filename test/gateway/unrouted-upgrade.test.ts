/**
 * Issue 8, new-user item 1: an upgrade to a path no app owns got a plain 404,
 * which a browser reports as a bare 1006 — against the documented table (docs/errors.md)
 * (PH_ERR_NOT_FOUND → close 1008). noVNC's vnc.html served under /vnc/ dials
 * /websockify at the root and failed this way. Now the handshake is
 * completed and closed with 1008 and a reason (at most 123 bytes) that names
 * the path and where the app is; `ws_errors: http` (global) keeps the 404.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { collect, httpUpstream, rawRequest, startGateway, wsCloseOf, wsUpstream, type TestGateway } from '../helpers/net.js';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const upgrade = (path: string, host: string) =>
  `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`;

describe('an upgrade to a path no app owns', () => {
  let pages: Awaited<ReturnType<typeof httpUpstream>>;
  let ws: Awaited<ReturnType<typeof wsUpstream>>;
  let vnc: TestGateway;
  let term: TestGateway;
  let two: TestGateway;

  before(async () => {
    pages = await httpUpstream((_req, res) => res.end('page'));
    ws = await wsUpstream();
    // noVNC's usual setup: pages from port, websockify on ws_port.
    vnc = await startGateway({ base_domain: 'apps.example.net', apps: [{ name: 'vnc', port: pages.port, ws_port: ws.port }] });
    term = await startGateway({ apps: [{ name: 'files', port: pages.port }, { name: 'term', port: ws.port, ws_paths: ['/ws'] }] });
    two = await startGateway({ apps: [{ name: 'a', port: pages.port }, { name: 'b', port: pages.port }] });
  });
  after(async () => {
    await Promise.all([vnc.close(), term.close(), two.close()]);
    await Promise.all([pages.close(), ws.close()]);
  });

  test("/websockify at the root: 101, then close 1008 naming the path, the app's host name and path=vnc/websockify", async () => {
    const events = collect('upgrade', vnc.gw.id);
    try {
      const close = await wsCloseOf(`${vnc.wsUrl}/websockify`);
      assert.equal(close.opened, true, 'the handshake was completed, so a browser can read the close');
      assert.equal(close.code, 1008);
      assert.equal(close.reason, `no app at /websockify; page under /vnc/? open http://vnc.localhost:${vnc.port}/ or use path=vnc/websockify`);
      assert.ok(Buffer.byteLength(close.reason) <= 123);
      const e = events.events.at(-1)!;
      assert.equal(e.code, 'PH_ERR_NOT_FOUND');
      assert.equal(e.closeCode, 1008);
      assert.equal(e.status, 101);
      assert.equal(e.accepted, false);
      assert.equal(ws.handshakes.length, 0, 'nothing reached websockify');
    } finally {
      events.stop();
    }
  });

  test('under a base_domain name the hint names {app}.{base_domain}', async () => {
    const close = await wsCloseOf(`${vnc.wsUrl}/websockify`, undefined, { headers: { Host: `apps.example.net:${vnc.port}` } });
    assert.equal(close.code, 1008);
    assert.match(close.reason, new RegExp(`open http://vnc\\.apps\\.example\\.net:${vnc.port}/`));
  });

  test("a path whose last segment is an app's ws_paths entry points at that app", async () => {
    const close = await wsCloseOf(`${term.wsUrl}/ws`);
    assert.equal(close.code, 1008);
    assert.equal(close.reason, `no app at /ws; page under /term/? open http://term.localhost:${term.port}/ or use /term/ws`);
    const nested = await wsCloseOf(`${term.wsUrl}/deep/er/ws?x=1`);
    assert.match(nested.reason, /^no app at \/deep\/er\/ws; .*open http:\/\/term\.localhost:\d+\/ or use \/term\/deep\/er\/ws$/);
  });

  test('with no likely app the reason still names the path and the two ways apps are reached', async () => {
    const close = await wsCloseOf(`${two.wsUrl}/socket.io/?EIO=4`);
    assert.equal(close.code, 1008);
    assert.equal(close.reason, 'no app at /socket.io/: WebSocket URLs start with /{app}/, or use http://{app}.localhost/');
  });

  test('/vnc without the slash: closed 1008 naming /vnc/, since browsers do not follow redirects on a handshake', async () => {
    const close = await wsCloseOf(`${vnc.wsUrl}/vnc`);
    assert.equal(close.code, 1008);
    assert.match(close.reason, /start with \/vnc\//);
  });

  test('a long path and a 63-character app name keep the reason within 123 bytes and valid UTF-8', async () => {
    const name = `v${'x'.repeat(62)}`;
    const g = await startGateway({ apps: [{ name, port: pages.port, ws_paths: ['/websockify'] }] });
    try {
      for (const path of ['/websockify', `/${'é'.repeat(80)}/websockify`, `/${'p'.repeat(300)}`]) {
        const close = await wsCloseOf(`${g.wsUrl}${path}`);
        assert.equal(close.code, 1008);
        assert.ok(Buffer.byteLength(close.reason) <= 123, `${Buffer.byteLength(close.reason)} bytes: ${close.reason}`);
        assert.ok(!close.reason.includes('\uFFFD'), close.reason);
        assert.match(close.reason, /^no app at \//);
      }
    } finally {
      await g.close();
    }
  });

  test('global ws_errors: http keeps the plain 404 with PH_ERR_NOT_FOUND', async () => {
    const g = await startGateway({ ws_errors: 'http', apps: [{ name: 'vnc', port: pages.port, ws_port: ws.port }] });
    try {
      const raw = await rawRequest(g.port, upgrade('/websockify', `127.0.0.1:${g.port}`));
      assert.match(raw, /^HTTP\/1\.1 404 /);
      assert.match(raw, /X-Porthole-Error: PH_ERR_NOT_FOUND/);
      assert.match(raw, /vnc\.localhost/, 'the page says where the app is too');
    } finally {
      await g.close();
    }
  });

  test('a malformed handshake to an unknown path still gets a 404 (nothing to complete)', async () => {
    const raw = await rawRequest(vnc.port, `GET /websockify HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`);
    assert.match(raw, /^HTTP\/1\.1 404 /);
  });
});

test('/websockify with several plain apps points at the one named like vnc (noVNC served by websockify --web on one port)', async () => {
  const pages = await httpUpstream((_req, res) => res.end('page'));
  const g = await startGateway({ apps: [{ name: 'jup', port: pages.port }, { name: 'novnc', port: pages.port }, { name: 'echo', port: pages.port }] });
  try {
    const close = await wsCloseOf(`${g.wsUrl}/websockify`);
    assert.equal(close.reason, `no app at /websockify; page under /novnc/? open http://novnc.localhost:${g.port}/ or use path=novnc/websockify`);
    const other = await wsCloseOf(`${g.wsUrl}/ws`);
    assert.match(other.reason, /^no app at \/ws: WebSocket URLs start with/, 'no guess for other paths');
  } finally {
    await g.close();
    await pages.close();
  }
});

test('the only app with a bridge is the hint for an unknown path; a rebinding Host gets the Host refusal, never the hint', async () => {
  const pages = await httpUpstream((_req, res) => res.end('page'));
  const g = await startGateway({ apps: [{ name: 'files', port: pages.port }, { name: 'desk', bridge: '127.0.0.1:5999' }, { name: 'notes', port: pages.port }] });
  try {
    const close = await wsCloseOf(`${g.wsUrl}/socket`);
    assert.equal(close.reason, `no app at /socket; page under /desk/? open http://desk.localhost:${g.port}/ or use path=desk/socket`);
    const evil = await wsCloseOf(`${g.wsUrl}/socket`, undefined, { headers: { Host: `evil.example:${g.port}` } });
    assert.equal(evil.code, 1008);
    assert.match(evil.reason, /^PH_ERR_HOST_REFUSED: /);
    assert.ok(!evil.reason.includes('desk'), 'no app name for a page on a foreign name');
  } finally {
    await g.close();
    await pages.close();
  }
});
