// Readiness failures name their cause (issue 8, new-user item 4): the app's
// state carries the last probe's result, and the 503, the WebSocket close
// reason, the app's log and the `app` event all say it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { appCmd, startAdmin } from '../helpers/admin.js';
import { jsonLines } from '../helpers/cli.js';
import { wsCloseOf } from '../helpers/net.js';
import { HTTP_SERVER, waitFor } from '../fixtures/apps/harness.js';

const fixture = (env: string) => `${env} exec ${JSON.stringify(process.execPath)} ${JSON.stringify(HTTP_SERVER)}`;

test('a health_path answering 404 is named in the state, the 503, the close reason, the log and the app event', async (t) => {
  const gw = await startAdmin();
  t.after(() => gw.cleanup());
  const reg = await gw.webapp({ action: 'register', name: 'sick', cmd: fixture('HEALTH_STATUS=404'), health_path: '/health', start_timeout: '3s', restart: 'never' });
  assert.equal(reg.status, 200, JSON.stringify(reg.body));
  assert.equal((await gw.webapp({ action: 'start', name: 'sick' })).status, 200);

  const starting = await waitFor('last_probe', async () => {
    const app = (await gw.api('GET', '/_porthole/api/apps/sick')).body.app;
    return app.last_probe === 'health_path /health answered 404' ? app : undefined;
  }, 10_000);
  assert.equal(starting.state, 'starting');

  // Held while starting, then answered with the cause.
  const [page, close] = await Promise.all([
    fetch(`${gw.url}/sick/`, { headers: { Accept: 'application/json' } }),
    wsCloseOf(`${gw.url.replace('http', 'ws')}/sick/`),
  ]);
  assert.equal(page.status, 503);
  const body = (await page.json()) as { error: { message: string } };
  assert.match(body.error.message, /health_path \/health answered 404/);
  assert.equal(close.code, 1013);
  assert.match(close.reason, /health_path \/health answered 404/);

  const after = await waitFor('stopped', async () => {
    const app = (await gw.api('GET', '/_porthole/api/apps/sick')).body.app;
    return app.state === 'stopped' ? app : undefined;
  }, 10_000);
  assert.match(after.message, /not ready after 3s: health_path \/health answered 404/);
  const logs = (await gw.api('GET', '/_porthole/api/apps/sick/logs')).body.lines as string[];
  assert.ok(logs.some((l) => /\[porthole\] not ready yet: health_path \/health answered 404/.test(l)), logs.join('\n'));
  assert.ok(logs.some((l) => /\[porthole\] not ready after 3s: health_path \/health answered 404: stopping it/.test(l)), logs.join('\n'));
  // Log lines reach stdout in batches (within 25 ms): wait for the one that names the cause.
  const events = await waitFor('an app event naming the cause', async () => {
    const found = jsonLines(gw.stdout()).filter((l) => l.event === 'app' && l.app === 'sick' && /answered 404/.test(String(l.message)));
    return found.length > 0 ? found : undefined;
  }, 5000);
  assert.ok(events.length >= 1, 'an app event names the cause');
});

test('a port nothing listens on is named: "port N refused"', async (t) => {
  const gw = await startAdmin();
  t.after(() => gw.cleanup());
  await gw.webapp({ action: 'register', name: 'mute', cmd: 'exec sleep 300', start_timeout: '20s' });
  const started = (await gw.webapp({ action: 'start', name: 'mute' })).body.app;
  const app = await waitFor('last_probe', async () => {
    const a = (await gw.api('GET', '/_porthole/api/apps/mute')).body.app;
    return a.last_probe ? a : undefined;
  }, 10_000);
  assert.equal(app.last_probe, `port ${started.port} refused`);
  // Ready clears it.
  await gw.webapp({ action: 'register', name: 'fine', cmd: appCmd() });
  await gw.webapp({ action: 'start', name: 'fine' });
  const fine = await waitFor('running', async () => {
    const a = (await gw.api('GET', '/_porthole/api/apps/fine')).body.app;
    return a.state === 'running' ? a : undefined;
  }, 15_000);
  assert.equal(fine.last_probe, undefined);
  // A quick start does not fill the app's log with the refusals every start sees first.
  const lines = (await gw.api('GET', '/_porthole/api/apps/fine/logs')).body.lines as string[];
  assert.ok(!lines.some((l) => l.includes('not ready yet')), lines.join('\n'));
});
