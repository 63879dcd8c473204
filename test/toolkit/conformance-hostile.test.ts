/**
 * A server under test may be hostile: it cannot make `porthole conformance`
 * hang or grow without bound. A flood of pings, a frame announcing 1 TiB, and
 * a server that never answers the handshake each end with a clear outcome.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import { runConformance } from '../../src/toolkit/conformance/run-conformance.js';
import { ConformanceConnectError } from '../../src/errors.js';

/** Completes the handshake by hand, then hands the socket to `after`. */
async function hostile(t: TestContext, after: (s: net.Socket) => void): Promise<string> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.once('data', (d) => {
      const key = /sec-websocket-key:\s*(\S+)/i.exec(d.toString('latin1'))?.[1] ?? '';
      const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      after(s);
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return `ws://127.0.0.1:${(server.address() as net.AddressInfo).port}/`;
}

test('a server flooding pings is cut off after 10000 frames: the case FAILED with the reason', async (t) => {
  const url = await hostile(t, (s) => {
    const ping = Buffer.from([0x89, 0x00]);
    const burst = Buffer.concat(Array.from({ length: 12_000 }, () => ping));
    s.write(burst);
  });
  const report = await runConformance({ url, cases: ['1.1.1'], timeoutMs: 1000 });
  const [c] = report.cases;
  assert.equal(c.behavior, 'FAILED');
  assert.match(c.reason, /more than 10000 messages and control frames/);
});

test('a frame announcing 1 TiB is refused before anything is buffered: the case FAILED', async (t) => {
  const url = await hostile(t, (s) => {
    const head = Buffer.alloc(10);
    head[0] = 0x82;
    head[1] = 127;
    head.writeBigUInt64BE(2n ** 40n, 2);
    s.write(head);
  });
  const report = await runConformance({ url, cases: ['1.2.1'], timeoutMs: 1000 });
  const [c] = report.cases;
  assert.equal(c.behavior, 'FAILED');
  assert.match(c.reason, /announced a frame of 1099511627776 bytes/);
});

test('a server that never answers the upgrade: ConformanceConnectError (PH_ERR_CONFORMANCE_CONNECT) after the timeout, not a hang', async (t) => {
  const server = net.createServer((s) => s.on('error', () => {}));
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  t.after(() => server.close());
  await assert.rejects(runConformance({ url: `ws://127.0.0.1:${(server.address() as net.AddressInfo).port}/`, cases: ['1.1.1'], timeoutMs: 300 }), (err: unknown) => {
    assert.ok(err instanceof ConformanceConnectError);
    assert.equal(err.code, 'PH_ERR_CONFORMANCE_CONNECT');
    assert.match(err.message, /no answer to the opening handshake/);
    return true;
  });
});

test('a server whose close frame is invalid (code 1005, which must never be sent; a reason that is not UTF-8) FAILS the case, even when the close was expected', async (t) => {
  const closeWith = (payload: Buffer) => (s: net.Socket) => {
    s.once('data', () => {
      s.write(Buffer.concat([Buffer.from([0x88, payload.length]), payload]));
      s.end();
    });
  };
  const code1005 = await hostile(t, closeWith(Buffer.from([0x03, 0xed])));
  const [a] = (await runConformance({ url: code1005, cases: ['7.3.3'], timeoutMs: 1000 })).cases;
  assert.equal(a.behavior, 'FAILED');
  assert.match(a.reason, /close code 1005/);
  const badReason = await hostile(t, closeWith(Buffer.from([0x03, 0xe8, 0xff, 0xfe])));
  const [b] = (await runConformance({ url: badReason, cases: ['7.3.3'], timeoutMs: 1000 })).cases;
  assert.equal(b.behavior, 'FAILED');
  assert.match(b.reason, /close reason that is not valid UTF-8/);
});
