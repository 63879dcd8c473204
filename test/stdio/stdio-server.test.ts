/**
 * `porthole stdio` as a library (startStdioServer), with real programs:
 * lines in and out, bytes in binary mode, the exit status as the close
 * code, no process left behind when the client goes, and the limits.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import WebSocket from 'ws';
import { startStdioServer, type StdioServer, type StdioServerOptions } from 'porthole';
import { closed, collect, nextMessage, openWs, sleep, waitFor, wsCloseOf } from '../helpers/net.js';
import { PYTHON } from '../helpers/python.js';
import { alive, allGone, environOf, killAll, pgidOf } from './proc.js';

const UPPER = fileURLToPath(new URL('../fixtures/stdio/upper.py', import.meta.url));

/** Messages as they arrive, and the close. */
function record(ws: WebSocket): { messages: { data: Buffer; isBinary: boolean }[]; closed: Promise<{ code: number; reason: string }> } {
  const messages: { data: Buffer; isBinary: boolean }[] = [];
  ws.on('message', (data: Buffer, isBinary) => messages.push({ data, isBinary }));
  return { messages, closed: closed(ws) };
}

/** Opens a WebSocket that records from its first message on (one may arrive with the 101). */
async function openRecorded(url: string, protocols?: string[], options: WebSocket.ClientOptions = {}): Promise<{ ws: WebSocket } & ReturnType<typeof record>> {
  const ws = new WebSocket(url, protocols, options);
  const r = record(ws);
  await new Promise<void>((ok, fail) => {
    ws.once('open', () => ok());
    ws.once('error', fail);
  });
  return { ws, ...r };
}

async function withServer(opts: StdioServerOptions, fn: (s: StdioServer, ws: string, logs: string[]) => Promise<void>): Promise<void> {
  const logs: string[] = [];
  const server = await startStdioServer({ killGraceMs: 500, log: (line, stream, pid) => logs.push(`${stream} ${pid} ${line}`), ...opts });
  const pids = new Set<number>();
  const watch = setInterval(() => server.pids.forEach((p) => pids.add(p)), 10);
  try {
    await fn(server, server.url.replace(/^http/, 'ws'), logs);
  } finally {
    clearInterval(watch);
    await server.close();
    killAll([...pids]);
  }
}

