/**
 * Garbage after a real handshake, through a tunnel (spliced to a `ws` echo
 * upstream) and through the built-in bridge (the gateway frames it itself,
 * to a TCP echo): random bytes, reserved bits, oversize lengths, invalid
 * opcodes, unmasked client frames, truncated frames, bad control and close
 * frames, then a close. Proves: the gateway never dies, every connection
 * ends, the bridge answers every protocol error with a close code of its
 * own (RFC 6455 §7.4.1), and every fd is given back.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng, fuzzSeed } from './fuzz-cases.js';
import { fdsBackTo, startGatewayChild } from './gateway-child.js';
import { record, size } from './harness.js';
import { frame, loggingUpstream, rawWebSocket, tcpEcho } from './peers.js';
import { pool } from './raw-client.js';

const CASES = size(400, 10_000);
const CONCURRENCY = 64;
/** The bridge's limit on one client message (src/gateway/bridge.ts MAX_CLIENT_MESSAGE). */
const BRIDGE_MAX = 16 * 1024 * 1024;

interface Garbage {
  kind: string;
  bytes: Buffer;
  /** A protocol error every conforming endpoint must refuse (with one of `codes`). */
  codes?: number[];
  /** Send a FIN right after the bytes (a frame cut short, then the connection). */
  thenFin?: boolean;
}

const PROTOCOL = [1002];

function garbage(rng: Rng): Garbage {
  const payload = rng.bytes(rng.range(0, 200));
  switch (rng.int(13)) {
    case 0:
      return { kind: 'random-bytes', bytes: rng.bytes(rng.range(1, 3000)) };
    case 1:
      return { kind: 'reserved-bits', bytes: frame(2, payload, { rsv: rng.range(1, 7) }), codes: PROTOCOL };
    case 2: {
      const length = rng.pick([BigInt(BRIDGE_MAX) + 1n, 2n ** 32n, 2n ** 53n, 2n ** 63n - 1n, 2n ** 63n + 5n, 2n ** 64n - 1n]);
      // 2^63 and above have the top bit set: a protocol error (§5.2); the others are merely too big.
      return { kind: 'oversize-length', bytes: Buffer.concat([frame(2, Buffer.alloc(0), { length }), payload]), codes: [1002, 1009] };
    }
    case 3:
      return { kind: 'invalid-opcode', bytes: frame(rng.pick([3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]), payload), codes: PROTOCOL };
    case 4:
      return { kind: 'unmasked', bytes: frame(2, payload, { mask: false }), codes: PROTOCOL };
    case 5: {
      const f = frame(2, rng.bytes(rng.range(10, 5000)));
      return { kind: 'truncated-then-fin', bytes: f.subarray(0, rng.range(1, f.length - 1)), thenFin: true };
    }
    case 6:
      return { kind: 'control-too-long', bytes: frame(rng.pick([0x9, 0xa]), rng.bytes(rng.range(126, 300))), codes: PROTOCOL };
    case 7:
      return { kind: 'fragmented-control', bytes: frame(0x9, payload.subarray(0, 100), { fin: false }), codes: PROTOCOL };
    case 8:
      return { kind: 'continuation-first', bytes: frame(0, payload), codes: PROTOCOL };
    case 9:
      return { kind: 'invalid-utf8-text', bytes: frame(1, Buffer.from([0x68, 0xc3, 0x28, 0xff, 0xfe])), codes: [1007, 1003] };
    case 10: {
      const bad = rng.pick([Buffer.from([0x03]), Buffer.from([0x03, 0xe7]), Buffer.from([0x03, 0xed]), Buffer.from([0x03, 0xee]), Buffer.from([0x13, 0x88, 0xff])]);
      return { kind: 'bad-close-payload', bytes: frame(8, bad), codes: [1002, 1007] };
    }
    case 11:
      return { kind: 'new-message-inside-fragmented', bytes: Buffer.concat([frame(2, payload, { fin: false }), frame(2, payload)]), codes: PROTOCOL };
    default:
      return { kind: 'valid-then-random', bytes: Buffer.concat([frame(2, payload), rng.bytes(rng.range(1, 500))]) };
  }
}

interface Outcome {
  via: 'tunnel' | 'bridge';
  kind: string;
  closed: boolean;
  closeCode: number | null;
  expected?: number[];
  handshakeError?: string;
}

