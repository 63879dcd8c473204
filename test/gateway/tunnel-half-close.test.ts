/**
 * TCP's edges of a tunnel: a FIN one way leaves the other way open
 * (half-close), and a reset on one side closes the other, with
 * `tunnel.close` saying who cut first. Run on both engines (scripts/test.mjs).
 */
import assert from 'node:assert/strict';
import type net from 'node:net';
import { test } from 'node:test';
import { collect, startGateway, waitFor } from '../helpers/net.js';
import { frame, rawWsClient, rawWsUpstream } from '../helpers/raw-ws.js';

const OP_TEXT = 0x1;

function readAll(s: net.Socket, start: Buffer): { bytes: () => Buffer; ended: Promise<void> } {
  let got = start;
  s.on('data', (d: Buffer) => (got = Buffer.concat([got, d])));
  const ended = new Promise<void>((ok) => s.once('end', () => ok()));
  return { bytes: () => got, ended };
}

test('a client FIN reaches the upstream while the upstream can still send to the client (half-close)', async (t) => {
  let upSocket: net.Socket | undefined;
  let upGotEnd = false;
  let upGot = Buffer.alloc(0);
  const up = await rawWsUpstream((s) => {
    upSocket = s;
    s.on('data', (d: Buffer) => (upGot = Buffer.concat([upGot, d])));
    s.on('end', () => (upGotEnd = true));
  });
  t.after(() => up.close());
  const gw = await startGateway({ apps: [{ name: 'hc', port: up.port }] });
  t.after(() => gw.close());
  const log = collect('tunnel.close', gw.gw.id);
  t.after(() => log.stop());

  const { socket: client, rest } = await rawWsClient(gw.port, '/hc/');
  const fromUp = readAll(client, rest);
  const hello = frame(OP_TEXT, Buffer.from('before the FIN'), true);
  client.end(hello);
  await waitFor(() => upGotEnd, 5000, 'the FIN at the upstream');
  assert.deepEqual(upGot, hello, 'everything before the FIN arrived first');

  // The other way is still open: the upstream answers after the client's FIN.
  const answers = [frame(OP_TEXT, Buffer.from('after your FIN'), false), frame(OP_TEXT, Buffer.alloc(40_000, 9), false)];
  upSocket!.write(answers[0]);
  upSocket!.end(answers[1]);
  await fromUp.ended;
  assert.deepEqual(fromUp.bytes(), Buffer.concat(answers));
  const e = await waitFor(() => log.events[0], 5000, 'tunnel.close');
  assert.equal(e.closedBy, 'client');
  assert.equal(e.closeCode, null);
  assert.equal(e.framesOut, 2);
  assert.equal(e.messagesIn, 1);
});

for (const cutter of ['client', 'upstream'] as const) {
  test(`a reset from the ${cutter} closes the other side, and tunnel.close says the ${cutter} cut`, async (t) => {
    let upSocket: net.Socket | undefined;
    const up = await rawWsUpstream((s) => (upSocket = s));
    t.after(() => up.close());
    const gw = await startGateway({ apps: [{ name: 'rst', port: up.port }] });
    t.after(() => gw.close());
    const log = collect('tunnel.close', gw.gw.id);
    t.after(() => log.stop());

    const { socket: client } = await rawWsClient(gw.port, '/rst/');
    client.on('error', () => undefined);
    await waitFor(() => upSocket, 5000, 'the upstream connection');
    const [victim, other] = cutter === 'client' ? [client, upSocket!] : [upSocket!, client];
    // Both test ends allow half-open connections: the gateway's FIN (or reset) is the sign.
    const otherClosed = new Promise<void>((ok) => {
      other.once('end', () => ok());
      other.once('close', () => ok());
    });
    other.resume();
    victim.resetAndDestroy();
    await otherClosed;
    const e = await waitFor(() => log.events[0], 5000, 'tunnel.close');
    assert.equal(e.closedBy, cutter);
    assert.equal(e.closeCode, null);
    assert.equal(e.reason, 'connection cut without a close frame');
    assert.equal(gw.gw.tunnels.size, 0);
  });
}
