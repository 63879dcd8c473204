/**
 * Issue 8, security item 11 (admin part) and item 10's "both agree": the
 * admin API reads Host with the same strict `host[:port]` parser as the
 * gateway's DNS-rebinding check. `127.0.0.1:PORT@evil.com` was accepted (the
 * text before the last colon is an IP address); it is a 400 now. No Host the
 * apps refuse is accepted by the admin API, and the other way round the
 * admin API is stricter only where documented (`*.localhost` names are the
 * apps' origins).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { startAdmin, type AdminGateway } from '../helpers/admin.js';
import { rawRequest } from '../helpers/net.js';

function get(url: string, host: string, headers: Record<string, string> = {}): Promise<{ status: number; code: string | undefined }> {
  return new Promise((ok, fail) => {
    const req = http.request(url, { headers: { Host: host, ...headers } }, (res) => {
      res.resume();
      ok({ status: res.statusCode ?? 0, code: res.headers['x-porthole-error'] as string | undefined });
    });
    req.on('error', fail);
    req.end();
  });
}

describe('admin API Host check', () => {
  let gw: AdminGateway;
  before(async () => {
    gw = await startAdmin({ config: 'server_names: [tunnel.example.net]\nadmin:\n  hosts: [admin.example.net]\napps:\n  - name: app\n    port: 9\n' });
  });
  after(() => gw.cleanup());

  test('127.0.0.1:PORT@evil.com and other Hosts that are not host[:port] are refused with 400 PH_ERR_BAD_HOST, even with the token', async () => {
    const auth = `Authorization: Bearer ${gw.token}\r\n`;
    for (const host of [`127.0.0.1:${gw.port}@evil.com`, `localhost:${gw.port}@evil.com`, '127.0.0.1:80x', '[::1]junk', 'localhost/x', `127.0.0.1:${gw.port} evil.com`]) {
      const raw = await rawRequest(gw.port, `GET /_porthole/api/apps HTTP/1.1\r\nHost: ${host}\r\n${auth}Connection: close\r\n\r\n`);
      assert.match(raw, /^HTTP\/1\.1 400 /, `Host: ${host}\n${raw.slice(0, 200)}`);
      assert.match(raw, /PH_ERR_BAD_HOST/, `Host: ${host}`);
    }
  });

  test('loopback names and addresses, this machine\'s addresses and admin.hosts pass; *.localhost, server_names and rebinding names do not', async () => {
    const auth = { Authorization: `Bearer ${gw.token}` };
    for (const host of ['localhost', `localhost:${gw.port}`, `127.0.0.1:${gw.port}`, '127.0.0.2', `[::1]:${gw.port}`, 'admin.example.net', 'localhost.']) {
      assert.equal((await get(`${gw.url}/_porthole/api/apps`, host, auth)).status, 200, host);
    }
    for (const host of ['evil.example', `evil.example:${gw.port}`, 'other.localhost', 'tunnel.example.net', '8.8.8.8']) {
      const r = await get(`${gw.url}/_porthole/api/apps`, host, auth);
      assert.equal(r.status, 403, host);
      assert.equal(r.code, 'PH_ERR_FORBIDDEN', host);
    }
  });

  test('the admin API and the gateway agree: every Host refused for apps and /_porthole/health is refused by the admin API too', async () => {
    const auth = { Authorization: `Bearer ${gw.token}` };
    const hosts = ['evil.example', `evil.example:${gw.port}`, 'localhost.evil.example', '127.0.0.1.evil.example', 'tunnel.example.net.evil', '10.255.255.1', `127.0.0.1:${gw.port}@evil.com`, 'localhost', 'app.localhost', 'tunnel.example.net'];
    for (const host of hosts) {
      const health = await get(`${gw.url}/_porthole/health`, host);
      const admin = await get(`${gw.url}/_porthole/api/apps`, host, auth);
      if (health.status >= 400) assert.ok(admin.status >= 400, `${host}: health ${health.status} (${health.code}) but admin ${admin.status}`);
      if (health.status === 421) assert.equal(health.code, 'PH_ERR_HOST_REFUSED');
      if (admin.status === 200) assert.equal(health.status, 200, `${host}: the admin API accepts a Host the gateway refuses`);
    }
    // The ones the gateway takes and the admin API does not are the documented ones: app names and server_names.
    assert.equal((await get(`${gw.url}/_porthole/health`, 'tunnel.example.net')).status, 200);
    assert.equal((await get(`${gw.url}/_porthole/health`, 'evil.example')).status, 421);
  });
});