test(`garbage frames: ${CASES} malformed frame streams through tunnels and the bridge end every connection, with close codes where the gateway frames`, { timeout: 15 * 60_000 }, async (t) => {
  const seed = fuzzSeed(0xf4a3e5);
  t.diagnostic(`seed ${seed}: replay with PORTHOLE_FUZZ_SEED=${seed}`);
  const up = await loggingUpstream();
  const echo = await tcpEcho();
  t.after(() => Promise.all([up.close(), echo.close()]));
  const gw = await startGatewayChild({
    config: {
      idle_timeout: '10s',
      apps: [
        { name: 'ws', port: up.port },
        { name: 'br', bridge: `127.0.0.1:${echo.port}` },
      ],
    },
  });
  t.after(() => gw.stop());

  for (const path of ['/ws/warm', '/br/warm']) {
    const ws = await rawWebSocket(gw.port, path);
    ws.socket.destroy();
    await ws.closed;
  }
  await new Promise((r) => setTimeout(r, 300));
  const fdBefore = gw.fds();
  const rssBefore = gw.rssMiB();

  const started = Date.now();
  const outcomes = await pool(CASES, CONCURRENCY, async (i): Promise<Outcome> => {
    const rng = new Rng((seed ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0);
    const via = i % 2 === 0 ? 'tunnel' : 'bridge';
    const g = garbage(rng);
    let ws;
    try {
      ws = await rawWebSocket(gw.port, via === 'tunnel' ? `/ws/g${i}` : `/br/g${i}`, undefined, via === 'bridge' ? 'binary' : undefined);
    } catch (err) {
      return { via, kind: g.kind, closed: false, closeCode: null, handshakeError: (err as Error).message };
    }
    ws.socket.write(g.bytes);
    if (g.thenFin) ws.socket.end();
    const closedIn = (ms: number) => Promise.race([ws.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref())]);
    // A protocol error is answered at once; other garbage may be a frame still in progress.
    let closed = await closedIn(g.codes ? 3000 : 500);
    if (!closed) {
      // "then close": a close frame (it may land inside a frame the peer still reads), then FIN.
      if (!ws.socket.destroyed) ws.socket.write(frame(8, Buffer.from([0x03, 0xe8])));
      setTimeout(() => ws.socket.end(), 200).unref();
      closed = await closedIn(8000);
    }
    ws.socket.destroy();
    return { via, kind: g.kind, closed, closeCode: ws.closeCode(), expected: g.codes };
  });
  const seconds = (Date.now() - started) / 1000;

  const alive = gw.alive();
  const health = await gw.health();
  up.closeIdle();
  const fdAfter = await fdsBackTo(gw, fdBefore);
  const rssAfter = gw.rssMiB();

  const notOpened = outcomes.filter((o) => o.handshakeError);
  const leftOpen = outcomes.filter((o) => !o.handshakeError && !o.closed);
  // Where the gateway owns the framing (the bridge), a protocol error gets its close code.
  const noCode = outcomes.filter((o) => o.via === 'bridge' && o.expected && !o.handshakeError && (o.closeCode === null || !o.expected.includes(o.closeCode)));
  const codes: Record<string, number> = {};
  for (const o of outcomes) {
    const k = `${o.via} ${o.closeCode ?? 'none'}`;
    codes[k] = (codes[k] ?? 0) + 1;
  }
  t.diagnostic(`${CASES} cases in ${seconds.toFixed(1)} s; close codes ${JSON.stringify(codes)}`);
  t.diagnostic(`fds ${fdBefore} -> ${fdAfter}, RSS ${rssBefore} -> ${rssAfter} MiB`);
  record({
    suite: 'garbage frames (tunnel and bridge)',
    cases: CASES,
    failures: notOpened.length + leftOpen.length + noCode.length + (fdAfter > fdBefore ? 1 : 0),
    crashes: alive && health.status === 200 ? 0 : 1,
    fdBefore,
    fdAfter,
    rssBeforeMiB: rssBefore,
    rssAfterMiB: rssAfter,
    note: `seed ${seed}, ${seconds.toFixed(0)} s; close codes ${Object.entries(codes).map(([k, v]) => `${k}:${v}`).join(', ')}`,
  });

  assert.ok(alive, `the gateway died: ${gw.stderr().slice(-2000)}`);
  assert.equal(health.status, 200);
  assert.deepEqual(notOpened.slice(0, 5), [], 'every handshake succeeds');
  assert.deepEqual(leftOpen.slice(0, 5), [], 'every connection ends after garbage and a close');
  assert.deepEqual(noCode.slice(0, 5), [], 'the bridge closes every protocol error with its code');
  assert.equal(fdAfter, fdBefore, `every file descriptor is given back; sockets left: ${gw.sockets().join(', ')}`);
});
