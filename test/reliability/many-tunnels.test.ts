/**
 * Many WebSocket tunnels held open at once through a `porthole serve` child
 * to a `ws` echo server in a third process, then closed: 300 under
 * `npm test`, 8,000 under `npm run reliability` (16,000 sockets in the
 * gateway). Proves: every handshake succeeds, a sample of tunnels echoes,
 * health counts them, and after the clients close every tunnel ends and the
 * gateway is back to its fds; RSS at peak and after is recorded.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fdsBackTo, startGatewayChild } from './gateway-child.js';
import { record, size } from './harness.js';
import { frame, rawWebSocket, wsEchoProcess, type RawWs } from './peers.js';
import { pool } from './raw-client.js';

const TUNNELS = Number(process.env.PORTHOLE_TUNNELS) || size(300, 8_000);
const HANDSHAKES_IN_FLIGHT = 64;

async function until(what: string, fn: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test(`many tunnels: ${TUNNELS} WebSocket tunnels held open at once, echo, then all close and every fd comes back`, { timeout: 20 * 60_000 }, async (t) => {
  const peer = await wsEchoProcess();
  t.after(() => peer.stop());
  const gw = await startGatewayChild({ config: { apps: [{ name: 'echo', port: peer.port }] } });
  t.after(() => gw.stop());
  // One tunnel first: modules and the route warmed, then the baseline.
  const warm = await rawWebSocket(gw.port, '/echo/warm');
  warm.socket.end(frame(8, Buffer.from([0x03, 0xe8])));
  await warm.closed;
  await new Promise((r) => setTimeout(r, 300));
  const fdBefore = gw.fds();
  const rssBefore = gw.rssMiB();

  const started = Date.now();
  const failed: string[] = [];
  const opened = await pool(TUNNELS, HANDSHAKES_IN_FLIGHT, async (i) => {
    try {
      return await rawWebSocket(gw.port, `/echo/t${i}`);
    } catch (err) {
      failed.push(`t${i}: ${(err as Error).message}`);
      return null;
    }
  });
  const openSeconds = (Date.now() - started) / 1000;
  const tunnels = opened.filter((w): w is RawWs => w !== null);
  t.after(() => tunnels.forEach((w) => w.socket.destroy()));

  const h = JSON.parse((await gw.health(10_000)).body || '{}') as { tunnels?: number };
  const fdPeak = gw.fds();
  const rssPeak = gw.rssMiB();
  const peerConnections = await peer.connections();

  // A sample echoes (one in 50, at least 5): the tunnels are alive, not just counted.
  const sample = tunnels.filter((_, i) => i % 50 === 0 || i < 5);
  let echoed = 0;
  await Promise.all(
    sample.map(async (w, n) => {
      const payload = Buffer.from(`ping ${n} through the gateway`);
      w.socket.write(frame(2, payload));
      try {
        await until('an echo', () => w.received().includes(payload), 15_000);
        echoed++;
      } catch {
        // counted below
      }
    }),
  );

  // Every client closes (a close frame, then it waits for the server's close and FIN).
  const closing = Date.now();
  for (const w of tunnels) w.socket.write(frame(8, Buffer.from([0x03, 0xe8])));
  await Promise.race([Promise.all(tunnels.map((w) => w.closed)), new Promise((r) => setTimeout(r, 60_000).unref())]);
  const stillOpen = tunnels.filter((w) => !w.socket.destroyed && w.socket.readyState !== 'closed').length;
  let tunnelsAfter = -1;
  await until('the gateway to count no tunnel', async () => {
    tunnelsAfter = (JSON.parse((await gw.health()).body || '{}') as { tunnels?: number }).tunnels ?? -1;
    return tunnelsAfter === 0;
  }, 60_000).catch(() => undefined);
  const closeSeconds = (Date.now() - closing) / 1000;
  const fdAfter = await fdsBackTo(gw, fdBefore, 60_000);
  const rssAfter = gw.rssMiB();
  const alive = gw.alive();

  t.diagnostic(`${tunnels.length}/${TUNNELS} opened in ${openSeconds.toFixed(1)} s; health counted ${h.tunnels}; peer held ${peerConnections}; ${echoed}/${sample.length} echoed`);
  t.diagnostic(`gateway fds ${fdBefore} -> ${fdPeak} at peak -> ${fdAfter}; RSS ${rssBefore} -> ${rssPeak} at peak -> ${rssAfter} MiB; closed in ${closeSeconds.toFixed(1)} s`);
  record({
    suite: 'many tunnels held open, then closed',
    cases: TUNNELS,
    failures: failed.length + (sample.length - echoed) + stillOpen + (tunnelsAfter === 0 ? 0 : 1) + (fdAfter > fdBefore ? 1 : 0),
    crashes: alive ? 0 : 1,
    fdBefore,
    fdAfter,
    rssBeforeMiB: rssBefore,
    rssAfterMiB: rssAfter,
    note: `opened in ${openSeconds.toFixed(0)} s (${HANDSHAKES_IN_FLIGHT} handshakes in flight); at peak ${fdPeak} fds, ${rssPeak} MiB (${(((rssPeak - rssBefore) * 1024) / Math.max(1, tunnels.length)).toFixed(1)} KiB per tunnel); ${echoed}/${sample.length} sampled echoed; all closed in ${closeSeconds.toFixed(0)} s`,
  });

  assert.ok(alive, `the gateway died: ${gw.stderr().slice(-2000)}`);
  assert.deepEqual(failed.slice(0, 5), [], `every handshake succeeds (${failed.length} failed)`);
  assert.equal(h.tunnels, TUNNELS, 'health counts every tunnel');
  assert.equal(peerConnections, TUNNELS, 'the upstream holds one connection per tunnel');
  assert.ok(fdPeak >= fdBefore + 2 * TUNNELS, `two sockets per tunnel in the gateway (${fdPeak} fds)`);
  assert.equal(echoed, sample.length, 'every sampled tunnel echoes');
  assert.equal(stillOpen, 0, 'every client connection closed');
  assert.equal(tunnelsAfter, 0, 'the gateway counts no tunnel after the closes');
  assert.equal(fdAfter, fdBefore, `every file descriptor is given back; sockets left: ${gw.sockets().join(', ')}`);
});
