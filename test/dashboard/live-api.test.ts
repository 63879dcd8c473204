/**
 * The data the dashboard shows, through the admin API: open tunnels and
 * bridge connections with their counters, the close history, the gateway's
 * recent events, app logs with stdout and stderr told apart, and the live
 * feed (Server-Sent Events) that carries all of them. A real server, real
 * WebSocket peers, a real supervised app.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test, type TestContext } from 'node:test';
import WebSocket from 'ws';
import { createServer, type PortholeServer, type ServerStarted } from 'porthole';
import { tcpPeer } from '../fixtures/bridge/tcp-peers.js';
import { closed, nextMessage, openWs, wsCloseOf, wsUpstream } from '../helpers/net.js';

const CHATTY = fileURLToPath(new URL('../fixtures/dashboard/chatty-app.mjs', import.meta.url));

async function started(t: TestContext, config: unknown): Promise<{ server: PortholeServer; start: ServerStarted }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-dashboard-live-'));
  const server = createServer({ listen: { port: 0 }, dataDir, config });
  t.after(async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return { server, start: await server.listen() };
}

/** Calls `fn` until it gives a value (not undefined), for at most `timeoutMs`. */
async function poll<T>(fn: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function get(start: ServerStarted, path: string): Promise<Record<string, any>> {
  const res = await fetch(`${start.url}/_porthole/api/${path}`, { headers: { Authorization: `Bearer ${start.token}` } });
  const body = (await res.json()) as Record<string, any>;
  assert.equal(res.status, 200, JSON.stringify(body));
  return body;
}

interface Sse {
  events: { event: string; data: any }[];
  /** Resolves with the first event (from now on, or already received when `past`) that passes `fn`. */
  next(fn: (e: { event: string; data: any }) => boolean, what: string, past?: boolean): Promise<{ event: string; data: any }>;
  ended: Promise<void>;
  close(): void;
}

/** Reads a Server-Sent Events answer as it comes. */
function sse(start: ServerStarted, path: string, t: TestContext): Promise<Sse> {
  return new Promise((ok, fail) => {
    const req = http.get(`${start.url}/_porthole/api/${path}`, { headers: { Authorization: `Bearer ${start.token}` } });
    req.on('error', fail);
    req.on('response', (res) => {
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['content-type'], 'text/event-stream');
      const events: Sse['events'] = [];
      const waiters = new Set<() => void>();
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf('\n\n')) !== -1) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let event = 'message';
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data += line.slice(6);
          }
          if (data) events.push({ event, data: JSON.parse(data) });
        }
        for (const w of waiters) w();
      });
      const ended = new Promise<void>((r) => res.once('end', () => r()));
      const stream: Sse = {
        events,
        ended,
        next(fn, what, past = false) {
          const from = past ? 0 : events.length;
          return new Promise((found, lost) => {
            const timer = setTimeout(() => {
              waiters.delete(check);
              lost(new Error(`no ${what} in the stream; got ${events.map((e) => e.event).join(', ')}`));
            }, 15_000);
            function check() {
              const e = events.slice(from).find(fn);
              if (!e) return;
              clearTimeout(timer);
              waiters.delete(check);
              found(e);
            }
            waiters.add(check);
            check();
          });
        },
        close: () => req.destroy(),
      };
      t.after(() => req.destroy());
      ok(stream);
    });
  });
}

test('/tunnels: an open tunnel with its client, age, idle time, bytes and messages each way; its close goes to the history', async (t) => {
  const up = await wsUpstream({}, (ws) => ws.on('message', (d, binary) => ws.send(d, { binary })));
  t.after(() => up.close());
  const { start } = await started(t, { apps: [{ name: 'echo', port: up.port }] });
  const ws = await openWs(`ws://127.0.0.1:${start.port}/echo/socket?x=1`);
  const local = (ws as unknown as { _socket: { localPort: number } })._socket.localPort;
  for (const m of ['one', 'two', 'three']) {
    ws.send(m);
    assert.equal((await nextMessage(ws)).data.toString(), m);
  }
  const open = (await get(start, 'tunnels')).tunnels;
  assert.equal(open.length, 1);
  const tun = open[0];
  assert.equal(tun.kind, 'tunnel');
  assert.equal(tun.app, 'echo');
  assert.equal(tun.path, '/echo/socket?x=1');
  assert.equal(tun.client, `127.0.0.1:${local}`);
  assert.equal(tun.messages_in, 3);
  assert.equal(tun.messages_out, 3);
  // Masked client frames: 6 bytes of header each, plus the payload.
  assert.equal(tun.bytes_in, 3 * 6 + 'onetwothree'.length);
  assert.equal(tun.bytes_out, 3 * 2 + 'onetwothree'.length);
  assert.ok(tun.age_ms >= 0 && tun.idle_ms >= 0 && tun.idle_ms <= tun.age_ms);
  assert.ok(Date.parse(tun.started_at) <= Date.now());

  ws.close(4001, 'bye');
  await closed(ws);
  const after = await poll(async () => {
    const r = await get(start, 'tunnels');
    return r.tunnels.length === 0 && r.closes.length === 1 ? r : undefined;
  }, 10_000, 'the close in the history');
  const c = after.closes[0];
  assert.equal(c.id, tun.id);
  assert.equal(c.app, 'echo');
  assert.equal(c.close_code, 4001);
  assert.equal(c.reason, 'bye');
  assert.equal(c.closed_by, 'client');
  assert.equal(c.client, tun.client);
  assert.equal(c.messages_in, 3, 'data messages, not the close frame');
  assert.ok(c.bytes_in > tun.bytes_in, 'the close frame counted in bytes');
});

