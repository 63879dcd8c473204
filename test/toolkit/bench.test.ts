/**
 * `porthole bench` checked against servers that count what they see: a `ws`
 * echo server in this process (counts messages both ways, records close codes,
 * headers and handshake concurrency, and can misbehave on purpose), and
 * `porthole echo` itself. Runs are 1–2 s with few connections; assertions are
 * about relationships and bounds, never absolute speed (the machine has 2
 * shared cores).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { WebSocketServer, type WebSocket } from 'ws';
import { describeCloseCode } from '../../src/toolkit/close-codes.js';
import { runBench, BenchOptionError, type BenchResult } from '../../src/toolkit/bench.js';
import { formatBenchReport } from '../../src/toolkit/bench-report.js';
import { startEchoServer } from '../../src/toolkit/echo.js';
import { CLI, ROOT, runCli, startCli, unusedPort } from './helpers.js';

interface CountingOptions {
  /** Close each connection with this code after it echoed `closeAfter` messages. */
  closeAfter?: number;
  closeCode?: number;
  /** Change the echo of message n (1-based, per connection) when this returns a byte offset to flip. */
  corrupt?: (n: number) => number | undefined;
  /** Do not echo message n (per connection). */
  swallow?: (n: number) => boolean;
  /** Refuse every handshake with this HTTP status. */
  refuse?: number;
  /** Hold every handshake this long before answering. */
  upgradeDelayMs?: number;
  subprotocols?: string[];
  /** Accept permessage-deflate. */
  compress?: boolean;
  /** Serve wss:// with this certificate. */
  tls?: { cert: string; key: string };
}

interface Counting {
  url: string;
  received: number;
  sent: number;
  textMessages: number;
  connections: number;
  /** `performance.now()` when each handshake reached the server. */
  upgradeTimes: number[];
  maxPendingUpgrades: number;
  requests: IncomingMessage[];
  protocols: string[];
  closeCodes: number[];
}

