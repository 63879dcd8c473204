/**
 * The front (src/gateway/front.ts, native/front.c) under attack: clients and
 * upstreams that misbehave at each phase of a handshake, drains in every
 * phase, and heads Node's parser reads differently. Where the front must not
 * differ from Node's path, the same gateway without it is the reference.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { frontCounts, setNextFrontId } from '../../src/gateway/front.js';
import { setLastConnectionId } from '../../src/gateway/tunnel.js';
import { createGateway } from '../../src/gateway/gateway.js';
import { nativeBinding } from '../../src/gateway/native-binding.js';
import { closeServer, collect, listen, nextMessage, openWs, sleep, waitFor, wsCloseOf, wsUpstream, type TestGateway } from '../helpers/net.js';
import { PYTHON } from '../helpers/python.js';
import { acceptKey } from '../../src/gateway/error-response.js';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const HEAD = (path: string) => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`;

async function gateway(config: unknown, front: boolean): Promise<TestGateway> {
  const gw = createGateway(config);
  const addr = await gw.listen('127.0.0.1', 0, { front });
  return { gw, port: addr.port, url: addr.url, wsUrl: `ws://127.0.0.1:${addr.port}`, close: () => gw.drain(200) };
}

/** Resolves when the socket is closed (by either side), with what it received. */
function ended(s: net.Socket): Promise<string> {
  let got = '';
  s.on('data', (d: Buffer) => (got += d.toString('latin1')));
  s.on('error', () => {});
  return new Promise((ok) => s.on('close', () => ok(got)));
}

/** A client: once told to (a line on stdin), connects, sends argv[2] and its FIN at once, and reads to the end. */
const CLIENT = 'import socket,sys\nprint("ready",flush=True)\nsys.stdin.readline()\ns=socket.create_connection(("127.0.0.1",int(sys.argv[1])))\ns.sendall(sys.argv[2].encode())\ns.shutdown(socket.SHUT_WR)\ns.settimeout(5)\ntry:\n  while s.recv(65536): pass\nexcept Exception: pass\nprint("done",flush=True)';

function collectOut(p: ChildProcess): { text: string } {
  const o = { text: '' };
  p.stdout!.on('data', (d: Buffer) => (o.text += d.toString()));
  return o;
}