test('/tunnels shows bridge connections too, with their messages', async (t) => {
  const peer = await tcpPeer();
  t.after(() => peer.close());
  const { start } = await started(t, { apps: [{ name: 'desk', bridge: `127.0.0.1:${peer.port}` }] });
  const ws = await openWs(`ws://127.0.0.1:${start.port}/desk/websockify`, 'binary');
  ws.send(Buffer.from('hello'));
  assert.equal((await nextMessage(ws)).data.toString(), 'hello');
  const [b] = (await get(start, 'tunnels')).tunnels;
  assert.equal(b.kind, 'bridge');
  assert.equal(b.app, 'desk');
  assert.equal(b.bytes_in, 5);
  assert.equal(b.bytes_out, 5);
  assert.equal(b.messages_in, 1);
  ws.close(1000);
  await closed(ws);
  const c = await poll(async () => (await get(start, 'tunnels')).closes[0], 10_000, 'the bridge close');
  assert.equal(c.kind, 'bridge');
  assert.equal(c.close_code, 1000);
});

test('/events: refused upgrades with their codes, config reloads and rejections, newest first', async (t) => {
  const up = await wsUpstream();
  t.after(() => up.close());
  const { server, start } = await started(t, { apps: [{ name: 'echo', port: up.port }] });
  const refused = await wsCloseOf(`ws://127.0.0.1:${start.port}/echo/`, undefined, { origin: 'http://evil.example' });
  assert.equal(refused.code, 1008);
  await server.reload({ apps: [{ name: 'echo', port: up.port }, { name: 'more', port: 9 }] });
  await assert.rejects(server.reload({ apps: [{ name: 'bad name!' }] }));
  const { events } = await get(start, 'events');
  // App changes (the new app routed) come in between: take each kind's newest.
  const rejected = events.find((e: { type: string; level: string }) => e.type === 'config' && e.level === 'error');
  const reloaded = events.find((e: { type: string; level: string }) => e.type === 'config' && e.level === 'info');
  const upgrade = events.find((e: { type: string }) => e.type === 'upgrade');
  assert.ok(events.indexOf(rejected) < events.indexOf(reloaded) && events.indexOf(reloaded) < events.indexOf(upgrade), 'newest first');
  assert.equal(rejected.type, 'config');
  assert.equal(rejected.level, 'error');
  assert.match(rejected.message, /rejected/);
  assert.equal(reloaded.type, 'config');
  assert.match(reloaded.message, /reloaded \(2 apps\)/);
  assert.equal(upgrade.type, 'upgrade');
  assert.equal(upgrade.code, 'PH_ERR_ORIGIN_REFUSED');
  assert.equal(upgrade.app, 'echo');
  assert.match(upgrade.message, /WebSocket \/echo\/ refused/);
  assert.ok(events.every((e: { id: number }, i: number) => i === 0 || events[i - 1].id > e.id), 'newest first');
});

test('logs?entries=1: stdout and stderr told apart, and followed live as JSON entries', async (t) => {
  const { start } = await started(t, { apps: [{ name: 'chatty', cmd: `exec ${process.execPath} ${CHATTY}`, autostart: true, env: { LINE_MS: '100' } }] });
  const entries = await poll(async () => {
    const r = await get(start, 'apps/chatty/logs?lines=50&entries=1');
    return r.entries.some((e: { text: string }) => e.text === 'err line 2') ? r.entries : undefined;
  }, 15_000, 'the app\'s lines');
  assert.ok(entries.some((e: { stream: string; text: string }) => e.stream === 'stdout' && e.text === 'out line 1'));
  assert.ok(entries.some((e: { stream: string; text: string }) => e.stream === 'stderr' && e.text === 'err line 1'));
  assert.ok(entries.every((e: { stream: string; text: string }) => (e.text.startsWith('err') ? e.stream === 'stderr' : e.stream !== 'stderr')));
  // Plain lines stay as they were for older clients.
  const plain = await get(start, 'apps/chatty/logs?lines=5');
  assert.equal(plain.entries, undefined);
  assert.equal(typeof plain.lines[0], 'string');

  const follow = await sse(start, 'apps/chatty/logs?lines=1&entries=1&follow=1', t);
  const last = follow.events.length ? Number(/\d+$/.exec(follow.events.at(-1)!.data.text)?.[0] ?? 0) : 0;
  const later = await follow.next((e) => e.data.stream === 'stderr' && e.data.text === `err line ${last + 3}`, 'a new stderr line');
  assert.equal(typeof later.data.at, 'number');
  follow.close();
});

