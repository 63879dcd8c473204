/**
 * The gateway at its open-file limit: a `porthole serve` child started with a
 * low `ulimit -n` (prlimit), then sent more tunnels and plain connections
 * than it has descriptors for. Proves: it does not crash, it logs the cause
 * with a code (EMFILE), what it cannot serve fails cleanly, and once the
 * connections drop it answers health again, carries new tunnels, and is back
 * to its baseline fds.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { fdsBackTo, health, startGatewayChild } from './gateway-child.js';
import { record, size } from './harness.js';
import { firstCloseCode, frame, handshakeText, loggingUpstream, rawWebSocket, type RawWs } from './peers.js';
import { pool } from './raw-client.js';

const LIMIT = size(256, 1024);
/** Tunnels tried: each takes two of the gateway's descriptors, so most cannot be served. */
const TUNNELS = LIMIT;
/** Then plain connections on top, holding half a request head. */
const PLAIN = LIMIT;

test(`fd limit: a gateway with ulimit -n ${LIMIT} sent ${TUNNELS} tunnels and ${PLAIN} connections survives, logs EMFILE and recovers`, { timeout: 10 * 60_000 }, async (t) => {
  const up = await loggingUpstream();
  t.after(() => up.close());
  const gw = await startGatewayChild({ nofile: LIMIT, config: { header_timeout: '60s', apps: [{ name: 'ws', port: up.port }] } });
  t.after(() => gw.stop());
  const warm = await rawWebSocket(gw.port, '/ws/warm');
  warm.socket.destroy();
  await warm.closed;
  await new Promise((r) => setTimeout(r, 300));
  const fdBefore = gw.fds();
  const rssBefore = gw.rssMiB();
  // Accepted while descriptors are free; used once there are none left. Its request line goes
  // now: a listener with the front accepts a connection only once its first bytes have come
  // (TCP_DEFER_ACCEPT), and waits no longer than 200 ms for the rest before Node takes it.
  const spareHead = handshakeText('/ws/spare', `127.0.0.1:${gw.port}`, 'dGhlIHNhbXBsZSBub25jZQ==');
  const firstLine = spareHead.indexOf('\r\n') + 2;
  const spare = net.connect(gw.port, '127.0.0.1');
  spare.on('error', () => undefined);
  await new Promise((r) => spare.once('connect', r));
  spare.write(spareHead.slice(0, firstLine));

  // Tunnels until the gateway runs out: the rest fail, each in its own way (reset at
  // accept, or a 101 and a close when the upstream connection cannot be made).
  const failures: Record<string, number> = {};
  const tunnels = (
    await pool(TUNNELS, 32, async (i) => {
      try {
        return await rawWebSocket(gw.port, `/ws/l${i}`);
      } catch (err) {
        const k = (err as Error).message.slice(0, 60);
        failures[k] = (failures[k] ?? 0) + 1;
        return null;
      }
    })
  ).filter((w): w is RawWs => w !== null);
  const plain: net.Socket[] = [];
  await pool(PLAIN, 64, (i) => {
    return new Promise<void>((ok) => {
      const s = net.connect(gw.port, '127.0.0.1');
      s.on('error', () => undefined);
      s.on('connect', () => {
        s.write(`GET /ws/p${i} HTTP/1.1\r\nHost: 127.0.0.1\r\n`);
        ok();
      });
      s.on('close', () => ok());
      plain.push(s);
    });
  });
  await new Promise((r) => setTimeout(r, 500));
  // To the last descriptor: with the front, a connection accepted at the limit may have held a
  // second one for a moment (the front's duplicate, at most 200 ms) while others were refused,
  // and that one is free again now. More half-sent heads take whatever is free.
  for (let i = 0; i < 20 && gw.fds() < LIMIT; i++) {
    const s = net.connect(gw.port, '127.0.0.1');
    s.on('error', () => undefined);
    s.on('connect', () => s.write(`GET /ws/x${i} HTTP/1.1\r\nHost: 127.0.0.1\r\n`));
    plain.push(s);
    await new Promise((r) => setTimeout(r, 300));
  }
  const fdPeak = gw.fds();
  const rssPeak = gw.rssMiB();
  const atLimit = await health(gw.port, 1000);
  const aliveAtLimit = gw.alive();
  // A handshake on a connection already accepted: its upstream connection needs a descriptor there is not.
  const spareAnswer = await new Promise<string>((ok) => {
    let got = '';
    spare.on('data', (d: Buffer) => (got += d.toString('latin1')));
    spare.on('close', () => ok(got));
    setTimeout(() => ok(got), 3000).unref();
    spare.write(spareHead.slice(firstLine));
  });
  spare.destroy();
  const spareClose = spareAnswer.startsWith('HTTP/1.1 101') ? firstCloseCode(Buffer.from(spareAnswer.slice(spareAnswer.indexOf('\r\n\r\n') + 4), 'latin1')) : null;

  // Everything drops; the gateway must come back on its own.
  for (const w of tunnels) w.socket.destroy();
  for (const s of plain) s.destroy();
  const dropped = Date.now();
  let recovered = await health(gw.port, 2000);
  while (recovered.status !== 200 && Date.now() - dropped < 15_000) {
    await new Promise((r) => setTimeout(r, 100));
    recovered = await health(gw.port, 2000);
  }
  const recoverMs = Date.now() - dropped;
  // A new tunnel works end to end.
  let echoes = false;
  try {
    const w = await rawWebSocket(gw.port, '/ws/after');
    const payload = Buffer.from('after the limit');
    w.socket.write(frame(2, payload));
    const deadline = Date.now() + 5000;
    while (!w.received().includes(payload) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    echoes = w.received().includes(payload);
    w.socket.end(frame(8, Buffer.from([0x03, 0xe8])));
    await w.closed;
  } catch {
    echoes = false;
  }
  up.closeIdle();
  const fdAfter = await fdsBackTo(gw, fdBefore, 30_000);
  const rssAfter = gw.rssMiB();
  await gw.settleLog();
  // What cannot get a descriptor is refused with a code that says so (and EMFILE in the reason).
  const emfile = gw.events.filter((e) => e.code === 'PH_ERR_FD_LIMIT' && String(e.reason).includes('EMFILE')).length;
  const codes = [...new Set(gw.events.filter((e) => e.code).map((e) => String(e.code)))];
  const alive = gw.alive();

  t.diagnostic(`limit ${LIMIT}: ${tunnels.length}/${TUNNELS} tunnels opened, failures ${JSON.stringify(failures)}; gateway fds at peak ${fdPeak}`);
  t.diagnostic(`health at the limit: ${atLimit.status || 'no answer'}; after the drop: ${recovered.status} in ${recoverMs} ms; new tunnel echoes: ${echoes}`);
  t.diagnostic(`handshake on an accepted connection at the limit: ${spareAnswer.split('\r\n')[0] || 'no answer'}, close ${spareClose}`);
  t.diagnostic(`EMFILE logged ${emfile} times; codes in the log ${codes.join(', ')}; fds ${fdBefore} -> ${fdAfter}; RSS ${rssBefore} -> ${rssPeak} -> ${rssAfter} MiB`);
  record({
    suite: `fd limit (ulimit -n ${LIMIT})`,
    cases: TUNNELS + PLAIN,
    failures: (spareClose === 1013 ? 0 : 1) + (aliveAtLimit ? 0 : 1) + (recovered.status === 200 ? 0 : 1) + (echoes ? 0 : 1) + (emfile > 0 ? 0 : 1) + (fdAfter > fdBefore ? 1 : 0),
    crashes: alive ? 0 : 1,
    fdBefore,
    fdAfter,
    rssBeforeMiB: rssBefore,
    rssAfterMiB: rssAfter,
    note: `${tunnels.length} tunnels served at the limit (peak ${fdPeak} fds); health at the limit: ${atLimit.status || 'no answer'}; back in ${recoverMs} ms; EMFILE logged ${emfile} times`,
  });

  assert.ok(alive && aliveAtLimit, `the gateway died: ${gw.stderr().slice(-2000)}`);
  assert.ok(tunnels.length > 0 && tunnels.length < TUNNELS, `the limit was reached (${tunnels.length} of ${TUNNELS} tunnels served)`);
  assert.equal(spareClose, 1013, `a handshake that cannot get an upstream descriptor is closed 1013, try again later (got ${spareAnswer.slice(0, 60)})`);
  assert.ok(emfile > 0, `PH_ERR_FD_LIMIT is logged, naming EMFILE (codes seen: ${codes.join(', ')})`);
  assert.equal(recovered.status, 200, 'health answers once the connections drop');
  assert.ok(echoes, 'a new tunnel works after the limit');
  assert.equal(fdAfter, fdBefore, `every file descriptor is given back; sockets left: ${gw.sockets().join(', ')}`);
});
