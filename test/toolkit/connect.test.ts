/**
 * `porthole connect` against a real Python `websockets` server that records
 * what it received (test/fixtures/toolkit/recording_server.py). The CLI runs
 * as a child process from dist/.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { header, runCli, startRecordingServer, unusedPort } from './helpers.js';

test('-x sends each message after the handshake, prints the answers and closes with 1000 (exit 0); -H, --origin and --auth reach the server', async (t) => {
  const server = await startRecordingServer(t);
  const r = await runCli([
    'connect', server.url('/echo'),
    '-x', 'hello', '-x', 'world',
    '-H', 'X-Trace: abc-123', '-H', 'X-Multi: one', '-H', 'x-multi: two',
    '--origin', 'http://app.example',
    '--auth', 'alice:s3cret:with-colon',
  ]);
  assert.equal(r.code, 0, r.output);
  assert.equal(r.stdout, '< hello\n< world\n', r.output);
  assert.match(r.stderr, new RegExp(`^connected to ws://127\\.0\\.0\\.1:${server.port}/echo$`, 'm'));
  assert.match(r.stderr, /^closed 1000 \(normal closure\)$/m);

  const hs = await server.waitForRecord('the handshake', (x) => x.event === 'connect');
  assert.equal(header(hs, 'X-Trace'), 'abc-123');
  assert.equal(header(hs, 'X-Multi'), 'one, two');
  assert.equal(header(hs, 'Origin'), 'http://app.example');
  assert.equal(header(hs, 'Authorization'), `Basic ${Buffer.from('alice:s3cret:with-colon').toString('base64')}`);
  // Compression is off unless asked for: what is on the wire is what was typed.
  assert.equal(header(hs, 'Sec-WebSocket-Extensions'), undefined);
  assert.deepEqual(await server.waitForMessages(2), ['hello', 'world']);
  const closed = await server.waitForRecord('the close', (x) => x.event === 'closed');
  assert.equal(closed.code, 1000);
});

test('-s offers subprotocols in order and prints the one the server selected (also given as -H Sec-WebSocket-Protocol); none acceptable fails the handshake', async (t) => {
  const server = await startRecordingServer(t);
  const r = await runCli(['connect', server.url('/echo'), '-s', 'nope', '-s', 'superchat', '-x', 'hi']);
  assert.equal(r.code, 0, r.output);
  assert.match(r.stderr, /^subprotocol: superchat$/m);
  const hs = await server.waitForRecord('the handshake', (x) => x.event === 'connect');
  assert.deepEqual(header(hs, 'Sec-WebSocket-Protocol')?.split(/\s*,\s*/), ['nope', 'superchat']);
  assert.equal(hs.subprotocol, 'superchat');

  // The wscat habit of passing it as a header works the same.
  const asHeader = await runCli(['connect', server.url('/echo'), '-H', 'Sec-WebSocket-Protocol: chat', '-x', 'hi']);
  assert.equal(asHeader.code, 0, asHeader.output);
  assert.match(asHeader.stderr, /^subprotocol: chat$/m);

  const refused = await runCli(['connect', server.url('/echo'), '-s', 'nope', '-x', 'hi']);
  assert.equal(refused.code, 1, refused.output);
  assert.match(refused.stderr, /Server sent no subprotocol/);
  assert.match(refused.stderr, /^hint: the server selected none of the subprotocols offered with -s$/m);
});

test('--compress offers permessage-deflate and prints what the server negotiated', async (t) => {
  const server = await startRecordingServer(t);
  const long = 'compressible '.repeat(200);
  const r = await runCli(['connect', server.url('/echo'), '--compress', '-x', long]);
  assert.equal(r.code, 0, r.output);
  assert.equal(r.stdout, `< ${long}\n`);
  assert.match(r.stderr, /^extensions: permessage-deflate(;.*)?$/m);
  const hs = await server.waitForRecord('the handshake', (x) => x.event === 'connect');
  assert.match(header(hs, 'Sec-WebSocket-Extensions') ?? '', /^permessage-deflate/);
  assert.deepEqual(hs.extensions, ['permessage-deflate']);
  const msg = await server.waitForRecord('the message', (x) => x.event === 'message');
  assert.equal(msg.data, long);
});

test('--pipe: each stdin line is one message, each received message is one stdout line, nothing else on stdout', async (t) => {
  const server = await startRecordingServer(t);
  const r = await runCli(
    // -x goes first, then the binary message, then stdin; an -x message with a newline shows it as \n.
    ['connect', server.url('/echo'), '--pipe', '-x', 'two\nlines', '--binary-hex', '00ff10', '--wait', '5'],
    { input: 'one\n\nthree with spaces\r\n{"json": true}\n' },
  );
  assert.equal(r.code, 0, r.output);
  assert.equal(r.stdout, 'two\\nlines\n0x00ff10\none\n\nthree with spaces\n{"json": true}\n', r.output);
  assert.equal(r.stderr, '', 'a normal close prints nothing in pipe mode');
  assert.deepEqual(await server.waitForMessages(6), ['two\nlines', '0x00ff10', 'one', '', 'three with spaces', '{"json": true}']);
});

