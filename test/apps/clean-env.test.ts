// The app's process gets a clean environment: an allowlist of the gateway's
// variables, the app's env, then PORT, WS_PORT, APP_NAME, BASE_PATH and the
// run's marker PORTHOLE_RUN — never the gateway's secrets.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanEnv, ENV_ALLOWLIST, isRunMarker, newRunMarker, RUN_MARKER_VAR } from '../../src/apps/clean-env.js';
import { app, get, harness, NODE_SERVER, procEnviron } from '../fixtures/apps/harness.js';

const gatewayEnv = {
  ...process.env,
  PORTHOLE_TOKEN: 'ph-secret-token',
  SECRET_X: 'do-not-leak',
  AWS_SECRET_ACCESS_KEY: 'nope',
  HTTPS_PROXY: 'http://user:pass@proxy:3128',
  DISPLAY: ':0',
  LANG: 'C.UTF-8',
  LC_TIME: 'C',
};

test('the child sees PORT, WS_PORT, APP_NAME, BASE_PATH and its env, and no gateway secret', async (t) => {
  const h = harness(t, { baseEnv: gatewayEnv });
  const wsPort = await h.sup.allocPort();
  await h.sup.set(
    app({ name: 'envy', cmd: NODE_SERVER, ws_port: wsPort, env: { GREETING: 'hello', DISPLAY: ':99', PORT: '1' } }),
  );
  const { pid, port } = await h.sup.start('envy');
  assert.equal(await h.sup.waitReady('envy', 20_000), 'running');

  // What the kernel handed the process, and what the app itself reports.
  const fromProc = procEnviron(pid!);
  const fromApp = JSON.parse((await get(port!, '/env')).body) as Record<string, string>;
  for (const env of [fromProc, fromApp]) {
    assert.equal(env.PORTHOLE_TOKEN, undefined);
    assert.equal(env.SECRET_X, undefined);
    assert.equal(env.AWS_SECRET_ACCESS_KEY, undefined);
    assert.equal(env.HTTPS_PROXY, undefined);
    assert.equal(env.PORT, String(port), "the app's env cannot move PORT away from the routed port");
    assert.equal(env.WS_PORT, String(wsPort));
    assert.equal(env.APP_NAME, 'envy');
    assert.equal(env.BASE_PATH, '/envy/');
    assert.ok(isRunMarker(env.PORTHOLE_RUN), `a fresh run marker: ${env.PORTHOLE_RUN}`);
    assert.equal(env.GREETING, 'hello');
    assert.equal(env.DISPLAY, ':99', "the app's DISPLAY, never the gateway's");
    assert.equal(env.LANG, 'C.UTF-8');
    assert.equal(env.LC_TIME, 'C');
    assert.equal(env.PATH, process.env.PATH);
  }
  // Nothing beyond the allowlist, the app's env and the five variables
  // (PWD is the shell's own, exported when it execs).
  const allowed = new Set([...ENV_ALLOWLIST, 'GREETING', 'DISPLAY', 'PORT', 'WS_PORT', 'APP_NAME', 'BASE_PATH', RUN_MARKER_VAR, 'PWD']);
  const extra = Object.keys(fromProc).filter((k) => !allowed.has(k) && !k.startsWith('LC_'));
  assert.deepEqual(extra, []);
});

test('cleanEnv: no DISPLAY unless the app sets one; BASE_PATH follows prefix; a PATH even without one', () => {
  const run = newRunMarker();
  const env = cleanEnv({ DISPLAY: ':0', HOME: '/root', PORTHOLE_TOKEN: 't' }, { name: 'vnc', prefix: '/tools/vnc', port: 9001, run });
  assert.deepEqual(env, {
    HOME: '/root',
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    PORT: '9001',
    APP_NAME: 'vnc',
    BASE_PATH: '/tools/vnc/',
    PORTHOLE_RUN: run,
  });
});

test('cleanEnv: neither the app\'s env nor the gateway\'s sets, clears or forges PORTHOLE_RUN', () => {
  const run = newRunMarker();
  assert.ok(isRunMarker(run));
  assert.notEqual(newRunMarker(), run, 'fresh per run');
  for (const forged of ['', 'forged', newRunMarker()]) {
    const env = cleanEnv({ PORTHOLE_RUN: forged, PATH: '/bin' }, { name: 'a', env: { PORTHOLE_RUN: forged }, run });
    assert.equal(env.PORTHOLE_RUN, run);
  }
});
