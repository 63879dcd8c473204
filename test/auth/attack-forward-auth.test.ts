/**
 * Attack on forward_auth's copied headers: CGI-style stacks (WSGI, PHP)
 * read `Remote_User` and `Remote-User` as the same `HTTP_REMOTE_USER`, so a
 * client's underscore spelling of a header the auth service speaks for must
 * be dropped like its dash spelling, or it names the user when the service
 * did not.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { httpUpstream, startGateway } from '../helpers/net.js';
import { request } from '../helpers/http.js';

test("a client's Remote_User (underscore) is dropped like Remote-User when forward_auth speaks for Remote-User", async (t) => {
  // The service lets an anonymous visitor through without naming a user.
  const svc = await httpUpstream((_req, res) => {
    res.writeHead(200);
    res.end();
  });
  t.after(() => svc.close());
  const app = await httpUpstream((req: http.IncomingMessage, res: http.ServerResponse) => res.end(JSON.stringify(req.rawHeaders)));
  t.after(() => app.close());
  const gw = await startGateway({ auth: { forward_auth: { url: `${svc.url}/verify`, response_headers: ['Remote-User'] } }, apps: [{ name: 'app', port: app.port }] });
  t.after(() => gw.close());
  const r = await request(`${gw.url}/app/`, { headers: { 'Remote_User': 'admin', 'remote-user': 'admin' } });
  assert.equal(r.status, 200);
  const names = (JSON.parse(r.text) as string[]).filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
  assert.ok(!names.includes('remote_user'), names.join(' '));
  assert.ok(!names.includes('remote-user'), names.join(' '));
});
