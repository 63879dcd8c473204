/**
 * Apps the primary runs, reached through `workers: 2` (docs/workers.md): a stopped app's
 * 503 is the primary's answer, a `wake_on_request` app is woken by the primary for a
 * request a worker took, and `idle_stop` counts the workers' requests (without their
 * reports the primary, which carries no traffic, would stop a busy app).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { appCmd, startAdmin, type AdminGateway } from '../helpers/admin.js';
import { sleep } from '../helpers/net.js';

async function get(url: string): Promise<{ status: number; code: string | null; body: string }> {
  const res = await fetch(url, { headers: { Accept: 'application/json', Connection: 'close' }, signal: AbortSignal.timeout(20_000) });
  return { status: res.status, code: res.headers.get('x-porthole-error'), body: await res.text() };
}

describe('workers: 2 and the apps the primary runs', () => {
  let gw: AdminGateway;
  before(async () => {
    gw = await startAdmin({
      config: `workers: 2
apps:
  - name: stopped
    cmd: ${JSON.stringify(appCmd({ APP_NAME: 'stopped' }))}
  - name: sleepy
    cmd: ${JSON.stringify(appCmd({ APP_NAME: 'sleepy' }))}
    wake_on_request: true
    idle_stop: 400ms
`,
    });
  });
  after(() => gw.cleanup());

  test('a stopped app: 503 PH_ERR_APP_STOPPED from every worker', async () => {
    for (let i = 0; i < 4; i++) {
      const res = await get(`${gw.url}/stopped/`);
      assert.equal(res.status, 503);
      assert.equal(res.code, 'PH_ERR_APP_STOPPED');
    }
  });

  test('wake_on_request: a request through a worker starts the app; idle_stop waits while the workers carry requests, then stops it', async () => {
    const first = await get(`${gw.url}/sleepy/x`);
    assert.equal(first.status, 200, first.body);
    assert.match(first.body, /^app sleepy pid (\d+) path \/x$/);
    const pid = /pid (\d+)/.exec(first.body)![1];
    // Busy for many idle_stop periods, and longer than the workers' report interval (1 s, longer
    // than this idle_stop): the app stays up, the same process. The primary asks the workers
    // what they carried before it stops an app, rather than going by their last report.
    for (const end = Date.now() + 3_000; Date.now() < end; await sleep(100)) {
      const res = await get(`${gw.url}/sleepy/busy`);
      assert.equal(res.status, 200);
      assert.match(res.body, new RegExp(`pid ${pid} `), 'not stopped and started again while in use');
    }
    // Left alone, it is stopped.
    let state = '';
    for (const end = Date.now() + 15_000; Date.now() < end && state !== 'stopped'; await sleep(250)) {
      state = (await gw.api('GET', '/_porthole/api/apps/sleepy')).body.app?.state ?? (await gw.api('GET', '/_porthole/api/apps/sleepy')).body.state;
    }
    assert.equal(state, 'stopped');
  });
});
