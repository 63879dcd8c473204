import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startAdmin, type AdminGateway } from '../helpers/admin.js';
import { runCli } from '../helpers/cli.js';

/** fetch() will not send a Host of our choosing; node:http will. */
function withHost(url: string, host: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((ok, fail) => {
    const req = http.request(url, { method: 'POST', headers: { Host: host, ...headers } }, (res) => {
      res.resume();
      ok(res.statusCode ?? 0);
    });
    req.on('error', fail);
    req.end('{"action":"list"}');
  });
}

describe('admin API: statuses, auth, Host and Origin', () => {
  let gw: AdminGateway;
  before(async () => {
    gw = await startAdmin({ config: 'apps:\n  - name: fromfile\n    port: 9\n' });
  });
  after(() => gw.cleanup());

  test('the token is generated into the data dir with mode 0600 and shown once', async () => {
    assert.equal(statSync(join(gw.dataDir, 'private', 'token')).mode & 0o777, 0o600);
    assert.match(gw.stderr(), new RegExp(`admin token .*${gw.token}`));
    assert.ok(gw.token.length >= 40);
  });

  test('401 without a token or with a wrong one, with WWW-Authenticate', async () => {
    const none = await fetch(`${gw.url}/_porthole/api/apps`);
    assert.equal(none.status, 401);
    assert.match(none.headers.get('www-authenticate') ?? '', /Bearer/);
    assert.equal(((await none.json()) as { error: { code: string } }).error.code, 'PH_ERR_UNAUTHORIZED');
    const wrong = await gw.api('GET', '/_porthole/api/apps', undefined, { Authorization: 'Bearer nope' });
    assert.equal(wrong.status, 401);
    const webapp = await fetch(`${gw.url}/webapp`, { method: 'POST', body: '{"action":"list"}' });
    assert.equal(webapp.status, 401);
  });

  test('403 for a foreign Host (DNS rebinding) and a foreign Origin, even with the token', async () => {
    assert.equal(await withHost(`${gw.url}/webapp`, 'attacker.example', { Authorization: `Bearer ${gw.token}` }), 403);
    assert.equal(await withHost(`${gw.url}/webapp`, `attacker.example:${gw.port}`, { Authorization: `Bearer ${gw.token}` }), 403);
    assert.equal(await withHost(`${gw.url}/webapp`, `localhost:${gw.port}`, { Authorization: `Bearer ${gw.token}` }), 200);
    const origin = await gw.api('POST', '/webapp', { action: 'list' }, { Origin: 'https://attacker.example' });
    assert.equal(origin.status, 403);
    const same = await gw.api('POST', '/webapp', { action: 'list' }, { Origin: gw.url });
    assert.equal(same.status, 200);
  });

  test('400 names the field: unknown key with a hint, wrong type, bad JSON, missing name, unknown action', async () => {
    const unknown = await gw.webapp({ action: 'register', name: 'a1', port: 9001, wsport: 9002 });
    assert.equal(unknown.status, 400);
    assert.match(unknown.body.error.message, /app\.wsport: unknown key, did you mean ws_port\?/);
    const type = await gw.webapp({ action: 'register', name: 'a1', port: 'eighty' });
    assert.equal(type.status, 400);
    assert.match(type.body.error.message, /app\.port: expected an integer/);
    const badName = await gw.webapp({ action: 'register', name: 'Bad_Name', port: 9001 });
    assert.equal(badName.status, 400);
    assert.match(badName.body.error.message, /app\.name/);
    const json = await gw.api('POST', '/webapp', '{"action": "list",');
    assert.equal(json.status, 400);
    assert.match(json.body.error.message, /invalid JSON/);
    const noName = await gw.webapp({ action: 'start' });
    assert.equal(noName.status, 400);
    assert.match(noName.body.error.message, /^name: required/);
    const action = await gw.webapp({ action: 'strat', name: 'x' });
    assert.equal(action.status, 400);
    assert.match(action.body.error.message, /did you mean start\?/);
    const crlf = await gw.webapp({ action: 'register', name: 'a2', port: 9001, set_headers: { 'X-A': 'v\r\nX-B: injected' } });
    assert.equal(crlf.status, 400);
    assert.match(crlf.body.error.message, /CR, LF/);
  });

  test('404 for an unknown app or resource', async () => {
    const status = await gw.webapp({ action: 'status', name: 'ghost' });
    assert.equal(status.status, 404);
    assert.equal(status.body.error.code, 'PH_ERR_APP_UNKNOWN');
    assert.equal((await gw.api('GET', '/_porthole/api/apps/ghost')).status, 404);
    assert.equal((await gw.api('DELETE', '/_porthole/api/apps/ghost')).status, 404);
    assert.equal((await gw.api('GET', '/_porthole/api/nothing')).status, 404);
  });

  test('409 for a config-file name, a reserved name, a taken prefix, and start without cmd', async () => {
    const fileName = await gw.webapp({ action: 'register', name: 'fromfile', port: 9001 });
    assert.equal(fileName.status, 409);
    assert.equal(fileName.body.error.code, 'PH_ERR_CONFLICT');
    assert.equal((await gw.webapp({ action: 'remove', name: 'fromfile' })).status, 409);
    const reserved = await gw.webapp({ action: 'register', name: 'webapp', port: 9001 });
    assert.equal(reserved.status, 409);
    const first = await gw.webapp({ action: 'register', name: 'p1', port: 9001, prefix: '/shared' });
    assert.equal(first.status, 200);
    const second = await gw.webapp({ action: 'register', name: 'p2', port: 9002, prefix: '/shared' });
    assert.equal(second.status, 409);
    assert.match(second.body.error.message, /prefix/);
    const noCmd = await gw.webapp({ action: 'start', name: 'p1' });
    assert.equal(noCmd.status, 409);
    assert.equal(noCmd.body.error.code, 'PH_ERR_APP_NO_CMD');
  });

  test('a method the resource does not take is a 400, never a 200 with an error inside', async () => {
    const r = await gw.api('PATCH', '/_porthole/api/apps/p1', {});
    assert.equal(r.status, 400);
    assert.equal(r.body.ok, false);
  });
});

