// What `porthole apps` prints when an app cannot answer (issue 8): an external
// app says whether it answers and why not; a start that spawns nothing fails.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { startAdmin } from '../helpers/admin.js';
import { runCli } from '../helpers/cli.js';
import { closeServer, listen } from '../helpers/net.js';

test('apps add of an external app with nothing listening prints "not answering" and the cause; apps start of a missing cwd exits 1 with PH_ERR_APP_SPAWN', async (t) => {
  const gw = await startAdmin();
  t.after(() => gw.cleanup());
  const free = net.createServer();
  const port = await listen(free);
  await closeServer(free);
  const cli = (...args: string[]) => runCli(['apps', ...args, '--gateway', gw.url, '--data', gw.dataDir]);

  const add = cli('add', 'ext', '--port', String(port));
  assert.equal(await add.exited, 0, add.stderr());
  assert.match(add.stdout(), /^ext: external \(not answering\)\n/);
  assert.match(add.stdout(), new RegExp(`note\\s+port ${port} refused`));
  const ls = cli('ls', '--json');
  assert.equal(await ls.exited, 0);
  assert.equal(JSON.parse(ls.stdout())[0].ready, false);

  assert.equal(await cli('add', 'nocwd', '--cmd', 'sleep 30', '--cwd', '/nonexistent/porthole-cwd').exited, 0);
  const start = cli('start', 'nocwd');
  assert.equal(await start.exited, 1);
  assert.match(start.stderr(), /cwd \/nonexistent\/porthole-cwd is not a directory \[PH_ERR_APP_SPAWN\]/);
});
