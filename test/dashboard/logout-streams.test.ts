/**
 * Logout ends the session (issue 9, section 2), so it ends what the session
 * still has open: the live feed and a log follow that a tab opened before
 * another tab logged out must stop, not keep sending tunnels, events and an
 * app's output to a browser that is no longer logged in.
 *
 * Found by the dashboard's browser test: after logout, a second tab's
 * /_porthole/api/live kept delivering `tunnels` every second until that tab
 * happened to make another call.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test, type TestContext } from 'node:test';
import { createServer, type PortholeServer, type ServerStarted } from 'porthole';
import { request } from '../helpers/http.js';

const CHATTY = fileURLToPath(new URL('../fixtures/dashboard/chatty-app.mjs', import.meta.url));

async function started(t: TestContext, config: unknown): Promise<{ server: PortholeServer; start: ServerStarted }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-dashboard-logout-'));
  const server = createServer({ listen: { port: 0 }, dataDir, config });
  t.after(async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return { server, start: await server.listen() };
}

/** The session a browser gets from the login link: its cookie and the page's CSRF secret. */
async function login(server: PortholeServer, origin: string): Promise<{ cookie: string; csrf: string }> {
  const link = await request(server.loginUrl());
  const cookie = link.headers['set-cookie']![0].split(';')[0];
  const page = await request(`${origin}/_porthole/`, { headers: { Cookie: cookie, 'Sec-Fetch-Dest': 'document' } });
  const m = /<meta name="porthole-csrf" content="([^"]+)">/.exec(page.text);
  assert.ok(m, 'the page carries the CSRF secret');
  return { cookie, csrf: m[1] };
}

interface OpenStream {
  text: () => string;
  /** Resolves true when the server ends the answer, false after `ms`. */
  endsWithin(ms: number): Promise<boolean>;
  destroy(): void;
}

function openStream(url: string, headers: Record<string, string>): Promise<OpenStream> {
  return new Promise((ok, fail) => {
    const req = http.get(url, { headers, agent: false });
    req.on('error', fail);
    req.on('response', (res) => {
      assert.equal(res.statusCode, 200);
      let text = '';
      let ended = false;
      const waiters: (() => void)[] = [];
      const end = () => {
        ended = true;
        waiters.splice(0).forEach((w) => w());
      };
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', end);
      res.on('close', end);
      ok({
        text: () => text,
        endsWithin: (ms) =>
          new Promise((done) => {
            if (ended) return done(true);
            const timer = setTimeout(() => done(false), ms);
            waiters.push(() => {
              clearTimeout(timer);
              done(true);
            });
          }),
        destroy: () => req.destroy(),
      });
    });
  });
}

test('logout ends the event streams its session opened: the live feed and a log follow', async (t) => {
  const { server, start } = await started(t, {
    apps: [{ name: 'chatty', cmd: `exec ${process.execPath} ${CHATTY}`, autostart: true }],
  });
  const origin = new URL(start.url).origin;
  const { cookie, csrf } = await login(server, origin);
  const headers = { Cookie: cookie, 'X-Porthole-CSRF': csrf };
  const live = await openStream(`${origin}/_porthole/api/live`, headers);
  const logs = await openStream(`${origin}/_porthole/api/apps/chatty/logs?lines=5&entries=1&follow=1`, headers);
  t.after(() => {
    live.destroy();
    logs.destroy();
  });
  // Both are flowing.
  for (let i = 0; i < 100 && !(live.text().includes('event: tunnels') && /"stream":"std(out|err)"/.test(logs.text())); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(live.text(), /event: tunnels/);
  assert.match(logs.text(), /"stream":"std(out|err)"/);

  const out = await request(`${origin}/_porthole/logout`, { method: 'POST', headers });
  assert.equal(out.status, 204);
  assert.equal((await request(`${origin}/_porthole/api/apps`, { headers })).status, 401, 'the session is over for new calls');
  const [liveEnded, logsEnded] = await Promise.all([live.endsWithin(3000), logs.endsWithin(3000)]);
  assert.deepEqual({ liveEnded, logsEnded }, { liveEnded: true, logsEnded: true }, 'the streams opened by the ended session end with it');
});