/** A `ws` echo server on 127.0.0.1 port 0 that counts messages received and sent; closed when the test ends. */
async function countingServer(t: TestContext, o: CountingOptions = {}): Promise<Counting> {
  const http = o.tls ? createHttpsServer({ cert: readFileSync(o.tls.cert), key: readFileSync(o.tls.key) }) : createServer();
  let pending = 0;
  const c: Counting = {
    url: '',
    received: 0,
    sent: 0,
    textMessages: 0,
    connections: 0,
    upgradeTimes: [],
    maxPendingUpgrades: 0,
    requests: [],
    protocols: [],
    closeCodes: [],
  };
  const wss = new WebSocketServer({
    server: http,
    perMessageDeflate: o.compress ?? false,
    handleProtocols: (offered) => [...offered].find((p) => o.subprotocols?.includes(p)) ?? false,
    verifyClient: (info, done) => {
      c.upgradeTimes.push(performance.now());
      c.maxPendingUpgrades = Math.max(c.maxPendingUpgrades, ++pending);
      const answer = () => {
        pending--;
        if (o.refuse) done(false, o.refuse);
        else done(true);
      };
      if (o.upgradeDelayMs) setTimeout(answer, o.upgradeDelayMs);
      else answer();
    },
  });
  wss.on('connection', (ws: WebSocket, req: IncomingMessage) => {
    c.connections++;
    c.requests.push(req);
    c.protocols.push(ws.protocol);
    let n = 0;
    ws.on('message', (data: Buffer, isBinary) => {
      c.received++;
      n++;
      if (!isBinary) c.textMessages++;
      if (o.closeAfter !== undefined && n > o.closeAfter) {
        ws.close(o.closeCode ?? 4001, 'enough');
        return;
      }
      if (o.swallow?.(n)) return;
      let echo = data;
      const flip = o.corrupt?.(n);
      if (flip !== undefined) {
        echo = Buffer.from(data);
        echo[flip] ^= 0x01;
      }
      ws.send(echo, { binary: isBinary });
      c.sent++;
    });
    ws.on('close', (code: number) => c.closeCodes.push(code));
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  c.url = `${o.tls ? 'wss' : 'ws'}://127.0.0.1:${(http.address() as AddressInfo).port}/bench`;
  t.after(async () => {
    for (const ws of wss.clients) ws.terminate();
    await new Promise((resolve) => wss.close(resolve));
    http.closeAllConnections();
    await new Promise((resolve) => http.close(resolve));
  });
  return c;
}

/** Waits (briefly) for a server-side condition that follows the bench's last event. */
async function eventually(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function assertLatencySane(r: BenchResult): void {
  const l = r.latency;
  assert.ok(l.count > 0, 'some round trips were timed');
  const chain = [l.minMs, l.p50Ms, l.p90Ms, l.p99Ms, l.p999Ms, l.maxMs];
  assert.ok(chain.every((v) => Number.isFinite(v) && v >= 0), `latencies are numbers ≥ 0: ${chain}`);
  assert.ok(l.p50Ms > 0, 'p50 is positive');
  for (let i = 1; i < chain.length; i++) assert.ok(chain[i - 1] <= chain[i], `min ≤ p50 ≤ p90 ≤ p99 ≤ p99.9 ≤ max: ${chain}`);
  assert.ok(l.minMs <= l.meanMs && l.meanMs <= l.maxMs);
}

function assertNoErrors(r: BenchResult): void {
  assert.equal(r.errors.total, 0, `no errors: ${JSON.stringify(r.errors.byCause)}`);
  assert.deepEqual(r.errors.byCause, []);
}

function errorOf(r: BenchResult, kind: string, code: number | string) {
  return r.errors.byCause.find((e) => e.kind === kind && e.code === code);
}

test('closed loop with messagesPerConnection: bench sent = server received = server sent = bench received, every connection closes 1000', async (t) => {
  const server = await countingServer(t);
  const r = await runBench({ url: server.url, connections: 4, messagesPerConnection: 300 });
  assertNoErrors(r);
  assert.equal(r.mode, 'closed-loop');
  assert.equal(r.stoppedBy, 'messages');
  assert.equal(r.messages.sent, 1200);
  assert.equal(server.received, r.messages.sent);
  assert.equal(server.sent, server.received);
  assert.equal(r.messages.received, server.sent);
  assert.equal(server.textMessages, 0, 'binary by default');
  assert.equal(r.latency.count, 1200, 'every echo was timed');
  assertLatencySane(r);
  assert.equal(r.connections.opened, 4);
  assert.equal(r.connections.connectMs?.count, 4, 'a handshake time for every connection');
  await eventually('4 closes on the server', () => server.closeCodes.length === 4);
  assert.deepEqual(server.closeCodes, [1000, 1000, 1000, 1000]);
  assert.equal(r.messages.bytesSent, 1200 * 64);
  assert.equal(r.messages.bytesReceived, 1200 * 64);
});

test('against porthole echo for 1.5 s: msg/s = echoes / elapsed, MiB/s = payload both ways / elapsed, elapsed ≈ duration, handshake times for all', async (t) => {
  const echo = await startEchoServer();
  t.after(() => echo.close());
  const r = await runBench({ url: `${echo.url}/`, connections: 3, durationSeconds: 1.5, size: 256 });
  assertNoErrors(r);
  assert.equal(r.stoppedBy, 'duration');
  // A Node timer may fire a fraction of a millisecond before performance.now() says it is due.
  assert.ok(r.elapsedSeconds >= 1.495 && r.elapsedSeconds < 3, `elapsed ${r.elapsedSeconds} s for a 1.5 s run`);
  assert.ok(r.messages.received > 0);
  // Closed loop: at most one message in flight per connection, and the drain brings it back.
  assert.equal(r.messages.received, r.messages.sent);
  assert.ok(Math.abs(r.messages.perSecond - r.messages.received / r.elapsedSeconds) < 1e-6 * r.messages.perSecond);
  const mib = ((r.messages.sent + r.messages.received) * 256) / r.elapsedSeconds / 2 ** 20;
  assert.ok(Math.abs(r.messages.mibPerSecond - mib) < 1e-9 + 1e-6 * mib);
  assertLatencySane(r);
  const c = r.connections.connectMs!;
  assert.equal(c.count, 3);
  assert.ok(c.p50 > 0 && c.p50 <= c.p99 && c.p99 <= c.max, JSON.stringify(c));
  // The bench's own CPU: the 1.5 s covered some work, at most 2 cores' worth (the echo server runs in this process too).
  assert.ok(r.cpu.userSeconds + r.cpu.systemSeconds > 0);
  assert.ok(r.cpu.percentOfCore > 0 && r.cpu.percentOfCore <= 210, `cpu ${r.cpu.percentOfCore}%`);
  assert.ok(r.cpu.microsecondsPerRoundTrip > 0);
  assert.equal(r.cpu.saturated, r.cpu.percentOfCore > 90);
  assert.equal(r.warnings.some((w) => /CPU core/.test(w)), r.cpu.saturated);
  assert.ok(r.cpu.eventLoopDelayP99Ms >= 0 && r.cpu.eventLoopDelayP99Ms <= r.cpu.eventLoopDelayMaxMs, JSON.stringify(r.cpu));
});

test('--text: text messages of printable ASCII go out and come back as text, all verified', async (t) => {
  const server = await countingServer(t);
  const r = await runBench({ url: server.url, connections: 2, messagesPerConnection: 100, binary: false, size: 100 });
  assertNoErrors(r);
  assert.equal(server.textMessages, 200);
  assert.equal(r.latency.count, 200);

  const echo = await startEchoServer();
  t.after(() => echo.close());
  const viaEcho = await runBench({ url: echo.url, connections: 2, messagesPerConnection: 100, binary: false });
  assertNoErrors(viaEcho);
  assert.equal(viaEcho.messages.received, 200);
});

test('open loop (ratePerSecond): sends ≈ rate × time open × connections, all echoed and counted by the server', async (t) => {
  const server = await countingServer(t);
  const rate = 50;
  const r = await runBench({ url: server.url, connections: 4, ratePerSecond: rate, durationSeconds: 2 });
  assertNoErrors(r);
  assert.equal(r.mode, 'open-loop');
  assert.ok(r.schedule);
  assert.equal(r.schedule.ratePerSecond, rate);
  // Each connection sends on its schedule from the moment it opened until the end.
  const nominal = rate * 2 * 4;
  assert.ok(r.messages.sent <= nominal * 1.1 && r.messages.sent >= nominal * 0.8, `sent ${r.messages.sent}, expected about ${nominal}`);
  assert.equal(server.received, r.messages.sent);
  assert.equal(r.messages.received, r.messages.sent);
  assert.equal(r.latency.count, r.messages.received);
  assertLatencySane(r);
});

test('open loop measures from the intended send time: a 300 ms stall of the bench itself shows as late sends and ≥ 250 ms latency', async (t) => {
  const server = await countingServer(t);
  let stalled = false;
  const r = await runBench({
    url: server.url,
    connections: 2,
    ratePerSecond: 100,
    durationSeconds: 1.5,
    progressIntervalMs: 100,
    onProgress: (p) => {
      if (stalled || p.open < 2 || p.sent < 10) return;
      stalled = true;
      // Block this process (bench and server) as a GC pause or a busy generator would.
      const until = performance.now() + 300;
      while (performance.now() < until);
    },
  });
  assert.ok(stalled, 'the stall happened during the run');
  assertNoErrors(r);
  // ~30 sends per connection were due during the stall: they go out late, stamped with their intended time.
  assert.ok(r.schedule!.lateSends >= 30, `late sends ${r.schedule!.lateSends}`);
  assert.ok(r.schedule!.maxSendLagMs >= 250, `max send lag ${r.schedule!.maxSendLagMs} ms`);
  assert.ok(r.latency.maxMs >= 250, `max latency ${r.latency.maxMs} ms includes the stall`);
  assert.ok(r.cpu.eventLoopDelayMaxMs >= 250, `the event-loop monitor saw the stall: ${r.cpu.eventLoopDelayMaxMs} ms`);
  // Nothing was skipped: the schedule caught up.
  assert.equal(server.received, r.messages.sent);
  assert.ok(r.messages.sent >= 100 * 1.5 * 2 * 0.8, `sent ${r.messages.sent}`);
});

test('a server that closes with 4001 mid-run: counted by close code with its meaning; the run ends when no connection is left', async (t) => {
  const server = await countingServer(t, { closeAfter: 5, closeCode: 4001 });
  const r = await runBench({ url: server.url, connections: 3, durationSeconds: 10 });
  assert.equal(r.stoppedBy, 'no-open-connections');
  assert.ok(r.elapsedSeconds < 5, 'it did not wait for the 10 s duration');
  assert.equal(r.errors.total, 3);
  assert.deepEqual(errorOf(r, 'close', 4001), { kind: 'close', code: 4001, count: 3, description: describeCloseCode(4001) });
  assert.equal(r.connections.opened, 3);
  assert.equal(r.connections.lost, 3);
  assert.equal(r.messages.received, 15, 'five echoes per connection before the close');
  assert.match(formatBenchReport(r).join('\n'), /^ {2}3 {2}closed 4001: application-defined/m);
});

test('nothing listening: every connection counts ECONNREFUSED, no handshake time, no latency', async () => {
  const port = await unusedPort();
  const r = await runBench({ url: `ws://127.0.0.1:${port}/`, connections: 3, durationSeconds: 5 });
  assert.equal(r.stoppedBy, 'no-open-connections');
  assert.deepEqual(r.errors.byCause, [{ kind: 'connect', code: 'ECONNREFUSED', count: 3, description: 'nothing listens on that host and port' }]);
  assert.equal(r.connections.opened, 0);
  assert.equal(r.connections.failed, 3);
  assert.equal(r.connections.connectMs, null);
  assert.equal(r.latency.count, 0);
  assert.equal(r.messages.sent, 0);
});

test('options ws refuses before connecting (an invalid subprotocol) count PH_BENCH_CLIENT_ERROR for every connection', async () => {
  // Each failure is synchronous: 20,000 of them must not recurse 20,000 deep (the stack would overflow).
  const r = await runBench({ url: 'ws://127.0.0.1:9/', connections: 20_000, subprotocols: ['not a token'] });
  assert.equal(r.stoppedBy, 'no-open-connections');
  assert.equal(errorOf(r, 'connect', 'PH_BENCH_CLIENT_ERROR')?.count, 20_000);
  assert.equal(r.connections.failed, 20_000);
});

test('a handshake refused with 403 is counted by its HTTP status', async (t) => {
  const server = await countingServer(t, { refuse: 403 });
  const r = await runBench({ url: server.url, connections: 2, durationSeconds: 5 });
  assert.deepEqual(errorOf(r, 'handshake', 'HTTP 403'), {
    kind: 'handshake',
    code: 'HTTP 403',
    count: 2,
    description: 'the server answered the upgrade with 403 Forbidden instead of 101',
  });
  assert.equal(r.errors.total, 2);
  assert.equal(r.connections.failed, 2);
});

test('every echo is checked: a flipped body byte or sequence byte counts as PH_BENCH_MISMATCH and is not timed', async (t) => {
  // Per connection, message 3, 13, 23… gets a body byte flipped, message 7, 17, 27… a sequence-number byte.
  const server = await countingServer(t, { corrupt: (n) => (n % 10 === 3 ? 40 : n % 10 === 7 ? 1 : undefined) });
  const r = await runBench({ url: server.url, connections: 2, messagesPerConnection: 100 });
  assert.equal(r.messages.received, 200);
  assert.deepEqual(errorOf(r, 'echo', 'PH_BENCH_MISMATCH')?.count, 40);
  assert.equal(r.errors.total, 40);
  assert.equal(r.latency.count, 160, 'only matching echoes are timed');
});

test('a message that never comes back counts as PH_BENCH_NO_ECHO', async (t) => {
  const server = await countingServer(t, { swallow: (n) => n === 10 });
  const r = await runBench({ url: server.url, connections: 2, durationSeconds: 0.5 });
  // Closed loop: each connection waits for its 10th echo until the end, then 2 s of grace.
  assert.deepEqual(errorOf(r, 'echo', 'PH_BENCH_NO_ECHO')?.count, 2);
  assert.equal(r.messages.received, 18);
  assert.equal(r.messages.sent, 20);

  // With --messages and no duration the run would wait forever: it stops once no echo came for stallSeconds.
  const stalled = await runBench({ url: server.url, connections: 2, messagesPerConnection: 1000, stallSeconds: 0.5 });
  assert.equal(stalled.stoppedBy, 'stalled');
  assert.deepEqual(errorOf(stalled, 'echo', 'PH_BENCH_NO_ECHO')?.count, 2);
});

test('handshakes: at most maxHandshakes in flight; a ramp spreads the opens; headers, Origin and subprotocol are sent', async (t) => {
  const slow = await countingServer(t, { upgradeDelayMs: 100 });
  const capped = await runBench({ url: slow.url, connections: 6, maxHandshakes: 2, messagesPerConnection: 5 });
  assertNoErrors(capped);
  assert.equal(slow.maxPendingUpgrades, 2);
  // Three waves of two, each held 100 ms by the server.
  assert.ok(capped.connections.connectMs!.max >= 100);

  const server = await countingServer(t, { subprotocols: ['chat'] });
  const t0 = performance.now();
  const r = await runBench({
    url: server.url,
    connections: 5,
    rampPerSecond: 10,
    messagesPerConnection: 5,
    headers: { 'X-Bench': 'yes' },
    origin: 'https://example.test',
    subprotocols: ['nope', 'chat'],
  });
  assertNoErrors(r);
  // Connection k starts 100·k ms after the start: the fifth cannot reach the server before 400 ms.
  const upgrades = server.upgradeTimes.map((at) => at - t0).sort((a, b) => a - b);
  assert.equal(upgrades.length, 5);
  upgrades.forEach((at, k) => assert.ok(at >= k * 100 - 5, `connection ${k} reached the server at ${at.toFixed(0)} ms, before its ramp slot`));
  for (const req of server.requests) {
    assert.equal(req.headers['x-bench'], 'yes');
    assert.equal(req.headers.origin, 'https://example.test');
    assert.equal(req.headers['sec-websocket-extensions'], undefined, 'permessage-deflate is not offered');
  }
  assert.deepEqual(server.protocols, ['chat', 'chat', 'chat', 'chat', 'chat']);
});

test('one payload buffer per connection is safe: bursts of sends without compression, and with --compress (ws keeps a reference while zlib works, so those are copied)', async (t) => {
  const plain = await countingServer(t);
  const burst = await runBench({ url: plain.url, connections: 2, ratePerSecond: 3000, messagesPerConnection: 300, size: 1024 });
  assertNoErrors(burst);
  assert.equal(plain.received, 600);
  assert.equal(burst.latency.count, 600);
  for (const req of plain.requests) assert.equal(req.headers['sec-websocket-extensions'], undefined);

  const server = await countingServer(t, { compress: true });
  // Open loop at a high rate, so several sends of a connection wait while zlib works on the previous one.
  const r = await runBench({ url: server.url, connections: 2, ratePerSecond: 3000, messagesPerConnection: 300, size: 1024, compress: true });
  assertNoErrors(r);
  assert.equal(server.received, 600);
  assert.equal(r.latency.count, 600);
  for (const req of server.requests) assert.match(req.headers['sec-websocket-extensions'] ?? '', /^permessage-deflate/);
});

test('wss:// with a self-signed certificate: refused by certificate check by default, measured with insecure', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'porthole-bench-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const tls = { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
  // prettier-ignore
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', tls.key, '-out', tls.cert, '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ], { stdio: 'pipe' });
  const server = await countingServer(t, { tls });
  const refused = await runBench({ url: server.url, connections: 2, messagesPerConnection: 10 });
  assert.equal(errorOf(refused, 'connect', 'DEPTH_ZERO_SELF_SIGNED_CERT')?.count, 2, JSON.stringify(refused.errors));
  assert.match(errorOf(refused, 'connect', 'DEPTH_ZERO_SELF_SIGNED_CERT')!.description, /--insecure/);
  const r = await runBench({ url: server.url, connections: 2, messagesPerConnection: 50, insecure: true });
  assertNoErrors(r);
  assert.equal(server.received, 100);
});

