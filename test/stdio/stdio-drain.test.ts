/**
 * A drain while a stdio app's program is being started. The handshake is
 * completed as soon as the program is spawned (nothing waits for it to be
 * ready: a program that is slow to start is already an open connection, which
 * a drain closes with 1001 like any other); what comes before the spawn is
 * the lookup of the app's `user`/`group`, which may wait seconds on a
 * directory server (NSS). A drain then gives the upgrade up at once (1001,
 * PH_ERR_DRAINING), as the gateway gives up an upgrade waiting for its
 * upstream, and no program is started after it.
 *
 * The slow directory is real: `porthole serve` runs in its own mount
 * namespace (unshare -m) where /usr/bin/getent is a script that waits, then
 * runs the real getent.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import WebSocket from 'ws';
import { CLI } from '../helpers/cli.js';
import { openWs, sleep, startGateway, waitFor } from '../helpers/net.js';

/** Pids whose command line contains `marker`. */
function running(marker: string): number[] {
  const pids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(marker)) pids.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return pids;
}

describe('stdio: a drain while a program is being started', { timeout: 60_000 }, () => {
  test('a program slow to start is an open connection already: a drain closes it with 1001 at once and stops it', async () => {
    const marker = `ph-stdio-slow-start-${process.pid}`;
    const g = await startGateway({ apps: [{ name: 'slow', stdio: `sleep 30; : ${marker}; cat` }] });
    try {
      const ws = await openWs(`${g.wsUrl}/slow/`);
      const closed = new Promise<{ code: number; reason: string; at: number }>((ok) => ws.once('close', (code, reason) => ok({ code, reason: reason.toString(), at: Date.now() })));
      await waitFor(() => running(marker).length > 0, 5000, 'the program');
      const started = Date.now();
      await g.gw.drain(200);
      const c = await closed;
      assert.equal(c.code, 1001);
      assert.equal(c.reason, 'gateway shutting down');
      assert.ok(c.at - started < 2000, `closed ${c.at - started} ms after the drain began`);
      assert.deepEqual(running(marker), [], 'the program is gone');
    } finally {
      await g.close();
    }
  });

  test('the user lookup is slow: a drain gives the upgrade up with 1001 at once, and no program starts after it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ph-stdio-drain-'));
    const marker = `ph-stdio-late-${process.pid}`;
    copyFileSync('/usr/bin/getent', join(dir, 'getent.real'));
    writeFileSync(join(dir, 'getent'), `#!/bin/sh\ntouch ${dir}/asked\nsleep 2\nexec ${dir}/getent.real "$@"\n`, { mode: 0o755 });
    const config = join(dir, 'porthole.yaml');
    writeFileSync(config, `apps:\n  - name: late\n    stdio: "sleep 600; : ${marker}"\n    user: root\n`);
    const serve = spawn(
      'unshare',
      ['-m', '--propagation', 'private', 'sh', '-c', `mount --bind ${dir}/getent /usr/bin/getent && exec "$@"`, 'sh', process.execPath, CLI, 'serve', '--listen', '127.0.0.1:0', '--config', config, '--data', join(dir, 'data'), '--log-format', 'json'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let err = '';
    let out = '';
    serve.stderr!.on('data', (d) => (err += d));
    serve.stdout!.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((ok) => serve.once('exit', (code) => ok(code)));
    try {
      const port = await waitFor(() => /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(err)?.[1], 15_000, `porthole serve to listen:\n${err}`);
      const ws = new WebSocket(`ws://127.0.0.1:${port}/late/`);
      ws.on('error', () => {});
      let opened = false;
      ws.once('open', () => (opened = true));
      const closed = new Promise<{ code: number; reason: string; at: number }>((ok) => ws.once('close', (code, reason) => ok({ code, reason: reason.toString(), at: Date.now() })));
      // The upgrade waits on getent (2 s).
      await waitFor(() => existsSync(join(dir, 'asked')), 5000, 'the user lookup');
      const started = Date.now();
      serve.kill('SIGTERM');
      const c = await Promise.race([closed, sleep(5000).then(() => assert.fail(`no close 5 s after SIGTERM (opened: ${opened}; serve exited: ${serve.exitCode}; program started: ${running(marker).length > 0})`))]);
      assert.ok(c.at - started < 1000, `closed ${c.at - started} ms after SIGTERM (the lookup takes 2 s)`);
      assert.equal(opened, true, 'the handshake was completed to carry the close');
      assert.equal(c.code, 1001);
      assert.equal(c.reason, 'late: the gateway is shutting down; reconnect in a moment');
      assert.equal(await exited, 0);
      const upgrade = out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((e) => e.event === 'upgrade' && e.app === 'late');
      assert.equal(upgrade?.code, 'PH_ERR_DRAINING');
      assert.equal(upgrade?.closeCode, 1001);
      // The lookup ends after the gateway did: nothing may have started the program.
      await sleep(2500);
      assert.deepEqual(running(marker), [], 'no program was started');
    } finally {
      if (serve.exitCode === null) serve.kill('SIGKILL');
      // Each program leads its own process group: its `sleep` goes with it.
      for (const pid of running(marker)) process.kill(-pid, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
