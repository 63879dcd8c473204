// A hand stop that races a wake (wake_on_request): whichever way the two meet in the app's
// queue, the app ends up stopped and stays stopped, and requests are told it was stopped by
// hand. In-process (createServer) so the stop can be issued at the exact moments that matter;
// the app is a real process and the requests real HTTP.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { createServer, type PortholeServer } from 'porthole';
import { request } from '../helpers/http.js';
import { freePort, sleepAppCmd } from '../helpers/sleep-app.js';

const JSON_ACCEPT = { Accept: 'application/json' };

async function serverWithSleeper(t: TestContext): Promise<{ server: PortholeServer; url: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-hand-race-'));
  const server = createServer({ listen: { port: 0 }, dataDir, config: { apps: [{ name: 'w', port: await freePort(), cmd: sleepAppCmd(), wake_on_request: true }] } });
  t.after(async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const { url } = await server.listen();
  assert.equal(server.supervisor.status('w')?.state, 'stopped');
  return { server, url };
}

/** What a request for the app gets now: the app's answer, or the error's code and message. */
async function ask(url: string): Promise<{ status: number; code?: string; message?: string }> {
  const r = await request(`${url}/w/`, { headers: JSON_ACCEPT, timeoutMs: 30_000 });
  if (r.status === 200) return { status: 200 };
  const err = JSON.parse(r.text).error;
  return { status: r.status, code: err.code, message: err.message };
}

test('a hand stop that comes while a wake is checking the ports: the wake does not start the app after it', async (t) => {
  const { server, url } = await serverWithSleeper(t);
  // The request's wake is under way (its port check is queued for the app) when the hand stop comes.
  const woken = server.registry.appGate('w', undefined);
  assert.ok(woken, 'a stopped app is woken');
  await server.registry.act('w', 'stop');
  const answer = await woken;
  assert.equal(answer?.code, 'PH_ERR_APP_STOPPED', 'the held request is told the app was stopped');
  assert.equal(server.supervisor.status('w')?.state, 'stopped', 'the wake did not start the app after the hand stop');
  // Not started and stopped again: called off before any process existed (an app's boot may do work).
  assert.deepEqual(server.supervisor.logs('w', 100).filter((l) => l.startsWith('[porthole] started pid')), []);
  const later = await ask(url);
  assert.equal(later.status, 503);
  assert.match(later.message ?? '', /stopped by hand/);
  assert.equal(server.supervisor.status('w')?.state, 'stopped');
});

test('a hand stop that comes once the wake has asked for the start: the app is stopped, and requests are told it was stopped by hand', async (t) => {
  const { server, url } = await serverWithSleeper(t);
  const { supervisor, registry } = server;
  // The hand stop is issued right after the wake queues its start (before the start runs).
  const start = supervisor.start.bind(supervisor);
  let stop: Promise<unknown> | undefined;
  supervisor.start = (name, reason, still) => {
    const started = start(name, reason, still);
    if (reason?.includes('wake_on_request')) stop ??= registry.act(name, 'stop');
    return started;
  };
  const answer = await ask(url);
  assert.ok(stop, 'the wake asked for a start');
  await stop;
  assert.equal(answer.status, 503);
  assert.equal(supervisor.status('w')?.state, 'stopped');
  assert.deepEqual(supervisor.logs('w', 100).filter((l) => l.startsWith('[porthole] started pid')), [], 'the start it overtook was called off before any process existed');
  // The hand stop sticks: not undone by the start it overtook, so the next request does not wake the app.
  const later = await ask(url);
  assert.equal(later.status, 503);
  assert.match(later.message ?? '', /stopped by hand/);
  assert.equal(supervisor.status('w')?.state, 'stopped');
});
