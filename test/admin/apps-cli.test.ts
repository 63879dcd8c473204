import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { appCmd, startAdmin } from '../helpers/admin.js';
import { CLI, runCli } from '../helpers/cli.js';

test('porthole apps add --start, status, restart, logs, logs -f, stop and rm drive a real app', async () => {
  const gw = await startAdmin();
  const cli = (...args: string[]) => runCli(['apps', ...args, '--gateway', gw.url, '--data', gw.dataDir]);
  try {
    const add = cli('add', 'web', '--cmd', appCmd(), '--env', 'GREETING=hi', '--description', 'a test app', '--start');
    assert.equal(await add.exited, 0, add.stderr());
    assert.match(add.stdout(), /^web: (starting|running)/);
    assert.match(add.stdout(), /route\s+\/web\//);

    // The app answers through the gateway once ready (the request is held while it starts).
    assert.match(await (await fetch(`${gw.url}/web/x`)).text(), /^app web pid (\d+)/);

    const status = cli('status', 'web', '--json');
    assert.equal(await status.exited, 0);
    const before = JSON.parse(status.stdout());
    assert.equal(before.state, 'running');
    assert.equal(before.env.GREETING, 'hi');

    const restart = cli('restart', 'web', '--json');
    assert.equal(await restart.exited, 0);
    assert.notEqual(JSON.parse(restart.stdout()).pid, before.pid);

    const logs = cli('logs', 'web', '-n', '50');
    assert.equal(await logs.exited, 0);
    assert.match(logs.stdout(), /listening on \d+/);

    // logs -f streams new lines until interrupted.
    const follow = spawn(process.execPath, [CLI, 'apps', 'logs', 'web', '-f', '-n', '1', '--gateway', gw.url, '--data', gw.dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let followed = '';
    follow.stdout.on('data', (d) => (followed += d));
    await new Promise((r) => setTimeout(r, 500));
    const again = cli('restart', 'web');
    assert.equal(await again.exited, 0);
    const deadline = Date.now() + 15_000;
    while (!/started pid|listening on/.test(followed.split('\n').slice(1).join('\n')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    follow.kill('SIGINT');
    assert.match(followed, /listening on|started pid/);

    const stop = cli('stop', 'web');
    assert.equal(await stop.exited, 0);
    assert.match(stop.stdout(), /^web: stopped/);
    assert.equal((await fetch(`${gw.url}/web/`)).status, 503);

    const rm = cli('rm', 'web');
    assert.equal(await rm.exited, 0);
    assert.equal(rm.stdout(), 'removed web\n');
    assert.equal((await fetch(`${gw.url}/web/`)).status, 404);
    const rmAgain = cli('rm', 'web');
    assert.equal(await rmAgain.exited, 1);
    assert.match(rmAgain.stderr(), /PH_ERR_APP_UNKNOWN/);

    const help = runCli(['apps', 'add', '--help']);
    assert.equal(await help.exited, 0);
    for (const want of ['--port', '--ws-port', '--cmd', '--env', '--autostart', '--start']) assert.ok(help.stdout().includes(want), want);
  } finally {
    await gw.cleanup();
  }
});
