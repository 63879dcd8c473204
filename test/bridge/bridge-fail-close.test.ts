/**
 * A bridge that fails a client's connection (a protocol error, text where
 * binary is wanted, a message too large) sends its close frame and then
 * closes TCP at once (RFC 6455 §7.1.7), on both engines: the client is not
 * held for the close grace period, whether or not it answers the close.
 * Runs on both engines (TUNNEL_TESTS in scripts/test.mjs).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { describe, test } from 'node:test';
import { closeServer, collect, listen, startGateway, waitFor } from '../helpers/net.js';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

/** A masked client frame. */
function frame(opcode: number, payload: Buffer, fin = true): Buffer {
  const head = Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | payload.length, 0, 0, 0, 0]);
  return Buffer.concat([head, payload]);
}

/** The close code of the first close frame in `b` (server frames are not masked), or null. */
function closeCode(b: Buffer): number | null {
  let off = 0;
  while (off + 2 <= b.length) {
    const len = b[off + 1] & 0x7f;
    if ((b[off] & 0x0f) === 0x8) return len >= 2 ? b.readUInt16BE(off + 2) : 1005;
    off += 2 + len;
  }
  return null;
}

describe('bridge: a connection the bridge fails is closed at once', { timeout: 30_000 }, () => {
  for (const [what, bytes, code, answer] of [
    ['a reserved opcode, the client answering the close', frame(0x3, Buffer.from('x')), 1002, true],
    ['a reserved opcode, the client silent', frame(0x3, Buffer.from('x')), 1002, false],
    ['a text message to a binary bridge', frame(0x1, Buffer.from('hello')), 1003, true],
  ] as const) {
    test(`${what}: close ${code}, then the TCP connection ends well within the 3 s grace`, async () => {
      const target = net.createServer((s) => s.on('error', () => {}));
      const port = await listen(target);
      const g = await startGateway({ apps: [{ name: 'vnc', bridge: `127.0.0.1:${port}` }] });
      const closes = collect('tunnel.close', g.gw.id);
      try {
        const c = net.connect(g.port, '127.0.0.1');
        await once(c, 'connect');
        c.write(`GET /vnc/websockify HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n\r\n`);
        let got = Buffer.alloc(0);
        c.on('data', (d: Buffer) => (got = Buffer.concat([got, d])));
        const ended = new Promise<number>((ok) => c.once('end', () => ok(Date.now())));
        await waitFor(() => got.includes('\r\n\r\n'), 5000, 'the 101');
        c.write(bytes);
        const body = () => got.subarray(got.indexOf('\r\n\r\n') + 4);
        await waitFor(() => closeCode(body()) !== null, 5000, 'the close frame');
        const closedAt = Date.now();
        assert.equal(closeCode(body()), code);
        if (answer) c.write(frame(0x8, Buffer.from([code >> 8, code & 0xff])));
        const end = await ended;
        assert.ok(end - closedAt < 1000, `the gateway ended TCP ${end - closedAt} ms after its close frame (grace 3 s)`);
        c.destroy();
        const e = await waitFor(() => closes.events.find((x) => x.app === 'vnc'), 5000, 'the tunnel.close event');
        assert.equal(e.closeCode, code);
      } finally {
        closes.stop();
        await g.close();
        await closeServer(target);
      }
    });
  }
});