test('progress is reported while the run lasts; bad options are refused with PH_BENCH_BAD_OPTION', async (t) => {
  const server = await countingServer(t);
  const seen: { sent: number; open: number }[] = [];
  await runBench({ url: server.url, connections: 2, durationSeconds: 1, progressIntervalMs: 200, onProgress: (p) => seen.push(p) });
  assert.ok(seen.length >= 3, `${seen.length} progress reports`);
  assert.ok(seen.every((p, i) => i === 0 || p.sent >= seen[i - 1].sent));
  assert.equal(seen.at(-1)!.open, 2);

  for (const bad of [{ connections: 0 }, { size: 15 }, { ratePerSecond: -1 }, { durationSeconds: Infinity }, { conections: 3 }]) {
    await assert.rejects(
      runBench({ url: server.url, ...bad } as never),
      (err: unknown) => err instanceof BenchOptionError && err.code === 'PH_BENCH_BAD_OPTION',
      JSON.stringify(bad),
    );
  }
  await assert.rejects(runBench({ url: server.url, conections: 3 } as never), /unknown option conections, did you mean connections\?/);
});

test('CLI: --json prints one JSON document and nothing else on stdout; exit 0 without errors', async (t) => {
  const server = await countingServer(t);
  const r = await runCli(['bench', server.url, '--json', '-c', '2', '--messages', '50', '--no-progress']);
  assert.equal(r.code, 0, r.output);
  const result = JSON.parse(r.stdout) as BenchResult;
  assert.equal(r.stdout, `${JSON.stringify(result, null, 2)}\n`, 'stdout is exactly the document');
  // stderr is not a terminal: no progress line; only warnings (a busy machine can stall the bench) go there.
  for (const line of r.stderr.split('\n').filter(Boolean)) assert.match(line, /^warning: /);
  assert.equal(r.stderr.split('\n').filter(Boolean).length, result.warnings.length);
  assert.equal(result.messages.sent, 100);
  assert.equal(server.received, 100);
  assert.equal(result.messages.received, 100);
  assert.equal(result.errors.total, 0);
});

