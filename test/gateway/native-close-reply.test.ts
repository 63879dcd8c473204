/**
 * The gateway closes a tunnel (drain, idle, logout) while the client is slow
 * to read and data from the upstream is still on its way to it; the client
 * sends a close frame of its own before it has read ours. Everything the
 * gateway already took from the upstream must still reach the client as whole
 * frames, followed by the gateway's close frame, before the FIN: ending the
 * client's connection at once would cut a frame short and lose the close.
 * Runs on the engine in force (scripts/test.mjs runs it both ways).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { sleep, startGateway, waitFor } from '../helpers/net.js';
import { frame, rawWsClient, rawWsUpstream } from '../helpers/raw-ws.js';

const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;

/** Unmasked frames as the client receives them; `partial` is what is left of a cut frame. */
function parseFrames(buf: Buffer): { frames: { op: number; payload: Buffer }[]; partial: number } {
  const frames: { op: number; payload: Buffer }[] = [];
  let off = 0;
  while (off + 2 <= buf.length) {
    let len = buf[off + 1] & 0x7f;
    let h = 2;
    if (len === 126) {
      if (off + 4 > buf.length) break;
      len = buf.readUInt16BE(off + 2);
      h = 4;
    }
    if (off + h + len > buf.length) break;
    frames.push({ op: buf[off] & 0x0f, payload: buf.subarray(off + h, off + h + len) });
    off += h + len;
  }
  return { frames, partial: buf.length - off };
}

test('a client that answers with its own close while our close is still queued to it receives whole frames and our close before the FIN', async (t) => {
  let upSocket: net.Socket | undefined;
  const up = await rawWsUpstream((s) => (upSocket = s));
  t.after(() => up.close());
  const gw = await startGateway({ apps: [{ name: 'cr', port: up.port }] });
  t.after(() => gw.close());

  const { socket: client, rest } = await rawWsClient(gw.port, '/cr/');
  client.pause();
  await waitFor(() => upSocket, 5000, 'the upstream connection');
  // Far more than loopback's socket buffers hold: the gateway ends up holding some, blocked on the client.
  const chunk = frame(OP_BINARY, Buffer.alloc(1000, 7), false);
  for (let i = 0; i < 64 * 1024; i++) upSocket!.write(chunk);
  let last = -1;
  for (let i = 0; i < 50; i++) {
    await sleep(100);
    if (upSocket!.writableLength === last) break;
    last = upSocket!.writableLength;
  }
  const [tunnel] = [...gw.gw.tunnels];
  tunnel.close(1001, 'closing for the test');
  await sleep(200);
  // The client's own close, sent before it read anything more.
  client.write(frame(OP_CLOSE, Buffer.from([0x03, 0xe8]), true));
  await sleep(300);

  let got = rest;
  client.on('data', (d: Buffer) => (got = Buffer.concat([got, d])));
  const ended = new Promise<void>((ok) => {
    client.once('end', () => ok());
    client.once('close', () => ok());
  });
  client.on('error', () => undefined);
  client.resume();
  await Promise.race([ended, sleep(10_000)]);
  const { frames, partial } = parseFrames(got);
  assert.equal(partial, 0, `the client got ${frames.length} whole frames and ${partial} bytes of a cut one`);
  const close = frames.find((f) => f.op === OP_CLOSE);
  assert.ok(close, `a close frame reached the client after ${frames.length} frames`);
  assert.equal(close.payload.readUInt16BE(0), 1001);
  assert.equal(frames.at(-1)!.op, OP_CLOSE, 'nothing after our close frame');
});
