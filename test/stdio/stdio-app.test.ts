/**
 * Apps with `stdio: "CMD"` in the gateway: each upgrade gets its own
 * process (or the shared one), behind the same access rules as every app
 * (auth, allowed_origins), with the limits of `porthole stdio`, stderr in the
 * app's log, and no process left after a disconnect or a drain.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import WebSocket from 'ws';
import { ConfigError, createServer, parseConfig, type GatewayOptions } from 'porthole';
import { newToken, tokenDigest } from '../../src/auth/password.js';
import { closed, collect, openWs, startGateway, waitFor, wsCloseOf, type TestGateway } from '../helpers/net.js';
import { PYTHON } from '../helpers/python.js';
import { alive, allGone, environOf, killAll, pgidOf } from './proc.js';

const FIXTURES = dirname(fileURLToPath(new URL('../fixtures/stdio/upper.py', import.meta.url)));

/** uid and home of a passwd entry (getent: before any server runs in this process). */
function userInfoOf(name: string): { uid: number; home: string } {
  const f = execFileSync('getent', ['passwd', name], { encoding: 'utf8' }).trim().split(':');
  return { uid: Number(f[2]), home: f[5] };
}

function record(ws: WebSocket) {
  const messages: { data: Buffer; isBinary: boolean }[] = [];
  ws.on('message', (data: Buffer, isBinary) => messages.push({ data, isBinary }));
  return { messages, closed: closed(ws) };
}

async function openRecorded(url: string, options: WebSocket.ClientOptions = {}) {
  const ws = new WebSocket(url, options);
  const r = record(ws);
  await new Promise<void>((ok, fail) => {
    ws.once('open', () => ok());
    ws.once('error', fail);
  });
  return { ws, ...r };
}

/** A gateway with `apps`; every program it started is killed at the end whatever happened. */
async function withGateway(config: Record<string, unknown>, fn: (g: TestGateway, pids: () => number[]) => Promise<void>, options: GatewayOptions = {}): Promise<void> {
  const g = await startGateway(config, options);
  const seen = new Set<number>();
  const pidsNow = () => g.gw.stdio.pids();
  const watch = setInterval(() => pidsNow().forEach((p) => seen.add(p)), 10);
  try {
    await fn(g, pidsNow);
  } finally {
    clearInterval(watch);
    await g.close();
    killAll([...seen]);
  }
}

