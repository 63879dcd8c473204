/**
 * docs/library.md's embedded server is examples/embedded-server.mjs, and that
 * file runs as written: a real child process (PORT=0 and DATA in a temp dir,
 * as the doc says) whose supervised app answers through the gateway, whose
 * admin API takes the token it printed, and whose SIGTERM drains and leaves
 * no app process behind.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { appCmd } from '../helpers/admin.js';
import { closed, nextMessage, openWs, waitFor } from '../helpers/net.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const EXAMPLE = 'examples/embedded-server.mjs';

/** Polls an async check every 100 ms until it gives a value. */
async function poll<T>(fn: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('the embedded-server block of docs/library.md is examples/embedded-server.mjs, byte for byte', () => {
  const doc = readFileSync(join(ROOT, 'docs/library.md'), 'utf8');
  const at = doc.indexOf(`<!-- example: ${EXAMPLE} -->`);
  assert.ok(at !== -1, `docs/library.md marks the example with <!-- example: ${EXAMPLE} -->`);
  const block = /```js\n([\s\S]*?)```/.exec(doc.slice(at));
  assert.ok(block, 'a ```js block follows the marker');
  assert.equal(block[1], readFileSync(join(ROOT, EXAMPLE), 'utf8'));
  assert.ok(block[1].split('\n').length <= 25, 'the example stays a short script');
});

test('the embedded-server example supervises its app, serves the admin API with its token, and drains on SIGTERM', async (t) => {
  const data = mkdtempSync(join(tmpdir(), 'porthole-embedded-'));
  const child = spawn(process.execPath, [join(ROOT, EXAMPLE)], { env: { ...process.env, PORT: '0', DATA: data }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | string>((ok) => child.on('exit', (code, signal) => ok(code ?? signal ?? -1)));
  const pids: number[] = [];
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    for (const pid of pids) if (alive(pid)) process.kill(-pid, 'SIGKILL');
    rmSync(data, { recursive: true, force: true });
  });

  const url = await waitFor(() => /ready on (http:\/\/\S+) /.exec(out)?.[1], 15_000, `the example to start:\n${out}\n${err}`);
  // Printed by console.log calls of their own after "ready on": they may come in a later read.
  const token = await waitFor(() => /admin token \(kept in (\S+)\): (\S+)/.exec(out), 5_000, `the token printed on the first start:\n${out}`);
  assert.equal(token[1], join(data, 'private', 'token'));
  assert.equal(readFileSync(token[1], 'utf8').trim(), token[2]);
  const api = (method: string, path: string, body?: unknown, auth = token[2]) =>
    fetch(`${url}${path}`, { method, headers: { Authorization: `Bearer ${auth}`, 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });

  // The admin API: refused without the token, listing the supervised app with it.
  assert.equal((await api('GET', '/_porthole/api/apps', undefined, 'wrong')).status, 401);
  const demo = await poll(
    async () => {
      const apps = (await (await api('GET', '/_porthole/api/apps')).json()) as { apps: { name: string; state: string; pid?: number }[] };
      const app = apps.apps.find((a) => a.name === 'demo');
      return app?.state === 'running' ? app : undefined;
    },
    15_000,
    'the demo app to run',
  );
  assert.ok(demo.pid);
  pids.push(demo.pid);
  assert.match(out, new RegExp(`demo is running \\(pid ${demo.pid}\\)`), 'the subscribe() line of the example');

  // The dashboard: the printed link logs a browser in once.
  const link = await waitFor(() => /dashboard \(the link logs in once\): (http:\/\/\S+)/.exec(out), 5_000, `the dashboard link printed:\n${out}`);
  assert.ok(link[1].startsWith(`${url}/_porthole/?login=`), link[1]);
  const login = await fetch(link[1], { redirect: 'manual' });
  assert.equal(login.status, 303);
  assert.match(login.headers.get('set-cookie') ?? '', /^porthole_session=/);
  assert.equal((await fetch(link[1], { redirect: 'manual' })).status, 401);

  // The supervised app answers through the gateway: its page and its WebSocket.
  const page = await fetch(`${url}/demo/`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /Porthole demo/);
  const ws = await openWs(`${url.replace('http', 'ws')}/demo/ws`);
  ws.send('hello');
  assert.equal((await nextMessage(ws)).data.toString(), 'echo: hello');

  // An app registered through the admin API is supervised too.
  const reg = await api('POST', '/webapp', { action: 'register', name: 'extra', cmd: appCmd(), autostart: true });
  assert.equal(reg.status, 200, await reg.clone().text());
  assert.equal((await api('POST', '/webapp', { action: 'start', name: 'extra' })).status, 200);
  const extra = await poll(
    async () => {
      const r = (await (await api('GET', '/_porthole/api/apps/extra')).json()) as { app?: { state: string; pid?: number }; state?: string; pid?: number };
      const a = r.app ?? r;
      return a.state === 'running' ? a : undefined;
    },
    15_000,
    'the registered app to run',
  );
  pids.push(extra.pid!);
  assert.match(await (await fetch(`${url}/extra/x`)).text(), /^app extra pid \d+ path \/x$/);

  // SIGTERM: the open tunnel gets 1001, the program exits 0, and no app process is left.
  const wsClosed = closed(ws);
  child.kill('SIGTERM');
  assert.equal((await wsClosed).code, 1001);
  assert.equal(await exited, 0, err);
  for (const pid of pids) await waitFor(() => !alive(pid), 5_000, `app pid ${pid} to be gone`);
});
