/**
 * The series of issue 9, section 3 that the first cut lacked or kept only at
 * close: app readiness (supervised and external), automatic restarts, apps
 * that never changed state and apps removed; open bridge connections apart
 * from tunnels; bytes and messages of connections while they are open.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { createMetrics, createServer, type PortholeServer, type ServerStarted } from 'porthole';
import { emit } from '../../src/events.js';
import { appCmd } from '../helpers/admin.js';
import { closed, collect, nextMessage, openWs, waitFor, wsUpstream } from '../helpers/net.js';
import { deadPort, tcpPeer } from '../fixtures/bridge/tcp-peers.js';

async function started(t: TestContext, apps: unknown[]): Promise<{ server: PortholeServer; start: ServerStarted; scrape: () => Promise<string> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-metrics-series-'));
  const server = createServer({ listen: { port: 0 }, dataDir, config: { apps } });
  t.after(async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const start = await server.listen();
  const scrape = async () => (await fetch(`${start.url}/_porthole/metrics`, { headers: { Authorization: `Bearer ${start.token}` } })).text();
  return { server, start, scrape };
}

/** The value of the series with exactly these labels (among others), or undefined. */
function metric(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const body = line.slice(name.length + 1, line.lastIndexOf('}'));
    const have = Object.fromEntries([...body.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

async function until<T>(fn: () => Promise<T | undefined>, timeoutMs: number, what: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('external apps show state external and their readiness from a probe: 1 when the upstream answers, 0 when nothing listens', async (t) => {
  const upstream = await wsUpstream();
  t.after(() => upstream.close());
  const dead = await deadPort();
  const { scrape } = await started(t, [
    { name: 'up', url: `http://127.0.0.1:${upstream.port}` },
    { name: 'down', port: dead },
  ]);
  // Neither app ever changed state: the series are there from the first scrape.
  const text = await scrape();
  assert.equal(metric(text, 'porthole_app_state', { app: 'up', state: 'external' }), 1);
  assert.equal(metric(text, 'porthole_app_state', { app: 'up', state: 'running' }), 0);
  assert.equal(metric(text, 'porthole_app_ready', { app: 'up' }), 1);
  assert.equal(metric(text, 'porthole_app_ready', { app: 'down' }), 0);
  assert.equal(metric(text, 'porthole_app_state', { app: 'down', state: 'external' }), 1);
  // Restarts and exit codes are a supervised app's: none for an external one.
  assert.equal(metric(text, 'porthole_app_restarts_total', { app: 'up' }), undefined);
  assert.equal(metric(text, 'porthole_app_last_exit_code', { app: 'up' }), undefined);
});

test('a stored app that no longer validates shows state invalid and not ready, beside the apps that serve', async (t) => {
  const upstream = await wsUpstream();
  t.after(() => upstream.close());
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-metrics-series-'));
  let second: PortholeServer | undefined;
  t.after(async () => {
    await second?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const page = join(dataDir, 'page.html');
  writeFileSync(page, '<h1>down</h1>');
  const first = createServer({ listen: { port: 0 }, dataDir });
  await first.listen();
  await first.registry.put({ name: 'pretty', port: upstream.port, error_page: page });
  await first.close();
  // Its error page is gone: at the next start the stored app is invalid (not fatal).
  unlinkSync(page);
  second = createServer({ listen: { port: 0 }, dataDir, config: { apps: [{ name: 'fine', url: `http://127.0.0.1:${upstream.port}` }] } });
  const start = await second.listen();
  const text = await (await fetch(`${start.url}/_porthole/metrics`, { headers: { Authorization: `Bearer ${start.token}` } })).text();
  assert.equal(metric(text, 'porthole_app_state', { app: 'pretty', state: 'invalid' }), 1);
  assert.equal(metric(text, 'porthole_app_state', { app: 'pretty', state: 'external' }), 0);
  assert.equal(metric(text, 'porthole_app_ready', { app: 'pretty' }), 0);
  assert.equal(metric(text, 'porthole_app_ready', { app: 'fine' }), 1);
});

test('a supervised app is not ready while starting or stopped and ready while running; a stopped app that never ran has its series', async (t) => {
  const { server, scrape } = await started(t, []);
  await server.registry.put({ name: 'proc', cmd: appCmd({ DELAY_MS: 1500 }) });
  let text = await scrape();
  // Registered, never started: stopped, not ready, no restarts yet.
  assert.equal(metric(text, 'porthole_app_state', { app: 'proc', state: 'stopped' }), 1);
  assert.equal(metric(text, 'porthole_app_ready', { app: 'proc' }), 0);
  assert.equal(metric(text, 'porthole_app_restarts_total', { app: 'proc' }), 0);

  const states = collect('app');
  t.after(() => states.stop());
  void server.registry.act('proc', 'start').catch(() => undefined);
  await waitFor(() => states.events.find((e) => e.app === 'proc' && e.state === 'starting'), 5000, 'proc starting');
  text = await scrape();
  if (metric(text, 'porthole_app_state', { app: 'proc', state: 'starting' }) === 1) assert.equal(metric(text, 'porthole_app_ready', { app: 'proc' }), 0);
  await until(async () => (metric(await scrape(), 'porthole_app_ready', { app: 'proc' }) === 1 ? true : undefined), 15_000, () => 'proc ready');
  text = await scrape();
  assert.equal(metric(text, 'porthole_app_state', { app: 'proc', state: 'running' }), 1);
  await server.registry.act('proc', 'stop');
  text = await scrape();
  assert.equal(metric(text, 'porthole_app_ready', { app: 'proc' }), 0);
  assert.equal(metric(text, 'porthole_app_state', { app: 'proc', state: 'stopped' }), 1);
  // Stopped by hand: its exit is the one the registry shows (-1 for a signal).
  const exit = server.registry.view('proc').last_exit;
  assert.ok(exit, 'proc has exited');
  assert.equal(metric(text, 'porthole_app_last_exit_code', { app: 'proc' }), exit.code ?? -1);
});

test('automatic restarts of a crashing app are counted, and a removed app loses its series', async (t) => {
  const { server, scrape } = await started(t, []);
  await server.registry.put({ name: 'crash', cmd: 'exit 3', restart: 'on-failure' });
  await server.registry.act('crash', 'start').catch(() => undefined);
  const restarts = await until(
    async () => {
      const n = metric(await scrape(), 'porthole_app_restarts_total', { app: 'crash' }) ?? 0;
      return n >= 1 ? n : undefined;
    },
    20_000,
    () => 'a restart of crash',
  );
  const text = await scrape();
  assert.equal(metric(text, 'porthole_app_last_exit_code', { app: 'crash' }), 3);
  assert.equal(metric(text, 'porthole_app_ready', { app: 'crash' }), 0);
  assert.equal(server.registry.view('crash').restarts >= restarts, true);
  // The first start and each restart — but a restart counted by the runner may not have reached `starting` yet.
  assert.ok((metric(text, 'porthole_app_starts_total', { app: 'crash' }) ?? 0) >= restarts);

  await server.registry.remove('crash');
  const after = await scrape();
  for (const name of ['porthole_app_state', 'porthole_app_ready', 'porthole_app_restarts_total', 'porthole_app_last_exit_code']) {
    assert.equal(metric(after, name, { app: 'crash' }), undefined, `${name} of a removed app`);
  }
});

test('open bridge connections are told apart from tunnels, and their bytes and messages show while they are open', async (t) => {
  const target = await tcpPeer();
  t.after(() => target.close());
  const upstream = await wsUpstream();
  t.after(() => upstream.close());
  const { start, scrape } = await started(t, [
    { name: 'vnc', bridge: `127.0.0.1:${target.port}` },
    { name: 'echo', url: `http://127.0.0.1:${upstream.port}` },
  ]);
  const bridge = await openWs(`ws://127.0.0.1:${start.port}/vnc/`, ['binary']);
  t.after(() => bridge.terminate());
  const tunnel = await openWs(`ws://127.0.0.1:${start.port}/echo/ws`);
  t.after(() => tunnel.terminate());
  for (let i = 0; i < 3; i++) {
    const back = nextMessage(bridge);
    bridge.send(Buffer.alloc(700, i));
    // The echo may come back in one TCP chunk or several: wait for all 700 bytes.
    let got = (await back).data.length;
    while (got < 700) got += (await nextMessage(bridge)).data.length;
  }
  for (let i = 0; i < 4; i++) {
    const back = nextMessage(tunnel);
    tunnel.send(Buffer.alloc(500, i));
    assert.equal((await back).data.length, 500);
  }

  const text = await scrape();
  assert.equal(metric(text, 'porthole_tunnels_open', { app: 'vnc', kind: 'bridge' }), 1);
  assert.equal(metric(text, 'porthole_tunnels_open', { app: 'echo', kind: 'tunnel' }), 1);
  assert.equal(metric(text, 'porthole_tunnels_open', { app: 'vnc', kind: 'tunnel' }), undefined);
  // Nothing has closed yet: these come from the open connections.
  assert.equal(metric(text, 'porthole_tunnel_bytes_total', { app: 'vnc', direction: 'in' }), 2100);
  assert.equal(metric(text, 'porthole_tunnel_bytes_total', { app: 'vnc', direction: 'out' }), 2100);
  assert.equal(metric(text, 'porthole_tunnel_messages_total', { app: 'vnc', direction: 'in' }), 3);
  assert.ok((metric(text, 'porthole_tunnel_messages_total', { app: 'vnc', direction: 'out' }) ?? 0) >= 3);
  // A proxied tunnel counts bytes as they pass: 4 × 500 payload bytes plus masked frame headers.
  const liveIn = metric(text, 'porthole_tunnel_bytes_total', { app: 'echo', direction: 'in' }) ?? 0;
  assert.ok(liveIn >= 2000, `live bytes in of the open tunnel: ${liveIn}`);
  assert.ok((metric(text, 'porthole_tunnel_bytes_total', { app: 'echo', direction: 'out' }) ?? 0) >= 2000);
  assert.equal(metric(text, 'porthole_tunnel_closes_total', { app: 'echo' }), undefined);
  // The open tunnel's messages too, as they pass.
  assert.equal(metric(text, 'porthole_tunnel_messages_total', { app: 'echo', direction: 'in' }), 4);
  assert.equal(metric(text, 'porthole_tunnel_messages_total', { app: 'echo', direction: 'out' }), 4);

  // Closed: counted once, from the close event — never below what was shown, never twice.
  const closes = collect('tunnel.close');
  t.after(() => closes.stop());
  const done = closed(tunnel);
  tunnel.close(1000);
  await done;
  const ev = await waitFor(() => closes.events.find((e) => e.app === 'echo'), 5000, 'the tunnel.close event');
  const after = await scrape();
  assert.equal(metric(after, 'porthole_tunnel_bytes_total', { app: 'echo', direction: 'in' }), ev.bytesIn);
  assert.equal(metric(after, 'porthole_tunnel_messages_total', { app: 'echo', direction: 'in' }), 4);
  assert.ok(ev.bytesIn >= liveIn);
  assert.equal(metric(after, 'porthole_tunnels_open', { app: 'echo', kind: 'tunnel' }), undefined);
  assert.equal(metric(after, 'porthole_tunnels_open', { app: 'vnc', kind: 'bridge' }), 1);
  assert.equal(metric(after, 'porthole_tunnel_closes_total', { app: 'echo', code: '1000', closed_by: 'client' }), 1);
});

test('createMetrics without an app registry keeps the app series from the app events', async () => {
  const m = createMetrics({ gatewayId: 'g-series', processMetrics: false });
  try {
    const app = (state: string, exit?: { code: number | null; signal: string | null }) => emit('app', { app: 'solo', state, exit });
    app('starting');
    app('running');
    let text = await m.text();
    assert.equal(metric(text, 'porthole_app_ready', { app: 'solo' }), 1);
    assert.equal(metric(text, 'porthole_app_state', { app: 'solo', state: 'running' }), 1);
    app('backoff', { code: 1, signal: null });
    app('starting');
    text = await m.text();
    assert.equal(metric(text, 'porthole_app_ready', { app: 'solo' }), 0);
    assert.equal(metric(text, 'porthole_app_restarts_total', { app: 'solo' }), 1);
    assert.equal(metric(text, 'porthole_app_last_exit_code', { app: 'solo' }), 1);
    assert.equal(metric(text, 'porthole_app_starts_total', { app: 'solo' }), 2);
  } finally {
    m.close();
  }
});

test('every series of the issue\'s list is on the page', async (t) => {
  const { scrape } = await started(t, []);
  const text = await scrape();
  const want = [
    'porthole_http_requests_total counter',
    'porthole_http_request_duration_seconds histogram',
    'porthole_ws_upgrades_total counter',
    'porthole_ws_handshake_duration_seconds histogram',
    'porthole_tunnels_open gauge',
    'porthole_tunnel_bytes_total counter',
    'porthole_tunnel_messages_total counter',
    'porthole_tunnel_closes_total counter',
    'porthole_tunnel_duration_seconds histogram',
    'porthole_app_state gauge',
    'porthole_app_ready gauge',
    'porthole_app_restarts_total counter',
    'porthole_app_starts_total counter',
    'porthole_app_last_exit_code gauge',
    'porthole_process_cpu_seconds_total counter',
    'porthole_process_resident_memory_bytes gauge',
    'porthole_process_open_fds gauge',
  ];
  for (const w of want) assert.match(text, new RegExp(`^# TYPE ${w}$`, 'm'), w);
});

