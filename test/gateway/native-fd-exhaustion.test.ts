/**
 * A tunnel opened when the gateway has almost no file descriptors left: the
 * native engine dup()s both sockets at the handover, so it needs two more
 * descriptors than the connections already hold. Running out there must cost
 * that one tunnel, never the process. Tunnels are opened one at a time, so
 * the free count walks down by two and passes through every case (none left
 * at accept, none left for the upstream connection, none left for the dups).
 * Runs on the engine in force (scripts/test.mjs runs it both ways).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startGatewayChild } from '../reliability/gateway-child.js';
import { rawWebSocket, type RawWs } from '../reliability/peers.js';
import { wsUpstream } from '../helpers/net.js';

const LIMIT = 96;

test(`a gateway under ulimit -n ${LIMIT} opened tunnels one by one until none fit stays up and serves again`, { timeout: 120_000 }, async (t) => {
  const up = await wsUpstream();
  t.after(() => up.close());
  const gw = await startGatewayChild({ nofile: LIMIT, config: { apps: [{ name: 'ws', port: up.port }] } });
  t.after(() => gw.stop());

  const open: RawWs[] = [];
  t.after(() => {
    for (const w of open) w.socket.destroy();
  });
  let failures = 0;
  // More than the limit allows: every tunnel holds at least two descriptors.
  for (let i = 0; i < LIMIT && gw.alive(); i++) {
    try {
      open.push(await rawWebSocket(gw.port, `/ws/n${i}`));
    } catch {
      failures++;
      if (failures >= 4) break;
    }
    // The handover happens right after the 101: give it a moment before the next one.
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, 500));
  assert.ok(gw.alive(), `the gateway died after ${open.length} tunnels:\n${gw.stderr().slice(-2000)}`);
  assert.ok(failures > 0, 'the limit was reached');

  // Once the tunnels drop it serves again.
  for (const w of open) w.socket.destroy();
  open.length = 0;
  await new Promise((r) => setTimeout(r, 1000));
  const h = await gw.health();
  assert.equal(h.status, 200);
  const again = await rawWebSocket(gw.port, '/ws/again');
  again.socket.destroy();
});
