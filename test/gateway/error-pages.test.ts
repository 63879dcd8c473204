import assert from 'node:assert/strict';
import http from 'node:http';
import { dirname, join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../../src/errors.js';
import { createGateway } from '../../src/gateway/gateway.js';
import { request } from '../helpers/http.js';
import { closeServer, listen, startGateway } from '../helpers/net.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'gateway');
const GLOBAL_PAGE = join(FIXTURES, 'error-page.html');
const APP_PAGE = join(FIXTURES, 'app-error-page.html');

/** A port nothing listens on (bound, then released). */
async function deadPort(): Promise<number> {
  const s = http.createServer();
  const port = await listen(s);
  await closeServer(s);
  return port;
}

/** Text of the element with this id in a rendered page. */
function byId(html: string, id: string): string | undefined {
  return new RegExp(`id="${id}"[^>]*>([^<]*)<`).exec(html)?.[1];
}

describe('error pages', () => {
  let port: number;
  const savedInvite = process.env.DISCORD_INVITE_URL;

  before(async () => {
    port = await deadPort();
  });
  afterEach(() => {
    if (savedInvite === undefined) delete process.env.DISCORD_INVITE_URL;
    else process.env.DISCORD_INVITE_URL = savedInvite;
  });

  test('the default 502 page is HTML that names the app and the cause', async () => {
    const g = await startGateway({ apps: [{ name: 'notebook', port }] });
    try {
      const r = await request(`${g.url}/notebook/tree`, { headers: { Accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } });
      assert.equal(r.status, 502);
      assert.match(String(r.headers['content-type']), /^text\/html; charset=utf-8/);
      assert.equal(r.headers['cache-control'], 'no-store');
      assert.equal(r.headers['x-porthole-error'], 'PH_ERR_UPSTREAM_REFUSED');
      assert.match(r.text, /<title>502 Bad Gateway<\/title>/);
      assert.match(r.text, /notebook/);
      assert.match(r.text, new RegExp(`127\\.0\\.0\\.1:${port} refused the connection`));
      assert.match(r.text, /PH_ERR_UPSTREAM_REFUSED/);
      assert.equal(Number(r.headers['content-length']), r.body.length);
    } finally {
      await g.close();
    }
  });

  test('Accept: application/json gets {error: {code, status, message, app}}', async () => {
    const g = await startGateway({ apps: [{ name: 'notebook', port }], error_page: GLOBAL_PAGE });
    try {
      const r = await request(`${g.url}/notebook/api/contents`, { headers: { Accept: 'application/json' } });
      assert.equal(r.status, 502);
      assert.match(String(r.headers['content-type']), /^application\/json/);
      assert.equal(r.headers['x-porthole-error'], 'PH_ERR_UPSTREAM_REFUSED');
      const body = JSON.parse(r.text);
      assert.deepEqual(Object.keys(body.error).sort(), ['app', 'code', 'message', 'status']);
      assert.equal(body.error.code, 'PH_ERR_UPSTREAM_REFUSED');
      assert.equal(body.error.status, 502);
      assert.equal(body.error.app, 'notebook');
      assert.match(body.error.message, /refused/);
      // JSON listed before HTML wins; HTML listed first keeps the page.
      const mixed = await request(`${g.url}/notebook/`, { headers: { Accept: 'application/json, text/html;q=0.9' } });
      assert.match(String(mixed.headers['content-type']), /^application\/json/);
      const browser = await request(`${g.url}/notebook/`, { headers: { Accept: 'text/html, application/json' } });
      assert.match(String(browser.headers['content-type']), /^text\/html/);
    } finally {
      await g.close();
    }
  });

  test('a global error_page template is filled from the environment and with PORTHOLE_APP / PORTHOLE_STATUS', async () => {
    process.env.DISCORD_INVITE_URL = 'https://discord.gg/porthole-test';
    const g = await startGateway({ apps: [{ name: 'notebook', port }], error_page: GLOBAL_PAGE });
    try {
      const r = await request(`${g.url}/notebook/`);
      assert.equal(r.status, 502);
      assert.equal(byId(r.text, 'global'), 'Something broke in notebook');
      assert.equal(byId(r.text, 'status'), '502');
      assert.equal(byId(r.text, 'code'), 'PH_ERR_UPSTREAM_REFUSED');
      assert.match(byId(r.text, 'message') ?? '', /notebook: upstream .* refused the connection/);
      assert.match(r.text, /href="https:\/\/discord\.gg\/porthole-test"/);
      assert.equal(byId(r.text, 'unknown'), '[]', 'an unset variable becomes empty');
      assert.ok(!r.text.includes('${'), 'a placeholder was left unfilled');
    } finally {
      await g.close();
    }
  });

  test('the global error_page is also used for the 404 page', async () => {
    process.env.DISCORD_INVITE_URL = 'https://discord.gg/porthole-test';
    const g = await startGateway({ apps: [{ name: 'notebook', port }], error_page: GLOBAL_PAGE });
    try {
      const r = await request(`${g.url}/elsewhere`);
      assert.equal(r.status, 404);
      assert.equal(byId(r.text, 'status'), '404');
      assert.match(r.text, /discord\.gg\/porthole-test/);
    } finally {
      await g.close();
    }
  });

  test('a relative error_page is resolved against the gateway’s baseDir', async () => {
    const g = await startGateway({ apps: [{ name: 'notebook', port }], error_page: 'error-page.html' }, { baseDir: FIXTURES });
    try {
      const r = await request(`${g.url}/notebook/`);
      assert.equal(byId(r.text, 'global'), 'Something broke in notebook');
    } finally {
      await g.close();
    }
  });

  test('a per-app error_page overrides the global one', async () => {
    const g = await startGateway({
      error_page: GLOBAL_PAGE,
      apps: [
        { name: 'special', port, error_page: APP_PAGE },
        { name: 'ordinary', port },
      ],
    });
    try {
      const special = await request(`${g.url}/special/`);
      assert.equal(special.status, 502);
      assert.equal(byId(special.text, 'per-app'), 'special is resting (502)');
      assert.equal(byId(special.text, 'global'), undefined);
      const ordinary = await request(`${g.url}/ordinary/`);
      assert.equal(byId(ordinary.text, 'global'), 'Something broke in ordinary');
    } finally {
      await g.close();
    }
  });

  test('values are HTML-escaped: an environment value with <script> appears escaped', async () => {
    process.env.DISCORD_INVITE_URL = '"><script>alert(1)</script>';
    const g = await startGateway({ apps: [{ name: 'notebook', port }], error_page: GLOBAL_PAGE });
    try {
      const r = await request(`${g.url}/notebook/`);
      assert.ok(!r.text.includes('<script>'), 'the script tag reached the page unescaped');
      assert.match(r.text, /href="&#34;&#62;&#60;script&#62;alert\(1\)&#60;\/script&#62;"/, 'the value broke out of the attribute');
      assert.match(r.text, /&#60;script&#62;alert\(1\)&#60;\/script&#62;/);
    } finally {
      await g.close();
    }
  });

  test('a missing template file is a config error naming the key', () => {
    assert.throws(
      () => createGateway({ error_page: join(FIXTURES, 'no-such-page.html'), apps: [{ name: 'a', port: 1 }] }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.code, 'PH_ERR_CONFIG');
        assert.equal(err.problems.length, 1);
        assert.match(err.problems[0], /^error_page: cannot read .*no-such-page\.html \(ENOENT\)$/);
        return true;
      },
    );
    assert.throws(
      () => createGateway({ apps: [{ name: 'a', port: 1 }, { name: 'b', port: 2, error_page: join(FIXTURES, 'missing-too.html') }] }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.problems[0], /^apps\[1\]\.error_page: cannot read .*missing-too\.html \(ENOENT\)$/);
        return true;
      },
    );
  });

  after(() => {
    if (savedInvite === undefined) delete process.env.DISCORD_INVITE_URL;
    else process.env.DISCORD_INVITE_URL = savedInvite;
  });
});