describe('stdio apps in the gateway', { timeout: 60_000 }, () => {
  test('stdio: "cat" under /echo/: lines come back; plain HTTP gets a 426 saying what the app is; each upgrade its own process group', async () => {
    await withGateway({ apps: [{ name: 'echo', stdio: 'cat' }] }, async (g, pids) => {
      const a = await openRecorded(`${g.wsUrl}/echo/`);
      const b = await openRecorded(`${g.wsUrl}/echo/`);
      a.ws.send('one');
      b.ws.send('two');
      await waitFor(() => a.messages.length === 1 && b.messages.length === 1, 5000, 'the echoes');
      assert.equal(a.messages[0].data.toString(), 'one');
      assert.equal(b.messages[0].data.toString(), 'two');
      const [p1, p2] = pids();
      assert.notEqual(p1, p2);
      assert.equal(pgidOf(p1), p1);
      const env = environOf(p1);
      assert.equal(env.get('APP_NAME'), 'echo');
      assert.equal(env.get('BASE_PATH'), '/echo/');
      const res = await fetch(`${g.url}/echo/`);
      assert.equal(res.status, 426);
      assert.match(await res.text(), /echo runs a program for each WebSocket connection/);
      a.ws.close();
      b.ws.close();
      await allGone([p1, p2]);
    });
  });

  test('a Python line program with cwd and env; exit 3 reaches the client as 1011 "exit code 3"; stderr goes to the app\'s log sink', async () => {
    const lines: string[] = [];
    await withGateway(
      { apps: [{ name: 'upper', stdio: `${PYTHON} -u upper.py`, cwd: FIXTURES, env: { PYTHONIOENCODING: 'utf-8' } }] },
      async (g) => {
        const c = await openRecorded(`${g.wsUrl}/upper/`);
        c.ws.send('héllo');
        await waitFor(() => c.messages.length === 2, 10_000, 'two lines');
        assert.deepEqual(c.messages.map((m) => m.data.toString()), ['6', 'HÉLLO']);
        c.ws.send('fail 3');
        const end = await c.closed;
        assert.equal(end.code, 1011);
        assert.match(end.reason, /^PH_ERR_STDIO_EXIT: upper: exit code 3: giving up as asked$/);
        await waitFor(() => lines.includes('upper stderr giving up as asked'), 5000, `the stderr line in the log:\n${lines.join('\n')}`);
      },
      { stdioLog: (app) => (line, stream) => lines.push(`${app} ${stream} ${line}`) },
    );
  });

  test('stdio_binary: bytes both ways; stdio_shared: one process, every client sees its lines', async () => {
    await withGateway({ apps: [{ name: 'bin', stdio: 'cat', stdio_binary: true }, { name: 'room', stdio: 'cat', stdio_shared: true }] }, async (g, pids) => {
      const bin = await openRecorded(`${g.wsUrl}/bin/`);
      const bytes = Buffer.from([0, 10, 255, 13, 10, 1]);
      bin.ws.send(bytes);
      await waitFor(() => bin.messages.reduce((n, m) => n + m.data.length, 0) === bytes.length, 5000, 'the bytes back');
      assert.ok(bin.messages.every((m) => m.isBinary));
      assert.ok(Buffer.concat(bin.messages.map((m) => m.data)).equals(bytes));
      bin.ws.close();
      await bin.closed;
      await waitFor(() => pids().length === 0, 5000, 'the binary program to end');
      const a = await openRecorded(`${g.wsUrl}/room/`);
      const b = await openRecorded(`${g.wsUrl}/room/`);
      assert.equal(pids().length, 1, 'one shared process');
      a.ws.send('hi all');
      await waitFor(() => a.messages.length === 1 && b.messages.length === 1, 5000, 'the line at both clients');
      assert.equal(b.messages[0].data.toString(), 'hi all');
      const [pid] = pids();
      a.ws.close();
      b.ws.close();
      await allGone([pid]);
    });
  });

  test('a client that disconnects: the process, its child and a grandchild that left the group are gone (stop_timeout is the SIGKILL grace)', async () => {
    const stdio = 'sleep 300 & echo $!; setsid sleep 301 & echo $!; trap "" TERM; echo ready; while :; do sleep 0.05; done';
    await withGateway({ apps: [{ name: 'tree', stdio, stop_timeout: '300ms' }] }, async (g, pids) => {
      const c = await openRecorded(`${g.wsUrl}/tree/`);
      await waitFor(() => c.messages.length === 3, 5000, 'the pids');
      const all = [pids()[0], Number(c.messages[0].data.toString()), Number(c.messages[1].data.toString())];
      assert.ok(all.every(alive));
      c.ws.terminate();
      await allGone(all, 8000);
    });
  });

  test('the limits: stdio_max_processes (close 1013 PH_ERR_STDIO_LIMIT, or 503 with ws_errors: http) and stdio_max_message (1009)', async () => {
    await withGateway(
      { apps: [{ name: 'one', stdio: 'cat', stdio_max_processes: 1, stdio_max_message: 100 }, { name: 'one-http', stdio: 'cat', stdio_max_processes: 1, ws_errors: 'http' }] },
      async (g, pids) => {
        const first = await openRecorded(`${g.wsUrl}/one/`);
        const upgrades = collect('upgrade', g.gw.id);
        const refused = await wsCloseOf(`${g.wsUrl}/one/`).finally(() => upgrades.stop());
        assert.deepEqual(upgrades.events.map((e) => [e.accepted, e.code, e.closeCode]), [[false, 'PH_ERR_STDIO_LIMIT', 1013]]);
        assert.equal(refused.code, 1013);
        // The gateway's close reasons are the message, as for every app's upgrade failure (the code is in the event).
        assert.match(refused.reason, /^one: 1 process at once already; try again later$/);
        assert.equal(pids().length, 1);
        const held = await openRecorded(`${g.wsUrl}/one-http/`);
        await assert.rejects(openWs(`${g.wsUrl}/one-http/`), (err: Error & { status?: number; headers?: Record<string, string> }) => err.status === 503 && err.headers?.['x-porthole-error'] === 'PH_ERR_STDIO_LIMIT');
        held.ws.close();
        first.ws.send('x'.repeat(101));
        assert.equal((await first.closed).code, 1009);
        await waitFor(() => pids().length === 0, 5000, 'both programs to end');
      },
    );
  });

  test('Origin and access rules as for every app: a cross-origin page gets 1008; allowed_origins admits; auth: token refuses an upgrade without a token', async () => {
    const token = newToken();
    await withGateway(
      {
        auth: 'token',
        auth_tokens: [{ name: 'agent', sha256: tokenDigest(token) }],
        apps: [
          { name: 'open', stdio: 'cat', auth: 'none' },
          { name: 'shared-page', stdio: 'cat', auth: 'none', allowed_origins: ['https://tools.example'] },
          { name: 'guarded', stdio: 'cat' },
        ],
      },
      async (g, pids) => {
        const cross = await wsCloseOf(`${g.wsUrl}/open/`, undefined, { origin: 'https://evil.example' });
        assert.equal(cross.code, 1008);
        assert.match(cross.reason, /^open: cross-origin WebSocket from https:\/\/evil\.example refused/);
        const ok = await openRecorded(`${g.wsUrl}/shared-page/`, { origin: 'https://tools.example' });
        ok.ws.close();
        const anonymous = await wsCloseOf(`${g.wsUrl}/guarded/`);
        assert.equal(anonymous.code, 1008);
        assert.match(anonymous.reason, /PH_ERR_AUTH_REQUIRED|PH_ERR_UNAUTHORIZED|login/i);
        const agent = await openRecorded(`${g.wsUrl}/guarded/`, { headers: { Authorization: `Bearer ${token}` } });
        agent.ws.send('let in');
        await waitFor(() => agent.messages.length === 1, 5000, 'the echo');
        agent.ws.close();
        await agent.closed;
        await waitFor(() => pids().length === 0, 5000, 'no program left');
      },
    );
  });

  test('in a cluster, a stdio app of another node runs there: the upgrade is forwarded, no local process starts', async () => {
    const secret = 'stdio-cluster-secret-0123456789';
    const config = { apps: [{ name: 'echo', stdio: 'cat' }] };
    const b = await startGateway(config);
    const bPeer = await b.gw.listenPeer({ host: '127.0.0.1', port: 0, secret: () => secret });
    const a = await startGateway(config);
    a.gw.reload(config, { peers: new Map([['echo', { node: 'b', url: bPeer.url, secret }]]) });
    const seen = new Set<number>();
    try {
      const c = await openRecorded(`${a.wsUrl}/echo/`);
      c.ws.send('via b');
      await waitFor(() => c.messages.length === 1, 5000, 'the echo from b');
      b.gw.stdio.pids().forEach((p) => seen.add(p));
      assert.equal(c.messages[0].data.toString(), 'via b');
      assert.deepEqual(a.gw.stdio.pids(), [], 'nothing runs on a');
      assert.equal(b.gw.stdio.pids().length, 1, 'the program runs on b');
      c.ws.close();
      await allGone([...seen]);
    } finally {
      await a.close();
      await b.close();
      killAll([...seen]);
    }
  });

  test('a client that gives up while its program starts leaves no program behind (shared or not)', async () => {
    // `user` makes every start look the user up (getent): the window in which the client can leave.
    const user = userInfo().username;
    await withGateway({ apps: [{ name: 'slow', stdio: 'cat', user }, { name: 'room', stdio: 'cat', stdio_shared: true, user }] }, async (g, pids) => {
      const seen = new Set<number>();
      const watch = setInterval(() => pids().forEach((p) => seen.add(p)), 1);
      try {
        for (let i = 0; i < 5; i++) {
          for (const app of ['slow', 'room']) {
            const sock = connect(g.port, '127.0.0.1');
            sock.on('error', () => {});
            sock.write(`GET /${app}/ HTTP/1.1\r\nHost: 127.0.0.1:${g.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
            await new Promise((r) => setTimeout(r, 2));
            sock.destroy();
          }
        }
        await waitFor(() => pids().length === 0, 10_000, `no program left: ${pids().join(', ')}`);
      } finally {
        clearInterval(watch);
      }
      assert.ok(seen.size > 0, 'some programs were started before their client left');
      // The shared app starts a fresh program for the next client.
      const c = await openRecorded(`${g.wsUrl}/room/`);
      c.ws.send('fresh');
      await waitFor(() => c.messages.length === 1, 5000, 'the echo');
      c.ws.close();
    });
  });

  test('idle_timeout applies to a stdio app\'s connections as to tunnels: 1001, and the program is stopped', async () => {
    await withGateway({ apps: [{ name: 'quiet', stdio: 'cat', idle_timeout: '300ms' }] }, async (g, pids) => {
      const c = await openRecorded(`${g.wsUrl}/quiet/`);
      const pid = await waitFor(() => pids()[0], 5000, 'the program');
      assert.equal((await c.closed).code, 1001);
      await allGone([pid]);
    });
  });

  test('user: the program runs as the app\'s user (nobody under a root gateway), with its HOME and USER; an unknown user refuses the upgrade', { skip: !process.env.CI && process.getuid?.() !== 0 && 'needs root (in CI it must run)' }, async () => {
    await withGateway({ apps: [{ name: 'who', stdio: 'id -u; echo "$USER $HOME"; cat', user: 'nobody', cwd: '/' }, { name: 'ghost', stdio: 'cat', user: 'no-such-user-here' }] }, async (g, pids) => {
      const c = await openRecorded(`${g.wsUrl}/who/`);
      await waitFor(() => c.messages.length === 2, 5000, 'id and the env');
      const nobody = userInfoOf('nobody');
      assert.equal(c.messages[0].data.toString(), String(nobody.uid));
      assert.equal(c.messages[1].data.toString(), `nobody ${nobody.home}`);
      const pid = pids()[0];
      assert.match(readFileSync(`/proc/${pid}/status`, 'utf8'), new RegExp(`^Uid:\\s+${nobody.uid}\\s`, 'm'));
      c.ws.close();
      await allGone([pid]);
      const refused = await wsCloseOf(`${g.wsUrl}/ghost/`);
      assert.equal(refused.code, 1008);
      assert.match(refused.reason, /ghost: user "no-such-user-here" does not exist/);
      assert.deepEqual(pids(), []);
    });
  });

  test('a reload that gives a stdio app a user: the next program runs as that user, not as the gateway', { skip: !process.env.CI && process.getuid?.() !== 0 && 'needs root (in CI it must run)' }, async () => {
    await withGateway({ apps: [{ name: 'who', stdio: 'id -u; cat', cwd: '/' }] }, async (g, pids) => {
      const before = await openRecorded(`${g.wsUrl}/who/`);
      await waitFor(() => before.messages.length === 1, 5000, 'id');
      assert.equal(before.messages[0].data.toString(), String(process.getuid!()));
      before.ws.close();
      await waitFor(() => pids().length === 0, 10_000, 'the first program gone');
      g.gw.reload({ apps: [{ name: 'who', stdio: 'id -u; cat', cwd: '/', user: 'nobody' }] });
      const after = await openRecorded(`${g.wsUrl}/who/`);
      await waitFor(() => after.messages.length === 1, 5000, 'id');
      assert.equal(after.messages[0].data.toString(), String(userInfoOf('nobody').uid), 'the new user applies from the next program on');
      after.ws.close();
    });
  });

  test('a reload that changes a stdio app: the open connection keeps its program; new ones get the new settings; a drain stops both', async () => {
    await withGateway({ apps: [{ name: 'echo', stdio: 'cat' }] }, async (g, pids) => {
      const old = await openRecorded(`${g.wsUrl}/echo/`);
      const oldPid = await waitFor(() => pids()[0], 5000, 'the first program');
      g.gw.reload({ apps: [{ name: 'echo', stdio: 'sed -u s/^/new:/', stdio_max_processes: 2 }] });
      const fresh = await openRecorded(`${g.wsUrl}/echo/`);
      old.ws.send('a');
      fresh.ws.send('b');
      await waitFor(() => old.messages.length === 1 && fresh.messages.length === 1, 5000, 'both answers');
      assert.equal(old.messages[0].data.toString(), 'a', 'the old connection still talks to cat');
      assert.equal(fresh.messages[0].data.toString(), 'new:b');
      assert.equal(pids().length, 2, 'the retired program is still counted and listed');
      const all = pids();
      assert.ok(all.includes(oldPid));
      await g.gw.drain(200);
      assert.deepEqual(all.filter(alive), [], 'a drain stops the retired program too');
      assert.equal((await old.closed).code, 1001);
    });
  });

  test('a drain closes the clients with 1001 and stops every program before the gateway is closed', async () => {
    const g = await startGateway({ apps: [{ name: 'echo', stdio: 'cat' }] });
    const c = await openRecorded(`${g.wsUrl}/echo/`);
    const pid = await waitFor(() => g.gw.stdio.pids()[0], 5000, 'the pid');
    try {
      await g.gw.drain(200);
      assert.equal(alive(pid), false, 'gone when drain resolves');
      assert.equal((await c.closed).code, 1001);
    } finally {
      killAll([pid]);
    }
  });
});

describe('stdio apps: config and logs', { timeout: 60_000 }, () => {
  test('the schema: stdio takes the whole app (not with port, cmd or a bridge); stdio_* keys need stdio', () => {
    assert.doesNotThrow(() => parseConfig({ apps: [{ name: 'mcp', stdio: 'npx -y @modelcontextprotocol/server-everything', stdio_max_processes: 4, stdio_lines_per_second: 0 }] }));
    const problems = (raw: unknown) => {
      try {
        parseConfig(raw);
        return [];
      } catch (err) {
        assert.ok(err instanceof ConfigError);
        return [...err.problems];
      }
    };
    assert.deepEqual(problems({ apps: [{ name: 'x', stdio: 'cat', port: 8080 }] }), ['apps[0].stdio: not with port (a stdio app runs its command for each WebSocket connection and has nothing else to route to)']);
    assert.match(problems({ apps: [{ name: 'x', stdio: 'cat', cmd: 'node app.js' }] })[0], /apps\[0\]\.stdio: not with cmd/);
    assert.deepEqual(problems({ apps: [{ name: 'x', port: 8080, stdio_shared: true }] }), ['apps[0].stdio_shared: only used with stdio']);
    assert.match(problems({ apps: [{ name: 'x', stdio: '  ' }] })[0], /apps\[0\]\.stdio: an empty command/);
    assert.match(problems({ apps: [{ name: 'x', stdio: 'cat', stdio_max_processes: 0 }] })[0], /stdio_max_processes/);
  });

  test('a program that floods stderr while its log file lags behind is paused, as a supervised app is: porthole\'s memory stays bounded', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'porthole-stdio-'));
    // The log file is a FIFO that is opened for reading and never read: a disk that stopped (a hung NFS mount).
    const logs = join(dataDir, 'private', 'logs');
    mkdirSync(logs, { recursive: true, mode: 0o700 });
    chmodSync(join(dataDir, 'private'), 0o700);
    const fifo = join(logs, 'flood.log');
    execFileSync('mkfifo', [fifo]);
    const stuck = spawn('sh', ['-c', 'exec sleep 120 < "$0"', fifo], { stdio: 'ignore' });
    const server = createServer({ dataDir, listen: '127.0.0.1:0', config: { apps: [{ name: 'flood', stdio: `yes ${'x'.repeat(200)} >&2` }] } });
    try {
      const started = await server.listen();
      const c = await openRecorded(`${started.url.replace(/^http/, 'ws')}/flood/`);
      const before = process.memoryUsage().rss;
      let grown = 0;
      // Sampled for a few seconds, or until it has grown far too much.
      for (let i = 0; i < 40 && grown < 256 * 1024 * 1024; i++) {
        await new Promise((r) => setTimeout(r, 100));
        grown = process.memoryUsage().rss - before;
      }
      assert.ok(grown < 128 * 1024 * 1024, `porthole grew by ${(grown / 1048576).toFixed(0)} MiB holding stderr lines for a log file that does not take them`);
      c.ws.terminate();
    } finally {
      // Readers that read now (one after another: each ends when the log closes the file), so the
      // log's writes and opens of the FIFO finish and it can close.
      stuck.kill('SIGKILL');
      const drain = spawn('sh', ['-c', 'while :; do cat < "$0" > /dev/null; done', fifo], { stdio: 'ignore', detached: true });
      await server.close();
      process.kill(-drain.pid!, 'SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('in porthole\'s server, a stdio app\'s stderr is in its log: GET /_porthole/api/apps/NAME/logs', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'porthole-stdio-'));
    const server = createServer({ dataDir, listen: '127.0.0.1:0', config: { apps: [{ name: 'talker', stdio: 'echo "to the log from $APP_NAME" >&2; cat' }] } });
    try {
      const started = await server.listen();
      const url = started.url.replace(/^http/, 'ws');
      const c = await openRecorded(`${url}/talker/`);
      c.ws.send('ping');
      await waitFor(() => c.messages.length === 1, 5000, 'the echo');
      const token = started.token;
      let entries: { stream: string; text: string }[] = [];
      for (const deadline = Date.now() + 5000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
        const res = await fetch(`${started.url}/_porthole/api/apps/talker/logs?entries=1`, { headers: { Authorization: `Bearer ${started.token}` } });
        entries = ((await res.json()) as { entries: { stream: string; text: string }[] }).entries;
        if (entries.some((e) => e.stream === 'stderr' && e.text === 'to the log from talker')) break;
      }
      assert.ok(entries.some((e) => e.stream === 'stderr' && e.text === 'to the log from talker'), JSON.stringify(entries));
      assert.ok(entries.some((e) => e.stream === 'porthole' && /started pid \d+/.test(e.text)), JSON.stringify(entries));
      // The open connection is listed with the tunnels (dashboard, GET /tunnels), kind stdio, its bytes counted.
      const tunnels = (await (await fetch(`${started.url}/_porthole/api/tunnels`, { headers: { Authorization: `Bearer ${started.token}` } })).json()) as { tunnels: { kind: string; app: string; bytes_in: number; messages_out: number }[] };
      assert.deepEqual(
        tunnels.tunnels.map((t) => [t.kind, t.app, t.bytes_in, t.messages_out]),
        [['stdio', 'talker', 4, 1]],
      );
      c.ws.close();
    } finally {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
