// idle_stop (issue 12, section 3): an app Porthole runs is stopped after that long with no
// request and no open tunnel, and says so; a request in flight or an open tunnel (however
// quiet) keeps it running, and its idle time counts from when the last one ended.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import WebSocket from 'ws';
import { request } from '../helpers/http.js';
import { closed, nextMessage, openWs, sleep, waitFor } from '../helpers/net.js';
import { freePort, sleepAppCmd, startSleepGateway } from '../helpers/sleep-app.js';

// Three at a time: every test has its own gateway and apps, and most of each is waiting out idle periods.
describe('idle_stop', { concurrency: 3 }, () => {
  test('an app with idle_stop: 1s is stopped about 1 s after its last request, and the stop is logged with the reason', async (t) => {
    const gw = await startSleepGateway();
    t.after(() => gw.cleanup());
    assert.equal((await gw.webapp({ action: 'register', name: 'nap', port: await freePort(), cmd: sleepAppCmd(), idle_stop: '1s', autostart: false })).status, 200);
    await gw.webapp({ action: 'start', name: 'nap' });
    const running = await gw.until('nap', 'running');

    // Requests every 300 ms for 2.5 s (more than two idle periods): never idle for 1 s, never stopped.
    const until = Date.now() + 2500;
    let last = 0;
    while (Date.now() < until) {
      await sleep(300);
      const r = await request(`${gw.url}/nap/`);
      last = Date.now();
      assert.equal(r.status, 200);
      assert.match(r.text, new RegExp(`pid ${running.pid}`));
    }
    assert.equal((await gw.state('nap')).state, 'running', 'requests keep it running');

    const stopped = await gw.until('nap', 'stopped', 10_000);
    const after = Date.now() - last;
    assert.ok(after >= 900, `stopped ${after} ms after the last request: not before its idle time`);
    assert.ok(after < 4000, `stopped ${after} ms after the last request`);
    assert.match(stopped.message, /stopped after 1s idle \(idle_stop: no request and no open tunnel\)/);

    // The gateway's `app` events say why (stopping, then stopped), and so does the app's own log.
    // Log lines reach stdout in batches (within 25 ms): wait for the stopped one.
    const events = await waitFor(() => { const e = gw.appEvents('nap'); return e.some((x) => x.state === 'stopped') && e; }, 5000, 'the stopped event in the log');
    assert.ok(events.some((e) => e.state === 'stopping' && /1s idle/.test(e.message)), JSON.stringify(events));
    assert.ok(events.some((e) => e.state === 'stopped' && /idle_stop/.test(e.message)), JSON.stringify(events));
    const log = await gw.appLog('nap');
    assert.ok(log.some((l) => l === '[porthole] stopped after 1s idle (idle_stop: no request and no open tunnel)'), log.join('\n'));

    // Without wake_on_request a stopped app answers as before: 503 PH_ERR_APP_STOPPED with the reason, WebSockets 1013.
    const r = await request(`${gw.url}/nap/`, { headers: { Accept: 'application/json' } });
    assert.equal(r.status, 503);
    assert.equal(JSON.parse(r.text).error.code, 'PH_ERR_APP_STOPPED');
    assert.match(JSON.parse(r.text).error.message, /idle_stop/);
    const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/nap/`);
    const close = await closed(ws);
    assert.equal(close.code, 1013);
    assert.equal((await gw.state('nap')).state, 'stopped', 'nothing woke it');
  });

  test('an open WebSocket keeps the app running through several idle periods without a message; its idle time counts from the close', async (t) => {
    const gw = await startSleepGateway();
    t.after(() => gw.cleanup());
    await gw.webapp({ action: 'register', name: 'chat', port: await freePort(), cmd: sleepAppCmd(), idle_stop: '1s' });
    await gw.webapp({ action: 'start', name: 'chat' });
    const { pid } = await gw.until('chat', 'running');
    const ws = await openWs(`${gw.url.replace('http', 'ws')}/chat/`);
    t.after(() => ws.terminate());

    // Quiet for 4 idle periods: not a frame either way (no ping_interval set).
    await sleep(4000);
    const during = await gw.state('chat');
    assert.equal(during.state, 'running', 'an open tunnel is use for as long as it is open');
    assert.equal(during.pid, pid, 'the same process: never stopped and started again');
    ws.send('still here');
    assert.equal((await nextMessage(ws)).data.toString(), 'still here', 'the tunnel still works');

    ws.close(1000);
    await closed(ws);
    const closedAt = Date.now();
    await gw.until('chat', 'stopped', 10_000);
    const after = Date.now() - closedAt;
    assert.ok(after >= 900, `stopped ${after} ms after the tunnel closed: its idle time counts from the close`);
  });

  test('a request in flight longer than idle_stop (a long download) keeps the app running until it ends', async (t) => {
    const gw = await startSleepGateway();
    t.after(() => gw.cleanup());
    await gw.webapp({ action: 'register', name: 'dl', port: await freePort(), cmd: sleepAppCmd(), idle_stop: '1s' });
    await gw.webapp({ action: 'start', name: 'dl' });
    await gw.until('dl', 'running');
    // 3.5 s of streamed answer: more than three idle periods with the request in flight.
    const r = await request(`${gw.url}/dl/slow?ms=3500`);
    const endedAt = Date.now();
    assert.equal(r.status, 200);
    assert.match(r.text, /done\n$/, 'the whole answer arrived: the app was not stopped under it');
    assert.equal((await gw.state('dl')).state, 'running');
    await gw.until('dl', 'stopped', 10_000);
    assert.ok(Date.now() - endedAt >= 900, 'idle time counts from the end of the request');
  });

  test('an open bridge connection (WebSocket to TCP) keeps a bridged app running through several idle periods', async (t) => {
    const gw = await startSleepGateway();
    t.after(() => gw.cleanup());
    const port = await freePort();
    // A TCP echo server run by Porthole, reached through the built-in bridge.
    const cmd = `exec ${process.execPath} -e "require('net').createServer((s) => s.pipe(s)).listen(${port}, '127.0.0.1'); process.on('SIGTERM', () => process.exit(0))"`;
    const reg = await gw.webapp({ action: 'register', name: 'tcp', cmd, bridge: `127.0.0.1:${port}`, idle_stop: '1s' });
    assert.equal(reg.status, 200, JSON.stringify(reg.body));
    await gw.webapp({ action: 'start', name: 'tcp' });
    const { pid } = await gw.until('tcp', 'running');
    const ws = await openWs(`${gw.url.replace('http', 'ws')}/tcp/`);
    t.after(() => ws.terminate());
    await sleep(3500);
    const during = await gw.state('tcp');
    assert.equal(during.state, 'running');
    assert.equal(during.pid, pid);
    ws.send(Buffer.from('bytes'));
    assert.equal((await nextMessage(ws)).data.toString(), 'bytes');
    ws.close(1000);
    await gw.until('tcp', 'stopped', 10_000);
  });

  test('idle_stop added to a running app by a new registration applies at once; idle_stop and wake_on_request need a cmd', async (t) => {
    const gw = await startSleepGateway();
    t.after(() => gw.cleanup());
    const latePort = await freePort();
    await gw.webapp({ action: 'register', name: 'late', port: latePort, cmd: sleepAppCmd() });
    await gw.webapp({ action: 'start', name: 'late' });
    const { pid } = await gw.until('late', 'running');
    await sleep(1200);
    assert.equal((await gw.state('late')).state, 'running', 'no idle_stop: never stopped');
    const re = await gw.webapp({ action: 'register', name: 'late', port: latePort, cmd: sleepAppCmd(), idle_stop: '1s' });
    assert.equal(re.status, 200);
    assert.equal(re.body.app.pid, pid, 'idle_stop does not restart a running app');
    await gw.until('late', 'stopped', 10_000);

    const bad = await gw.webapp({ action: 'register', name: 'ext', port: 9, idle_stop: '1s', wake_on_request: true });
    assert.equal(bad.status, 400);
    const problems = JSON.stringify(bad.body);
    assert.match(problems, /idle_stop: only for an app with cmd/);
    assert.match(problems, /wake_on_request: only for an app with cmd/);
    const zero = await gw.webapp({ action: 'register', name: 'zero', cmd: 'true', idle_stop: 0 });
    assert.equal(zero.status, 400);
    assert.match(JSON.stringify(zero.body), /idle_stop: 0 would stop the app/);
  });

  test('idle_stop added to a config-file app by a reload (SIGHUP) applies to the running app', async (t) => {
    const port = await freePort();
    const app = (extra: string) => ['apps:', '  - name: filed', `    port: ${port}`, `    cmd: ${JSON.stringify(sleepAppCmd())}`, '    autostart: true', extra, ''].join('\n');
    const gw = await startSleepGateway({ config: app('') });
    t.after(() => gw.cleanup());
    const { pid } = await gw.until('filed', 'running');
    await sleep(1200);
    assert.equal((await gw.state('filed')).state, 'running');
    writeFileSync(join(gw.dataDir, 'porthole.yaml'), app('    idle_stop: 1s'));
    gw.child.kill('SIGHUP');
    const stopped = await gw.until('filed', 'stopped', 10_000);
    assert.match(stopped.message, /stopped after 1s idle/);
    assert.equal(stopped.last_exit !== null, true);
    await waitFor(() => gw.appEvents('filed').some((e) => e.state === 'stopping' && e.pid === pid), 5000, 'the stopping event in the log');
  });
});
