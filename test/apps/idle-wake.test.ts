// wake_on_request (issue 12, section 3): a request for a stopped app starts it; API clients and
// WebSocket upgrades are held until it is ready and then answered by the app as if it had been
// running; many requests at once start it once; a hand stop sticks; a wake that fails says why
// and is not retried by every request.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import WebSocket from 'ws';
import { request } from '../helpers/http.js';
import { closed, nextMessage, openWs, sleep } from '../helpers/net.js';
import { freePort, sleepAppCmd, startSleepGateway } from '../helpers/sleep-app.js';

const JSON_ACCEPT = { Accept: 'application/json' };

// Three at a time: every test has its own gateway and apps, and most of each is waiting for apps to start or stop.
describe('wake_on_request', { concurrency: 3 }, () => {
  test('an API client (Accept: application/json) asking a sleeping app is held while it starts and gets the app\'s own answer', async (t) => {
    const gw = await startSleepGateway();
    t.after(() => gw.cleanup());
    // Listens 1.5 s after it is spawned: the request must wait for readiness, not just the spawn.
    assert.equal((await gw.webapp({ action: 'register', name: 'api', port: await freePort(), cmd: sleepAppCmd({ DELAY_MS: 1500 }), wake_on_request: true })).status, 200);
    assert.equal((await gw.state('api')).state, 'stopped');

    const sent = Date.now();
    const r = await request(`${gw.url}/api/hello`, { headers: JSON_ACCEPT, timeoutMs: 30_000 });
    const took = Date.now() - sent;
    assert.equal(r.status, 200, r.text);
    const now = await gw.state('api');
    assert.equal(now.state, 'running');
    assert.match(r.text, new RegExp(`app api pid ${now.pid}`), 'answered by the app itself');
    assert.ok(took >= 1400, `held ${took} ms: until the app was ready`);
    assert.equal(r.headers['x-porthole-error'], undefined);

    const starting = gw.appEvents('api').find((e) => e.state === 'starting');
    assert.equal(starting?.message, 'woken by a request (wake_on_request)', JSON.stringify(gw.appEvents('api')));
    assert.ok((await gw.appLog('api')).includes('[porthole] woken by a request (wake_on_request)'));
  });

  test('a WebSocket opened to a sleeping app connects once the app is ready, and its messages echo', async (t) => {
    const gw = await startSleepGateway();
    t.after(() => gw.cleanup());
    await gw.webapp({ action: 'register', name: 'sock', port: await freePort(), cmd: sleepAppCmd({ DELAY_MS: 1500 }), wake_on_request: true, idle_stop: '1s' });
    assert.equal((await gw.state('sock')).state, 'stopped');
    const sent = Date.now();
    const ws = await openWs(`${gw.url.replace('http', 'ws')}/sock/`);
    t.after(() => ws.terminate());
    assert.ok(Date.now() - sent >= 1400, 'the handshake was held until the app was ready');
    ws.send('hello after waking');
    assert.equal((await nextMessage(ws)).data.toString(), 'hello after waking');
    ws.send(Buffer.from([1, 2, 3]));
    const bin = await nextMessage(ws);
    assert.ok(bin.isBinary);
    assert.deepEqual([...bin.data], [1, 2, 3]);
    // And the open tunnel keeps the woken app awake past its idle_stop.
    await sleep(2500);
    assert.equal((await gw.state('sock')).state, 'running');
    ws.close(1000);
    await closed(ws);
    await gw.until('sock', 'stopped', 10_000);
  });

  test('many requests and WebSockets at once to a sleeping app start it once, and every one is answered by that one process', async (t) => {
    const gw = await startSleepGateway();
    t.after(() => gw.cleanup());
    await gw.webapp({ action: 'register', name: 'crowd', port: await freePort(), cmd: sleepAppCmd({ DELAY_MS: 800 }), wake_on_request: true });
    const wsUrl = `${gw.url.replace('http', 'ws')}/crowd/`;
    const [answers, sockets] = await Promise.all([
      Promise.all(Array.from({ length: 40 }, (_, i) => request(`${gw.url}/crowd/n${i}`, { headers: JSON_ACCEPT, timeoutMs: 30_000 }))),
      Promise.all(Array.from({ length: 8 }, () => openWs(wsUrl))),
    ]);
    t.after(() => sockets.forEach((s) => s.terminate()));
    const { pid } = await gw.state('crowd');
    for (const r of answers) {
      assert.equal(r.status, 200, r.text);
      assert.match(r.text, new RegExp(`pid ${pid}`));
    }
    for (const [i, ws] of sockets.entries()) {
      ws.send(`m${i}`);
      assert.equal((await nextMessage(ws)).data.toString(), `m${i}`);
    }
    const started = (await gw.appLog('crowd')).filter((l) => l.startsWith('[porthole] started pid'));
    assert.equal(started.length, 1, `one process started: ${started.join(' | ')}`);
    assert.equal(gw.appEvents('crowd').filter((e) => e.state === 'starting').length, 1);
  });

  test('a request that arrives while the app is stopping for idleness waits for the stop, then wakes it again', async (t) => {
    const gw = await startSleepGateway();
    t.after(() => gw.cleanup());
    // The app takes 1.5 s to exit after SIGTERM: a window in which the gateway has decided to stop it.
    await gw.webapp({ action: 'register', name: 'slow', port: await freePort(), cmd: sleepAppCmd({ TERM_DELAY_MS: 1500 }), idle_stop: '1s', wake_on_request: true });
    await gw.webapp({ action: 'start', name: 'slow' });
    const first = await gw.until('slow', 'running');
    await gw.until('slow', 'stopping', 10_000);
    const r = await request(`${gw.url}/slow/`, { headers: JSON_ACCEPT, timeoutMs: 30_000 });
    assert.equal(r.status, 200, r.text);
    const now = await gw.state('slow');
    assert.equal(now.state, 'running');
    assert.notEqual(now.pid, first.pid, 'a new process: the stopping one finished stopping first');
    assert.match(r.text, new RegExp(`pid ${now.pid}`));
  });

  test('an app stopped by hand stays stopped: requests get 503 saying so until it is started by hand, then idle stops are woken again', async (t) => {
    const gw = await startSleepGateway();
    t.after(() => gw.cleanup());
    await gw.webapp({ action: 'register', name: 'hand', port: await freePort(), cmd: sleepAppCmd(), wake_on_request: true, idle_stop: '1s' });
    await gw.webapp({ action: 'start', name: 'hand' });
    await gw.until('hand', 'running');
    assert.equal((await gw.api('POST', '/_porthole/api/apps/hand/stop')).status, 200);

    const r = await request(`${gw.url}/hand/`, { headers: JSON_ACCEPT });
    assert.equal(r.status, 503);
    const err = JSON.parse(r.text).error;
    assert.equal(err.code, 'PH_ERR_APP_STOPPED');
    assert.match(err.message, /stopped by hand: requests do not wake it until it is started again \(porthole apps start hand\)/);
    const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/hand/`);
    const close = await closed(ws);
    assert.equal(close.code, 1013);
    assert.match(close.reason, /stopped by hand/);
    const browser = await request(`${gw.url}/hand/`, { headers: { Accept: 'text/html' } });
    assert.equal(browser.status, 503);
    assert.equal(browser.headers['x-porthole-error'], 'PH_ERR_APP_STOPPED', 'an error page, not the waiting page');
    assert.equal((await gw.state('hand')).state, 'stopped');

    // Started by hand: the hand stop is forgotten; its idle stop is woken by the next request.
    await gw.webapp({ action: 'start', name: 'hand' });
    await gw.until('hand', 'running');
    await gw.until('hand', 'stopped', 10_000);
    const woken = await request(`${gw.url}/hand/`, { headers: JSON_ACCEPT, timeoutMs: 30_000 });
    assert.equal(woken.status, 200, woken.text);
  });

  test('a wake that fails answers 503 with why, and the requests that follow get that answer instead of each spawning a process', async (t) => {
    const gw = await startSleepGateway();
    t.after(() => gw.cleanup());
    await gw.webapp({ action: 'register', name: 'broken', port: await freePort(), cmd: sleepAppCmd({ EXIT_CODE: 3 }), wake_on_request: true, restart: 'never' });
    const r = await request(`${gw.url}/broken/`, { headers: JSON_ACCEPT, timeoutMs: 30_000 });
    assert.equal(r.status, 503);
    const err = JSON.parse(r.text).error;
    assert.equal(err.code, 'PH_ERR_APP_STOPPED');
    assert.match(err.message, /app broken did not wake: exited with code 3/);
    const again = await Promise.all(Array.from({ length: 5 }, () => request(`${gw.url}/broken/`, { headers: JSON_ACCEPT })));
    for (const a of again) {
      assert.equal(a.status, 503);
      assert.match(JSON.parse(a.text).error.message, /did not wake: exited with code 3 .*\(requests wake it again in \d+ s\)/);
    }
    const started = (await gw.appLog('broken')).filter((l) => l.startsWith('[porthole] started pid'));
    assert.equal(started.length, 1, 'one attempt, not one per request');
  });

  test('a woken app that is not ready within start_timeout: the held request gets 503 PH_ERR_APP_STARTING', async (t) => {
    const gw = await startSleepGateway();
    t.after(() => gw.cleanup());
    await gw.webapp({ action: 'register', name: 'sluggish', port: await freePort(), cmd: sleepAppCmd({ DELAY_MS: 20_000 }), wake_on_request: true, start_timeout: '1500ms' });
    const sent = Date.now();
    const r = await request(`${gw.url}/sluggish/`, { headers: JSON_ACCEPT, timeoutMs: 30_000 });
    assert.equal(r.status, 503);
    assert.equal(JSON.parse(r.text).error.code, 'PH_ERR_APP_STARTING');
    const took = Date.now() - sent;
    assert.ok(took >= 1400 && took < 6000, `held ${took} ms: start_timeout, not longer`);
  });

  test('only requests that pass access control wake an app: a request without the token gets 401 and leaves it asleep', async (t) => {
    const token = 'wake-token-0123456789abcdef';
    const config = [
      'auth_tokens:',
      `  - { name: agent, sha256: ${createHash('sha256').update(token).digest('hex')} }`,
      'apps:',
      '  - name: guarded',
      `    cmd: ${JSON.stringify(sleepAppCmd())}`,
      '    auth: token',
      '    wake_on_request: true',
      '',
    ].join('\n');
    const gw = await startSleepGateway({ config });
    t.after(() => gw.cleanup());
    const anon = await request(`${gw.url}/guarded/`, { headers: JSON_ACCEPT });
    assert.equal(anon.status, 401);
    const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/guarded/`);
    assert.equal((await closed(ws)).code, 1008);
    const browser = await request(`${gw.url}/guarded/`, { headers: { Accept: 'text/html' } });
    assert.notEqual(browser.headers['x-porthole-error'], 'PH_ERR_APP_WAKING');
    await sleep(300);
    assert.equal((await gw.state('guarded')).state, 'stopped', 'refused requests started nothing');
    assert.equal((await gw.appLog('guarded')).filter((l) => l.startsWith('[porthole] started pid')).length, 0);

    const r = await request(`${gw.url}/guarded/`, { headers: { ...JSON_ACCEPT, Authorization: `Bearer ${token}` }, timeoutMs: 30_000 });
    assert.equal(r.status, 200, r.text);
    assert.equal((await gw.state('guarded')).state, 'running');
  });

  test('a sleeping app whose allocated port another program took meanwhile wakes on a new port: requests never reach the other program', async (t) => {
    const gw = await startSleepGateway();
    t.after(() => gw.cleanup());
    await gw.webapp({ action: 'register', name: 'moved', cmd: sleepAppCmd(), wake_on_request: true });
    const { port } = await gw.state('moved');
    assert.equal(typeof port, 'number');
    // Another program listens on the port the sleeping app was given.
    const squatter = http.createServer((_req, res) => res.end('not the app'));
    await new Promise<void>((ok) => squatter.listen(port, '127.0.0.1', ok));
    t.after(() => squatter.close());

    const [r, ws] = await Promise.all([request(`${gw.url}/moved/`, { headers: JSON_ACCEPT, timeoutMs: 30_000 }), openWs(`${gw.url.replace('http', 'ws')}/moved/`)]);
    t.after(() => ws.terminate());
    const now = await gw.state('moved');
    assert.equal(now.state, 'running');
    assert.notEqual(now.port, port, 'given a free port');
    assert.equal(r.status, 200, r.text);
    assert.match(r.text, new RegExp(`app moved pid ${now.pid}`), 'the held request went to the woken app');
    ws.send('to the app');
    assert.equal((await nextMessage(ws)).data.toString(), 'to the app');
    assert.match((await request(`${gw.url}/moved/`)).text, /app moved pid/);
  });

  test('a sleeping app whose own port (port: in its definition) is taken does not wake: 503 says which port and why', async (t) => {
    const gw = await startSleepGateway();
    t.after(() => gw.cleanup());
    const squatter = http.createServer((_req, res) => res.end('not the app'));
    await new Promise<void>((ok) => squatter.listen(0, '127.0.0.1', ok));
    t.after(() => squatter.close());
    const port = (squatter.address() as AddressInfo).port;
    await gw.webapp({ action: 'register', name: 'fixed', cmd: sleepAppCmd(), port, wake_on_request: true });
    const r = await request(`${gw.url}/fixed/`, { headers: JSON_ACCEPT, timeoutMs: 30_000 });
    assert.equal(r.status, 503, r.text);
    assert.match(JSON.parse(r.text).error.message, new RegExp(`did not wake: port ${port} is in use by another program`));
    assert.equal((await gw.state('fixed')).state, 'stopped');
  });
});
