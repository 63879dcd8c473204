/**
 * Issue 8, item 6: `${toString}` (any inherited property name) in an
 * `error_page` made the gateway exit on the first error page it rendered.
 * Templates read only their own variables and the environment's own keys.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { renderPage } from '../../src/gateway/error-response.js';
import { tempDir } from '../helpers/http.js';
import { closeServer, listen, startGateway } from '../helpers/net.js';

const INHERITED = ['toString', '__proto__', 'constructor', 'hasOwnProperty', 'valueOf', 'isPrototypeOf', 'propertyIsEnumerable', 'toLocaleString', '__defineGetter__', '__lookupSetter__'];
const template = `<p>${INHERITED.map((n) => `[${n}=\${${n}}]`).join('')}[code=\${PORTHOLE_CODE}]</p>`;

test('inherited property names in a template render empty, never a function or a crash', () => {
  const html = renderPage(template, { status: 502, code: 'PH_ERR_X', message: 'm' }, { PATH: '/bin' });
  for (const n of INHERITED) assert.ok(html.includes(`[${n}=]`), `\${${n}} rendered ${/\[.*?\]/.exec(html.slice(html.indexOf(`[${n}=`)))?.[0]}`);
  assert.ok(html.includes('[code=PH_ERR_X]'));
});

test('an environment whose prototype carries a name does not leak it; its own keys still work', () => {
  const env = Object.assign(Object.create({ SECRET: 'inherited' }) as NodeJS.ProcessEnv, { INVITE: 'https://example.invalid/i' });
  assert.equal(renderPage('${SECRET}|${INVITE}', { status: 503, code: 'C', message: 'm' }, env), '|https://example.invalid/i');
});

test('a gateway whose error_page names ${toString} serves the page and stays up', async () => {
  const dir = tempDir();
  const dead = http.createServer();
  const port = await listen(dead);
  await closeServer(dead);
  const page = dir.file('page.html');
  (await import('node:fs')).writeFileSync(page, template);
  const g = await startGateway({ error_page: page, apps: [{ name: 'gone', port }, { name: 'own', port, error_page: page }] });
  try {
    for (const app of ['gone', 'own', 'nowhere']) {
      const res = await fetch(`${g.url}/${app}/`);
      assert.ok(res.status === 502 || res.status === 404, `${app}: ${res.status}`);
      const body = await res.text();
      assert.ok(body.includes('[toString=]'), body);
    }
    assert.equal((await fetch(`${g.url}/_porthole/health`)).status, 200);
  } finally {
    await g.close();
    dir.remove();
  }
});
