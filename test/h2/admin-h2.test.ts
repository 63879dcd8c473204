/**
 * Issue 10, section 2: `porthole serve` with `tls: internal` answers its
 * admin API and dashboard over HTTP/2 as over HTTP/1.1: an app registered
 * with a JSON body over h2 is routed, the login link sets a `Secure`
 * session cookie and the dashboard page loads with it, and the live event
 * stream (Server-Sent Events) streams over an h2 stream, listing a
 * WebSocket opened over HTTP/2 and saying when one was refused over it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type http2 from 'node:http2';
import { after, before, describe, test } from 'node:test';
import { localCaPaths } from '../../src/tls/local-ca.js';
import { startAdmin, type AdminGateway } from '../helpers/admin.js';
import { waitFor, wsUpstream, type WsUpstream } from '../helpers/net.js';
import { clientFrame, h2Connect, h2Request, h2WebSocket } from './h2-helpers.js';

describe('admin API and dashboard over HTTP/2', { timeout: 60_000 }, () => {
  let gw: AdminGateway;
  let up: WsUpstream;
  let session: http2.ClientHttp2Session;

  before(async () => {
    up = await wsUpstream();
    gw = await startAdmin({ config: 'tls: internal\napps: []\n' });
    session = await h2Connect(gw.port, readFileSync(localCaPaths(gw.dataDir).cert, 'utf8'));
  });
  after(async () => {
    session?.close();
    await gw?.cleanup();
    await up?.close();
  });

  test('an app registered over h2 (PUT with a JSON body) is routed and listed with https:// URLs', async () => {
    const auth = { authorization: `Bearer ${gw.token}` };
    const put = await h2Request(session, { ':method': 'PUT', ':path': '/_porthole/api/apps/echo', 'content-type': 'application/json', ...auth }, JSON.stringify({ port: up.port, ws_paths: ['/ws'] }));
    assert.equal(put.status, 200, put.text);
    const list = await h2Request(session, { ':path': '/_porthole/api/apps', ...auth });
    assert.equal(list.status, 200);
    const apps = JSON.parse(list.text).apps as { name: string; urls: string[] }[];
    assert.ok(apps.find((a) => a.name === 'echo')?.urls.every((u) => u.startsWith('https://')), list.text);
    const page = await h2Request(session, { ':path': '/echo/hi' });
    assert.equal(page.text, 'http-ok /hi');
  });

  test('the login link over h2 sets a Secure session cookie, and the dashboard loads with it', async () => {
    const link = await waitFor(() => /dashboard \(this link logs in once\): (\S+)/.exec(gw.stderr())?.[1], 5000, 'the dashboard line');
    const login = await h2Request(session, { ':path': new URL(link).pathname + new URL(link).search });
    assert.equal(login.status, 303);
    const cookie = String(login.headers['set-cookie']);
    assert.match(cookie, /porthole_session=[\w-]+;.*Secure/);
    const page = await h2Request(session, { ':path': '/_porthole/', cookie: cookie.split(';')[0], 'sec-fetch-dest': 'document' });
    assert.equal(page.status, 200);
    assert.match(page.text, /<meta name="porthole-csrf" content="[^"]+">/);
  });

  test('the live stream runs over an h2 stream: a tunnel over HTTP/2 is listed, a refusal over it is reported', async () => {
    const live = session.request({ ':path': '/_porthole/api/live', authorization: `Bearer ${gw.token}` });
    let text = '';
    live.on('data', (d: Buffer) => (text += d));
    const ws = await h2WebSocket(session, '/echo/ws');
    ws.stream.write(clientFrame(0x1, 'x'));
    await ws.frames.next();
    await waitFor(() => /event: tunnels\ndata: .*"path":"\/echo\/ws"/.test(text), 10_000, `the tunnel in the live stream:\n${text.slice(-2000)}`);
    const refused = await h2WebSocket(session, '/echo/not-ws');
    await refused.frames.next();
    await waitFor(() => /WebSocket \/echo\/not-ws over HTTP\/2 refused/.test(text), 10_000, `the refusal in the live stream:\n${text.slice(-2000)}`);
    ws.stream.close();
    refused.stream.close();
    live.close();
  });
});