describe('porthole stdio: lines, bytes and exit statuses', { timeout: 60_000 }, () => {
  test('cat: each text message comes back as one text message, in order; an empty line too', async () => {
    await withServer({ command: ['cat'] }, async (_s, url) => {
      const r = await openRecorded(`${url}/`);
      const ws = r.ws;
      for (const m of ['hello', '', 'wörld ✓', 'last']) ws.send(m);
      await waitFor(() => r.messages.length === 4, 5000, 'four lines back');
      assert.deepEqual(r.messages.map((m) => [m.data.toString(), m.isBinary]), [['hello', false], ['', false], ['wörld ✓', false], ['last', false]]);
      ws.close(1000);
      await r.closed;
    });
  });

  test('a Python line program: two stdout lines per input become two messages; its stderr goes to the log with its pid', async () => {
    await withServer({ command: [PYTHON, '-u', UPPER] }, async (s, url, logs) => {
      const r = await openRecorded(`${url}/`);
      const ws = r.ws;
      ws.send('abc');
      ws.send('déjà');
      await waitFor(() => r.messages.length === 4, 10_000, 'four lines back');
      assert.deepEqual(r.messages.map((m) => m.data.toString()), ['3', 'ABC', '6', 'DÉJÀ']);
      const [pid] = s.pids;
      ws.send('fail 3');
      const end = await r.closed;
      assert.equal(end.code, 1011);
      assert.match(end.reason, /^PH_ERR_STDIO_EXIT: stdio: exit code 3: giving up as asked$/);
      assert.ok(logs.includes(`stderr ${pid} giving up as asked`), logs.join('\n'));
      assert.ok(logs.some((l) => l.startsWith(`porthole ${pid} `) && l.endsWith('exit code 3')), logs.join('\n'));
    });
  });

  test('text mode: CRLF line ends lose the CR; bytes that are not UTF-8 become U+FFFD; a last line without newline is sent at exit', async () => {
    await withServer({ command: ['sh', '-c', "printf 'dos\\r\\n\\377\\376ok\\nno newline'"] }, async (_s, url) => {
      const ws = new WebSocket(`${url}/`);
      const r = record(ws);
      assert.equal((await r.closed).code, 1000);
      assert.deepEqual(r.messages.map((m) => m.data.toString()), ['dos', '\ufffd\ufffdok', 'no newline']);
    });
  });

  test('a program that exits 0 closes the client with 1000, after every line it wrote', async () => {
    await withServer({ command: ['sh', '-c', 'read x; for i in 1 2 3; do echo "$x $i"; done; exit 0'] }, async (_s, url) => {
      const r = await openRecorded(`${url}/`);
      const ws = r.ws;
      ws.send('line');
      const end = await r.closed;
      assert.equal(end.code, 1000);
      assert.deepEqual(r.messages.map((m) => m.data.toString()), ['line 1', 'line 2', 'line 3']);
    });
  });

  test('exit 3 gives 1011 "exit code 3"; a program killed by a signal gives 1011 naming the signal', async () => {
    await withServer({ command: ['sh', '-c', 'echo bye; exit 3'] }, async (_s, url) => {
      const end = await wsCloseOf(`${url}/`);
      assert.equal(end.opened, true, 'the handshake completes: a browser reads the reason');
      assert.equal(end.code, 1011);
      assert.match(end.reason, /exit code 3/);
    });
    await withServer({ command: ['sh', '-c', 'kill -KILL $$'] }, async (_s, url) => {
      const end = await wsCloseOf(`${url}/`);
      assert.equal(end.code, 1011);
      assert.match(end.reason, /^PH_ERR_STDIO_EXIT: stdio: killed by SIGKILL/);
    });
    await withServer({ command: ['sh', '-c', 'read x; kill -SEGV $$'] }, async (_s, url) => {
      const r = await openRecorded(`${url}/`);
      const ws = r.ws;
      ws.send('go');
      const end = await r.closed;
      assert.equal(end.code, 1011);
      assert.match(end.reason, /killed by SIGSEGV/);
    });
  });

  test('a command that does not exist: the handshake completes and closes 1011 with PH_ERR_STDIO_SPAWN', async () => {
    await withServer({ command: ['/nonexistent/program'] }, async (s, url) => {
      const end = await wsCloseOf(`${url}/`);
      assert.equal(end.code, 1011);
      assert.match(end.reason, /^PH_ERR_STDIO_SPAWN: stdio: cannot start \/nonexistent\/program: ENOENT/);
      assert.equal(s.processes, 0);
    });
  });

  test('--binary: raw bytes both ways as binary messages, nothing added or split into lines', async () => {
    await withServer({ command: ['cat'], binary: true }, async (_s, url) => {
      const r = await openRecorded(`${url}/`);
      const ws = r.ws;
      const data = randomBytes(200_000);
      data[10] = 10; // a newline inside, which text mode would split at
      for (let off = 0; off < data.length; off += 50_000) ws.send(data.subarray(off, off + 50_000));
      await waitFor(() => r.messages.reduce((n, m) => n + m.data.length, 0) >= data.length, 10_000, 'every byte back');
      assert.ok(r.messages.every((m) => m.isBinary), 'binary messages only');
      assert.ok(Buffer.concat(r.messages.map((m) => m.data)).equals(data), 'the same bytes');
      ws.close(1000);
      await r.closed;
    });
  });

  test('a stdout line longer than the message limit is sent in pieces of the limit', async () => {
    await withServer({ command: ['sh', '-c', 'head -c 2500 /dev/zero | tr "\\0" x; echo; echo end'], maxMessage: 1000 }, async (_s, url) => {
      const ws = new WebSocket(`${url}/`);
      const r = record(ws);
      const end = await r.closed;
      assert.equal(end.code, 1000);
      assert.deepEqual(r.messages.map((m) => m.data.length), [1000, 1000, 500, 3]);
    });
  });

  test('a long line of multibyte characters is cut between characters: every piece is valid UTF-8 and they join to the line', async () => {
    // 'é' is 2 bytes, '✓' 3, '😀' 4: a cut at 7 bytes falls inside one of them each time.
    const line = 'é✓😀'.repeat(40);
    await withServer({ command: ['printf', '%s\\n', line], maxMessage: 7 }, async (_s, url) => {
      const ws = new WebSocket(`${url}/`);
      const r = record(ws);
      assert.equal((await r.closed).code, 1000);
      const pieces = r.messages.map((m) => m.data.toString('utf8'));
      assert.ok(pieces.every((p) => !p.includes('\ufffd')), `no piece has a broken character: ${JSON.stringify(pieces.slice(0, 4))}`);
      assert.ok(r.messages.every((m) => m.data.length <= 7), 'no piece over the limit');
      assert.equal(pieces.join(''), line);
    });
  });
});

