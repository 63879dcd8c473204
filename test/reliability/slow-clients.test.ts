/**
 * Slow clients against a real `porthole serve` child: slowloris (a request
 * head trickled a byte at a time, never finished), half a handshake, a
 * connection that sends nothing, and handshakes that complete but whose
 * client then never answers (or never reads). Proves: meanwhile the gateway
 * answers `/_porthole/health` within 50 ms (p99 of probes every 20 ms on
 * fresh connections, the maximum reported), cuts every head-less client
 * within `header_timeout` (Node checks it every quarter of it: so within
 * 1.25 x header_timeout), every silent tunnel within `idle_timeout` plus the
 * close grace (3 s), and gives back every fd.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { fdsBackTo, health, percentile, startGatewayChild } from './gateway-child.js';
import { record, size } from './harness.js';
import { handshakeText, loggingUpstream } from './peers.js';
import { pool } from './raw-client.js';

const CLIENTS = size(200, 2_000);
// Longer at full size: the window in which all clients are held must hold enough probes.
const HEADER_TIMEOUT_MS = size(2000, 4000);
const IDLE_TIMEOUT_MS = size(2000, 4000);
/** A tunnel's grace for answering the gateway's close frame (src/gateway/tunnel.ts closeGraceMs). */
const CLOSE_GRACE_MS = 3000;
/**
 * Scheduling slack on a shared machine: the cut is seen from the client's side, by a test
 * process that, at full size, handles a thousand and more closes in the same instant.
 */
const SLACK_MS = size(1500, 3000);
const HEALTH_P99_MS = 50;

type Kind = 'slowloris' | 'half-handshake' | 'silent' | 'tunnel-never-answers' | 'tunnel-never-reads';
const KINDS: Kind[] = ['slowloris', 'half-handshake', 'silent', 'tunnel-never-answers', 'tunnel-never-reads'];

interface Slow {
  kind: Kind;
  /** From connect to the gateway's cut (null: not observed from the client, see never-reads). */
  ms: number | null;
  status: number | null;
  /** The gateway closed it before our safety cap did. */
  cutByGateway: boolean;
}

/**
 * One slow client. `capMs`: when it gives up waiting for the gateway's cut;
 * a client that never reads looks, at `readAtMs`, whether the gateway's FIN
 * is already waiting in its socket.
 */
function slowClient(port: number, kind: Kind, i: number, capMs: number, readAtMs: number, onConnected: () => void): Promise<Slow> {
  return new Promise((ok) => {
    const started = performance.now();
    const socket = net.connect(port, '127.0.0.1');
    let first = '';
    let trickle: NodeJS.Timeout | null = null;
    let capped = false;
    const cap = setTimeout(() => {
      capped = true;
      socket.destroy();
    }, capMs);
    socket.on('error', () => undefined);
    socket.on('data', (d: Buffer) => {
      if (first.length < 64) first += d.toString('latin1');
    });
    socket.on('close', () => {
      clearTimeout(cap);
      if (trickle) clearInterval(trickle);
      const m = /^HTTP\/1\.1 (\d{3})/.exec(first);
      ok({ kind, ms: kind === 'tunnel-never-reads' ? null : performance.now() - started, status: m ? Number(m[1]) : null, cutByGateway: !capped });
    });
    socket.on('connect', () => {
      onConnected();
      const host = `127.0.0.1:${port}`;
      const hs = handshakeText(`/ws/slow${i}`, host, Buffer.alloc(16, i % 256).toString('base64'));
      switch (kind) {
        case 'slowloris': {
          socket.write(`GET /ws/slow${i} HTTP/1.1\r\nHost: ${host}\r\n`);
          const rest = 'X-Slow: ' + 'abcdefghij'.repeat(100);
          let n = 0;
          trickle = setInterval(() => socket.write(rest[n++ % rest.length]), 250);
          break;
        }
        case 'half-handshake':
          socket.write(hs.slice(0, Math.floor(hs.length * 0.6)));
          break;
        case 'silent':
          break;
        case 'tunnel-never-answers':
          // Reads, but never sends a byte after the handshake: the close frame goes unanswered.
          socket.write(hs);
          break;
        case 'tunnel-never-reads':
          // The close can only be seen by reading; it is checked on the gateway's side.
          socket.write(hs);
          socket.pause();
          clearTimeout(cap);
          setTimeout(() => {
            socket.resume();
            setTimeout(() => {
              capped = true;
              socket.destroy();
            }, 1000);
          }, readAtMs);
          break;
      }
    });
  });
}