test('--binary-hex and --binary-file each send one binary message that arrives byte-exact', async (t) => {
  const server = await startRecordingServer(t);
  const dir = mkdtempSync(join(tmpdir(), 'porthole-connect-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // Every byte value, then random bytes: nothing may be re-encoded on the way.
  const fileBytes = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(4096)]);
  const file = join(dir, 'payload.bin');
  writeFileSync(file, fileBytes);

  const r = await runCli(['connect', server.url('/echo'), '--binary-hex', '00 ff 10 ab 7f 80', '--binary-file', file]);
  assert.equal(r.code, 0, r.output);
  const lines = r.stdout.split('\n');
  assert.equal(lines[0], '< binary 6 bytes: 00ff10ab7f80');
  assert.match(lines[1], /^< binary 4352 bytes: 000102/);
  assert.deepEqual(await server.waitForMessages(2), ['0x00ff10ab7f80', `0x${fileBytes.toString('hex')}`]);
});

test('lines typed on stdin are messages or commands: /binary, /ping (pong printed), //text; --show-ping prints the server ping', async (t) => {
  const server = await startRecordingServer(t);
  // /ping on the fixture: the server pings "hb" first, then echoes.
  const r = await runCli(['connect', server.url('/ping'), '--show-ping'], {
    input: 'hello\n/binary 0a0b0c\n/ping are-you-there\n//starts with a slash\n/nonsense\n',
  });
  assert.equal(r.code, 0, r.output);
  assert.equal(r.stdout, '< hello\n< binary 3 bytes: 0a0b0c\n< /starts with a slash\n', r.output);
  assert.match(r.stderr, /^ping received: "hb"$/m);
  assert.match(r.stderr, /^pong received: "are-you-there"$/m);
  assert.match(r.stderr, /^unknown command \/nonsense/m);
  assert.deepEqual(await server.waitForMessages(3), ['hello', '0x0a0b0c', '/starts with a slash']);
});

test('/close CODE REASON starts the closing handshake with that code; the server echoing it is a normal end (exit 0)', async (t) => {
  const server = await startRecordingServer(t);
  const r = await runCli(['connect', server.url('/echo')], { input: '/close 4002 done here\n' });
  assert.equal(r.code, 0, r.output);
  assert.match(r.stderr, /^closed 4002 \(application-defined \(4000–4999\).*\) reason "done here"$/m);
  const closed = await server.waitForRecord('the close', (x) => x.event === 'closed');
  assert.equal(closed.code, 4002);
  assert.equal(closed.reason, 'done here');
});

test('a close code sent by the server is printed with its meaning and reason; 4001 exits 1', async (t) => {
  const server = await startRecordingServer(t);
  const r = await runCli(['connect', server.url('/close/4001'), '-x', 'hi']);
  assert.equal(r.code, 1, r.output);
  assert.match(r.stderr, /^closed 4001 \(application-defined \(4000–4999\): the meaning is set by the application, see its documentation\) reason "bye from fixture"$/m);
});

test('a server that cuts TCP without a close frame: 1006 is printed with its explanation, exit 1', async (t) => {
  const server = await startRecordingServer(t);
  const r = await runCli(['connect', server.url('/drop'), '-x', 'hi']);
  assert.equal(r.code, 1, r.output);
  assert.match(r.stderr, /^closed 1006 \(abnormal closure: no close frame — the connection was cut by a proxy, a timeout or a crash\)$/m);
  // The server did get the message before it cut the connection.
  await server.waitForRecord('the message', (x) => x.event === 'message' && x.data === 'hi');
});

test('a refused handshake prints the HTTP status, the headers and the body the server sent, exit 1', async (t) => {
  const server = await startRecordingServer(t);
  const r = await runCli(['connect', server.url('/forbidden'), '-x', 'hi']);
  assert.equal(r.code, 1, r.output);
  assert.match(r.stderr, /^handshake failed: the server answered HTTP\/1\.1 403 Forbidden$/m);
  assert.match(r.stderr, /^ {2}X-Reason: origin not allowed$/m);
  assert.match(r.stderr, /^ {2}Content-Type: text\/plain$/m);
  assert.match(r.stderr, /^ {4}forbidden: this origin is not on the list$/m);
  assert.match(r.stderr, /^hint: refused: servers often check Origin/m);
  assert.equal(r.stdout, '');
});

