/**
 * Issue 8, item 11, in a real browser: an upstream 101 that Chromium would
 * fail (a wrong Sec-WebSocket-Accept, no Connection: Upgrade, an extension it
 * never offered) used to be relayed, and the page saw a bare 1006. The
 * gateway completes the handshake itself and closes 1014 with the reason.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { closeServer, listen, startGateway, type TestGateway } from '../helpers/net.js';

const accept = (key: string) => createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');

const FAULTS: Record<string, (key: string) => string> = {
  'wrong-accept': () => `Sec-WebSocket-Accept: ${accept('AAAAAAAAAAAAAAAAAAAAAA==')}\r\nConnection: Upgrade\r\n`,
  'no-connection': (key) => `Sec-WebSocket-Accept: ${accept(key)}\r\n`,
  'foreign-extension': (key) => `Sec-WebSocket-Accept: ${accept(key)}\r\nConnection: Upgrade\r\nSec-WebSocket-Extensions: x-never-offered\r\n`,
};

let browser: Browser;
let gw: TestGateway;
const servers: net.Server[] = [];

before(async () => {
  const apps = [];
  for (const [name, headers] of Object.entries(FAULTS)) {
    const server = net.createServer((s) => {
      s.on('error', () => s.destroy());
      let head = '';
      s.on('data', (d) => {
        head += d.toString('latin1');
        if (!head.includes('\r\n\r\n')) return;
        const key = /sec-websocket-key: *(\S+)/i.exec(head)?.[1] ?? '';
        s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n${headers(key)}\r\n`);
      });
    });
    servers.push(server);
    apps.push({ name, port: await listen(server) });
  }
  gw = await startGateway({ apps });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await gw?.close();
  for (const s of servers) await closeServer(s);
});

for (const name of Object.keys(FAULTS)) {
  test(`in Chromium, an upstream 101 with ${name} closes 1014 with a reason, not 1006`, async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${gw.url}/_porthole/health`); // any same-origin page
      const result = await page.evaluate(
        (url) =>
          new Promise<{ code: number; reason: string }>((ok) => {
            const ws = new WebSocket(url);
            ws.onclose = (e) => ok({ code: e.code, reason: e.reason });
          }),
        `ws://127.0.0.1:${gw.port}/${name}/ws`,
      );
      assert.equal(result.code, 1014, result.reason);
      assert.match(result.reason, new RegExp(`^${name}: upstream .* (answered 101|chose extension)`));
    } finally {
      await page.close();
    }
  });
}
