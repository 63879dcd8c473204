import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startAdmin } from '../helpers/admin.js';
import { jsonLines } from '../helpers/cli.js';
import { httpUpstream, waitFor, wsCloseOf } from '../helpers/net.js';

const storedNames = (dataDir: string): string[] => {
  const file = join(dataDir, 'private', 'apps.json');
  return existsSync(file) ? Object.keys((JSON.parse(readFileSync(file, 'utf8')) as { apps: Record<string, unknown> }).apps) : [];
};

test('a registration whose error_page cannot be read gets 400 naming the field, stores nothing, and later registrations succeed', async (t) => {
  const gw = await startAdmin();
  t.after(() => gw.cleanup());
  const bad = await gw.webapp({ action: 'register', name: 'bad', port: 9301, error_page: '/nonexistent/page.html' });
  assert.equal(bad.status, 400, JSON.stringify(bad.body));
  assert.equal(bad.body.error.code, 'PH_ERR_BAD_REQUEST');
  assert.match(bad.body.error.message, /^app\.error_page: cannot read \/nonexistent\/page\.html/);
  assert.deepEqual(storedNames(gw.dataDir), []);
  assert.equal((await gw.api('GET', '/_porthole/api/apps/bad')).status, 404);
  // A supervised app without a port is checked too (it is routed once a port is allocated).
  const badCmd = await gw.api('PUT', '/_porthole/api/apps/badcmd', { cmd: 'sleep 60', error_page: '/nonexistent/page.html' });
  assert.equal(badCmd.status, 400);
  assert.match(badCmd.body.error.message, /app\.error_page/);
  for (const name of ['good1', 'good2']) {
    const ok = await gw.webapp({ action: 'register', name, port: 9302 + Number(name.at(-1)) });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
  }
  assert.deepEqual(storedNames(gw.dataDir).sort(), ['good1', 'good2']);
});

