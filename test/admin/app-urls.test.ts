/**
 * Issue 8, new-user item 2: the API, the CLI and the logs show both URLs of
 * every app — under its prefix and at the root of its own host name
 * ({name}.localhost, and {name}.{base_domain} when configured).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startAdmin } from '../helpers/admin.js';
import { jsonLines, runCli } from '../helpers/cli.js';
import { waitFor } from '../helpers/net.js';

test('GET /_porthole/api/apps, porthole apps ls/status and the log lines list every app\'s prefix and host-name URLs', async () => {
  const gw = await startAdmin({ config: 'base_domain: apps.example.net\napps:\n  - name: notes\n    port: 9\n' });
  const cli = (...args: string[]) => runCli(['apps', ...args, '--gateway', gw.url, '--data', gw.dataDir]);
  try {
    const expected = (name: string) => [`${gw.url}/${name}/`, `http://${name}.localhost:${gw.port}/`, `http://${name}.apps.example.net:${gw.port}/`];
    const listening = await waitFor(() => jsonLines(gw.stdout()).find((l) => l.event === 'gateway' && l.action === 'listening'), 5000, 'the listening line');
    assert.deepEqual(listening?.apps, { notes: expected('notes') }, gw.stdout());

    const reg = await gw.api('PUT', '/_porthole/api/apps/vnc', { port: 9 });
    assert.equal(reg.status, 200, JSON.stringify(reg.body));
    assert.deepEqual(reg.body.app.urls, expected('vnc'));
    const list = await gw.api('GET', '/_porthole/api/apps');
    assert.deepEqual(
      list.body.apps.map((a: { name: string; urls: string[] }) => [a.name, a.urls]),
      [
        ['notes', expected('notes')],
        ['vnc', expected('vnc')],
      ],
    );
    const webapp = await gw.webapp({ action: 'status', name: 'vnc' });
    assert.deepEqual(webapp.body.app.urls, expected('vnc'));

    // The registration is announced in the log with its URLs.
    const routed = await waitFor(() => jsonLines(gw.stdout()).find((l) => l.event === 'app' && l.app === 'vnc' && l.state === 'routed'), 5000, 'the routed line');
    assert.deepEqual(routed.urls, expected('vnc'));

    const ls = cli('ls');
    assert.equal(await ls.exited, 0, ls.stderr());
    const header = ls.stdout().split('\n')[0];
    assert.match(header, /URLS$/);
    const vncRow = ls.stdout().split('\n').find((l) => l.startsWith('vnc '))!;
    for (const u of expected('vnc')) assert.ok(vncRow.includes(u), `${u} in\n${ls.stdout()}`);

    const status = cli('status', 'vnc');
    assert.equal(await status.exited, 0, status.stderr());
    assert.match(status.stdout(), new RegExp(`open\\s+${gw.url.replace(/\./g, '\\.')}/vnc/\\n\\s+http://vnc\\.localhost:${gw.port}/\\n\\s+http://vnc\\.apps\\.example\\.net:${gw.port}/`));
  } finally {
    await gw.cleanup();
  }
});