describe('porthole stdio: processes', { timeout: 60_000 }, () => {
  test('each connection gets its own process, in its own process group, with a clean environment', async () => {
    const secret = `s3cr3t-${randomBytes(4).toString('hex')}`;
    await withServer({ command: ['cat'], baseEnv: { ...process.env, PORTHOLE_TEST_SECRET: secret, PATH: process.env.PATH } }, async (s, url) => {
      const a = await openWs(`${url}/?who=a`);
      const b = await openWs(`${url}/?who=b`);
      await waitFor(() => s.pids.length === 2, 5000, 'two processes');
      const [p1, p2] = s.pids;
      assert.notEqual(p1, p2);
      for (const pid of [p1, p2]) {
        assert.equal(pgidOf(pid), pid, 'the program leads its own process group');
        const env = environOf(pid);
        assert.equal(env.get('PORTHOLE_TEST_SECRET'), undefined, 'nothing outside the allowlist reaches the program');
        assert.match(env.get('PORTHOLE_RUN') ?? '', /^[0-9a-f]{32}$/, 'the run marker');
        assert.equal(env.get('REMOTE_ADDR'), '127.0.0.1');
        assert.ok(['who=a', 'who=b'].includes(env.get('QUERY_STRING') ?? ''));
      }
      const ra = record(a);
      const rb = record(b);
      a.send('to a');
      b.send('to b');
      await waitFor(() => ra.messages.length === 1 && rb.messages.length === 1, 5000, 'one line each');
      assert.equal(ra.messages[0].data.toString(), 'to a');
      assert.equal(rb.messages[0].data.toString(), 'to b');
      a.close();
      b.close();
      await allGone([p1, p2]);
    });
  });

  test('QUERY_STRING is everything after the first "?", a "?" inside the query included (as CGI and websocketd give it)', async () => {
    await withServer({ command: ['cat'] }, async (s, url) => {
      const ws = await openWs(`${url}/path?next=/a?b=1&c=%3F`);
      await waitFor(() => s.pids.length === 1, 5000, 'the process');
      assert.equal(environOf(s.pids[0]).get('QUERY_STRING'), 'next=/a?b=1&c=%3F');
      ws.close();
    });
  });

  test('a client that disconnects: the process, a child in its group and a grandchild that left the group (setsid) are all gone', async () => {
    // The shell ignores SIGTERM: only SIGKILL after the grace ends it.
    const script = 'sleep 300 & echo $!; setsid sleep 301 & echo $!; trap "" TERM; echo ready; while :; do sleep 0.05; done';
    await withServer({ command: ['sh', '-c', script], killGraceMs: 300 }, async (s, url, logs) => {
      const r = await openRecorded(`${url}/`);
      const ws = r.ws;
      await waitFor(() => r.messages.length === 3, 5000, 'the pids and "ready"');
      const [leader] = s.pids;
      const child = Number(r.messages[0].data.toString());
      const escaped = Number(r.messages[1].data.toString());
      assert.ok(alive(leader) && alive(child) && alive(escaped));
      assert.equal(pgidOf(child), leader, 'the child is in the group');
      assert.notEqual(pgidOf(escaped), leader, 'the grandchild left the group');
      ws.terminate(); // no close frame: the connection is cut
      await allGone([leader, child, escaped], 8000);
      await waitFor(() => s.processes === 0, 5000, 'the server to forget the process');
      assert.ok(logs.some((l) => /sent SIGKILL/.test(l)), `SIGKILL was needed and logged:\n${logs.join('\n')}`);
    });
  });

  test('a program that exits leaves no child behind: its background children are stopped too', async () => {
    await withServer({ command: ['sh', '-c', 'sleep 300 & echo $!; exit 0'] }, async (_s, url) => {
      const ws = new WebSocket(`${url}/`);
      const r = record(ws);
      assert.equal((await r.closed).code, 1000);
      const child = Number(r.messages[0].data.toString());
      await allGone([child]);
    });
  });

  test('the process limit: the next connection is closed 1013 PH_ERR_STDIO_LIMIT, no process is started; a slot frees when one ends', async () => {
    await withServer({ command: ['cat'], maxProcesses: 2 }, async (s, url) => {
      const a = await openWs(`${url}/`);
      const b = await openWs(`${url}/`);
      const refused = await wsCloseOf(`${url}/`);
      assert.equal(refused.code, 1013);
      assert.match(refused.reason, /^PH_ERR_STDIO_LIMIT: stdio: 2 processes at once already/);
      assert.equal(s.processes, 2);
      const pids = s.pids;
      a.close();
      await allGone([pids[0]]);
      await waitFor(() => s.processes === 1, 5000, 'the slot to free');
      const rc = await openRecorded(`${url}/`);
      const c = rc.ws;
      c.send('again');
      await waitFor(() => rc.messages.length === 1, 5000, 'the new process answers');
      b.close();
      c.close();
    });
  });

  test('a message over the size limit closes the client with 1009, and its process is stopped', async () => {
    await withServer({ command: ['cat'], maxMessage: 1024 }, async (s, url) => {
      const r = await openRecorded(`${url}/`);
      const ws = r.ws;
      ws.send('x'.repeat(1024));
      await waitFor(() => r.messages.length === 1, 5000, 'a message at the limit passes');
      const [pid] = s.pids;
      ws.send('x'.repeat(1025));
      assert.equal((await r.closed).code, 1009);
      await allGone([pid]);
    });
  });

  test('lines per second: a program that floods stdout is paused, not cut; every line arrives', async () => {
    await withServer({ command: ['sh', '-c', 'seq 1 60'], linesPerSecond: 40 }, async (_s, url) => {
      const started = Date.now();
      const ws = new WebSocket(`${url}/`);
      const r = record(ws);
      assert.equal((await r.closed).code, 1000);
      assert.equal(r.messages.length, 60);
      assert.deepEqual(r.messages.map((m) => Number(m.data.toString())), Array.from({ length: 60 }, (_, i) => i + 1));
      // 40 at once (the burst), the other 20 at 40 per second: at least about half a second.
      assert.ok(Date.now() - started >= 400, `took ${Date.now() - started} ms`);
    });
  });

  test('lines per second from the client: a flood is paused, not dropped; every message reaches the program', async () => {
    await withServer({ command: ['cat'], linesPerSecond: 40 }, async (_s, url) => {
      const c = await openRecorded(`${url}/`);
      const started = Date.now();
      for (let i = 1; i <= 100; i++) c.ws.send(String(i));
      await waitFor(() => c.messages.length === 100, 15_000, 'all 100 back');
      assert.deepEqual(c.messages.map((m) => Number(m.data.toString())), Array.from({ length: 100 }, (_, i) => i + 1));
      // 40 at once, 60 more at 40 per second (each way): well over a second.
      assert.ok(Date.now() - started >= 1000, `took ${Date.now() - started} ms`);
      c.ws.close();
    });
  });

  test('a client that does not read: the program is blocked in write(), porthole buffers a bounded amount', async () => {
    await withServer({ command: ['yes', 'abcdefghij'], linesPerSecond: 0 }, async (s, url) => {
      const c = await openRecorded(`${url}/`);
      // Stop reading the TCP socket under the WebSocket: nothing more is taken from the kernel.
      (c.ws as unknown as { _socket: import('node:net').Socket })._socket.pause();
      const [pid] = s.pids;
      const written = () => Number(/wchar: (\d+)/.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))![1]);
      let last = -1;
      // Blocked: what the program wrote stops growing (sampled until two readings agree).
      for (let i = 0; i < 100; i++) {
        await sleep(100);
        const now = written();
        if (now === last) break;
        last = now;
      }
      await sleep(300);
      assert.equal(written(), last, 'the program is blocked');
      // Pipe (64 KiB) + queue (1 MiB) + the WebSocket's buffer (1 MiB) + socket buffers: a few MiB, not all it could write.
      assert.ok(last < 32 * 1024 * 1024, `${last} bytes written before it blocked`);
      c.ws.terminate();
      await allGone([pid]);
    });
  });

  test('a connection quiet for the idle timeout is closed with 1001 and its process stopped (a client gone without a FIN frees its program)', async () => {
    await withServer({ command: ['cat'], idleMs: 300 }, async (s, url) => {
      const c = await openRecorded(`${url}/`);
      c.ws.send('one');
      await waitFor(() => c.messages.length === 1, 5000, 'the echo');
      const [pid] = s.pids;
      const end = await c.closed;
      assert.equal(end.code, 1001);
      assert.match(end.reason, /idle for/);
      await allGone([pid]);
    });
  });

  test('shared: one process for every client; each client\'s lines reach it, its lines reach every client; stopped after the last leaves', async () => {
    await withServer({ command: ['cat'], shared: true }, async (s, url) => {
      const a = await openWs(`${url}/`);
      const b = await openWs(`${url}/`);
      assert.equal(s.processes, 1);
      const [pid] = s.pids;
      const ra = record(a);
      const rb = record(b);
      a.send('from a');
      await waitFor(() => ra.messages.length === 1 && rb.messages.length === 1, 5000, 'the line at both');
      b.send('from b');
      await waitFor(() => ra.messages.length === 2 && rb.messages.length === 2, 5000, 'the second line at both');
      assert.deepEqual(rb.messages.map((m) => m.data.toString()), ['from a', 'from b']);
      a.close();
      await ra.closed;
      await sleep(100);
      assert.ok(alive(pid), 'still running for b');
      b.close();
      await allGone([pid]);
    });
  });
});

