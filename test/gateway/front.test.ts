/**
 * The front (src/gateway/front.ts, native/front.c): WebSocket handshakes on
 * the addon's thread. Each behaviour is checked through a gateway with the
 * front and, where it must not differ, against the same gateway without it:
 * whatever the front does not take, or cannot finish, is answered exactly as
 * Node's path answers it.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { acceptKey } from '../../src/gateway/error-response.js';
import { frontCounts, frontWanted, installFront, type FrontOwner } from '../../src/gateway/front.js';
import { createGateway } from '../../src/gateway/gateway.js';
import { nativeBinding } from '../../src/gateway/native-binding.js';
import { closeServer, collect, httpUpstream, listen, nextMessage, openFds, openWs, rawRequest, sleep, waitFor, wsCloseOf, wsUpstream, type TestGateway } from '../helpers/net.js';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

async function gateway(config: unknown, front: boolean): Promise<TestGateway> {
  const gw = createGateway(config);
  const addr = await gw.listen('127.0.0.1', 0, { front });
  return { gw, port: addr.port, url: addr.url, wsUrl: `ws://127.0.0.1:${addr.port}`, close: () => gw.drain(200) };
}

/** The same config through a gateway with the front and one without: `run` on each, both results. */
async function both<T>(config: unknown, run: (g: TestGateway) => Promise<T>): Promise<{ front: T; node: T; taken: number; handedBack: number }> {
  const before = frontCounts();
  const f = await gateway(config, true);
  let front: T;
  try {
    assert.equal(f.gw.front, true, 'the front is on');
    front = await run(f);
  } finally {
    await f.close();
  }
  const mid = frontCounts();
  const n = await gateway(config, false);
  try {
    assert.equal(n.gw.front, false);
    return { front, node: await run(n), taken: mid.tunnels - before.tunnels, handedBack: mid.handedBack - before.handedBack };
  } finally {
    await n.close();
  }
}

/** A raw upstream: `onHead` gets each connection once its request head is in. */
async function rawUpstream(onHead: (s: net.Socket, head: string) => void): Promise<{ port: number; conns: net.Socket[]; closed: () => number; close: () => Promise<void> }> {
  const conns: net.Socket[] = [];
  let closedCount = 0;
  const server = net.createServer((s) => {
    conns.push(s);
    s.on('error', () => {});
    s.on('close', () => closedCount++);
    let got = '';
    s.on('data', function onData(d: Buffer) {
      got += d.toString('latin1');
      const end = got.indexOf('\r\n\r\n');
      if (end < 0) return;
      s.off('data', onData);
      onHead(s, got.slice(0, end + 4));
    });
  });
  const port = await listen(server);
  return {
    port,
    conns,
    closed: () => closedCount,
    close: async () => {
      for (const c of conns) c.destroy();
      await closeServer(server);
    },
  };
}

const accept101 = (head: string, extra = '') => {
  const key = /sec-websocket-key: *(\S+)/i.exec(head)![1];
  // The accept value for the key, computed as RFC 6455 says (the client checks it).
  return `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n${extra}\r\n`;
};

/** A port nothing listens on. */
async function deadPort(): Promise<number> {
  const s = net.createServer();
  const port = await listen(s);
  await closeServer(s);
  return port;
}

/** What a client sees of a handshake that fails: close code and reason, or the HTTP status and error code. */
async function outcome(url: string): Promise<string> {
  try {
    const c = await wsCloseOf(url);
    return `opened=${c.opened} close=${c.code} reason=${c.reason}`;
  } catch (err) {
    const e = err as { status?: number; headers?: Record<string, string>; message: string };
    return e.status ? `status=${e.status} error=${e.headers?.['x-porthole-error'] ?? ''}` : `error=${e.message}`;
  }
}