test(`slow clients: ${CLIENTS} slowloris, half handshakes and silent tunnels are cut within the timeouts while health answers within ${HEALTH_P99_MS} ms`, { timeout: 10 * 60_000 }, async (t) => {
  const up = await loggingUpstream();
  t.after(() => up.close());
  const gw = await startGatewayChild({
    config: { header_timeout: `${HEADER_TIMEOUT_MS}ms`, idle_timeout: `${IDLE_TIMEOUT_MS}ms`, apps: [{ name: 'ws', port: up.port }] },
  });
  t.after(() => gw.stop());
  await health(gw.port);
  await new Promise((r) => setTimeout(r, 300));
  const fdBefore = gw.fds();
  const rssBefore = gw.rssMiB();

  const headBound = HEADER_TIMEOUT_MS * 1.25 + SLACK_MS;
  const tunnelBound = IDLE_TIMEOUT_MS + CLOSE_GRACE_MS + SLACK_MS;
  const capMs = Math.max(headBound, tunnelBound) + 10_000;

  // Health probes on fresh connections for as long as the slow clients are open, from a
  // process of their own: the test's own event loop, busy with 2,000 sockets, is not measured.
  const probes: { ms: number; status: number; at: number }[] = [];
  const prober = spawn(process.execPath, [fileURLToPath(new URL('./health-prober.mjs', import.meta.url)), String(gw.port), '20'], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.after(() => prober.kill('SIGKILL'));
  let partial = '';
  prober.stdout!.setEncoding('utf8');
  prober.stdout!.on('data', (d: string) => {
    const lines = (partial + d).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const [ms, status, at] = line.split(' ').map(Number);
      probes.push({ ms, status, at });
    }
  });
  await new Promise((r) => setTimeout(r, 300));

  const started = Date.now();
  let connected = 0;
  let allOpenAt = Infinity;
  const onConnected = () => {
    if (++connected === CLIENTS) allOpenAt = Date.now();
  };
  // Opened in bounded batches, then all held at once.
  const results = await pool(CLIENTS, CLIENTS, async (i) => {
    if (i >= 100) await new Promise((r) => setTimeout(r, Math.floor(i / 100) * 20));
    return slowClient(gw.port, KINDS[i % KINDS.length], i, capMs, tunnelBound, onConnected);
  });
  const lastCutAt = Date.now();
  const tunnelsLeft = JSON.parse((await gw.health()).body || '{}').tunnels as number;
  const proberExit = new Promise((r) => prober.once('exit', r));
  prober.stdin!.end();
  await proberExit;
  const seconds = (Date.now() - started) / 1000;

  const alive = gw.alive();
  const fdAfter = await fdsBackTo(gw, fdBefore);
  const rssAfter = gw.rssMiB();

  const late = results.filter((r) => {
    if (!r.cutByGateway) return true;
    if (r.ms === null) return false;
    return r.ms > (r.kind.startsWith('tunnel') ? tunnelBound : headBound);
  });
  const byKind = (k: Kind) => results.filter((r) => r.kind === k && r.ms !== null).map((r) => r.ms as number);
  const worst = Object.fromEntries(KINDS.filter((k) => k !== 'tunnel-never-reads').map((k) => [k, Math.round(Math.max(...byKind(k)))]));
  const answers: Record<string, number> = {};
  for (const r of results) answers[`${r.kind} ${r.status ?? 'none'}`] = (answers[`${r.kind} ${r.status ?? 'none'}`] ?? 0) + 1;
  // "Meanwhile": from the moment every slow client is connected until the last is cut. The
  // opening burst (thousands of connects queued ahead of a probe) is reported beside it.
  const held = probes.filter((p) => p.at >= allOpenAt && p.at <= lastCutAt);
  const samples = held.filter((p) => p.status === 200).map((p) => p.ms);
  const failedProbes = held.filter((p) => p.status !== 200).map((p) => p.status);
  const slowProbes = probes.filter((p) => p.ms > HEALTH_P99_MS || p.status !== 200).map((p) => `${Math.round(p.ms)} ms at ${p.at - started} ms${p.status === 200 ? '' : ' (failed)'}`);
  const opening = probes.filter((p) => p.at >= started && p.at < allOpenAt);
  const openingMax = Math.max(0, ...opening.map((p) => p.ms));
  const p99 = percentile(samples, 99);
  const max = Math.max(...samples);
  t.diagnostic(`${CLIENTS} slow clients over ${seconds.toFixed(1)} s; worst cut (ms) ${JSON.stringify(worst)}; bounds ${headBound} / ${tunnelBound} ms`);
  t.diagnostic(`answers ${JSON.stringify(answers)}`);
  t.diagnostic(`all ${CLIENTS} connected ${allOpenAt - started} ms after the first; last cut at ${lastCutAt - started} ms; while opening, health max ${openingMax.toFixed(1)} ms over ${opening.length} probes`);
  t.diagnostic(`health while held: ${samples.length} probes, p50 ${percentile(samples, 50).toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${max.toFixed(1)} ms, ${failedProbes.length} failed`);
  if (slowProbes.length) t.diagnostic(`probes over ${HEALTH_P99_MS} ms (ms since the first client): ${slowProbes.slice(0, 12).join(', ')}`);
  t.diagnostic(`fds ${fdBefore} -> ${fdAfter}, RSS ${rssBefore} -> ${rssAfter} MiB`);
  record({
    suite: 'slow clients (slowloris, half handshakes, silent tunnels)',
    cases: CLIENTS,
    failures: late.length + failedProbes.length + (p99 > HEALTH_P99_MS ? 1 : 0) + (tunnelsLeft > 0 ? 1 : 0) + (fdAfter > fdBefore ? 1 : 0),
    crashes: alive ? 0 : 1,
    fdBefore,
    fdAfter,
    rssBeforeMiB: rssBefore,
    rssAfterMiB: rssAfter,
    note: `health while held p99 ${p99.toFixed(1)} ms, max ${max.toFixed(1)} ms over ${samples.length} probes (while ${CLIENTS} connected at once: max ${openingMax.toFixed(0)} ms); worst cut ${worst.slowloris} ms (header_timeout ${HEADER_TIMEOUT_MS} ms), silent tunnel ${worst['tunnel-never-answers']} ms (idle_timeout ${IDLE_TIMEOUT_MS} ms + ${CLOSE_GRACE_MS} ms grace)`,
  });

  assert.ok(alive, `the gateway died: ${gw.stderr().slice(-2000)}`);
  assert.deepEqual(failedProbes, [], 'every health probe answered');
  assert.ok(p99 <= HEALTH_P99_MS, `health p99 ${p99.toFixed(1)} ms within ${HEALTH_P99_MS} ms`);
  assert.deepEqual(late.slice(0, 5), [], `every slow client cut within its timeout (${late.length} late)`);
  assert.equal(tunnelsLeft, 0, 'no tunnel of a client that never reads is left open');
  assert.equal(fdAfter, fdBefore, `every file descriptor is given back; sockets left: ${gw.sockets().join(', ')}`);
});
