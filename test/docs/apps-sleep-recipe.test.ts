/**
 * The "Apps that sleep when idle" recipe of docs/apps.md, run as written: its
 * YAML block (with a port of its own) is the config file of a real `porthole serve`, and the first
 * request for the stopped app wakes it (Debian's python3 http.server) and gets
 * its answer.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startAdmin } from '../helpers/admin.js';
import { request } from '../helpers/http.js';
import { freePort } from '../helpers/sleep-app.js';

const DOC = fileURLToPath(new URL('../../docs/apps.md', import.meta.url));

function recipe(name: string): string {
  const text = readFileSync(DOC, 'utf8');
  const at = text.indexOf(`<!-- recipe: ${name} -->`);
  assert.ok(at !== -1, `docs/apps.md has the ${name} recipe`);
  const m = /```yaml\n([\s\S]*?)```/.exec(text.slice(at));
  assert.ok(m, 'a yaml block follows the marker');
  return m[1];
}

test('the apps-sleep recipe of docs/apps.md: the stopped app is woken by its first request, which gets the app\'s answer', async (t) => {
  // As written, plus a port of the kernel's ephemeral range: the 9000–9999 port Porthole would
  // allocate may be handed to another test's app at the same time (see test/helpers/sleep-app.ts).
  const config = recipe('apps-sleep').replace('    cmd:', `    port: ${await freePort()}\n    cmd:`);
  const gw = await startAdmin({ config });
  t.after(() => gw.cleanup());
  const before = (await gw.api('GET', '/_porthole/api/apps/notes')).body.app;
  assert.equal(before.state, 'stopped');
  assert.equal(before.idle_stop, 900_000);
  assert.equal(before.wake_on_request, true);
  const r = await request(`${gw.url}/notes/`, { headers: { Accept: 'application/json' }, timeoutMs: 60_000 });
  assert.equal(r.status, 200, r.text);
  assert.match(r.text, /Directory listing/);
  assert.equal((await gw.api('GET', '/_porthole/api/apps/notes')).body.app.state, 'running');
});
