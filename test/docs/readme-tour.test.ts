/**
 * The README's short tour, run as written, line by line, as a reader would
 * type it in a checkout: `npx porthole` is this checkout's CLI, the ports are
 * the tour's own (9001, 9002, 50000), the config file is written by the tour's
 * `printf`. Only the data directory is a temp one (XDG_DATA_HOME), and the
 * working directory is a scratch folder inside the checkout (so `npx` finds
 * the project's own `porthole`, never a registry package).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { listening, newRun, readRecipe, reserveFromEphemeral, ROOT, runRecipe } from '../helpers/recipe.js';

test('README tour: echo behind the gateway, a refused upstream as close 1014 with its reason, doctor names the cause', async (t) => {
  // 50000 is in the kernel's ephemeral range: no outgoing connection of a test running alongside may take it meanwhile.
  t.after(reserveFromEphemeral([50000]));
  for (const port of [9001, 9002, 50000]) assert.equal(await listening(port), false, `port ${port}, which the tour uses, is free`);
  const lines = readRecipe('README.md', 'tour');
  assert.equal(lines.length, 8, 'the test knows every line of the tour');
  mkdirSync(join(ROOT, '.porthole-data'), { recursive: true }); // git-ignored; absent in a fresh clone
  const scratch = mkdtempSync(join(ROOT, '.porthole-data/tour-'));
  const data = mkdtempSync(join(tmpdir(), 'porthole-tour-data-'));
  // The reader's environment: no PORTHOLE_URL or PORTHOLE_TOKEN, the CLI finds both itself.
  const { PORTHOLE_URL: _url, PORTHOLE_TOKEN: _token, ...inherited } = process.env;
  const env = { ...inherited, XDG_DATA_HOME: data };
  const run = newRun();
  t.after(async () => {
    await run.stop();
    for (const port of [9001, 50000]) {
      const deadline = Date.now() + 10_000;
      while ((await listening(port)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    }
    rmSync(scratch, { recursive: true, force: true });
    rmSync(data, { recursive: true, force: true });
  });
  const { outputs } = await runRecipe(lines, { cwd: scratch, env, portOf: (command) => Number(/--port (\d+)/.exec(command)?.[1] ?? 50000) }, run);

  // The tour's first bullet: the app at its own host name, at its root (a browser resolves
  // echo.localhost itself; here the Host header says it).
  const atHost = await new Promise<{ status?: number; body: string }>((ok, fail) => {
    http
      .get({ host: '127.0.0.1', port: 50000, path: '/', headers: { Host: 'echo.localhost:50000' } }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => ok({ status: res.statusCode, body }));
      })
      .on('error', fail);
  });
  assert.equal(atHost.status, 200, atHost.body);

  const [, , , echo, add, ghost, doctor, dashboard] = outputs;
  assert.equal(echo.status, 0, echo.out);
  assert.match(echo.out, /hello/);
  assert.equal(add.status, 0, add.out);
  assert.equal(ghost.status, 1, ghost.out);
  assert.match(ghost.out, /1014/);
  assert.match(ghost.out, /ghost: upstream 127\.0\.0\.1:9002 refused the connection/);
  assert.equal(doctor.status, 1, doctor.out);
  assert.match(doctor.out, /1014/);
  assert.match(doctor.out, /refused/);
  // The link logs a browser in: a session cookie, then the dashboard.
  assert.equal(dashboard.status, 0, dashboard.out);
  const link = dashboard.out.trim();
  assert.match(link, /^http:\/\/127\.0\.0\.1:50000\/_porthole\/\?login=[\w-]{40,}$/);
  const login = await fetch(link, { redirect: 'manual' });
  assert.equal(login.status, 303);
  assert.match(login.headers.get('set-cookie') ?? '', /^porthole_session=/);
});