describe('porthole stdio: who may connect', { timeout: 30_000 }, () => {
  test('a page of another origin is refused with 1008 PH_ERR_ORIGIN_REFUSED and starts no process; --allowed-origin admits it', async () => {
    await withServer({ command: ['cat'] }, async (s, url) => {
      const upgrades = collect('upgrade', s.id);
      try {
        const end = await wsCloseOf(`${url}/`, undefined, { origin: 'https://evil.example' });
        assert.equal(end.code, 1008);
        assert.match(end.reason, /^PH_ERR_ORIGIN_REFUSED: stdio: cross-origin WebSocket refused: pass --allowed-origin https:\/\/evil\.example$/);
        assert.equal(s.processes, 0);
        assert.equal(upgrades.events[0]?.code, 'PH_ERR_ORIGIN_REFUSED');
        // Its own origin is fine.
        const own = await openWs(`${url}/`, undefined, { origin: url.replace(/^ws/, 'http') });
        own.close();
      } finally {
        upgrades.stop();
      }
    });
    await withServer({ command: ['cat'], allowedOrigins: ['https://app.example'] }, async (_s, url) => {
      const ws = await openWs(`${url}/`, undefined, { origin: 'https://app.example' });
      ws.close();
      const end = await wsCloseOf(`${url}/`, undefined, { origin: 'https://other.example' });
      assert.equal(end.code, 1008);
    });
  });

  test('a Host that is not the server\'s (DNS rebinding) is refused with 1008 PH_ERR_HOST_REFUSED', async () => {
    await withServer({ command: ['cat'] }, async (s, url) => {
      const end = await wsCloseOf(`${url}/`, undefined, { headers: { Host: 'rebound.example:80' } });
      assert.equal(end.code, 1008);
      assert.match(end.reason, /^PH_ERR_HOST_REFUSED/);
      assert.equal(s.processes, 0);
    });
  });

  test('the first subprotocol offered is accepted (the MCP SDK offers "mcp")', async () => {
    await withServer({ command: ['cat'] }, async (_s, url) => {
      const ws = await openWs(`${url}/`, ['mcp', 'other']);
      assert.equal(ws.protocol, 'mcp');
      ws.send('x');
      assert.equal((await nextMessage(ws)).data.toString(), 'x');
      ws.close();
    });
  });
});
