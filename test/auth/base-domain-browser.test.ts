/**
 * `auth: login` with `base_domain`: one login reaches every
 * `{app}.{base_domain}`. The session cookie is set for the base domain
 * (`Domain=`), so a browser logged in at one app's name is let into the next
 * app's name without a second login; logout clears it for all of them.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { launchChromium, NO_LOCAL_NETWORK_CHECKS } from '../helpers/browser.js';
import { startGateway, wsUpstream } from '../helpers/net.js';
import { cookieOf, postLogin, users } from './helpers.js';

test('the cookie is set for base_domain when the login happens under it, and cleared the same way', async (t) => {
  const up = await wsUpstream();
  t.after(() => up.close());
  const gw = await startGateway({ auth: 'login', users: await users(), base_domain: 'porthole.test', apps: [{ name: 'one', port: up.port }] });
  t.after(() => gw.close());
  const under = await postLogin(gw.url, { user: 'alice', password: 'correct horse', next: '/' }, { Host: `one.porthole.test:${gw.port}` });
  assert.equal(under.status, 303);
  assert.match(under.headers['set-cookie']![0], /; Domain=porthole\.test;/);
  const elsewhere = await postLogin(gw.url, { user: 'alice', password: 'correct horse', next: '/' });
  assert.ok(cookieOf(elsewhere), 'a login on 127.0.0.1 works');
  assert.doesNotMatch(elsewhere.headers['set-cookie']![0], /Domain=/, 'no Domain outside the base domain');
});

test('in Chromium: logged in at one.{base_domain}, two.{base_domain} opens without another login; logout ends both', async (t) => {
  const up = await wsUpstream();
  up.server.removeAllListeners('request');
  up.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(`<!doctype html><title>app</title><h1>app at ${req.headers.host}</h1>`);
  });
  t.after(() => up.close());
  const gw = await startGateway({
    auth: 'login',
    users: await users(),
    base_domain: 'porthole.test',
    apps: [
      { name: 'one', port: up.port },
      { name: 'two', port: up.port },
    ],
  });
  t.after(() => gw.close());
  const browser = await launchChromium(['--host-resolver-rules=MAP *.porthole.test 127.0.0.1', NO_LOCAL_NETWORK_CHECKS]);
  t.after(() => browser.close());
  const page = await (await browser.newContext()).newPage();
  await page.goto(`http://one.porthole.test:${gw.port}/`);
  assert.match(new URL(page.url()).pathname, /^\/_porthole\/auth\/login/, 'sent to the login page first');
  await page.fill('#user', 'alice');
  await page.fill('#password', 'correct horse');
  await Promise.all([page.waitForURL((u) => !u.pathname.startsWith('/_porthole/auth/')), page.click('button[type=submit]')]);
  assert.match(await page.textContent('h1') ?? '', /app at one\.porthole\.test/);
  await page.goto(`http://two.porthole.test:${gw.port}/`);
  assert.equal(new URL(page.url()).host, `two.porthole.test:${gw.port}`);
  assert.match(await page.textContent('h1') ?? '', /app at two\.porthole\.test/, 'no second login');
  // Logging out at one name logs out of the other too.
  const out = await page.evaluate(async () => (await fetch('/_porthole/auth/logout', { method: 'POST' })).status);
  assert.equal(out, 200);
  await page.goto(`http://one.porthole.test:${gw.port}/`);
  assert.match(new URL(page.url()).pathname, /^\/_porthole\/auth\/login/, 'logged out at one');
});
