/**
 * Metrics (issue 9, section 3): `GET /_porthole/metrics` behind the admin
 * token, fed by the events, and scraped by a real Prometheus (Debian's
 * `prometheus`) whose HTTP API must show the request, tunnel-bytes and
 * close-code series with the values the traffic produced.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { createServer, type EventMap, type PortholeServer, type ServerStarted } from 'porthole';
import { ensureTools } from '../../scripts/ensure-tools.mjs';
import { appCmd } from '../helpers/admin.js';
import { closed, collect, nextMessage, openWs, waitFor, wsCloseOf, wsUpstream } from '../helpers/net.js';

/** Polls an async check until it returns a value (not undefined). */
async function until<T>(fn: () => Promise<T | undefined>, timeoutMs: number, what: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const PROMETHEUS = '/usr/bin/prometheus';

async function started(t: TestContext, upstreamPort: number): Promise<{ server: PortholeServer; start: ServerStarted }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-metrics-'));
  const server = createServer({ listen: { port: 0 }, dataDir, config: { apps: [{ name: 'echo', url: `http://127.0.0.1:${upstreamPort}` }] } });
  t.after(async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return { server, start: await server.listen() };
}

/** One tunnel through the gateway: `count` binary messages of `size` bytes echoed, then closed by the client with 4321. */
async function tunnel(start: ServerStarted, count: number, size: number): Promise<EventMap['tunnel.close']> {
  const closes = collect('tunnel.close');
  try {
    const ws = await openWs(`ws://127.0.0.1:${start.port}/echo/ws`);
    for (let i = 0; i < count; i++) {
      const reply = nextMessage(ws);
      ws.send(Buffer.alloc(size, i));
      assert.equal((await reply).data.length, size);
    }
    const done = closed(ws);
    ws.close(4321, 'bye');
    assert.equal((await done).code, 4321);
    return await waitFor(() => closes.events.find((e) => e.app === 'echo'), 5000, 'the tunnel.close event');
  } finally {
    closes.stop();
  }
}

function metric(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const body = line.slice(name.length + 1, line.lastIndexOf('}'));
    const have = Object.fromEntries([...body.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

test('GET /_porthole/metrics refuses a request without the token (401) and with a wrong one', async (t) => {
  const upstream = await wsUpstream();
  t.after(() => upstream.close());
  const { start } = await started(t, upstream.port);
  const none = await fetch(`${start.url}/_porthole/metrics`);
  assert.equal(none.status, 401);
  assert.equal(none.headers.get('x-porthole-error'), 'PH_ERR_UNAUTHORIZED');
  assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
  assert.doesNotMatch(await none.text(), /porthole_/);
  const wrong = await fetch(`${start.url}/_porthole/metrics`, { headers: { Authorization: 'Bearer nope' } });
  assert.equal(wrong.status, 401);
  const post = await fetch(`${start.url}/_porthole/metrics`, { method: 'POST', headers: { Authorization: `Bearer ${start.token}` } });
  assert.equal(post.status, 400);
});

test('the metrics page counts requests by app, method and status class, tunnel bytes, messages, closes and open tunnels, and the process', async (t) => {
  const upstream = await wsUpstream();
  t.after(() => upstream.close());
  const { start } = await started(t, upstream.port);
  const get = () => fetch(`${start.url}/_porthole/metrics`, { headers: { Authorization: `Bearer ${start.token}` } });

  for (let i = 0; i < 3; i++) assert.equal(await (await fetch(`${start.url}/echo/x${i}`)).text(), `http-ok /x${i}`);
  assert.equal((await fetch(`${start.url}/nowhere/`)).status, 404);
  const ev = await tunnel(start, 5, 1000);
  // An open tunnel shows in the gauge while it is open.
  const open = await openWs(`ws://127.0.0.1:${start.port}/echo/ws`);
  t.after(() => open.terminate());

  const res = await get();
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  assert.equal(metric(text, 'porthole_http_requests_total', { app: 'echo', method: 'GET', status_class: '2xx' }), 3);
  assert.equal(metric(text, 'porthole_http_requests_total', { app: '', method: 'GET', status_class: '4xx' }), 1);
  assert.equal(metric(text, 'porthole_http_request_duration_seconds_count', { app: 'echo' }), 3);
  assert.equal(metric(text, 'porthole_ws_upgrades_total', { app: 'echo', result: 'accepted' }), 2);
  assert.equal(metric(text, 'porthole_ws_handshake_duration_seconds_count', { app: 'echo' }), 2);
  assert.ok((metric(text, 'porthole_ws_handshake_duration_seconds_sum', { app: 'echo' }) ?? 0) > 0);
  // Five 1000-byte messages each way: payload plus frame headers (masked from the client).
  assert.ok(ev.bytesIn >= 5000 && ev.bytesOut >= 5000, JSON.stringify(ev));
  assert.equal(metric(text, 'porthole_tunnel_bytes_total', { app: 'echo', direction: 'in' }), ev.bytesIn);
  assert.equal(metric(text, 'porthole_tunnel_bytes_total', { app: 'echo', direction: 'out' }), ev.bytesOut);
  // Data messages, not frames: the close frame is not one.
  assert.equal(ev.messagesIn, 5);
  assert.equal(ev.messagesOut, 5);
  assert.equal(metric(text, 'porthole_tunnel_messages_total', { app: 'echo', direction: 'in' }), 5);
  assert.equal(metric(text, 'porthole_tunnel_messages_total', { app: 'echo', direction: 'out' }), 5);
  assert.equal(metric(text, 'porthole_tunnel_closes_total', { app: 'echo', code: '4321', closed_by: 'client' }), 1);
  assert.equal(metric(text, 'porthole_tunnel_duration_seconds_count', { app: 'echo' }), 1);
  assert.equal(metric(text, 'porthole_tunnels_open', { app: 'echo' }), 1);
  assert.ok((metric(text, 'porthole_process_resident_memory_bytes', {}) ?? Number(/^porthole_process_resident_memory_bytes (\d+)/m.exec(text)?.[1])) > 0);
  assert.match(text, /^porthole_process_open_fds \d+/m);
  assert.match(text, /^porthole_process_cpu_seconds_total \d/m);

  // Closed: the gauge drops to no series for the app.
  const done = closed(open);
  open.close(1000);
  await done;
  await until(async () => (metric(await (await get()).text(), 'porthole_tunnels_open', { app: 'echo' }) === undefined ? true : undefined), 5000, () => 'the open-tunnel gauge to drop');
});

test('createServer({ metrics: false }) serves no metrics page', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-metrics-'));
  const server = createServer({ listen: { port: 0 }, dataDir, metrics: false });
  t.after(async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const start = await server.listen();
  assert.equal(server.metrics, undefined);
  const res = await fetch(`${start.url}/_porthole/metrics`, { headers: { Authorization: `Bearer ${start.token}` } });
  assert.equal(res.status, 404);
});

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = net.createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => ok(port));
    });
  });
}

