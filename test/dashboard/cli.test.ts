/**
 * The dashboard from the command line: `porthole serve` prints a one-time
 * login link, `porthole dashboard` asks a running gateway for another.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startAdmin } from '../helpers/admin.js';
import { runCli } from '../helpers/cli.js';
import { waitFor } from '../helpers/net.js';

test('porthole serve prints a login link that logs in once; porthole dashboard prints a new one', async (t) => {
  const gw = await startAdmin();
  t.after(() => gw.cleanup());
  const printed = await waitFor(() => /porthole: dashboard \(this link logs in once\): (http:\/\/\S+)/.exec(gw.stderr())?.[1], 10_000, 'the dashboard line');
  assert.ok(printed.startsWith(`${gw.url}/_porthole/?login=`), printed);
  assert.equal((await fetch(printed, { redirect: 'manual' })).status, 303);
  assert.equal((await fetch(printed, { redirect: 'manual' })).status, 401);
  // The link's code is a secret: the request log keeps it out.
  await waitFor(() => gw.stdout().includes('"path":"/_porthole/?login=…"'), 10_000, `the redacted request line in:\n${gw.stdout()}`);
  assert.ok(!gw.stdout().includes(new URL(printed).searchParams.get('login')!), 'the code is not in the log');

  const cli = runCli(['dashboard', '--gateway', gw.url, '--data', gw.dataDir]);
  assert.equal(await cli.exited, 0, cli.stderr());
  const fresh = cli.stdout().trim();
  assert.match(fresh, new RegExp(`^${gw.url}/_porthole/\\?login=[\\w-]{40,}$`));
  const login = await fetch(fresh, { redirect: 'manual' });
  assert.equal(login.status, 303);
  assert.match(login.headers.get('set-cookie') ?? '', /^porthole_session=/);
});

test('porthole dashboard without the token says where to find it and exits 1', async (t) => {
  const gw = await startAdmin();
  t.after(() => gw.cleanup());
  const empty = mkdtempSync(join(tmpdir(), 'porthole-no-token-'));
  t.after(() => rmSync(empty, { recursive: true, force: true }));
  const cli = runCli(['dashboard', '--gateway', gw.url, '--data', empty], { env: { PORTHOLE_TOKEN: '' } });
  assert.equal(await cli.exited, 1);
  assert.match(cli.stderr(), /no token found: pass --data DIR of the gateway or set PORTHOLE_TOKEN/);
  assert.equal(cli.stdout(), '');
});
