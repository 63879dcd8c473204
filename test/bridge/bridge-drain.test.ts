/**
 * A drain while a bridged connection is still connecting to its target (the
 * target never answers the SYN): the connection is given up at once, as an
 * upgrade waiting for its upstream is (close 1001, PH_ERR_DRAINING, an
 * `upgrade` event), instead of waiting out connect_timeout. Runs on both
 * engines (TUNNEL_TESTS in scripts/test.mjs): the connect is the same code,
 * the engine is chosen once it succeeds.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { describe, test } from 'node:test';
import WebSocket from 'ws';
import { startBridgeServer } from '../../src/toolkit/bridge-server.js';
import { collect, openFds, startGateway, waitFor } from '../helpers/net.js';
import { PYTHON } from '../helpers/python.js';

/**
 * A target whose connects hang: a listening socket with a backlog of 0 that
 * never accepts, its queue filled by one connection of ours; Linux drops
 * every later SYN, so a connect waits for its timeout.
 */
async function hangingTarget(): Promise<{ port: number; close(): Promise<void> }> {
  const code = 'import socket,sys,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\nsys.stdin.read()\n';
  const child = spawn(PYTHON, ['-c', code], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<number>((ok, fail) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('\n')) ok(Number(out.trim()));
    });
    child.once('exit', (c) => fail(new Error(`the hanging target exited ${c}`)));
  });
  const filler = net.connect(port, '127.0.0.1');
  await new Promise((ok, fail) => filler.once('connect', ok).once('error', fail));
  // A second connect must now hang, or the test proves nothing.
  const probe = net.connect(port, '127.0.0.1');
  const answered = await new Promise<boolean>((ok) => {
    const t = setTimeout(() => ok(false), 300);
    probe.once('connect', () => (clearTimeout(t), ok(true)));
    probe.once('error', () => (clearTimeout(t), ok(true)));
  });
  probe.destroy();
  assert.equal(answered, false, 'a connect to the full backlog hangs');
  return {
    port,
    close: async () => {
      filler.destroy();
      child.stdin!.end();
      if (child.exitCode === null) await new Promise((ok) => child.once('exit', ok));
    },
  };
}

/** True when a TCP connect to 127.0.0.1:port is pending (SYN_SENT in /proc/net/tcp). */
function connecting(port: number): boolean {
  const rem = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .some((l) => {
      const f = l.trim().split(/\s+/);
      return f[2] === rem && f[3] === '02';
    });
}

describe('bridge: a drain gives up connections still connecting', { timeout: 30_000 }, () => {
  test('the gateway: close 1001 with the reason a new upgrade gets, at once, well before connect_timeout; nothing left open', async () => {
    const target = await hangingTarget();
    const g = await startGateway({ apps: [{ name: 'vnc', bridge: `127.0.0.1:${target.port}`, connect_timeout: 20 }] });
    const upgrades = collect('upgrade', g.gw.id);
    const events = collect('gateway', g.gw.id);
    try {
      const before = openFds();
      const ws = new WebSocket(`${g.wsUrl}/vnc/websockify`, ['binary']);
      let opened = false;
      ws.once('open', () => (opened = true));
      const closed = new Promise<{ code: number; reason: string; at: number }>((ok) => ws.once('close', (code, reason) => ok({ code, reason: reason.toString(), at: Date.now() })));
      ws.on('error', () => {});
      await waitFor(() => connecting(target.port), 5000, 'the bridge connecting to its target');
      const started = Date.now();
      const drained = g.gw.drain(10_000);
      const c = await closed;
      assert.ok(c.at - started < 1000, `closed ${c.at - started} ms after the drain began (connect_timeout is 20 s)`);
      assert.equal(opened, true, 'the handshake was completed to carry the close');
      assert.equal(c.code, 1001);
      assert.equal(c.reason, 'vnc: the gateway is shutting down; reconnect in a moment');
      await drained;
      assert.ok(Date.now() - started < 3000, `the drain took ${Date.now() - started} ms`);
      const e = upgrades.events.find((u) => u.app === 'vnc');
      assert.ok(e, 'an upgrade event says why');
      assert.equal(e.accepted, false);
      assert.equal(e.code, 'PH_ERR_DRAINING');
      assert.equal(e.closeCode, 1001);
      assert.equal(g.gw.handshakes.size, 0);
      assert.equal(g.gw.bridges.size, 0);
      assert.deepEqual(
        events.events.map((x) => x.action),
        ['draining', 'closed'],
      );
      // The client's socket, the given-up TCP connect and the listener are all closed.
      await waitFor(() => openFds() < before && !connecting(target.port), 3000, 'the descriptors to be closed');
    } finally {
      upgrades.stop();
      events.stop();
      await g.close();
      await target.close();
    }
  });

  test('the standalone bridge: close() gives a connection still connecting up with 1001 at once', async () => {
    const target = await hangingTarget();
    const server = await startBridgeServer({ host: '127.0.0.1', port: 0, target: { host: '127.0.0.1', port: target.port }, connectMs: 20_000 });
    const upgrades = collect('upgrade', server.id);
    try {
      const ws = new WebSocket(`ws://127.0.0.1:${server.port}/`, ['binary']);
      const closed = new Promise<{ code: number; reason: string }>((ok) => ws.once('close', (code, reason) => ok({ code, reason: reason.toString() })));
      ws.on('error', () => {});
      await waitFor(() => connecting(target.port), 5000, 'the bridge connecting to its target');
      const started = Date.now();
      await server.close();
      const c = await closed;
      assert.ok(Date.now() - started < 2000, `closed ${Date.now() - started} ms after close() began (connect_timeout is 20 s)`);
      assert.equal(c.code, 1001);
      assert.equal(c.reason, 'bridge: shutting down; reconnect in a moment');
      const e = await waitFor(() => upgrades.events[0]);
      assert.equal(e.code, 'PH_ERR_DRAINING');
    } finally {
      upgrades.stop();
      await server.close();
      await target.close();
    }
  });
});