// Without the addon there is no front; in CI the addon is built (tunnel-engine.test.ts), so this never skips there.
describe('the front, attacked', { skip: nativeBinding().binding || process.env.CI === 'true' ? false : 'the native addon is not built' }, () => {
  test('a head with more header lines than Node keeps reaches the app as through Node: without the ones Node drops', async () => {
    const heads: string[] = [];
    const up = net.createServer((s) => {
      s.on('error', () => {});
      let got = '';
      s.on('data', function onData(d: Buffer) {
        got += d.toString('latin1');
        const end = got.indexOf('\r\n\r\n');
        if (end < 0) return;
        s.off('data', onData);
        heads.push(got.slice(0, end + 4));
        const key = /sec-websocket-key: *(\S+)/i.exec(got)![1];
        const accept = acceptKey(key);
        s.end(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      });
    });
    const port = await listen(up);
    try {
      // Node's parser keeps the first 2000 header fields and values (about a thousand lines) and drops the rest.
      const many = Array.from({ length: 1500 }, (_, i) => `h${i}: v\r\n`).join('');
      const head = HEAD('/e/').replace('\r\n\r\n', `\r\n${many}X-Last: 1\r\n\r\n`);
      const seen: Record<string, string> = {};
      for (const front of [false, true]) {
        const g = await gateway({ apps: [{ name: 'e', port }] }, front);
        try {
          const s = net.connect(g.port, '127.0.0.1');
          const done = ended(s);
          s.write(head);
          await waitFor(() => heads.length > 0, 5000, 'the head upstream');
          s.destroy();
          await done;
          seen[String(front)] = heads.pop()!;
        } finally {
          await g.close();
        }
      }
      assert.ok(!seen.false.includes('X-Last'), 'Node dropped it');
      assert.equal(seen.true, seen.false);
    } finally {
      await closeServer(up);
    }
  });

  test('a wrong 101, or an answer the drain came before: the upstream connection is closed at once, and its reset harms nothing', async () => {
    // The upstream answers a 101 the client would refuse (a wrong accept), or a good one that the gateway's drain
    // overtakes, then resets its connection a while later unless the gateway closed it first.
    let g: TestGateway | null = null;
    let closedByGateway = 0;
    const up = net.createServer((s) => {
      s.on('error', () => {});
      s.on('end', () => closedByGateway++);
      let got = '';
      s.on('data', function onData(d: Buffer) {
        got += d.toString('latin1');
        const end = got.indexOf('\r\n\r\n');
        if (end < 0) return;
        s.off('data', onData);
        s.on('data', () => {});
        const key = /sec-websocket-key: *(\S+)/i.exec(got)![1];
        const wrong = /\/wrong/.test(got);
        const accept = wrong ? 'AAAAAAAAAAAAAAAAAAAAAAAAAAA=' : acceptKey(key);
        s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
        setTimeout(() => s.destroyed || s.resetAndDestroy(), 1500);
        if (wrong) return;
        // This thread waits while the addon reads the answer and reports it; the drain then runs before the report.
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
        void g!.gw.drain(100);
      });
    });
    const port = await listen(up);
    const uncaught: Error[] = [];
    const onUncaught = (err: Error) => uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      g = await gateway({ apps: [{ name: 'e', port }] }, true);
      const c = await wsCloseOf(`${g.wsUrl}/e/wrong`);
      assert.equal(c.code, 1014);
      await waitFor(() => closedByGateway === 1, 1000, 'the upstream connection closed by the gateway');
      const drained = await wsCloseOf(`${g.wsUrl}/e/`);
      assert.equal(drained.code, 1001);
      await waitFor(() => closedByGateway === 2, 1000, 'the upstream connection closed by the gateway after the drain');
      await sleep(800);
      assert.deepEqual(uncaught, []);
    } finally {
      process.off('uncaughtException', onUncaught);
      await g?.close();
      await closeServer(up);
    }
  });

  test("small messages reach the client at once, as through Node's path (no Nagle on the client's socket)", async () => {
    // The app answers each message with two, the second a moment after the first: with Nagle's algorithm on
    // the client's socket, the second waits for the client's delayed ACK of the first (about 40 ms).
    const app = await wsUpstream({}, (ws) =>
      ws.on('message', (m) => {
        ws.send(`${m}-a`);
        setTimeout(() => ws.send(`${m}-b`), 2);
      }),
    );
    const g = await gateway({ apps: [{ name: 'e', port: app.port }] }, true);
    const before = frontCounts();
    try {
      const ws = await openWs(`${g.wsUrl}/e/`);
      const gaps: number[] = [];
      for (let i = 0; i < 21; i++) {
        let first = 0;
        await new Promise<void>((ok) => {
          const on = (m: Buffer) => {
            if (String(m).endsWith('-a')) first = performance.now();
            else {
              gaps.push(performance.now() - first);
              ws.off('message', on);
              ok();
            }
          };
          ws.on('message', on);
          ws.send(`m${i}`);
        });
      }
      ws.terminate();
      assert.equal(frontCounts().tunnels - before.tunnels, 1);
      gaps.sort((x, y) => x - y);
      assert.ok(gaps[10] < 20, `the second answer came ${gaps[10].toFixed(1)} ms after the first (median)`);
    } finally {
      await g.close();
      await app.close();
    }
  });

  test("a head over Node's --max-http-header-size (lowered) is refused as Node refuses it, not taken", async () => {
    const run = async (mode: string) => {
      const p = spawn(process.execPath, ['--max-http-header-size=4096', '--import', 'tsx', fileURLToPath(new URL('../fixtures/gateway/front-head-size.ts', import.meta.url)), mode], { stdio: ['ignore', 'pipe', 'inherit'] });
      const out = collectOut(p);
      const [code] = await once(p, 'exit');
      assert.equal(code, 0);
      return JSON.parse(out.text.trim().split('\n').filter((l) => l.startsWith('{"answer"')).pop()!) as { answer: string; tunnels: number };
    };
    const node = await run('node');
    const front = await run('front');
    assert.match(node.answer, /^HTTP\/1\.1 431 /);
    assert.deepEqual(front, { answer: node.answer, tunnels: 0 });
  });

  test('connections and tunnels past 2^31 since start are still answered and still end', async () => {
    const echo = await wsUpstream();
    const g = await gateway({ apps: [{ name: 'e', port: echo.port }] }, true);
    const closes = collect('tunnel.close', g.gw.id);
    const before = frontCounts();
    try {
      // The ids given to the addon (int32) cross 2^31 here.
      setNextFrontId(2 ** 31 - 2);
      setLastConnectionId(2 ** 31 - 2);
      for (let i = 0; i < 4; i++) {
        const ws = await Promise.race([openWs(`${g.wsUrl}/e/`), sleep(3000).then(() => null)]);
        assert.ok(ws, `handshake ${i} answered`);
        ws.send(`m${i}`);
        assert.equal((await nextMessage(ws)).data.toString(), `m${i}`);
        ws.close();
        await waitFor(() => closes.events.length === i + 1, 3000, `tunnel ${i} ended`);
      }
      assert.equal(frontCounts().tunnels - before.tunnels, 4);
      assert.equal(g.gw.tunnels.size, 0);
    } finally {
      closes.stop();
      await g.close();
      await echo.close();
    }
  });

  for (const front of [false, true]) {
    test(`a drain cuts connections whose heads have not come whole, or at all (front: ${front})`, async () => {
      const echo = await wsUpstream();
      const g = await gateway({ apps: [{ name: 'e', port: echo.port }] }, front);
      try {
        const partial = net.connect(g.port, '127.0.0.1');
        const silent = net.connect(g.port, '127.0.0.1');
        const done = [ended(partial), ended(silent)];
        await Promise.all([once(partial, 'connect'), once(silent, 'connect')]);
        partial.write(HEAD('/e/').slice(0, 40));
        await sleep(50);
        await g.gw.drain(100);
        // With the front, a connection that has sent nothing is still the kernel's (accepts wait
        // for the first bytes: TCP_DEFER_ACCEPT), and dies with the listener: its first write is
        // refused (a reset), never answered.
        if (front) silent.write(HEAD('/e/'));
        const r = await Promise.race([Promise.all(done).then(() => 'closed'), sleep(2000).then(() => 'still open')]);
        partial.destroy();
        silent.destroy();
        assert.equal(r, 'closed');
        assert.equal(await done[1], '', 'the silent connection is never answered');
      } finally {
        await echo.close();
      }
    });

    test(`a client whose head and FIN come together is logged as leaving, as Node's path logs it (front: ${front})`, async () => {
      const echo = await wsUpstream();
      const g = await gateway({ apps: [{ name: 'e', port: echo.port }] }, front);
      const upgrades = collect('upgrade', g.gw.id);
      // A client in another process sends its head and its FIN while this thread is blocked, so
      // both wait in the socket when the gateway accepts it: the front sees them in one event.
      const py = spawn(PYTHON, ['-c', CLIENT, String(g.port), HEAD('/e/')], { stdio: ['pipe', 'pipe', 'inherit'] });
      try {
        const out = collectOut(py);
        await waitFor(() => out.text.includes('ready'), 5000, 'the client started');
        py.stdin!.write('go\n');
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 400);
        const e = await waitFor(() => upgrades.events[0], 5000, 'the upgrade event');
        assert.equal(e.accepted, false, JSON.stringify(e));
        assert.equal(e.code, 'PH_ERR_REQUEST_ABORTED');
        await waitFor(() => py.exitCode !== null, 5000, 'the client done');
      } finally {
        if (py.exitCode === null) py.kill('SIGKILL');
        upgrades.stop();
        await g.close();
        await echo.close();
      }
    });
  }
});
