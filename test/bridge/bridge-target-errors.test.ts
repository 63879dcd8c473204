/**
 * How a bridged connection ends when its TCP target fails, on both engines
 * (TUNNEL_TESTS in scripts/test.mjs runs this file again with
 * PORTHOLE_TUNNEL=js): the client's close code and reason and the
 * `tunnel.close` event name the error as upstreamError words it (a reset, a
 * timeout, or any other error by its code), the same whichever engine moves
 * the bytes. Failures of the initial connect (refused, timed out) are the
 * same code on both engines, checked here too.
 *
 * A target that times out or becomes unreachable after the handshake is made
 * real with network namespaces (test/helpers/netns.ts): `porthole bridge`
 * runs in one with a short TCP retransmission limit (tcp_retries2), the target
 * in another, and the target's link is cut mid-connection.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { tcpPeer } from '../fixtures/bridge/tcp-peers.js';
import { CLI } from '../helpers/cli.js';
import { collect, openWs, startGateway, waitFor, wsCloseOf } from '../helpers/net.js';
import { makeNet, type Net } from '../helpers/netns.js';
import { PYTHON } from '../helpers/python.js';

interface Closing {
  code: number;
  reason: string;
}

/** The engine under test: native unless PORTHOLE_TUNNEL=js (scripts/test.mjs builds the addon, CI requires it). */
const ENGINE = process.env.PORTHOLE_TUNNEL === 'js' ? 'js' : 'native';

function closeOf(ws: WebSocket): Promise<Closing> {
  return new Promise((ok) => ws.once('close', (code, reason) => ok({ code, reason: reason.toString() })));
}

describe('bridge: the target fails after the handshake', { timeout: 60_000 }, () => {
  test('a reset: close 1014 "reset the connection", the same reason in tunnel.close', async () => {
    const peer = await tcpPeer({ onSocket: (s) => s.once('data', () => s.resetAndDestroy()) });
    const g = await startGateway({ apps: [{ name: 'vnc', bridge: `127.0.0.1:${peer.port}` }] });
    const closes = collect('tunnel.close', g.gw.id);
    try {
      const ws = await openWs(`${g.wsUrl}/vnc/`, ['binary']);
      const closed = closeOf(ws);
      ws.send(Buffer.from('hello'));
      const c = await closed;
      assert.equal(c.code, 1014);
      assert.equal(c.reason, `vnc: upstream 127.0.0.1:${peer.port} reset the connection`);
      const e = await waitFor(() => closes.events[0]);
      assert.equal(e.closeCode, 1014);
      assert.equal(e.closedBy, 'upstream');
      assert.equal(e.reason, c.reason);
      assert.equal(e.engine, ENGINE);
    } finally {
      closes.stop();
      await g.close();
      await peer.close();
    }
  });
});

describe('bridge: the initial connect fails', { timeout: 30_000 }, () => {
  test('refused, and timed out (a SYN never answered): close 1014 naming each, and an upgrade event', async () => {
    // A listening socket with a backlog of 0 that never accepts, its queue filled by one connection: later SYNs are dropped.
    const code = 'import socket,sys\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\nsys.stdin.read()\n';
    const hang = spawn(PYTHON, ['-c', code], { stdio: ['pipe', 'pipe', 'inherit'] });
    const [out] = (await once(hang.stdout!, 'data')) as [Buffer];
    const hangPort = Number(out.toString().trim());
    const filler = net.connect(hangPort, '127.0.0.1');
    await once(filler, 'connect');
    const refused = await tcpPeer();
    const refusedPort = refused.port;
    await refused.close();
    const g = await startGateway({
      apps: [
        { name: 'down', bridge: `127.0.0.1:${refusedPort}` },
        { name: 'slow', bridge: `127.0.0.1:${hangPort}`, connect_timeout: '300ms' },
      ],
    });
    const upgrades = collect('upgrade', g.gw.id);
    try {
      const down = await wsCloseOf(`${g.wsUrl}/down/`, ['binary']);
      assert.deepEqual(down, { code: 1014, reason: `down: upstream 127.0.0.1:${refusedPort} refused the connection`, opened: true });
      const slow = await wsCloseOf(`${g.wsUrl}/slow/`, ['binary']);
      assert.deepEqual(slow, { code: 1014, reason: `slow: connecting to 127.0.0.1:${hangPort} timed out`, opened: true });
      await waitFor(() => upgrades.events.length === 2);
      assert.deepEqual(
        upgrades.events.map((e) => [e.app, e.accepted, e.code, e.closeCode, e.reason]),
        [
          ['down', false, 'PH_ERR_UPSTREAM_REFUSED', 1014, down.reason],
          ['slow', false, 'PH_ERR_UPSTREAM_CONNECT_TIMEOUT', 1014, slow.reason],
        ],
      );
    } finally {
      upgrades.stop();
      await g.close();
      filler.destroy();
      hang.stdin!.end();
    }
  });
});

