/**
 * Frame tracking across reads: random frames (7-bit, 16-bit and 64-bit
 * lengths, fragments, pings) cut at random points, so headers and close
 * payloads arrive split between reads. The tunnel's counts and the close code
 * it reports must match src/gateway/frames.ts fed the same bytes. Run on both
 * engines (scripts/test.mjs): the native tracker is native/frames.c.
 */
import assert from 'node:assert/strict';
import type net from 'node:net';
import { test } from 'node:test';
import { FrameTracker } from '../../src/gateway/frames.js';
import { collect, sleep, startGateway, waitFor } from '../helpers/net.js';
import { rawWsClient, rawWsUpstream } from '../helpers/raw-ws.js';

/** A deterministic generator, so a failure can be replayed. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

function maskedFrame(fin: boolean, opcode: number, payload: Buffer): Buffer {
  const n = payload.length;
  const ext = n < 126 ? 0 : n < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + ext + 4);
  head[0] = (fin ? 0x80 : 0) | opcode;
  head[1] = 0x80 | (ext === 0 ? n : ext === 2 ? 126 : 127);
  if (ext === 2) head.writeUInt16BE(n, 2);
  if (ext === 8) head.writeBigUInt64BE(BigInt(n), 2);
  const key = head.subarray(2 + ext);
  key.set([0x11, 0x22, 0x33, 0x44]);
  const body = Buffer.from(payload);
  for (let i = 0; i < n; i++) body[i] ^= key[i & 3];
  return Buffer.concat([head, body]);
}

test('frames split at random points between reads are counted as frames.ts counts them, close code and reason included', async (t) => {
  let upSocket: net.Socket | undefined;
  const up = await rawWsUpstream((s) => {
    upSocket = s;
    s.resume();
  });
  t.after(() => up.close());
  const gw = await startGateway({ apps: [{ name: 'fz', port: up.port }] });
  t.after(() => gw.close());
  const log = collect('tunnel.close', gw.gw.id);
  t.after(() => log.stop());

  const rnd = prng(20261202);
  const sizes = [0, 1, 5, 125, 126, 127, 300, 65535, 65536, 70_000];
  const frames: Buffer[] = [];
  for (let i = 0; i < 200; i++) {
    const r = rnd();
    const size = sizes[Math.floor(rnd() * sizes.length)];
    if (r < 0.15) frames.push(maskedFrame(true, 0x9, Buffer.alloc(Math.min(size, 125), 7)));
    else if (r < 0.35) {
      frames.push(maskedFrame(false, 0x2, Buffer.alloc(size, 1)), maskedFrame(false, 0x0, Buffer.alloc(size, 2)), maskedFrame(true, 0x0, Buffer.alloc(3, 3)));
    } else frames.push(maskedFrame(true, r < 0.7 ? 0x1 : 0x2, Buffer.alloc(size, 0x61)));
  }
  const close = Buffer.concat([Buffer.from([0x0f, 0xa0]), Buffer.from('fuzz ✓')]);
  frames.push(maskedFrame(true, 0x8, close));
  const stream = Buffer.concat(frames);
  const expected = new FrameTracker();
  expected.feed(stream);

  const { socket: client } = await rawWsClient(gw.port, '/fz/');
  client.setNoDelay(true);
  client.resume();
  await waitFor(() => upSocket, 5000, 'the upstream connection');
  // Cuts of 1 to 20 bytes now and then (headers split), larger ones otherwise; a pause lets each be its own read.
  for (let off = 0; off < stream.length; ) {
    const n = rnd() < 0.5 ? 1 + Math.floor(rnd() * 20) : 1 + Math.floor(rnd() * 40_000);
    client.write(stream.subarray(off, off + n));
    off += n;
    if (rnd() < 0.3) await sleep(1);
  }
  client.end();
  await waitFor(() => upSocket!.readableEnded, 10_000, 'everything at the upstream');
  upSocket!.end();
  const e = await waitFor(() => log.events[0], 10_000, 'tunnel.close');
  assert.equal(e.bytesIn, stream.length);
  assert.equal(e.framesIn, expected.frames);
  assert.equal(e.messagesIn, expected.messages);
  assert.equal(e.closedBy, 'client');
  assert.equal(e.closeCode, 4000);
  assert.equal(e.reason, 'fuzz ✓');
});
