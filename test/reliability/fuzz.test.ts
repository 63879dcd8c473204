/**
 * Seeded fuzz of malformed requests and handshakes against a real
 * `porthole serve` child, in bounded concurrent batches. Proves: the gateway
 * never dies, never answers 500 or something that is not HTTP, never lets a
 * request reach an app that it did not route and log, and gives back every
 * file descriptor afterwards.
 *
 * Seed: PORTHOLE_FUZZ_SEED (printed); size: 5,000 cases under `npm test`,
 * 50,000 under `npm run reliability` (PORTHOLE_FUZZ_CASES overrides both).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { redactPath } from '../../src/log/logger.js';
import { fuzzSeed, makeCase, type FuzzCase } from './fuzz-cases.js';
import { fdsBackTo, startGatewayChild, type LogEvent } from './gateway-child.js';
import { record, size } from './harness.js';
import { loggingUpstream, rawWebSocket, tcpEcho, type LoggingUpstream } from './peers.js';
import { exchange, pool, type Exchange } from './raw-client.js';

const CASES = Number(process.env.PORTHOLE_FUZZ_CASES) || size(5_000, 50_000);
const CONCURRENCY = 96;
/** Replays only the cases whose kind (`base+mutation+…`) matches: PORTHOLE_FUZZ_ONLY=regex. */
const ONLY = process.env.PORTHOLE_FUZZ_ONLY ? new RegExp(process.env.PORTHOLE_FUZZ_ONLY) : null;
const SKIPPED: Exchange = { status: null, head: '', bytes: 0, closedByPeer: true, connectError: null, ms: 0, localPort: 0 };

