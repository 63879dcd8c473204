import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { jsonLines, runCli, startServe } from '../helpers/cli.js';
import { closed, nextMessage, openWs, waitFor, wsUpstream, type WsUpstream } from '../helpers/net.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'porthole-serve-'));
  dirs.push(d);
  return d;
}
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** Writes a file the way editors do: a new file renamed over the old one. */
function replaceFile(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

describe('porthole serve: config errors', () => {
  test('an unknown key names the path and the nearest valid key, exit code 2', async () => {
    const dir = tempDir();
    const file = join(dir, 'porthole.yaml');
    writeFileSync(file, 'apps:\n  - name: demo\n    port: 9000\n    wsport: 9001\n');
    const run = runCli(['serve', '--config', file, '--data', dir]);
    assert.equal(await run.exited, 2);
    assert.match(run.stderr(), /apps\[0\]\.wsport: unknown key, did you mean ws_port\?/);
  });

  test('a bad --listen is exit code 2 with the expected form', async () => {
    const run = runCli(['serve', '--listen', 'nonsense', '--data', tempDir()]);
    assert.equal(await run.exited, 2);
    assert.match(run.stderr(), /HOST:PORT/);
  });

  test('a CR/LF in a header value is refused at load', async () => {
    const dir = tempDir();
    const file = join(dir, 'p.yaml');
    writeFileSync(file, 'apps:\n  - name: demo\n    port: 9000\n    set_headers:\n      X-A: "ok\\r\\nX-Injected: 1"\n');
    const run = runCli(['serve', '--config', file, '--data', dir]);
    assert.equal(await run.exited, 2);
    assert.match(run.stderr(), /apps\[0\]\.set_headers\.X-A: header values must not contain CR, LF or NUL/);
  });

  test('--help teaches: options, an example config and exit codes', async () => {
    const run = runCli(['serve', '--help']);
    assert.equal(await run.exited, 0);
    for (const want of ['--listen', '--config', '--data', 'ws_port', 'SIGTERM', 'Exit codes']) assert.ok(run.stdout().includes(want), `help mentions ${want}`);
  });
});

describe('porthole serve: live reload and drain', () => {
  let a: WsUpstream;
  let b: WsUpstream;
  let c: WsUpstream;
  before(async () => {
    [a, b, c] = await Promise.all([wsUpstream(), wsUpstream(), wsUpstream()]);
  });
  after(async () => {
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  test('a reload that removes one app and adds another keeps a third app\'s tunnel open; an invalid reload keeps the old config', async () => {
    const dir = tempDir();
    const file = join(dir, 'porthole.yaml');
    writeFileSync(file, `apps:\n  - name: alpha\n    port: ${a.port}\n  - name: keep\n    port: ${c.port}\n`);
    const gw = await startServe(['--config', file, '--data', dir, '--log-format', 'json']);
    try {
      const tunnel = await openWs(`ws://127.0.0.1:${gw.port}/keep/`);
      tunnel.send('before');
      assert.equal((await nextMessage(tunnel)).data.toString(), 'before');
      assert.equal((await fetch(`${gw.url}/alpha/`)).status, 200);

      // Watched file replaced: alpha goes, beta comes.
      replaceFile(file, `apps:\n  - name: beta\n    port: ${b.port}\n  - name: keep\n    port: ${c.port}\n`);
      await waitFor(() => jsonLines(gw.stdout()).some((l) => l.event === 'config' && l.action === 'reloaded'), 10_000, 'reload');
      assert.equal((await fetch(`${gw.url}/alpha/`)).status, 404);
      assert.equal(await (await fetch(`${gw.url}/beta/x`)).text(), 'http-ok /x');
      tunnel.send('after reload');
      assert.equal((await nextMessage(tunnel)).data.toString(), 'after reload');

      // An invalid file is rejected, logged, and the old config stays.
      replaceFile(file, `apps:\n  - name: beta\n    port: ${b.port}\n    wsport: 1\n`);
      await waitFor(() => jsonLines(gw.stdout()).some((l) => l.event === 'config' && l.action === 'rejected'), 10_000, 'rejection');
      const rejected = jsonLines(gw.stdout()).find((l) => l.action === 'rejected')!;
      assert.match(String(rejected.error), /did you mean ws_port/);
      assert.equal((await fetch(`${gw.url}/beta/x`)).status, 200);
      assert.equal((await fetch(`${gw.url}/keep/x`)).status, 200);

      // SIGHUP reloads too (the file is fixed first, without waiting for the watcher).
      writeFileSync(file, `apps:\n  - name: gamma\n    port: ${b.port}\n  - name: keep\n    port: ${c.port}\n`);
      gw.child.kill('SIGHUP');
      await pollStatus(`${gw.url}/gamma/`, 200);
      tunnel.send('still open');
      assert.equal((await nextMessage(tunnel)).data.toString(), 'still open');
      tunnel.close();
      await closed(tunnel);
    } finally {
      await gw.stop();
    }
  });

  test('SIGTERM drains: the client gets a close frame 1001 and the process exits 0', async () => {
    const dir = tempDir();
    const file = join(dir, 'porthole.yaml');
    writeFileSync(file, `drain_timeout: 5s\napps:\n  - name: keep\n    port: ${c.port}\n`);
    const gw = await startServe(['--config', file, '--data', dir, '--log-format', 'json']);
    const ws = await openWs(`ws://127.0.0.1:${gw.port}/keep/`);
    ws.send('hi');
    await nextMessage(ws);
    const upstreamClose = new Promise<number>((ok) => [...c.wss.clients].at(-1)!.once('close', (code) => ok(code)));
    const closing = closed(ws);
    gw.child.kill('SIGTERM');
    const code = await closing;
    assert.equal(code.code, 1001);
    assert.match(code.reason, /shutting down/);
    assert.equal(await upstreamClose, 1001);
    assert.equal(await gw.exited, 0);
    const events = jsonLines(gw.stdout());
    assert.ok(events.some((e) => e.event === 'gateway' && e.action === 'draining'));
    const t = events.find((e) => e.event === 'tunnel.close');
    assert.equal(t?.closedBy, 'gateway');
    assert.equal(t?.closeCode, 1001);
  });

  test('logs are one JSON line per event: request, upgrade, tunnel close', async () => {
    const dir = tempDir();
    const file = join(dir, 'porthole.yaml');
    writeFileSync(file, `apps:\n  - name: keep\n    port: ${c.port}\n`);
    const gw = await startServe(['--config', file, '--data', dir]);
    try {
      await (await fetch(`${gw.url}/keep/page`)).text();
      const ws = await openWs(`ws://127.0.0.1:${gw.port}/keep/sock`);
      ws.send('x');
      await nextMessage(ws);
      ws.close(1000);
      await closed(ws);
      await waitFor(() => jsonLines(gw.stdout()).some((l) => l.event === 'tunnel.close'), 10_000, 'tunnel log');
      const lines = jsonLines(gw.stdout());
      const req = lines.find((l) => l.event === 'request')!;
      assert.equal(req.app, 'keep');
      assert.equal(req.method, 'GET');
      assert.equal(req.path, '/keep/page');
      assert.equal(req.status, 200);
      assert.equal(typeof req.ms, 'number');
      const up = lines.find((l) => l.event === 'upgrade')!;
      assert.equal(up.accepted, true);
      const t = lines.find((l) => l.event === 'tunnel.close')!;
      for (const k of ['ms', 'bytesIn', 'bytesOut', 'framesIn', 'framesOut']) assert.equal(typeof t[k], 'number', k);
      assert.equal(t.closeCode, 1000);
      assert.equal(t.closedBy, 'client');
    } finally {
      await gw.stop();
    }
  });
});

async function pollStatus(url: string, want: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 0;
  while (Date.now() < deadline) {
    last = (await fetch(url)).status;
    if (last === want) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url}: status ${last}, wanted ${want}`);
}

test('log.requests: false drops request lines but keeps upgrade and tunnel lines', async () => {
  const up = await wsUpstream();
  const dir = tempDir();
  const file = join(dir, 'porthole.yaml');
  writeFileSync(file, `log:\n  requests: false\napps:\n  - name: q\n    port: ${up.port}\n`);
  const gw = await startServe(['--config', file, '--data', dir, '--log-format', 'json']);
  try {
    assert.equal((await fetch(`${gw.url}/q/x`)).status, 200);
    const ws = await openWs(`ws://127.0.0.1:${gw.port}/q/`);
    ws.close(1000);
    await closed(ws);
    await waitFor(() => jsonLines(gw.stdout()).some((l) => l.event === 'tunnel.close'), 10_000, 'tunnel log');
    const events = jsonLines(gw.stdout()).map((l) => l.event);
    assert.ok(!events.includes('request'), `no request lines: ${events.join(',')}`);
    assert.ok(events.includes('upgrade'));
  } finally {
    await gw.stop();
    await up.close();
  }
});

test('a log reader that goes away (EPIPE on stdout) does not take the gateway down', async () => {
  const up = await wsUpstream();
  const dir = tempDir();
  const file = join(dir, 'porthole.yaml');
  writeFileSync(file, `apps:\n  - name: e\n    port: ${up.port}\n`);
  const gw = await startServe(['--config', file, '--data', dir, '--log-format', 'json']);
  try {
    assert.equal((await fetch(`${gw.url}/e/one`)).status, 200);
    gw.child.stdout!.destroy(); // the reader of the log is gone
    for (let i = 0; i < 50; i++) assert.equal((await fetch(`${gw.url}/e/${i}`)).status, 200);
    assert.equal(gw.child.exitCode, null, 'still running');
    assert.equal((await fetch(`${gw.url}/_porthole/health`)).status, 200);
  } finally {
    await gw.stop();
    await up.close();
  }
});