test('a stored app whose error_page was deleted does not stop the restart: it is invalid, unrouted with a clear error, and the others serve', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-invalid-'));
  const upstream = await httpUpstream((_req, res) => res.end('other app'));
  t.after(async () => {
    await upstream.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const page = join(dataDir, 'page.html');
  writeFileSync(page, '<h1>${PORTHOLE_TITLE}</h1>');
  const first = await startAdmin({ dataDir });
  try {
    assert.equal((await first.webapp({ action: 'register', name: 'pretty', port: upstream.port, error_page: page })).status, 200);
    assert.equal((await first.webapp({ action: 'register', name: 'other', port: upstream.port })).status, 200);
  } finally {
    await first.stop();
  }
  unlinkSync(page);
  // A stored entry the schema no longer accepts (edited by hand, or written by another version).
  const store = JSON.parse(readFileSync(join(dataDir, 'private', 'apps.json'), 'utf8')) as { apps: Record<string, unknown> };
  store.apps.legacy = { name: 'legacy', port: upstream.port, wsport: 1 };
  writeFileSync(join(dataDir, 'private', 'apps.json'), JSON.stringify(store));

  const gw = await startAdmin({ dataDir });
  t.after(() => gw.stop());
  const pretty = await gw.api('GET', '/_porthole/api/apps/pretty');
  assert.equal(pretty.status, 200);
  assert.equal(pretty.body.app.state, 'invalid');
  assert.equal(pretty.body.app.ready, false);
  assert.match(pretty.body.app.message, /error_page: cannot read .*page\.html/);
  const legacy = (await gw.api('GET', '/_porthole/api/apps/legacy')).body.app;
  assert.equal(legacy.state, 'invalid');
  assert.match(legacy.message, /wsport: unknown key, did you mean ws_port\?/);
  const listed = (await gw.webapp({ action: 'list' })).body.apps as { name: string; state: string }[];
  assert.deepEqual(listed.map((a) => `${a.name}:${a.state}`).sort(), ['legacy:invalid', 'other:external', 'pretty:invalid']);

  const refused = await fetch(`${gw.url}/pretty/`, { headers: { Accept: 'application/json' } });
  assert.equal(refused.status, 503);
  assert.equal(refused.headers.get('x-porthole-error'), 'PH_ERR_APP_INVALID');
  assert.match(((await refused.json()) as { error: { message: string } }).error.message, /pretty .*invalid.*error_page/);
  // A browser's WebSocket gets the handshake completed and a close with the reason, not a bare 1006.
  const close = await wsCloseOf(`${gw.url.replace('http', 'ws')}/pretty/`);
  assert.equal(close.code, 1011);
  assert.match(close.reason, /pretty is invalid/);
  const served = await fetch(`${gw.url}/other/`);
  assert.equal(served.status, 200);
  assert.equal(await served.text(), 'other app');

  const errors = await waitFor(() => {
    const e = jsonLines(gw.stdout()).filter((l) => l.event === 'error' && l.code === 'PH_ERR_APP_INVALID');
    return e.length >= 2 ? e : undefined;
  });
  assert.deepEqual(errors.map((e) => e.app).sort(), ['legacy', 'pretty']);

  // Registering it again with a readable page makes it valid; removing works on an invalid app.
  writeFileSync(page, '<h1>back</h1>');
  const fixed = await gw.webapp({ action: 'register', name: 'pretty', port: upstream.port, error_page: page });
  assert.equal(fixed.status, 200, JSON.stringify(fixed.body));
  assert.equal(fixed.body.app.state, 'external');
  assert.equal((await fetch(`${gw.url}/pretty/`)).status, 200);
  assert.equal((await gw.webapp({ action: 'remove', name: 'legacy' })).status, 200);
  assert.deepEqual(storedNames(dataDir).sort(), ['other', 'pretty']);
});

test('an error_page deleted while the gateway runs does not fail later registrations: that app turns invalid, the new one is routed', async (t) => {
  const upstream = await httpUpstream((_req, res) => res.end('up'));
  const gw = await startAdmin();
  t.after(async () => {
    await gw.cleanup();
    await upstream.close();
  });
  const page = join(gw.dataDir, 'page.html');
  writeFileSync(page, '<p>${PORTHOLE_MESSAGE}</p>');
  assert.equal((await gw.webapp({ action: 'register', name: 'pretty', port: upstream.port, error_page: page })).status, 200);
  unlinkSync(page);
  const next = await gw.webapp({ action: 'register', name: 'next', port: upstream.port });
  assert.equal(next.status, 200, JSON.stringify(next.body));
  assert.equal(await (await fetch(`${gw.url}/next/`)).text(), 'up');
  const pretty = (await gw.api('GET', '/_porthole/api/apps/pretty')).body.app;
  assert.equal(pretty.state, 'invalid');
  assert.match(pretty.message, /app\.error_page: cannot read/);
  assert.equal((await fetch(`${gw.url}/pretty/`)).headers.get('x-porthole-error'), 'PH_ERR_APP_INVALID');
});

test('a stored app whose prefix the config file has since taken does not stop the restart: it is invalid, the file app is routed', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-clash-'));
  const api = await httpUpstream((_req, res) => res.end('api app'));
  const file = await httpUpstream((_req, res) => res.end('file app'));
  t.after(async () => {
    await api.close();
    await file.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const first = await startAdmin({ dataDir });
  try {
    assert.equal((await first.webapp({ action: 'register', name: 'api1', port: api.port, prefix: '/shared' })).status, 200);
  } finally {
    await first.stop();
  }
  const gw = await startAdmin({ dataDir, config: `apps:\n  - name: file1\n    port: ${file.port}\n    prefix: /shared\n` });
  t.after(() => gw.stop());
  const app = (await gw.api('GET', '/_porthole/api/apps/api1')).body.app;
  assert.equal(app.state, 'invalid');
  assert.match(app.message, /app\.prefix: "\/shared" is already the prefix of file1/);
  assert.equal(await (await fetch(`${gw.url}/shared/`)).text(), 'file app');
});

test('an error_page that is a FIFO, a device or over 1 MiB is refused at registration without the gateway reading it', async (t) => {
  const gw = await startAdmin();
  t.after(() => gw.cleanup());
  const fifo = join(gw.dataDir, 'page.fifo');
  execFileSync('mkfifo', [fifo]);
  const big = join(gw.dataDir, 'big.html');
  writeFileSync(big, Buffer.alloc(1024 * 1024 + 1, 'x'));
  for (const [page, why] of [
    [fifo, /not a regular file/],
    ['/dev/zero', /not a regular file/],
    [big, /larger than 1048576 bytes/],
  ] as const) {
    const r = await gw.webapp({ action: 'register', name: 'page', port: 9301, error_page: page });
    assert.equal(r.status, 400, `${page}: ${JSON.stringify(r.body)}`);
    assert.match(r.body.error.message, /^app\.error_page: cannot read/);
    assert.match(r.body.error.message, why);
  }
  assert.equal((await fetch(`${gw.url}/_porthole/health`)).status, 200);
  assert.deepEqual(storedNames(gw.dataDir), []);
});

test("a registration on the gateway's own port is refused: its requests would loop back into the gateway", async (t) => {
  const gw = await startAdmin();
  t.after(() => gw.cleanup());
  for (const key of ['port', 'ws_port']) {
    const body = key === 'port' ? { port: gw.port } : { port: 9301, ws_port: gw.port };
    const r = await gw.webapp({ action: 'register', name: 'loop', ...body });
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, new RegExp(`^app\\.${key}: ${gw.port} is the gateway's own port`));
  }
  assert.deepEqual(storedNames(gw.dataDir), []);
});
