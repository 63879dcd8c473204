// What `start` and the app state say when nothing can answer (issue 8,
// new-user item 5): a process that cannot be spawned is an error with a code,
// and an external app's state says whether its port answers.
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { startAdmin } from '../helpers/admin.js';
import { closeServer, listen, sleep } from '../helpers/net.js';

test('start of an app whose cwd does not exist answers 500 PH_ERR_APP_SPAWN with the reason, not 200 "ok": true', async (t) => {
  const gw = await startAdmin();
  t.after(() => gw.cleanup());
  assert.equal((await gw.webapp({ action: 'register', name: 'nocwd', cmd: 'sleep 30', cwd: '/nonexistent/porthole-dir' })).status, 200);
  const webapp = await gw.webapp({ action: 'start', name: 'nocwd' });
  assert.equal(webapp.status, 500, JSON.stringify(webapp.body));
  assert.equal(webapp.body.ok, false);
  assert.equal(webapp.body.error.code, 'PH_ERR_APP_SPAWN');
  assert.match(webapp.body.error.message, /cwd \/nonexistent\/porthole-dir is not a directory/);
  const rest = await gw.api('POST', '/_porthole/api/apps/nocwd/restart');
  assert.equal(rest.status, 500);
  assert.equal(rest.body.error.code, 'PH_ERR_APP_SPAWN');
  const app = (await gw.api('GET', '/_porthole/api/apps/nocwd')).body.app;
  assert.equal(app.state, 'failed');
  assert.match(app.message, /not a directory/);
});

test('an external app (port, no cmd) is probed: ready false with the cause while nothing listens, true once something does', async (t) => {
  const gw = await startAdmin();
  const server = http.createServer((_req, res) => res.end('ext'));
  const port = await listen(server);
  await closeServer(server); // a port known to be free now
  t.after(() => gw.cleanup());

  assert.equal((await gw.webapp({ action: 'register', name: 'ext', port })).status, 200);
  const down = (await gw.webapp({ action: 'status', name: 'ext' })).body.app;
  assert.equal(down.state, 'external');
  assert.equal(down.ready, false);
  assert.equal(down.message, `port ${port} refused`);
  const listed = (await gw.api('GET', '/_porthole/api/apps')).body.apps as { name: string; ready: boolean }[];
  assert.equal(listed.find((a) => a.name === 'ext')?.ready, false);

  const up = http.createServer((_req, res) => res.end('ext'));
  up.listen(port, '127.0.0.1');
  t.after(() => closeServer(up));
  await new Promise((r) => up.once('listening', r));
  // The probe result is cached briefly (a list of many apps costs one connect each, not one per call).
  let ready = false;
  for (let i = 0; i < 50 && !ready; i++) {
    const app = (await gw.api('GET', '/_porthole/api/apps/ext')).body.app;
    ready = app.ready === true && app.state === 'external' && app.message === undefined;
    if (!ready) await sleep(100);
  }
  assert.ok(ready, 'ready once the port answers');
});
