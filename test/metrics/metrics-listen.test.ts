/**
 * `metrics.listen` (issue 9, section 3): the metrics on an address of their
 * own, at `/metrics` without the admin token, and then not on the gateway's
 * `/_porthole/metrics`; a port that cannot be bound stops the start with
 * `PH_ERR_METRICS_LISTEN`; the listener closes with the server.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { ConfigError, createServer, ServerStartError, type PortholeServer, type ServerStarted } from 'porthole';
import { startServe, runCli } from '../helpers/cli.js';
import { collect, listen, closeServer, rawRequest, waitFor, wsUpstream } from '../helpers/net.js';

async function started(t: TestContext, config: Record<string, unknown>, upstreamPort?: number): Promise<{ server: PortholeServer; start: ServerStarted; dataDir: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-metrics-listen-'));
  const apps = upstreamPort ? [{ name: 'echo', url: `http://127.0.0.1:${upstreamPort}` }] : [];
  const server = createServer({ listen: { port: 0 }, dataDir, config: { apps, ...config } });
  t.after(async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return { server, start: await server.listen(), dataDir };
}

/** Connecting to the port: true if something accepts. */
function accepts(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), ok(true)));
    s.once('error', () => ok(false));
  });
}

test('with metrics.listen the metrics answer at /metrics on that address without a token, and 404 elsewhere there', async (t) => {
  const upstream = await wsUpstream();
  t.after(() => upstream.close());
  const { start } = await started(t, { metrics: { listen: '127.0.0.1:0' } }, upstream.port);
  assert.match(start.metricsUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  const metricsPort = Number(new URL(start.metricsUrl!).port);
  assert.notEqual(metricsPort, start.port);

  for (let i = 0; i < 2; i++) assert.equal(await (await fetch(`${start.url}/echo/q${i}`)).text(), `http-ok /q${i}`);
  const res = await fetch(start.metricsUrl!);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  assert.match(text, /^porthole_http_requests_total\{app="echo",method="GET",status_class="2xx"\} 2$/m);
  assert.match(text, /^porthole_process_cpu_seconds_total /m);

  const head = await fetch(start.metricsUrl!, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(await head.text(), '');
  for (const path of ['/', '/metricsx', '/_porthole/metrics', '/metrics/']) {
    const other = await fetch(`http://127.0.0.1:${metricsPort}${path}`);
    assert.equal(other.status, 404, path);
    assert.equal(other.headers.get('x-porthole-error'), 'PH_ERR_NOT_FOUND');
    assert.doesNotMatch(await other.text(), /porthole_http/);
  }
  const post = await fetch(start.metricsUrl!, { method: 'POST', body: 'x' });
  assert.equal(post.status, 400);
  assert.equal(post.headers.get('x-porthole-error'), 'PH_ERR_BAD_REQUEST');
  // The query string is not part of the path (Prometheus may add params).
  assert.equal((await fetch(`${start.metricsUrl}?x=1`)).status, 200);
});

test('with metrics.listen the gateway no longer serves /_porthole/metrics, even with the admin token', async (t) => {
  const { start } = await started(t, { metrics: { listen: '127.0.0.1:0' } });
  const res = await fetch(`${start.url}/_porthole/metrics`, { headers: { Authorization: `Bearer ${start.token}` } });
  assert.equal(res.status, 404);
  assert.doesNotMatch(await res.text(), /porthole_http_requests_total/);
  // Without metrics.listen the gateway's copy is there (the other tests of test/metrics prove its guard).
  const { start: plain } = await started(t, {});
  assert.equal(plain.metricsUrl, undefined);
  assert.equal((await fetch(`${plain.url}/_porthole/metrics`, { headers: { Authorization: `Bearer ${plain.token}` } })).status, 200);
});

test('a loopback metrics listener refuses a foreign Host (DNS rebinding) but answers loopback names and admin.hosts', async (t) => {
  const { start } = await started(t, { metrics: { listen: '127.0.0.1:0' }, admin: { hosts: ['metrics.internal'] } });
  const port = Number(new URL(start.metricsUrl!).port);
  const get = (host: string) => rawRequest(port, `GET /metrics HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  const evil = await get('evil.example');
  assert.match(evil, /^HTTP\/1\.1 403 /);
  assert.match(evil, /x-porthole-error: PH_ERR_FORBIDDEN/i);
  assert.doesNotMatch(evil, /porthole_http/);
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'metrics.internal']) assert.match(await get(host), /^HTTP\/1\.1 200 /, host);
});

test('a metrics.listen port in use stops the start with PH_ERR_METRICS_LISTEN, an error event, and nothing left listening', async (t) => {
  const taken = http.createServer();
  const takenPort = await listen(taken);
  t.after(() => closeServer(taken));
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-metrics-listen-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const server = createServer({ listen: { port: 0 }, dataDir, config: { metrics: { listen: `127.0.0.1:${takenPort}` } } });
  const errors = collect('error');
  t.after(() => errors.stop());
  const gatewayListening = collect('gateway', server.gateway.id);
  t.after(() => gatewayListening.stop());

  const err = await server.listen().then(
    () => assert.fail('listen() resolved'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ServerStartError, String(err));
  assert.equal(err.stage, 'metrics');
  assert.equal((err.cause as { code?: string }).code, 'PH_ERR_METRICS_LISTEN');
  assert.equal(((err.cause as Error).cause as NodeJS.ErrnoException).code, 'EADDRINUSE');
  assert.match(err.message, new RegExp(`metrics\\.listen: cannot listen on 127\\.0\\.0\\.1:${takenPort}: the port is already in use \\(PH_ERR_METRICS_LISTEN\\)`));
  const ev = await waitFor(() => errors.events.find((e) => e.code === 'PH_ERR_METRICS_LISTEN'), 2000, 'the error event');
  assert.match(ev.message, /already in use/);
  // The gateway never listened, and a failed start creates no token.
  assert.equal(gatewayListening.events.filter((e) => e.action === 'listening').length, 0);
  assert.equal(existsSync(server.tokenFile), false);
});

test('metrics.listen on an address that is not this machine\'s fails with PH_ERR_METRICS_LISTEN and says so', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-metrics-listen-'));
  // 192.0.2.1 is TEST-NET-1 (RFC 5737): never an address of this machine.
  const server = createServer({ listen: { port: 0 }, dataDir, config: { metrics: { listen: '192.0.2.1:0' } } });
  t.after(async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const err = (await server.listen().catch((e: unknown) => e)) as ServerStartError;
  assert.ok(err instanceof ServerStartError);
  assert.equal((err.cause as { code?: string }).code, 'PH_ERR_METRICS_LISTEN');
  assert.match(err.message, /not an address of this machine/);
});

test('a gateway port in use fails the start at stage listen and frees the metrics port it had bound', async (t) => {
  const taken = http.createServer();
  const takenPort = await listen(taken);
  t.after(() => closeServer(taken));
  const free = await new Promise<number>((ok) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => ok(p));
    });
  });
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-metrics-listen-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const server = createServer({ listen: { port: takenPort }, dataDir, config: { metrics: { listen: `127.0.0.1:${free}` } } });
  const err = (await server.listen().catch((e: unknown) => e)) as ServerStartError;
  assert.ok(err instanceof ServerStartError, String(err));
  assert.equal(err.stage, 'listen');
  assert.equal(await accepts(free), false, 'the metrics port is closed again');
});

test('drain closes the metrics listener, cutting a scraper\'s keep-alive connection', async (t) => {
  const { server, start } = await started(t, { metrics: { listen: '127.0.0.1:0' } });
  const port = Number(new URL(start.metricsUrl!).port);
  // A keep-alive connection, as Prometheus holds between scrapes.
  const agent = new http.Agent({ keepAlive: true });
  t.after(() => agent.destroy());
  const status = await new Promise<number>((ok, fail) => http.get(start.metricsUrl!, { agent }, (res) => (res.resume(), res.on('end', () => ok(res.statusCode ?? 0)))).on('error', fail));
  assert.equal(status, 200);
  const socket = await waitFor(() => Object.values(agent.freeSockets).flat()[0], 2000, 'the idle keep-alive socket');
  // An agent's idle socket is unref'd: held here so its close is awaited, not raced by the loop's end.
  socket!.ref();
  const cut = new Promise((ok) => socket!.once('close', ok));
  await server.drain(1000);
  await cut;
  assert.equal(await accepts(port), false, 'nothing listens on the metrics port after drain');
});

test('metrics: false in the config serves no metrics anywhere, and metrics.enabled: false opens no metrics port', async (t) => {
  const { server, start } = await started(t, { metrics: false });
  assert.equal(server.metrics, undefined);
  assert.equal((await fetch(`${start.url}/_porthole/metrics`, { headers: { Authorization: `Bearer ${start.token}` } })).status, 404);
  const free = await new Promise<number>((ok) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => ok(p));
    });
  });
  const { server: off, start: offStart } = await started(t, { metrics: { enabled: false, listen: `127.0.0.1:${free}` } });
  assert.equal(off.metrics, undefined);
  assert.equal(offStart.metricsUrl, undefined);
  assert.equal(await accepts(free), false);
});

test('the metrics key is checked by the schema: a bad listen, a misspelt key, a string and the gateway\'s own address are refused with the path', async () => {
  const bad = (metrics: unknown) => {
    try {
      createServer({ config: { metrics } });
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err.problems.join('\n');
    }
    return assert.fail(`metrics: ${JSON.stringify(metrics)} was accepted`);
  };
  assert.match(bad({ listen: '9464' }), /^metrics\.listen: "9464" is not HOST:PORT such as "127\.0\.0\.1:9464"/);
  assert.match(bad({ listen: '127.0.0.1:70000' }), /^metrics\.listen: the port must be 0–65535/);
  assert.match(bad({ lisen: '127.0.0.1:9464' }), /^metrics\.lisen: unknown key, did you mean listen\?/);
  assert.match(bad('on'), /^metrics: expected true, false or a mapping \{ enabled, listen \}, got string "on"/);
  assert.match(bad({ enabled: 'yes' }), /^metrics\.enabled: expected/);
  // The gateway's own address: refused before anything is bound, whichever way the gateway's address is given.
  const own = async (listen: string | { port: number }, metricsListen: string) => {
    try {
      // Built, never started: closed again so its event subscriptions go.
      await createServer({ listen, config: { metrics: { listen: metricsListen } } }).close();
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err.problems.join('\n');
    }
    return 'accepted';
  };
  assert.match(await own('127.0.0.1:50000', '127.0.0.1:50000'), /^metrics\.listen: 127\.0\.0\.1:50000 is the gateway's own address/);
  assert.match(await own('0.0.0.0:50000', '127.0.0.1:50000'), /gateway's own address/);
  assert.equal(await own('127.0.0.1:50000', '127.0.0.1:9464'), 'accepted');
  assert.equal(await own('127.0.0.1:50000', '127.0.0.2:50000'), 'accepted');
  assert.equal(await own({ port: 0 }, '127.0.0.1:0'), 'accepted');
});

test('porthole serve prints the metrics URL, and exits 1 with PH_ERR_METRICS_LISTEN when its port is taken', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'porthole-metrics-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'porthole.yaml'), 'metrics:\n  listen: 127.0.0.1:0\n');
  const serve = await startServe(['--config', join(dir, 'porthole.yaml'), '--data', join(dir, 'data')]);
  t.after(() => serve.stop());
  const url = await waitFor(() => /metrics on (http:\/\/\S+)/.exec(serve.stderr())?.[1], 5000, 'the metrics line');
  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.match(await res.text(), /^porthole_process_open_fds /m);

  // A second gateway asking for the same metrics port.
  const port = new URL(url).port;
  writeFileSync(join(dir, 'clash.yaml'), `metrics:\n  listen: 127.0.0.1:${port}\n`);
  const clash = runCli(['serve', '--listen', '127.0.0.1:0', '--config', join(dir, 'clash.yaml'), '--data', join(dir, 'data2')]);
  const code = await clash.exited;
  assert.equal(code, 1, clash.stderr());
  assert.match(clash.stderr(), new RegExp(`porthole: metrics\\.listen: cannot listen on 127\\.0\\.0\\.1:${port}: the port is already in use \\(PH_ERR_METRICS_LISTEN\\)`));
  assert.doesNotMatch(clash.stderr(), /listening on/);
});