test(`fuzz: ${CASES} malformed requests and handshakes neither crash the gateway nor reach an app unlogged, and leak no fd`, { timeout: 15 * 60_000 }, async (t) => {
  const seed = fuzzSeed();
  t.diagnostic(`seed ${seed} (0x${seed.toString(16)}): replay with PORTHOLE_FUZZ_SEED=${seed}`);
  const up = await loggingUpstream();
  const wsUp = await loggingUpstream();
  const echo = await tcpEcho();
  t.after(() => Promise.all([up.close(), wsUp.close(), echo.close()]));
  const gw = await startGatewayChild({
    config: {
      header_timeout: '5s',
      idle_timeout: '5s',
      response_timeout: '5s',
      drain_timeout: '2s',
      apps: [
        // strip_prefix off: the upstream sees the very path the gateway logs.
        { name: 'up', port: up.port, strip_prefix: false },
        { name: 'ws', port: wsUp.port, strip_prefix: false },
        { name: 'br', bridge: `127.0.0.1:${echo.port}` },
      ],
    },
  });
  t.after(() => gw.stop());
  const target = { host: `127.0.0.1:${gw.port}`, http: '/up', ws: '/ws', bridge: '/br' };

  // Warm up every path once (modules, agents, watchers), then take the baseline.
  await exchange(gw.port, [Buffer.from(`GET /up/warm HTTP/1.1\r\nHost: ${target.host}\r\nConnection: close\r\n\r\n`)]);
  for (const path of ['/ws/warm', '/br/warm']) {
    const ws = await rawWebSocket(gw.port, path);
    ws.socket.destroy();
    await ws.closed;
  }
  up.closeIdle();
  wsUp.closeIdle();
  await new Promise((r) => setTimeout(r, 500));
  const fdBefore = gw.fds();
  const linksBefore = gw.fdLinks();
  const rssBefore = gw.rssMiB();

  const started = Date.now();
  const cases: FuzzCase[] = [];
  const results = await pool(CASES, CONCURRENCY, async (i) => {
    const c = makeCase(seed, i, target);
    if (ONLY && !ONLY.test(c.kind.join('+'))) return SKIPPED;
    const r = await exchange(gw.port, c.chunks, { end: c.end, idleMs: 300, maxMs: 4000 });
    // Keep a case's bytes only when it needs reporting.
    if (isBad(r)) cases[i] = c;
    return r;
  });
  const seconds = (Date.now() - started) / 1000;

  const alive = gw.alive();
  const health = await gw.health();
  await gw.settleLog();
  up.closeIdle();
  wsUp.closeIdle();
  const fdAfter = await fdsBackTo(gw, fdBefore);
  const rssAfter = gw.rssMiB();

  const bad = results.map((r, i) => ({ r, i })).filter(({ r }) => isBad(r));
  const unloggedAll = [...unlogged(up, 'up', gw.events), ...unlogged(wsUp, 'ws', gw.events)];
  const garbled = [...up.clientErrors, ...wsUp.clientErrors].map((g) => g.text);
  const statuses = histogram(results);
  t.diagnostic(`${CASES} cases in ${seconds.toFixed(1)} s; statuses ${JSON.stringify(statuses)}`);
  t.diagnostic(`upstream parsed ${up.log.length + wsUp.log.length} requests, ${unloggedAll.length} not logged by the gateway`);
  t.diagnostic(`fds ${fdBefore} -> ${fdAfter}, RSS ${rssBefore} -> ${rssAfter} MiB`);
  record({
    suite: 'fuzz (malformed requests and handshakes)',
    cases: CASES,
    failures: bad.length + unloggedAll.length + garbled.length + Math.max(0, fdAfter - fdBefore),
    crashes: alive && health.status === 200 ? 0 : 1,
    fdBefore,
    fdAfter,
    rssBeforeMiB: rssBefore,
    rssAfterMiB: rssAfter,
    note: `seed ${seed}, ${seconds.toFixed(0)} s; ${up.log.length + wsUp.log.length} reached an app, ${unloggedAll.length} of them unlogged, ${garbled.length} upstream connections out of step, ${up.tooLarge() + wsUp.tooLarge()} heads grown past the app's 16 KiB; answers ${Object.entries(statuses).map(([k, v]) => `${k}:${v}`).join(' ')}`,
  });

  assert.ok(alive, `the gateway died: ${gw.stderr().slice(-2000)}`);
  assert.equal(health.status, 200, 'health answers after the fuzz');
  assert.deepEqual(
    bad.slice(0, 5).map(({ r, i }) => ({ case: i, kind: cases[i]?.kind.join('+'), answer: r.head.slice(0, 80), bytes: cases[i]?.chunks.map((b) => b.toString('latin1')).join('|').slice(0, 400) })),
    [],
    `answers that are a 500 or not HTTP (${bad.length} in all)`,
  );
  assert.deepEqual(unloggedAll.slice(0, 10), [], `paths of requests an app parsed that the gateway never logged (${unloggedAll.length} in all)`);
  assert.deepEqual(garbled.slice(0, 5), [], 'bytes the gateway sent an app that are not HTTP');
  assert.ok(up.log.length > CASES / 20, `a fair share of cases reached the app (${up.log.length})`);
  const left = gw.sockets();
  const newFds = [...gw.fdLinks()].filter(([fd, link]) => linksBefore.get(fd) !== link).map(([fd, link]) => `${fd} ${link}`);
  const leaking = results
    .map((r, i) => ({ r, i }))
    .filter(({ r }) => r.localPort > 0 && left.some((l) => l.includes(`:${r.localPort} `)))
    .map(({ i }) => `case ${i}: ${makeCase(seed, i, target).kind.join('+')}`);
  assert.equal(fdAfter, fdBefore, `every file descriptor is given back; sockets left: ${left.join(', ')}; from ${leaking.join(', ')}; new fds: ${newFds.join(', ')}`);
});

/** An answer that is a server error of the gateway's own, or bytes that are not an HTTP response. */
function isBad(r: Exchange): boolean {
  if (r.connectError) return true;
  if (r.bytes === 0) return false; // closed without a word: allowed for garbage
  if (r.status === null) return true;
  return r.status === 500;
}

function histogram(results: Exchange[]): Record<string, number> {
  const h: Record<string, number> = {};
  for (const r of results) {
    const k = r.status === null ? (r.bytes === 0 ? 'closed' : 'non-http') : String(r.status);
    h[k] = (h[k] ?? 0) + 1;
  }
  return Object.fromEntries(Object.entries(h).sort(([a], [b]) => a.localeCompare(b)));
}

/**
 * Requests the upstream parsed with no matching line in the gateway's log
 * (same app, same kind, same path), counted as multisets: a smuggled copy of
 * a logged request is caught too.
 */
function unlogged(up: LoggingUpstream, app: string, events: readonly LogEvent[]): string[] {
  const seen = new Map<string, number>();
  for (const e of events) {
    if (e.app !== app || (e.event !== 'request' && e.event !== 'upgrade')) continue;
    const k = `${e.event} ${String(e.path)}`;
    seen.set(k, (seen.get(k) ?? 0) + 1);
  }
  const out: string[] = [];
  for (const p of up.log) {
    const k = `${p.kind} ${redactPath(p.url)}`;
    const n = seen.get(k) ?? 0;
    if (n > 0) seen.set(k, n - 1);
    else out.push(redactPath(p.url));
  }
  return out;
}