async function promQuery(port: number, query: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const res = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(query)}`);
  const body = (await res.json()) as { status: string; data?: { result: { metric: Record<string, string>; value: [number, string] }[] } };
  assert.equal(body.status, 'success', JSON.stringify(body));
  return body.data!.result;
}

test('a real Prometheus scrapes the gateway with the token, and a metrics.listen address without one, and sees the request, tunnel-bytes, close-code, open-tunnel, app readiness and process series', async (t) => {
  ensureTools([{ check: PROMETHEUS, pkg: 'prometheus' }]);
  assert.ok(existsSync(PROMETHEUS), 'Debian\'s prometheus is required (apt-get install prometheus)');
  const upstream = await wsUpstream();
  t.after(() => upstream.close());
  const { start } = await started(t, upstream.port);
  // A second gateway with metrics.listen, scraped as docs/metrics.md shows: no token, the default /metrics.
  const openDir = mkdtempSync(join(tmpdir(), 'porthole-metrics-'));
  const open = createServer({ listen: { port: 0 }, dataDir: openDir, config: { metrics: { listen: '127.0.0.1:0' }, apps: [{ name: 'other', url: `http://127.0.0.1:${upstream.port}` }] } });
  t.after(async () => {
    await open.close();
    rmSync(openDir, { recursive: true, force: true });
  });
  const openStart = await open.listen();
  const openTarget = new URL(openStart.metricsUrl!).host;

  const dir = mkdtempSync(join(tmpdir(), 'porthole-prometheus-'));
  const promPort = await freePort();
  const config = [
    'global:',
    '  scrape_interval: 1s',
    'scrape_configs:',
    '  - job_name: porthole',
    '    metrics_path: /_porthole/metrics',
    '    authorization:',
    `      credentials: ${start.token}`,
    '    static_configs:',
    `      - targets: ['127.0.0.1:${start.port}']`,
    '  - job_name: porthole-open',
    '    static_configs:',
    `      - targets: ['${openTarget}']`,
    '',
  ].join('\n');
  writeFileSync(join(dir, 'prometheus.yml'), config);
  const prom = spawn(PROMETHEUS, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  prom.stderr.on('data', (d) => (log = (log + d).slice(-8000)));
  const exited = new Promise((r) => prom.once('exit', r));
  t.after(async () => {
    if (prom.exitCode === null) prom.kill('SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  });

  for (let i = 0; i < 4; i++) await (await fetch(`${start.url}/echo/p${i}`)).text();
  for (let i = 0; i < 2; i++) await (await fetch(`${openStart.url}/other/o${i}`)).text();
  const ev = await tunnel(start, 3, 2048);
  // One tunnel held open while Prometheus scrapes.
  const held = await openWs(`ws://127.0.0.1:${start.port}/echo/ws`);
  t.after(() => held.terminate());

  const seen: Record<string, unknown> = {};
  const want = async (query: string, value: number, what: string) =>
    until(
      async () => {
        if (prom.exitCode !== null) throw new Error(`prometheus exited ${prom.exitCode}: ${log}`);
        const r = await promQuery(promPort, query).catch((err: Error) => [{ metric: {}, value: [0, err.message] as [number, string] }]);
        seen[query] = r;
        return r.length === 1 && Number(r[0].value[1]) === value ? r[0] : undefined;
      },
      30_000,
      () => `${what} in Prometheus (${query} == ${value}, last answer ${JSON.stringify(seen[query])}); its log: ${log.slice(-1500)}`,
    );
  await want('porthole_http_requests_total{job="porthole",app="echo",method="GET",status_class="2xx"}', 4, 'the request series');
  await want('porthole_tunnel_bytes_total{app="echo",direction="in"}', ev.bytesIn, 'the tunnel bytes in');
  await want('porthole_tunnel_bytes_total{app="echo",direction="out"}', ev.bytesOut, 'the tunnel bytes out');
  await want('porthole_tunnel_closes_total{app="echo",code="4321",closed_by="client"}', 1, 'the close-code series');
  await want('up{job="porthole"}', 1, 'the scrape target up');
  await want('porthole_tunnels_open{app="echo",kind="tunnel"}', 1, 'the open tunnel');
  await want('porthole_app_state{app="echo",state="external"}', 1, 'the app state');
  await want('porthole_app_ready{app="echo"}', 1, 'the app readiness');
  await want('count(porthole_process_open_fds{job="porthole"} > 0)', 1, 'the open fds of the gateway');
  await want('count(porthole_process_resident_memory_bytes{job="porthole"} > 0)', 1, 'the memory of the gateway');
  await want('up{job="porthole-open"}', 1, 'the metrics.listen target up, scraped without a token');
  await want('porthole_http_requests_total{job="porthole-open",app="other",method="GET",status_class="2xx"}', 2, 'the request series from metrics.listen');
  assert.ok(ev.bytesIn >= 3 * 2048);

  // The queries docs/metrics.md suggests are valid PromQL over these series.
  const doc = readFileSync(new URL('../../docs/metrics.md', import.meta.url), 'utf8');
  const queries = (/```promql\n([\s\S]*?)```/.exec(doc)?.[1] ?? '').split('\n').map((l) => l.replace(/\s+#.*$/, '').trim()).filter(Boolean);
  assert.ok(queries.length >= 5, `the promql examples: ${queries.length}`);
  for (const q of queries) await promQuery(promPort, q);
  assert.ok((await promQuery(promPort, queries.find((q) => q.startsWith('sum by (app, kind)'))!)).some((r) => r.metric.app === 'echo' && r.metric.kind === 'tunnel'));
});

test('refused upgrades are counted by their error code, and a supervised app shows its state, starts and last exit code', async (t) => {
  const upstream = await wsUpstream();
  t.after(() => upstream.close());
  const { server, start } = await started(t, upstream.port);
  const get = async () => (await fetch(`${start.url}/_porthole/metrics`, { headers: { Authorization: `Bearer ${start.token}` } })).text();

  // An app whose upstream is not listening: the upgrade is refused with an error code.
  const deadPort = await freePort();
  await server.registry.put({ name: 'dead', url: `http://127.0.0.1:${deadPort}` });
  const upgrades = collect('upgrade', server.gateway.id);
  t.after(() => upgrades.stop());
  // (The gateway may answer the handshake and close at once with the error's close code: either way it is a refusal.)
  await wsCloseOf(`ws://127.0.0.1:${start.port}/dead/ws`).catch(() => undefined);
  const refused = await waitFor(() => upgrades.events.find((e) => e.app === 'dead'), 5000, 'the refused upgrade event');
  assert.equal(refused.accepted, false);
  assert.ok(refused.code, JSON.stringify(refused));
  assert.equal(metric(await get(), 'porthole_ws_upgrades_total', { app: 'dead', result: refused.code! }), 1);

  // A supervised app, started then stopped.
  await server.registry.put({ name: 'proc', cmd: appCmd() });
  await server.registry.act('proc', 'start');
  await until(async () => (metric(await get(), 'porthole_app_state', { app: 'proc', state: 'running' }) === 1 ? true : undefined), 15_000, () => 'proc running in the metrics');
  let text = await get();
  assert.equal(metric(text, 'porthole_app_state', { app: 'proc', state: 'starting' }), 0);
  assert.equal(metric(text, 'porthole_app_starts_total', { app: 'proc' }), 1);
  await server.registry.act('proc', 'stop');
  await until(async () => (metric(await get(), 'porthole_app_state', { app: 'proc', state: 'stopped' }) === 1 ? true : undefined), 15_000, () => 'proc stopped in the metrics');
  text = await get();
  assert.equal(metric(text, 'porthole_app_state', { app: 'proc', state: 'running' }), 0);

  // An app that exits with code 3 on its own: its exit code is shown.
  await server.registry.put({ name: 'crash', cmd: 'exit 3' });
  await server.registry.act('crash', 'start').catch(() => undefined);
  await until(async () => (metric(await get(), 'porthole_app_last_exit_code', { app: 'crash' }) === 3 ? true : undefined), 15_000, () => 'crash exit code 3 in the metrics');
  assert.ok((metric(await get(), 'porthole_app_starts_total', { app: 'crash' }) ?? 0) >= 1);
});
