/**
 * `porthole echo` checked by a real peer: a Python `websockets` client
 * (test/fixtures/toolkit/echo_client.py) against the CLI run from dist/, plus
 * the library entry point `startEchoServer` driven by a `ws` client.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test, type TestContext } from 'node:test';
import WebSocket from 'ws';
import { startEchoServer } from '../../src/toolkit/echo.js';
import { runCli, startCli, startPython, type Child } from './helpers.js';

/** Starts `porthole echo ARGS` and returns it with the URL from its first stdout line. */
async function startEcho(t: TestContext, args: string[] = []): Promise<{ echo: Child; url: string }> {
  const echo = startCli(t, ['echo', ...args]);
  await echo.waitFor('the listening line', () => echo.stdout.includes('\n'));
  const m = /^listening on (ws:\/\/127\.0\.0\.1:(\d+))$/.exec(echo.stdoutLines()[0]);
  assert.ok(m, `first stdout line is "listening on ws://127.0.0.1:PORT"\n${echo.describe()}`);
  assert.notEqual(Number(m[2]), 0);
  return { echo, url: m[1] };
}

/** Runs a scenario of echo_client.py to its end and returns its JSON lines. */
async function pythonClient(t: TestContext, url: string, ...scenario: string[]): Promise<Record<string, unknown>[]> {
  const client = startPython(t, 'echo_client.py', [url, ...scenario]);
  const exit = await client.waitExit();
  assert.equal(exit.code, 0, client.describe());
  return client.stdoutLines().map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('echo answers a Python websockets client: text as text, binary as binary, the offered subprotocol it speaks, permessage-deflate, ping, close code', async (t) => {
  const { echo, url } = await startEcho(t, ['--compress', '--subprotocol', 'chat', '--subprotocol', 'other']);
  const [r] = await pythonClient(t, `${url}/some/path`, 'basic');
  assert.equal(r.text, 'héllo wörld');
  assert.equal(r.text_type, 'str');
  assert.equal(r.binary_hex, '00ff10ab');
  assert.equal(r.binary_type, 'bytes');
  // The client offered ["nope", "chat"]: the first one the server lists wins.
  assert.equal(r.subprotocol, 'chat');
  assert.match(String(r.extensions_header), /^permessage-deflate/);
  assert.deepEqual(r.extensions, ['permessage-deflate']);
  assert.equal(r.pong, true);
  // The client closed with 4000; the server's close frame echoes it.
  assert.equal(r.close_code, 4000);
  assert.equal(r.close_reason, 'done');

  await echo.waitFor('the close log line', () => /^close #1 /m.test(echo.stderr));
  assert.match(echo.stderr, /^open #1 from 127\.0\.0\.1:\d+ \/some\/path subprotocol=chat extensions=permessage-deflate$/m);
  assert.match(echo.stderr, /^close #1 4000 \(application-defined .*\) reason "done" sent by the client; after [\d.]+ s, 2 messages echoed$/m);
});

test('echo without --compress or --subprotocol negotiates neither', async (t) => {
  const { url } = await startEcho(t);
  const [r] = await pythonClient(t, url, 'basic');
  assert.equal(r.subprotocol, null);
  assert.equal(r.extensions_header, null);
  assert.deepEqual(r.extensions, []);
  assert.equal(r.text, 'héllo wörld');
});

test('--max-payload: a message one byte too big is refused with 1009, one at the limit is echoed', async (t) => {
  const { echo, url } = await startEcho(t, ['--max-payload', '1024']);
  const [atLimit] = await pythonClient(t, url, 'too-big', '1024');
  assert.deepEqual(atLimit, { echoed: true });
  const [over] = await pythonClient(t, url, 'too-big', '1025');
  assert.equal(over.close_code, 1009);
  await echo.waitFor('the 1009 log line', () => /^close #2 /m.test(echo.stderr));
  assert.match(echo.stderr, /^close #2 1009 \(message too big: .*\) sent by the echo server: Max payload size exceeded; /m);
});

test('a plain HTTP GET on any path gets a short text answer (health checks)', async (t) => {
  const { url } = await startEcho(t);
  const res = await fetch(`${url.replace('ws:', 'http:')}/healthz?x=1`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  assert.match(await res.text(), /^porthole echo: a WebSocket echo server/);
  const post = await fetch(`${url.replace('ws:', 'http:')}/`, { method: 'POST', body: 'x' });
  assert.equal(post.status, 405);
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`${signal} closes every client with 1001 (going away) and exits 0`, async (t) => {
    const { echo, url } = await startEcho(t);
    const client = startPython(t, 'echo_client.py', [url, 'hold']);
    await client.waitFor('the client to connect', () => client.stdout.includes('"ready"'));
    await echo.waitFor('the open log line', () => /^open #1 /m.test(echo.stderr));
    echo.proc.kill(signal);
    const exit = await echo.waitExit();
    assert.deepEqual(exit, { code: 0, signal: null }, echo.describe());
    assert.equal((await client.waitExit()).code, 0, client.describe());
    const result = JSON.parse(client.stdoutLines()[1]) as { close_code: number; close_reason: string };
    assert.equal(result.close_code, 1001);
    assert.equal(result.close_reason, 'echo server shutting down');
    assert.match(echo.stderr, /^close #1 1001 \(going away: .*\) sent by the echo server: shutting down; /m);
  });
}

test('bad options exit 2: --port out of range, --max-payload not a number', async () => {
  for (const args of [['--port', '70000'], ['--max-payload', 'lots']]) {
    const r = await runCli(['echo', ...args]);
    assert.equal(r.code, 2, r.output);
    assert.match(r.stderr, /error: option/);
  }
});

test('startEchoServer (library): counts connections, and close() sends 1001 to clients before it stops listening', async () => {
  const lines: string[] = [];
  const server = await startEchoServer({ log: (l) => lines.push(l) });
  try {
    assert.match(server.url, /^ws:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(server.connections, 0);
    const ws = new WebSocket(`${server.url}/lib`);
    await once(ws, 'open');
    assert.equal(server.connections, 1);
    ws.send('hello library');
    const [data, isBinary] = (await once(ws, 'message')) as [Buffer, boolean];
    assert.equal(data.toString(), 'hello library');
    assert.equal(isBinary, false);

    const closed = once(ws, 'close') as Promise<[number, Buffer]>;
    await server.close();
    const [code, reason] = await closed;
    assert.equal(code, 1001);
    assert.equal(reason.toString(), 'echo server shutting down');
    assert.equal(server.connections, 0);
    await assert.rejects(fetch(`${server.url.replace('ws:', 'http:')}/`), 'no longer listening');
    assert.equal(lines.length, 2);
  } finally {
    await server.close();
  }
});