test('/live: apps and tunnels at once, then tunnel counters every second, each close, each event and app change', async (t) => {
  const up = await wsUpstream({}, (ws) => ws.on('message', (d, binary) => ws.send(d, { binary })));
  t.after(() => up.close());
  const { start } = await started(t, {
    apps: [
      { name: 'echo', port: up.port },
      { name: 'chatty', cmd: `exec ${process.execPath} ${CHATTY}`, env: { LINE_MS: '1000' } },
    ],
  });
  const live = await sse(start, 'live', t);
  const apps = await live.next((e) => e.event === 'apps', 'apps', true);
  assert.deepEqual(apps.data.apps.map((a: { name: string }) => a.name).sort(), ['chatty', 'echo']);
  const chatty = apps.data.apps.find((a: { name: string }) => a.name === 'chatty');
  assert.equal(chatty.kind, 'process');
  assert.equal(chatty.started_at, null);
  assert.equal(apps.data.apps.find((a: { name: string }) => a.name === 'echo').kind, 'external');
  await live.next((e) => e.event === 'tunnels' && e.data.tunnels.length === 0, 'an empty tunnels list', true);

  const ws = await openWs(`ws://127.0.0.1:${start.port}/echo/`);
  ws.send('ping');
  await nextMessage(ws);
  const seen = await live.next((e) => e.event === 'tunnels' && e.data.tunnels.length === 1 && e.data.tunnels[0].messages_in === 1, 'the tunnel with one message');
  ws.send('again');
  await nextMessage(ws);
  const grown = await live.next((e) => e.event === 'tunnels' && e.data.tunnels[0]?.bytes_in > seen.data.tunnels[0].bytes_in, 'growing byte counts');
  assert.equal(grown.data.tunnels[0].messages_out, 2);
  ws.close(4002, 'done here');
  const close = await live.next((e) => e.event === 'close', 'the close');
  assert.equal(close.data.close_code, 4002);
  assert.equal(close.data.reason, 'done here');
  assert.equal(close.data.closed_by, 'client');

  // An app change: an `event` line and a fresh `apps` list with the new state.
  const res = await fetch(`${start.url}/_porthole/api/apps/chatty/start`, { method: 'POST', headers: { Authorization: `Bearer ${start.token}` } });
  assert.equal(res.status, 200);
  await live.next((e) => e.event === 'event' && e.data.type === 'app' && e.data.app === 'chatty', 'the app event');
  const running = await live.next((e) => e.event === 'apps' && e.data.apps.some((a: any) => a.name === 'chatty' && a.state === 'running'), 'chatty running');
  const now = running.data.apps.find((a: { name: string }) => a.name === 'chatty');
  assert.ok(Date.parse(now.started_at) <= Date.now(), 'started_at for the uptime');
  assert.equal(typeof now.pid, 'number');
  live.close();
});

test('a drain ends the event streams instead of waiting its whole timeout on them', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-dashboard-live-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const server = createServer({ listen: { port: 0 }, dataDir, config: { drain_timeout: '60s' } });
  const start = await server.listen();
  const live = await sse(start, 'live', t);
  await live.next((e) => e.event === 'apps', 'apps', true);
  const began = Date.now();
  await server.drain();
  await live.ended;
  // Well under the 60 s drain_timeout: nothing waited on the stream.
  assert.ok(Date.now() - began < 20_000, `drained in ${Date.now() - began} ms`);
});

test('the WebSocket client used here counts what it sent: the tunnel\'s numbers match (sanity of the helper)', async (t) => {
  const up = await wsUpstream({}, (ws) => ws.on('message', (d, binary) => ws.send(d, { binary })));
  t.after(() => up.close());
  const { start } = await started(t, { apps: [{ name: 'echo', port: up.port }] });
  const ws = new WebSocket(`ws://127.0.0.1:${start.port}/echo/`);
  await new Promise((r) => ws.once('open', r));
  // A fragmented message counts once; pings count as no message.
  ws.send('abc', { fin: false });
  ws.send('def', { fin: true });
  ws.ping();
  await nextMessage(ws);
  const [tun] = (await get(start, 'tunnels')).tunnels;
  assert.equal(tun.messages_in, 1);
  ws.close();
  await closed(ws);
});

test('/tunnels lists at most 500 connections, most recently active first, and counts them all in total', async (t) => {
  const up = await wsUpstream({}, (ws) => ws.on('message', (d, binary) => ws.send(d, { binary })));
  t.after(() => up.close());
  const { start } = await started(t, { apps: [{ name: 'echo', port: up.port }] });
  const sockets: WebSocket[] = [];
  t.after(() => sockets.forEach((s) => s.terminate()));
  for (let i = 0; i < 505; i += 50) sockets.push(...(await Promise.all(Array.from({ length: Math.min(50, 505 - i) }, () => openWs(`ws://127.0.0.1:${start.port}/echo/`)))));
  const first = sockets[0];
  await new Promise((r) => setTimeout(r, 20));
  first.send('latest');
  await nextMessage(first);
  const r = await get(start, 'tunnels');
  assert.equal(r.total, 505);
  assert.equal(r.tunnels.length, 500);
  assert.equal(r.tunnels[0].messages_in, 1, 'the one that just spoke comes first');
});