test('CLI: human report; exit 1 when errors were counted (ECONNREFUSED, 4001)', async (t) => {
  const server = await countingServer(t);
  const ok = await runCli(['bench', server.url, '-c', '2', '--duration', '1', '--size', '100']);
  assert.equal(ok.code, 0, ok.output);
  assert.match(ok.stdout, /^porthole bench ws:\/\/127\.0\.0\.1:\d+\/bench$/m);
  assert.match(ok.stdout, /^connections {2}2 opened {3}handshake p50 \S+ \S+ {2}p99 /m);
  assert.match(ok.stdout, /^messages {5}[\d,]+ sent, [\d,]+ echoed {3}[\d,]+ msg\/s {3}[\d.]+ MiB\/s \(payload, both ways\)$/m);
  assert.match(ok.stdout, /^latency {6}p50 .+ {3}p90 .+ {3}p99 .+ {3}p99\.9 .+ {3}max .+ {3}\([\d,]+ round trips\)$/m);
  assert.match(ok.stdout, /^errors {7}none$/m);
  assert.match(ok.stdout, /^bench CPU {4}\d+% of one core \([\d.]+ s user\+system\), [\d.]+ µs per round trip; event loop delay p99 .+, max .+$/m);

  const port = await unusedPort();
  const refused = await runCli(['bench', `127.0.0.1:${port}`, '-c', '2', '--json']);
  assert.equal(refused.code, 1, refused.output);
  assert.equal((JSON.parse(refused.stdout) as BenchResult).errors.byCause[0].code, 'ECONNREFUSED');

  const closing = await countingServer(t, { closeAfter: 3, closeCode: 4001 });
  const closed = await runCli(['bench', closing.url, '-c', '2']);
  assert.equal(closed.code, 1, closed.output);
  assert.match(closed.stdout, /^errors {7}2$/m);
  assert.match(closed.stdout, /^ {2}2 {2}closed 4001: application-defined \(4000–4999\)/m);
});