test('-L follows a 301 to the real WebSocket path; without -L the redirect is shown with a hint, exit 1', async (t) => {
  const server = await startRecordingServer(t);
  const followed = await runCli(['connect', server.url('/old'), '-L', '-x', 'hi']);
  assert.equal(followed.code, 0, followed.output);
  assert.equal(followed.stdout, '< hi\n');
  assert.match(followed.stderr, new RegExp(`^connected to ws://127\\.0\\.0\\.1:${server.port}/echo \\(redirected from ws://127\\.0\\.0\\.1:${server.port}/old\\)$`, 'm'));
  const hs = await server.waitForRecord('the handshake', (x) => x.event === 'connect');
  assert.equal(hs.path, '/echo');

  const stopped = await runCli(['connect', server.url('/old'), '-x', 'hi']);
  assert.equal(stopped.code, 1, stopped.output);
  assert.match(stopped.stderr, /^handshake failed: the server answered HTTP\/1\.1 301 Moved Permanently$/m);
  assert.match(stopped.stderr, /^ {2}Location: \/echo$/m);
  assert.match(stopped.stderr, /^hint: the server redirects to \/echo; add -L to follow redirects$/m);
});

test('nothing listening: the socket error and a hint are printed, exit 1', async () => {
  const port = await unusedPort();
  const r = await runCli(['connect', `ws://127.0.0.1:${port}/`, '-x', 'hi']);
  assert.equal(r.code, 1, r.output);
  assert.match(r.stderr, /ECONNREFUSED/);
  assert.match(r.stderr, /^hint: nothing listens on that host and port$/m);
});

test('bad usage exits 2 before connecting: bad URL, malformed header, bad hex, unreadable file, --cert without --key', async () => {
  const cases: [string[], RegExp][] = [
    [['ftp://127.0.0.1/'], /expected a ws:\/\/, wss:\/\/, http:\/\/ or https:\/\/ URL/],
    [['ws://127.0.0.1/#frag'], /without a #fragment/],
    [['ws://127.0.0.1/', '-H', 'no colon here'], /expected "Name: value"/],
    [['ws://127.0.0.1/', '-H', 'Bad Name: x'], /expected "Name: value"/],
    [['ws://127.0.0.1/', '--binary-hex', '0g'], /expected hex bytes/],
    [['ws://127.0.0.1/', '--binary-file', '/nonexistent/porthole-file'], /cannot read \/nonexistent\/porthole-file: ENOENT/],
    [['ws://127.0.0.1/', '--auth', 'nocolon'], /expected user:pass/],
    [['ws://127.0.0.1/', '--cert', '/etc/hostname'], /--cert needs --key/],
    [['ws://127.0.0.1/', '-s', 'has space'], /expected a token/],
    [['ws://127.0.0.1/', '-s', 'chat', '-s', 'chat'], /chat is offered twice/],
  ];
  await Promise.all(
    cases.map(async ([args, message]) => {
      const r = await runCli(['connect', ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}\n${r.output}`);
      assert.match(r.stderr, message, args.join(' '));
    }),
  );
});

test('--wait bounds how long to wait for answers that never come; then close with 1000 (exit 0)', async (t) => {
  const server = await startRecordingServer(t);
  for (const args of [['-x', 'anyone?'], ['--pipe']]) {
    const started = Date.now();
    const r = await runCli(['connect', server.url('/silent'), '--wait', '0.8', ...args], { input: 'anyone?\n' });
    const took = Date.now() - started;
    assert.equal(r.code, 0, r.output);
    assert.equal(r.stdout, '');
    assert.ok(took >= 800, `waited ${took} ms, at least --wait`);
  }
  assert.deepEqual(await server.waitForMessages(2), ['anyone?', 'anyone?']);
  const closes = () => server.records().filter((x) => x.event === 'closed');
  await server.child.waitFor('both closes', () => closes().length === 2);
  assert.deepEqual(closes().map((x) => x.code), [1000, 1000]);
});

test('--connect-timeout: a server that accepts TCP but never answers the handshake fails with exit 1', async (t) => {
  // A real listener that swallows the upgrade request, like a black-holing proxy.
  const sockets = new Set<Socket>();
  const blackhole = createServer((s) => sockets.add(s.on('error', () => {})));
  blackhole.listen(0, '127.0.0.1');
  await once(blackhole, 'listening');
  t.after(() => {
    for (const s of sockets) s.destroy();
    blackhole.close();
  });
  const { port } = blackhole.address() as AddressInfo;
  const r = await runCli(['connect', `ws://127.0.0.1:${port}/`, '--connect-timeout', '0.5', '-x', 'hi']);
  assert.equal(r.code, 1, r.output);
  assert.match(r.stderr, /Opening handshake has timed out/);
  assert.match(r.stderr, /^hint: no answer to the handshake/m);
});
