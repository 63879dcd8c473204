/**
 * Tunnels whose upstream sent a frame in the same write as its 101: the
 * gateway has those bytes in hand at the handover, so the native tunnel's
 * thread gets them with an adopt command (and a wake), unlike a tunnel that
 * starts with nothing to deliver, which JavaScript registers itself. Thousands
 * of such handovers, 32 at a time, then one at a time with the thread idle in
 * between: each frame must reach the client at once. (The lost wake that once
 * stalled this path is reproduced by native-adopt-wake.test.ts, which issues
 * handovers faster than the gateway does.) Runs on the engine in force
 * (scripts/test.mjs runs it both ways).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { test } from 'node:test';
import { listen, startGateway } from '../helpers/net.js';
import { frame, rawWsClient } from '../helpers/raw-ws.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const OP_TEXT = 0x1;
const TOTAL = 3000;
const AT_ONCE = 32;

test(`${TOTAL} tunnels whose upstream spoke with its 101 all deliver that frame at once, ${AT_ONCE} at a time`, async (t) => {
  const hello = frame(OP_TEXT, Buffer.from('hello'), false);
  const up = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => undefined);
    let head = '';
    const onData = (d: Buffer) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      s.off('data', onData);
      s.on('data', () => undefined);
      s.on('end', () => s.end());
      const key = /sec-websocket-key:\s*(\S+)/i.exec(head)?.[1] ?? '';
      const accept = createHash('sha1').update(key + GUID).digest('base64');
      // One write: the gateway reads the frame with the 101.
      s.write(Buffer.concat([Buffer.from(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`, 'latin1'), hello]));
    };
    s.on('data', onData);
  });
  const port = await listen(up);
  t.after(() => new Promise<void>((ok) => up.close(() => ok())));
  const gw = await startGateway({ apps: [{ name: 'w', port }] });
  t.after(() => gw.close());

  let started = 0;
  let delivered = 0;
  const one = async (n: number) => {
    const { socket, rest } = await rawWsClient(gw.port, '/w/');
    socket.on('error', () => undefined);
    let got = rest;
    if (got.length < hello.length) {
      got = await new Promise<Buffer>((ok, fail) => {
        const timer = setTimeout(() => fail(new Error(`tunnel ${n}: the upstream's first frame did not arrive within 5 s (${delivered} delivered before)`)), 5000);
        const onData = (d: Buffer) => {
          got = Buffer.concat([got, d]);
          if (got.length < hello.length) return;
          clearTimeout(timer);
          socket.off('data', onData);
          ok(got);
        };
        socket.on('data', onData);
      });
    }
    assert.deepEqual(got.subarray(0, hello.length), hello);
    delivered++;
    socket.destroy();
  };
  await Promise.all(
    Array.from({ length: AT_ONCE }, async () => {
      while (started < TOTAL) await one(started++);
    }),
  );
  assert.equal(delivered, TOTAL);
  // Then one at a time, the tunnel thread idle in between: nothing but the wake can start it.
  for (let i = 0; i < 50; i++) {
    await one(started++);
    await new Promise((ok) => setTimeout(ok, 5));
  }
  assert.equal(delivered, TOTAL + 50);
});
