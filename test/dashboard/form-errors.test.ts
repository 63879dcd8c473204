/**
 * A registration refused by the schema names its fields, so the dashboard's
 * form can show each message beside its input.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createServer } from 'porthole';

test('PUT /apps/{name} answers 400 with error.fields by top-level field; a whole-app problem has none', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-dashboard-form-'));
  const server = createServer({ listen: { port: 0 }, dataDir });
  t.after(async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const start = await server.listen();
  const put = async (body: unknown) => {
    const r = await fetch(`${start.url}/_porthole/api/apps/app1`, { method: 'PUT', headers: { Authorization: `Bearer ${start.token}` }, body: JSON.stringify(body) });
    assert.equal(r.status, 400);
    return ((await r.json()) as { error: { fields?: Record<string, string>; message: string } }).error;
  };
  assert.deepEqual((await put({ port: 'abc' })).fields, { port: 'expected an integer from 1 to 65535, got string "abc"' });
  const two = await put({ port: 70000, cmd: 5, hosts: ['bad host'] });
  assert.deepEqual(Object.keys(two.fields!).sort(), ['cmd', 'hosts', 'port']);
  assert.match(two.fields!.hosts, /"bad host" is not a host name/);
  assert.equal((await put({ env: { 'A B': '1' }, port: 1 })).fields!.env, '"A B" is not an environment variable name');
  const whole = await put({});
  assert.equal(whole.fields, undefined);
  assert.match(whole.message, /needs one of port, url or socket/);
  // A field named like an Object.prototype member is an ordinary key.
  const proto = await put({ port: 1, constructor: 1 });
  assert.ok(proto.fields === undefined || Object.hasOwn(proto.fields, 'constructor'));
});