/** Starts a process in namespace i and waits for the first stdout line matching `re`. */
async function startIn(n: Net, i: number, args: string[], re: RegExp): Promise<{ child: ChildProcess; match: RegExpExecArray; stderr: () => string }> {
  const child = n.spawn(i, process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const match = await new Promise<RegExpExecArray>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`${args.join(' ')} did not start:\n${err}`)), 15_000);
    child.stdout!.on('data', (d) => {
      out += d;
      const m = re.exec(out);
      if (m) {
        clearTimeout(timer);
        ok(m);
      }
    });
    child.once('exit', (code) => (clearTimeout(timer), fail(new Error(`${args.join(' ')} exited ${code}:\n${err}`))));
  });
  return { child, match, stderr: () => err };
}

describe('bridge: the target times out or becomes unreachable mid-connection', { timeout: 120_000 }, () => {
  let n: Net;
  before(async () => {
    n = await makeNet(2);
    // Retransmissions give up after about 1.4 s (instead of 15 minutes); a neighbour that does not answer ARP fails in 0.3 s.
    for (const [key, value] of [
      ['net.ipv4.tcp_retries2', '2'],
      [`net.ipv4.neigh.ph${n.subnet}n0p.retrans_time_ms`, '100'],
    ]) {
      const r = await n.exec(0, 'sysctl', ['-qw', `${key}=${value}`]);
      assert.equal(r.code, 0, `sysctl ${key}: ${r.stderr}`);
    }
  });
  after(async () => {
    await n?.close();
  });

  /**
   * A bridge in namespace 0 to an echo target in namespace 1, one WebSocket through it (an echo
   * proves the path), then the target's link is cut (and, with `forgetNeighbour`, its ARP entry
   * dropped, so the next packet finds no one: EHOSTUNREACH) and the client sends again.
   */
  async function cutMidConnection(forgetNeighbour: boolean): Promise<{ close: Closing; event: Record<string, unknown>; target: string }> {
    const [h0, h1] = n.hosts;
    const echo = 'const s=require("net").createServer(c=>c.pipe(c)).listen(0,process.argv[1],()=>console.log(s.address().port))';
    const target = await startIn(n, 1, ['-e', echo, h1.ip], /^(\d+)\n/);
    const targetLabel = `${h1.ip}:${target.match[1]}`;
    const bridge = await startIn(n, 0, [CLI, 'bridge', '--log-format', 'json', `${h0.ip}:0`, targetLabel], /^listening on http:\/\/[^:]+:(\d+)\n/);
    try {
      const ws = await openWs(`ws://${h0.ip}:${bridge.match[1]}/`, ['binary']);
      const closed = closeOf(ws);
      const echoed = once(ws, 'message');
      ws.send(Buffer.from('hello'));
      assert.equal(String((await echoed)[0]), 'hello');
      await n.partition(1);
      if (forgetNeighbour) {
        const r = await n.exec(0, 'ip', ['neigh', 'flush', 'to', h1.ip]);
        assert.equal(r.code, 0, r.stderr);
      }
      ws.send(Buffer.from('anyone there?'));
      const close = await closed;
      const event = await waitFor(
        () =>
          bridge
            .stderr()
            .split('\n')
            .filter((l) => l.startsWith('{'))
            .map((l) => JSON.parse(l) as Record<string, unknown>)
            .find((e) => e.event === 'tunnel.close'),
        5000,
        'the tunnel.close event',
      );
      return { close, event, target: targetLabel };
    } finally {
      bridge.child.kill('SIGKILL');
      target.child.kill('SIGKILL');
      await n.heal(1);
    }
  }

  test('retransmissions time out (ETIMEDOUT): close 1014 with upstreamError\'s reason, the same in tunnel.close', async () => {
    const { close, event, target } = await cutMidConnection(false);
    assert.deepEqual(close, { code: 1014, reason: `bridge: connecting to ${target} timed out` });
    assert.equal(event.closeCode, 1014);
    assert.equal(event.closedBy, 'upstream');
    assert.equal(event.reason, close.reason);
    assert.equal(event.engine, ENGINE);
  });

  test('the target becomes unreachable (EHOSTUNREACH): close 1014 naming the error, the same in tunnel.close', async () => {
    const { close, event, target } = await cutMidConnection(true);
    assert.deepEqual(close, { code: 1014, reason: `bridge: upstream ${target} failed (EHOSTUNREACH)` });
    assert.equal(event.closeCode, 1014);
    assert.equal(event.closedBy, 'upstream');
    assert.equal(event.reason, close.reason);
    assert.equal(event.engine, ENGINE);
  });
});
