/**
 * A client that leaves while its upgrade waits for the upstream's answer. Its FIN went
 * unnoticed until the upstream answered or response_timeout fired (Node ends the reading of a
 * half-open server socket without closing it): an upstream connection held for a minute, and
 * no log line for the reset either. Now either gives the upstream connection up at once and is
 * logged, and bytes the client sends during the wait still reach the upstream once the tunnel
 * opens. A drain gave such a handshake no answer and waited for the upstream (the listener's
 * close counts the socket): now the client is told 1001 at once.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { test as nodeTest } from 'node:test';
import { subscribe, type EventMap } from '../../src/events.js';
import { closeServer, listen, sleep, startGateway, waitFor } from '../helpers/net.js';
import { frame } from '../helpers/raw-ws.js';

const test = (name: string, fn: () => Promise<void>) => nodeTest(name, { timeout: 30_000 }, fn);

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const ACCEPT = createHash('sha1').update(KEY + GUID).digest('base64');

/** An upstream that reads handshakes and answers only when told. */
async function silentUpstream() {
  const conns: { socket: net.Socket; got: Buffer[]; closedAt: number | null }[] = [];
  const server = net.createServer((socket) => {
    const c = { socket, got: [] as Buffer[], closedAt: null as number | null };
    conns.push(c);
    socket.on('data', (d) => c.got.push(d));
    socket.on('error', () => {});
    socket.on('close', () => (c.closedAt = performance.now()));
  });
  const port = await listen(server);
  return {
    port,
    conns,
    close: async () => {
      for (const c of conns) c.socket.destroy();
      await closeServer(server);
    },
  };
}

function upgradeRequest(path: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
}

async function setUp() {
  const up = await silentUpstream();
  // A long response_timeout: only the client's leaving can end the wait within the test.
  const g = await startGateway({ response_timeout: '60s', apps: [{ name: 'slow', port: up.port }] });
  const events: EventMap['upgrade'][] = [];
  const off = subscribe('upgrade', (e) => events.push(e));
  return {
    up,
    g,
    events,
    close: async () => {
      off();
      await g.close();
      await up.close();
    },
  };
}

/** A client whose handshake has reached the silent upstream whole: what it receives gathers in `answer`. */
async function waitingHandshake(s: Awaited<ReturnType<typeof setUp>>) {
  const client = net.connect(s.g.port, '127.0.0.1');
  client.on('error', () => {});
  const answer: Buffer[] = [];
  client.on('data', (d) => answer.push(d));
  await new Promise((ok) => client.once('connect', ok));
  client.write(upgradeRequest('/slow/ws'));
  await waitFor(() => s.up.conns.length === 1 && Buffer.concat(s.up.conns[0].got).includes('\r\n\r\n'), 5000, 'the handshake upstream');
  return { client, answer };
}

for (const how of ['FIN', 'reset'] as const) {
  test(`a client that leaves (${how}) while the upstream has not answered its handshake: the upstream connection is closed and the gateway logs why`, async () => {
    const s = await setUp();
    try {
      const { client } = await waitingHandshake(s);
      const left = performance.now();
      if (how === 'FIN') client.end();
      else client.resetAndDestroy();
      await waitFor(() => s.up.conns[0].closedAt !== null, 5000, 'the upstream connection closed');
      assert.ok(s.up.conns[0].closedAt! - left < 4000);
      await waitFor(() => s.events.some((e) => e.code === 'PH_ERR_REQUEST_ABORTED'), 2000, 'the upgrade event');
      const e = s.events.find((x) => x.code === 'PH_ERR_REQUEST_ABORTED')!;
      assert.equal(e.accepted, false);
      assert.equal(e.app, 'slow');
      assert.match(e.reason ?? '', /client left before upstream .* answered/);
    } finally {
      await s.close();
    }
  });
}

test('bytes a client sends while its handshake waits reach the upstream once the tunnel opens', async () => {
  const s = await setUp();
  try {
    const { client, answer } = await waitingHandshake(s);
    await sleep(500);
    const early = frame(0x2, Buffer.from('sent before the 101'), true);
    client.write(early);
    await sleep(300);
    const up = s.up.conns[0];
    const headLength = Buffer.concat(up.got).indexOf('\r\n\r\n') + 4;
    up.socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${ACCEPT}\r\n\r\n`);
    await waitFor(() => Buffer.concat(answer).includes('\r\n\r\n'), 5000, 'the 101 at the client');
    assert.match(Buffer.concat(answer).toString('latin1'), /^HTTP\/1\.1 101 /);
    await waitFor(() => Buffer.concat(up.got).length >= headLength + early.length, 5000, 'the early frame upstream');
    assert.deepEqual(Buffer.concat(up.got).subarray(headLength), early);
    // The tunnel carries on both ways.
    up.socket.write(Buffer.from([0x82, 0x02, 0x68, 0x69]));
    await waitFor(() => Buffer.concat(answer).toString('latin1').endsWith('hi'), 5000, 'a frame from the upstream');
    client.destroy();
  } finally {
    await s.close();
  }
});

test('a drain with a handshake still waiting for a silent upstream ends within its timeout', async () => {
  const s = await setUp();
  try {
    const { client, answer } = await waitingHandshake(s);
    const t0 = performance.now();
    await s.g.gw.drain(300);
    assert.ok(performance.now() - t0 < 3000, `drain took ${Math.round(performance.now() - t0)} ms`);
    await waitFor(() => s.up.conns[0].closedAt !== null, 3000, 'the upstream connection closed');
    // The client is told, as one that came during the drain would be: a 101 and a close 1001.
    await waitFor(() => Buffer.concat(answer).includes(Buffer.from([0x88])), 3000, 'the close frame');
    const got = Buffer.concat(answer);
    assert.match(got.toString('latin1'), /^HTTP\/1\.1 101 /);
    const close = got.subarray(got.indexOf('\r\n\r\n') + 4);
    assert.equal(close[0], 0x88);
    assert.equal(close.readUInt16BE(2), 1001);
    assert.match(close.subarray(4).toString(), /shutting down/);
    client.destroy();
  } finally {
    await s.close();
  }
});
