/**
 * The login form works from the login page in a real browser. The gateway's
 * pages are served with `Referrer-Policy: no-referrer`, and under that policy
 * Chromium sends `Origin: null` with the form's POST, even to its own origin.
 * A null origin is accepted when the browser's own `Sec-Fetch-Site` (which no
 * page can set) says the form came from the gateway's origin; a null origin
 * from anywhere else (an attacker's page that asks for no referrer, to hide
 * where its login-CSRF form comes from) is still refused.
 *
 * Found by test/dashboard/dashboard-browser.test.ts: pasting the token into
 * the form answered "a login posted from null is refused".
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createServer } from 'porthole';
import { request } from '../helpers/http.js';

test('the login form posted from the login page (Origin: null, Sec-Fetch-Site: same-origin) logs in; a null origin from elsewhere does not', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-dashboard-login-'));
  const server = createServer({ listen: { port: 0 }, dataDir });
  t.after(async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const start = await server.listen();
  const post = (headers: Record<string, string>) =>
    request(`${start.url}/_porthole/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...headers },
      body: `token=${encodeURIComponent(start.token)}`,
    });

  // What Chromium sends from the gateway's own login page.
  const own = await post({ Origin: 'null', 'Sec-Fetch-Site': 'same-origin', 'Sec-Fetch-Mode': 'navigate', 'Sec-Fetch-Dest': 'document' });
  assert.equal(own.status, 303, own.text);
  assert.match(own.headers['set-cookie']?.[0] ?? '', /^porthole_session=/);

  // A page elsewhere that hides its origin (referrer policy no-referrer), or a browser that says nothing.
  for (const site of ['cross-site', 'same-site', 'none', undefined]) {
    const other = await post({ Origin: 'null', ...(site ? { 'Sec-Fetch-Site': site } : {}) });
    assert.equal(other.status, 403, `Sec-Fetch-Site: ${site}`);
    assert.equal(other.headers['x-porthole-error'], 'PH_ERR_CSRF');
    assert.equal(other.headers['set-cookie'], undefined);
  }
});
