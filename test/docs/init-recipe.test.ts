/**
 * docs/toolkit.md's `porthole init` recipe, run as written, as one shell
 * script (its `cd` carries over), in a scratch folder inside the checkout so
 * `npx porthole` is this checkout's CLI (never a registry package), with
 * `npm install` from the registry. The gateway is a real `porthole serve`
 * of the test: its address replaces the recipe's 127.0.0.1:50000, and
 * `porthole apps add` finds it and its token through PORTHOLE_URL and
 * PORTHOLE_TOKEN (the recipe's reader has them at their defaults).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startAdmin, type AdminGateway } from '../helpers/admin.js';
import { processesIn, until } from '../helpers/init-app.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The fenced block after `<!-- recipe: init -->` in docs/toolkit.md. */
function recipeBlock(): string {
  const text = readFileSync(join(ROOT, 'docs/toolkit.md'), 'utf8');
  const at = text.indexOf('<!-- recipe: init -->');
  assert.ok(at !== -1, 'docs/toolkit.md has <!-- recipe: init -->');
  const m = /```sh\n([\s\S]*?)```/.exec(text.slice(at));
  assert.ok(m, 'a sh block follows it');
  return m[1];
}

let gw: AdminGateway;
let scratch: string;
before(async () => {
  mkdirSync(join(ROOT, '.porthole-data'), { recursive: true }); // git-ignored
  scratch = mkdtempSync(join(ROOT, '.porthole-data/init-'));
  gw = await startAdmin();
});
after(async () => {
  await gw?.cleanup();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

test('docs/toolkit.md: porthole init echo, npm install, apps add --file, and the app echoes through the gateway', { timeout: 90_000 }, async () => {
  const recipe = recipeBlock();
  const lines = recipe.trim().split('\n');
  assert.equal(lines.length, 6, 'the test knows every line of the recipe');
  assert.ok(recipe.includes('127.0.0.1:50000'));
  const script = `set -e\n${recipe.replaceAll('127.0.0.1:50000', `127.0.0.1:${gw.port}`)}`;
  const child = spawn('sh', ['-c', script], {
    cwd: scratch,
    env: { ...process.env, PORTHOLE_URL: gw.url, PORTHOLE_TOKEN: gw.token, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const code = await new Promise((ok) => child.on('exit', ok));
  assert.equal(code, 0, `the recipe failed:\n${out}\n${err}`);

  // Line by line: the list, what init wrote, the registration, and the echo.
  assert.match(out, /^echo {2}.*\nchat {2}.*\nvnc {3}.*\nstdio {1}.*\n/m);
  assert.match(out, /Wrote the echo template as app "echo" in .*\/echo:/);
  assert.match(out, /\n {2}npx porthole apps add echo --file porthole\.yaml --start\n/, 'init printed the command the recipe runs');
  assert.match(out, /^echo: (starting|running)/m, 'apps add registered and started it');
  assert.equal(out.trimEnd().split('\n').at(-1), '< hello', 'connect printed the echo');

  await gw.api('POST', '/_porthole/api/apps/echo/stop');
  await until('no process of the app', 10_000, () => processesIn(join(scratch, 'echo')).length === 0);
});