// Without the addon there is no front; in CI the addon is built (tunnel-engine.test.ts), so this never skips there.
describe('the front', { skip: nativeBinding().binding || process.env.CI === 'true' ? false : 'the native addon is not built' }, () => {
  let echo: Awaited<ReturnType<typeof wsUpstream>>;
  before(async () => {
    echo = await wsUpstream();
  });
  after(async () => {
    await echo.close();
  });

  test('on by default: PORTHOLE_FRONT unset or native takes handshakes through the front, node through Node\'s path, anything else stops the start (PH_ERR_CONFIG) before the port is bound', async () => {
    assert.equal(frontWanted({}), true);
    assert.equal(frontWanted({ PORTHOLE_FRONT: 'native' }), true);
    assert.equal(frontWanted({ PORTHOLE_FRONT: ' node ' }), false);
    assert.throws(() => frontWanted({ PORTHOLE_FRONT: 'fast' }), (err: Error & { code?: string }) => err.code === 'PH_ERR_CONFIG' && /PORTHOLE_FRONT=fast: expected native .* or node/.test(err.message));
    const saved = process.env.PORTHOLE_FRONT;
    try {
      delete process.env.PORTHOLE_FRONT;
      const on = createGateway({ apps: [{ name: 'e', port: echo.port }] });
      await on.listen('127.0.0.1', 0);
      assert.equal(on.front, true, 'the front is on without being asked for');
      await on.drain(100);
      process.env.PORTHOLE_FRONT = 'node';
      const off = createGateway({ apps: [{ name: 'e', port: echo.port }] });
      await off.listen('127.0.0.1', 0);
      assert.equal(off.front, false);
      await off.drain(100);
      process.env.PORTHOLE_FRONT = 'fast';
      const port = await new Promise<number>((ok) => {
        const probe = net.createServer().listen(0, '127.0.0.1', () => {
          const p = (probe.address() as net.AddressInfo).port;
          probe.close(() => ok(p));
        });
      });
      const bad = createGateway({ apps: [{ name: 'e', port: echo.port }] });
      await assert.rejects(bad.listen('127.0.0.1', port), (err: Error & { code?: string }) => err.code === 'PH_ERR_CONFIG');
      // Nothing listens there: the check came first.
      const refused = await new Promise<string>((ok) => net.connect(port, '127.0.0.1').on('connect', function (this: net.Socket) { this.destroy(); ok('connected'); }).on('error', (e: NodeJS.ErrnoException) => ok(e.code ?? 'error')));
      assert.equal(refused, 'ECONNREFUSED');
    } finally {
      if (saved === undefined) delete process.env.PORTHOLE_FRONT;
      else process.env.PORTHOLE_FRONT = saved;
    }
  });

  test('takes a WebSocket handshake whole: messages both ways, the upgrade and tunnel.close events, the listening event says so', async () => {
    const gw = createGateway({ apps: [{ name: 'e', port: echo.port }] });
    const listening = collect('gateway', gw.id);
    const upgrades = collect('upgrade', gw.id);
    const closes = collect('tunnel.close', gw.id);
    const addr = await gw.listen('127.0.0.1', 0, { front: true });
    const before = frontCounts();
    try {
      const l = listening.events.find((e) => e.action === 'listening');
      assert.equal(l?.front, true);
      assert.equal(l?.frontWhy, undefined, 'a TCP listener defers its accepts: nothing lacking to say');
      const ws = await openWs(`ws://127.0.0.1:${addr.port}/e/path?x=1`);
      for (const m of ['one', 'two', 'three']) {
        ws.send(m);
        assert.equal((await nextMessage(ws)).data.toString(), m);
      }
      ws.close(1000, 'bye');
      const c = await waitFor(() => closes.events[0]);
      assert.equal(c.closedBy, 'client');
      assert.equal(c.closeCode, 1000);
      assert.equal(c.messagesIn, 3);
      assert.equal(c.path, '/e/path?x=1');
      const u = upgrades.events[0];
      assert.equal(u.accepted, true);
      assert.equal(u.status, 101);
      assert.ok(typeof u.ms === 'number' && u.ms >= 0);
      assert.equal(frontCounts().tunnels - before.tunnels, 1, 'the front made the tunnel');
      assert.equal(frontCounts().atAccept - before.atAccept, 1, 'its head was there when Node accepted it');
      // The upstream saw the head the gateway writes: the prefix off, X-Forwarded-For on.
      const seen = echo.handshakes.at(-1)!;
      assert.equal(seen.url, '/path?x=1');
      assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    } finally {
      listening.stop();
      upgrades.stop();
      closes.stop();
      await gw.drain(200);
    }
  });

  test("a listener whose accepts cannot be deferred still gets the front, and says why (here a Unix socket's: TCP_DEFER_ACCEPT is TCP's)", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'porthole-front-'));
    const server = http.createServer();
    try {
      await new Promise<void>((ok) => server.listen(join(dir, 'sock'), ok));
      const installed = installFront({} as FrontOwner, server);
      assert.ok(installed, 'installed');
      assert.match(installed.deferWhy ?? '', /^accepts are not deferred \(TCP_DEFER_ACCEPT: E[A-Z]+\): each head is waited for on the front's loop$/);
      const tcp = http.createServer();
      await new Promise<void>((ok) => tcp.listen(0, '127.0.0.1', ok));
      assert.deepEqual(installFront({} as FrontOwner, tcp), {}, 'a TCP listener defers its accepts');
      await closeServer(tcp);
    } finally {
      await closeServer(server);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('200 handshakes at once, 32 at a time, each echoing: every one through the front', async () => {
    const g = await gateway({ apps: [{ name: 'e', port: echo.port }] }, true);
    const before = frontCounts();
    try {
      let next = 0;
      const one = async () => {
        const ws = await openWs(`${g.wsUrl}/e/`);
        const payload = `m${next}`;
        ws.send(payload);
        assert.equal((await nextMessage(ws)).data.toString(), payload);
        ws.close();
        await once(ws, 'close');
      };
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          while (next < 200) {
            next++;
            await one();
          }
        }),
      );
      assert.ok(frontCounts().tunnels - before.tunnels >= 200);
      await waitFor(() => g.gw.tunnels.size === 0, 5000, 'every tunnel ended');
    } finally {
      await g.close();
    }
  });

  test('two copies of Porthole in one process (its package and its sources): handshakes through both fronts, and every tunnel reports its end', { timeout: 20_000 }, async () => {
    // The addon is loaded once per process; what each copy keeps of it must be shared, or one copy's reports reach the other.
    const dist = (await import('porthole')) as unknown as { createGateway: typeof createGateway };
    const gws = [dist.createGateway({ apps: [{ name: 'e', port: echo.port }] }), createGateway({ apps: [{ name: 'e', port: echo.port }] })];
    const closes = gws.map((gw) => collect('tunnel.close', gw.id));
    try {
      const ports = [];
      for (const gw of gws) ports.push((await gw.listen('127.0.0.1', 0, { front: true })).port);
      for (let round = 0; round < 3; round++) {
        for (const port of ports) {
          const ws = await openWs(`ws://127.0.0.1:${port}/e/`);
          ws.send(`r${round}`);
          assert.equal((await nextMessage(ws)).data.toString(), `r${round}`);
          ws.close();
          await once(ws, 'close');
        }
      }
      for (const c of closes) await waitFor(() => c.events.length === 3, 5000, 'three tunnel.close events from each copy');
    } finally {
      for (const c of closes) c.stop();
      for (const gw of gws) await gw.drain(200);
    }
  });

  test('connections that have sent nothing hold no descriptor of the gateway until they send or about a second passes (deferred accepts); without the front, each holds one at once', async () => {
    const silentFds = async (front: boolean) => {
      const g = await gateway({ apps: [{ name: 'e', port: echo.port }] }, front);
      const socks: net.Socket[] = [];
      try {
        await sleep(50);
        const before = openFds();
        for (let i = 0; i < 40; i++) {
          const s = net.connect(g.port, '127.0.0.1');
          s.on('error', () => {});
          socks.push(s);
        }
        await Promise.all(socks.map((s) => (s.connecting ? once(s, 'connect') : null)));
        await sleep(300);
        // Each client socket is one of this process's descriptors: what is left over is the gateway's.
        const held = openFds() - before - socks.length;
        // After the kernel stops deferring (about a second), Node has them all.
        await sleep(1700);
        const later = openFds() - before - socks.length;
        return { held, later };
      } finally {
        for (const s of socks) s.destroy();
        await g.close();
      }
    };
    const withFront = await silentFds(true);
    const without = await silentFds(false);
    assert.ok(withFront.held <= 2, `the front's listener holds ${withFront.held} descriptors for 40 silent connections`);
    assert.ok(withFront.later >= 38, `accepted after the deferral: ${withFront.later}`);
    assert.ok(without.held >= 38, `Node's listener holds one per connection at once: ${without.held}`);
  });

  test('a connection that says nothing for 1.5 s is accepted all the same: its HTTP request and its WebSocket handshake are answered', async () => {
    const up = await httpUpstream((req, res) => res.end(`late ${req.url}`));
    const g = await gateway({ apps: [{ name: 'h', port: up.port }, { name: 'e', port: echo.port }] }, true);
    const before = frontCounts();
    try {
      const late = (head: string) =>
        new Promise<string>((ok, fail) => {
          const s = net.connect(g.port, '127.0.0.1');
          let out = '';
          s.on('data', (d) => {
            out += d.toString('latin1');
            if (out.includes('\r\n\r\n') && out.startsWith('HTTP/1.1 101')) s.destroy();
          });
          s.on('close', () => ok(out));
          s.on('error', fail);
          s.on('connect', () => setTimeout(() => s.write(head), 1500));
        });
      const [plain, ws] = await Promise.all([
        late('GET /h/x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'),
        late(`GET /e/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`),
      ]);
      assert.match(plain, /^HTTP\/1\.1 200 [^]*late \/x$/);
      assert.match(ws, new RegExp(`^HTTP/1\\.1 101 [^]*Sec-WebSocket-Accept: ${ACCEPT.replace(/[+/]/g, '\\$&')}`, 'i'));
      // The kernel gave both up waiting (about a second) before their bytes came: the front waited its own 200 ms and handed them to Node.
      assert.equal(frontCounts().atAccept - before.atAccept, 0);
      assert.equal(frontCounts().handedBack - before.handedBack, 2);
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('HTTP on the same port goes to Node unread: keep-alive requests, a body, a head sent in two pieces', async () => {
    const up = await httpUpstream((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => res.end(`${req.method} ${req.url} ${body}`));
    });
    const g = await gateway({ apps: [{ name: 'h', port: up.port }] }, true);
    const before = frontCounts();
    try {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      for (const path of ['/h/a', '/h/b', '/h/c']) {
        const body = await new Promise<string>((ok, fail) => {
          http.get(`${g.url}${path}`, { agent }, (res) => {
            let b = '';
            res.on('data', (d) => (b += d));
            res.on('end', () => ok(b));
          }).on('error', fail);
        });
        assert.equal(body, `GET ${path.slice(2)} `);
      }
      agent.destroy();
      const posted = await rawRequest(g.port, `POST /h/p HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello`);
      assert.match(posted, /^HTTP\/1\.1 200 /);
      assert.match(posted, /POST \/p hello$/);
      // A head in two writes: the front waits for the rest, sees no upgrade, and Node answers.
      const split = await new Promise<string>((ok, fail) => {
        const s = net.connect(g.port, '127.0.0.1');
        let out = '';
        s.on('data', (d) => (out += d));
        s.on('close', () => ok(out));
        s.on('error', fail);
        s.write('GET /h/split HTTP/1.1\r\nHost: 127.0.0.1\r\n');
        setTimeout(() => s.write('Connection: close\r\n\r\n'), 60);
      });
      assert.match(split, /GET \/split $/);
      assert.equal(frontCounts().handedBack - before.handedBack, 3, 'one connection for the keep-alive requests, one for the POST, one for the split head');
      // Accepts wait for the first bytes: the two whole heads were met at accept and went to Node at once.
      assert.equal(frontCounts().atAccept - before.atAccept, 2);
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('a handshake whose head comes in two pieces, and one with a frame in the same write as its head, go through the front', async () => {
    const g = await gateway({ apps: [{ name: 'e', port: echo.port }] }, true);
    const before = frontCounts();
    try {
      for (const withFrame of [false, true]) {
        const s = net.connect(g.port, '127.0.0.1');
        await once(s, 'connect');
        const head = `GET /e/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
        // A masked text frame "hi" (mask 0).
        const frame = Buffer.from([0x81, 0x82, 0, 0, 0, 0, 0x68, 0x69]);
        if (withFrame) s.write(Buffer.concat([Buffer.from(head), frame]));
        else {
          s.write(head.slice(0, 30));
          await sleep(40);
          s.write(head.slice(30));
          await sleep(40);
          s.write(frame);
        }
        let got = Buffer.alloc(0);
        await waitFor(() => {
          const d = s.read() as Buffer | null;
          if (d) got = Buffer.concat([got, d]);
          return got.includes(Buffer.from([0x81, 0x02, 0x68, 0x69]));
        }, 5000, 'the echo of the frame');
        assert.ok(got.toString('latin1').startsWith('HTTP/1.1 101 '));
        assert.ok(got.toString('latin1').includes(`Sec-WebSocket-Accept: ${ACCEPT}`));
        s.destroy();
      }
      assert.equal(frontCounts().tunnels - before.tunnels, 2);
    } finally {
      await g.close();
    }
  });

  test('a fault of ours while deciding a head (at accept, and from the loop) costs that connection alone: it is closed, PH_ERR_NATIVE_TUNNEL is logged, the next handshake goes through', async () => {
    const g = await gateway({ apps: [{ name: 'e', port: echo.port }] }, true);
    const errors = collect('error', g.gw.id);
    const owner = g.gw as unknown as { frontPlan: (...a: unknown[]) => unknown };
    const plan = owner.frontPlan;
    try {
      owner.frontPlan = () => {
        throw new Error('a fault of the test');
      };
      const head = `GET /e/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
      for (const pieces of [1, 2]) {
        const before = frontCounts();
        const s = net.connect(g.port, '127.0.0.1');
        s.on('error', () => {});
        await once(s, 'connect');
        if (pieces === 1) s.write(head);
        else {
          s.write(head.slice(0, 30));
          await sleep(60);
          s.write(head.slice(30));
        }
        let got = '';
        s.on('data', (d: Buffer) => (got += d.toString('latin1')));
        // Closed with the head unread: a reset, or a FIN.
        await new Promise((ok) => s.once('close', ok));
        assert.equal(got, '', 'nothing is answered: the connection is closed');
        assert.equal(frontCounts().atAccept - before.atAccept, pieces === 1 ? 1 : 0, pieces === 1 ? 'decided at accept' : 'decided from the loop');
        await waitFor(() => errors.events.length === pieces, 2000, 'the error event');
        assert.equal(errors.events[pieces - 1].code, 'PH_ERR_NATIVE_TUNNEL');
        assert.match(errors.events[pieces - 1].message, /the front could not finish a WebSocket handshake \(a fault of the test\)/);
      }
      owner.frontPlan = plan;
      const ws = await openWs(`${g.wsUrl}/e/`);
      ws.send('still here');
      assert.equal(String((await nextMessage(ws)).data), 'still here');
      ws.close();
    } finally {
      owner.frontPlan = plan;
      errors.stop();
      await g.close();
    }
  });

  test("an upstream's first frame in the same write as its 101 reaches the client", async () => {
    const up = await rawUpstream((s, head) => {
      s.write(Buffer.concat([Buffer.from(accept101(head), 'latin1'), Buffer.from([0x81, 0x05]), Buffer.from('hello')]));
    });
    const g = await gateway({ apps: [{ name: 'r', port: up.port }] }, true);
    try {
      const ws = new WebSocket(`${g.wsUrl}/r/`);
      const [m] = await once(ws, 'message');
      assert.equal(String(m), 'hello');
      ws.terminate();
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('failures answer as without the front: refused, the app refusing, a wrong 101, not HTTP, a reset, no answer in time', async () => {
    const cases: [string, () => Promise<{ port: number; close: () => Promise<void> }>, Record<string, unknown>][] = [
      ['refused', async () => ({ port: await deadPort(), close: async () => {} }), {}],
      ['refused, ws_errors: http', async () => ({ port: await deadPort(), close: async () => {} }), { ws_errors: 'http' }],
      ['403 with a body', () => rawUpstream((s) => s.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nnope')), {}],
      ['a 101 with a wrong accept', () => rawUpstream((s) => s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n')), {}],
      ['a 101 without Connection: Upgrade', () => rawUpstream((s, head) => s.write(accept101(head).replace('Connection: Upgrade\r\n', ''))), {}],
      ['not HTTP', () => rawUpstream((s) => s.end('SSH-2.0-OpenSSH_9.2\r\n')), {}],
      ['a reset', () => rawUpstream((s) => s.resetAndDestroy()), {}],
      ['no answer in time', () => rawUpstream(() => undefined), { response_timeout: '300ms' }],
    ];
    for (const [what, make, extra] of cases) {
      const up = await make();
      try {
        const r = await both({ apps: [{ name: 'f', port: up.port, ...extra }] }, (g) => outcome(`${g.wsUrl}/f/`));
        assert.equal(r.front, r.node, what);
        assert.equal(r.handedBack, 0, `${what}: the front took it on`);
      } finally {
        await up.close();
      }
    }
  });

  test('no descriptor is left behind by a handshake the front gives up: a wrong 101, a timeout, a refusal, a reset', async () => {
    const ups = await Promise.all([
      rawUpstream((s) => s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n')),
      rawUpstream(() => undefined),
      rawUpstream((s) => s.resetAndDestroy()),
    ]);
    const refused = await deadPort();
    const g = await gateway({ apps: [...ups.map((u, i) => ({ name: `u${i}`, port: u.port, response_timeout: '200ms' })), { name: 'r', port: refused }] }, true);
    try {
      await outcome(`${g.wsUrl}/u0/`);
      const base = openFds();
      for (const app of ['u0', 'u1', 'u2', 'r']) for (let i = 0; i < 5; i++) assert.match(await outcome(`${g.wsUrl}/${app}/`), /close=1014/);
      // The test's own upstream sockets close when the gateway closes its side.
      await waitFor(() => openFds() <= base, 5000, `descriptors back to ${base} (now ${openFds()})`);
    } finally {
      await g.close();
      for (const u of ups) await u.close();
    }
  });

  test('the 403 an app answers is relayed with its body, through the front as through Node', async () => {
    const up = await rawUpstream((s) => s.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nnope'));
    try {
      const head = `GET /f/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
      const r = await both({ apps: [{ name: 'f', port: up.port }] }, async (g) => (await rawRequest(g.port, head)).replace(/Date: [^\r]*\r\n/, ''));
      assert.match(r.front, /^HTTP\/1\.1 403 Forbidden\r\n/);
      assert.match(r.front, /nope$/);
      assert.equal(r.front, r.node);
    } finally {
      await up.close();
    }
  });

  test('an upstream that never completes the TCP connect: the connect timeout, as without the front', async () => {
    // A listener whose accept queue is full: the kernel drops further SYNs, so a connect hangs.
    const py = spawn('/usr/bin/python3', ['-c', 'import socket,sys,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(60)'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const fillers: net.Socket[] = [];
    try {
      const [line] = await once(py.stdout!, 'data');
      const port = Number(String(line).trim());
      for (let i = 0; i < 3; i++) {
        const s = net.connect(port, '127.0.0.1');
        s.on('error', () => {});
        fillers.push(s);
      }
      await sleep(200);
      const r = await both({ apps: [{ name: 'c', port, connect_timeout: '300ms' }] }, (g) => outcome(`${g.wsUrl}/c/`));
      assert.equal(r.front, r.node);
      assert.match(r.front, /close=1014/);
      assert.match(r.front, /timed out after 0\.3 s/);
    } finally {
      for (const s of fillers) s.destroy();
      stop(py);
    }
  });

  test('a client that leaves while the app has not answered: logged as aborted, the upstream connection closed', async () => {
    const up = await rawUpstream(() => undefined);
    const g = await gateway({ apps: [{ name: 's', port: up.port }] }, true);
    const upgrades = collect('upgrade', g.gw.id);
    try {
      const s = net.connect(g.port, '127.0.0.1');
      s.write(`GET /s/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      await waitFor(() => up.conns.length === 1, 5000, 'the upstream connection');
      s.destroy();
      const e = await waitFor(() => upgrades.events[0], 5000, 'the upgrade event');
      assert.equal(e.accepted, false);
      assert.equal(e.code, 'PH_ERR_REQUEST_ABORTED');
      await waitFor(() => up.closed() === 1, 5000, 'the upstream connection closed');
    } finally {
      upgrades.stop();
      await g.close();
      await up.close();
    }
  });

  test('a client that sends more after its head and then its FIN, before the app answers, still gets the app\'s answer, as through Node (the FIN waits behind the bytes)', async () => {
    const up = await rawUpstream((s) => setTimeout(() => s.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope'), 150));
    try {
      const r = await both({ apps: [{ name: 's', port: up.port }] }, async (g) => {
        const s = net.connect(g.port, '127.0.0.1');
        s.on('error', () => {});
        let answer = '';
        s.on('data', (d: Buffer) => (answer += d.toString('latin1')));
        const closed = new Promise<void>((ok) => s.once('close', () => ok()));
        await once(s, 'connect');
        s.write(`GET /s/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
        await sleep(20);
        s.end('0123456789');
        await closed;
        return answer.split('\r\n')[0];
      });
      assert.equal(r.node, 'HTTP/1.1 401 Unauthorized');
      assert.equal(r.front, r.node);
    } finally {
      await up.close();
    }
  });

  test('a drain while the app has not answered: the client gets 1001 at once', async () => {
    const up = await rawUpstream(() => undefined);
    const g = await gateway({ apps: [{ name: 's', port: up.port }] }, true);
    try {
      const c = wsCloseOf(`${g.wsUrl}/s/`);
      await waitFor(() => up.conns.length === 1, 5000, 'the upstream connection');
      const t0 = Date.now();
      const drained = g.gw.drain(2000);
      const got = await c;
      assert.equal(got.code, 1001);
      assert.ok(Date.now() - t0 < 1000);
      await drained;
    } finally {
      await up.close();
    }
  });

  test('what the front does not take is answered by Node: an app behind a login, a refused origin, an app at a host name', async () => {
    const config = {
      auth: 'token',
      auth_tokens: [{ name: 'ci', sha256: 'a'.repeat(64) }],
      apps: [
        { name: 'locked', port: echo.port },
        { name: 'strict', port: echo.port, auth: 'none', allowed_origins: ['https://only.example'] },
        { name: 'named', url: `http://localhost:${echo.port}`, auth: 'none' },
      ],
    };
    const r = await both(config, async (g) => {
      const locked = await outcome(`${g.wsUrl}/locked/`);
      const strict = await new Promise<string>((ok) => {
        wsCloseOf(`${g.wsUrl}/strict/`, undefined, { origin: 'https://evil.example' }).then((c) => ok(`close=${c.code} reason=${c.reason}`), (e) => ok(`error=${(e as Error).message}`));
      });
      const ws = await openWs(`${g.wsUrl}/named/`);
      ws.send('x');
      const named = (await nextMessage(ws)).data.toString();
      ws.close();
      return { locked, strict, named };
    });
    assert.deepEqual(r.front, r.node);
    assert.equal(r.front.named, 'x');
    assert.equal(r.taken, 0, 'none of them through the front');
    assert.equal(r.handedBack, 3);
  });
});

function stop(p: ChildProcess): void {
  if (p.exitCode === null) p.kill('SIGKILL');
}