test('CLI: SIGINT stops the run early, closes every connection with 1000 and still reports', async (t) => {
  const server = await countingServer(t);
  const bench = startCli(t, ['bench', server.url, '-c', '2', '--duration', '60', '--json']);
  await eventually('2 connections and some messages', () => server.connections === 2 && server.received > 10, 20_000);
  bench.proc.kill('SIGINT');
  const exit = await bench.waitExit();
  assert.deepEqual(exit, { code: 0, signal: null }, bench.describe());
  const result = JSON.parse(bench.stdout) as BenchResult;
  assert.equal(result.stoppedBy, 'aborted');
  assert.ok(result.elapsedSeconds < 30);
  assert.equal(result.messages.sent, server.received);
  await eventually('2 closes on the server', () => server.closeCodes.length === 2);
  assert.deepEqual(server.closeCodes, [1000, 1000]);
});

test('CLI: bad usage exits 2', async () => {
  for (const args of [
    ['--connections', '0'],
    ['--size', '8'],
    ['--rate', 'fast'],
    ['--duration', '-1'],
    ['--text', '--binary'],
    ['--header', 'no colon'],
    ['--frobnicate'],
  ]) {
    const r = await runCli(['bench', 'ws://127.0.0.1:9/', ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}\n${r.output}`);
    assert.match(r.stderr, /error:/);
    assert.equal(r.stdout, '');
  }
  const url = await runCli(['bench', 'ftp://example.com/']);
  assert.equal(url.code, 2, url.output);
});

test('CLI: a live progress line on stderr when it is a terminal (\\r-rewritten), none with --no-progress', async (t) => {
  const server = await countingServer(t);
  // script(1) gives the child a pseudo-terminal.
  const run = (extra: string[]) =>
    new Promise<string>((resolve, reject) => {
      const command = [process.execPath, CLI, 'bench', server.url, '-c', '2', '--duration', '2.2', ...extra].map((a) => `'${a}'`).join(' ');
      const child = spawn('script', ['-qec', command, '/dev/null'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        if (code === 0) resolve(out);
        else reject(new Error(`script exited ${code}: ${out}`));
      });
    });
  const withProgress = await run([]);
  assert.match(withProgress, /\r {3}\d s {2}2 open {2}[\d,]+ sent {2}[\d,]+ echoed {2}[\d,]+ msg\/s {2}p50 .+ errors 0\x1b\[K/);
  assert.match(withProgress, /\r\x1b\[Kporthole bench /, 'the line is cleared before the report');
  const without = await run(['--no-progress']);
  assert.doesNotMatch(without, /\d s {2}2 open/);
  assert.match(without, /^latency /m);
});