test('admin.local_no_auth allows token-less calls from loopback', async () => {
  const gw = await startAdmin({ config: 'admin:\n  local_no_auth: true\n' });
  try {
    const res = await fetch(`${gw.url}/webapp`, { method: 'POST', body: JSON.stringify({ action: 'list' }) });
    assert.equal(res.status, 200);
    assert.deepEqual(((await res.json()) as { apps: unknown[] }).apps, []);
    // A foreign Host is still refused: no-auth is not no-checks.
    assert.equal(await withHost(`${gw.url}/webapp`, 'rebind.example'), 403);
  } finally {
    await gw.cleanup();
  }
});

test('porthole apps: the CLI reads the token from the data dir and reports API errors with their code', async () => {
  const gw = await startAdmin();
  try {
    const add = runCli(['apps', 'add', 'cli-app', '--port', '9123', '--gateway', gw.url, '--data', gw.dataDir]);
    assert.equal(await add.exited, 0, add.stderr());
    assert.match(add.stdout(), /cli-app: external/);
    const ls = runCli(['apps', 'ls', '--gateway', gw.url, '--data', gw.dataDir]);
    assert.equal(await ls.exited, 0);
    assert.match(ls.stdout(), /^NAME\s+STATE\s+PID\s+ROUTE\s+UPSTREAM/m);
    assert.match(ls.stdout(), /cli-app\s+external\s+-\s+\/cli-app\/\s+127\.0\.0\.1:9123/);
    const json = runCli(['apps', 'ls', '--json', '--gateway', gw.url], { env: { PORTHOLE_TOKEN: gw.token } });
    assert.equal(await json.exited, 0);
    assert.equal(JSON.parse(json.stdout())[0].name, 'cli-app');
    const missing = runCli(['apps', 'status', 'ghost', '--gateway', gw.url, '--data', gw.dataDir]);
    assert.equal(await missing.exited, 1);
    assert.match(missing.stderr(), /no app named "ghost" \[PH_ERR_APP_UNKNOWN\]/);
    const noToken = runCli(['apps', 'ls', '--gateway', gw.url, '--data', '/nonexistent'], { env: { PORTHOLE_TOKEN: '' } });
    assert.equal(await noToken.exited, 1);
    assert.match(noToken.stderr(), /PH_ERR_UNAUTHORIZED/);
  } finally {
    await gw.cleanup();
  }
});

test('a malformed percent-encoding in an admin path is a 400, not a 500', async () => {
  const gw = await startAdmin();
  try {
    const r = await gw.api('GET', '/_porthole/api/apps/%E0%A4%A');
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'PH_ERR_BAD_REQUEST');
  } finally {
    await gw.cleanup();
  }
});
