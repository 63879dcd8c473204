/**
 * The `porthole conformance` command line (the built CLI as a child process):
 * --list, --cases/--exclude/--include selection, the --json document, the
 * summary table, exit codes 0/1/2, and the tool's own failures
 * (PH_ERR_CONFORMANCE_CONNECT, PH_ERR_CONFORMANCE_HANDSHAKE).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { describe, test } from 'node:test';
import type { ConformanceReport } from '../../src/toolkit/conformance/report.js';
import { CLI, ROOT, runCli, startCli, startPython, unusedPort } from './helpers.js';
import { startHandmadeEcho } from './conformance-servers.js';

const listed = (stdout: string) => stdout.trim().split('\n').map((l) => l.split(/\s+/)[0]);

// Two at a time: every test runs its own CLI processes against its own servers.
describe('porthole conformance, the command line', { concurrency: 2 }, () => {
  test('--list prints every case id with its description, without connecting; --cases, --exclude and --include select', async () => {
    // Six separate runs of the CLI, started together.
    const [all, withNine, deflate, named, excluded, json] = await Promise.all([
      runCli(['conformance', '--list']),
      runCli(['conformance', '--list', '--include', '9']),
      runCli(['conformance', '--list', '--include', '12,13']),
      runCli(['conformance', '--list', '--cases', '9.1.1,9.5.1', '--cases', '5.1.*']),
      runCli(['conformance', '--list', '--cases', '6.4', '--exclude', '6.4.2']),
      runCli(['conformance', '--list', '--json', '--cases', '7.9.*']),
    ]);
    assert.equal(all.code, 0, all.output);
    const ids = listed(all.stdout);
    assert.equal(ids.length, 247);
    assert.equal(ids[0], '1.1.1');
    assert.equal(ids.at(-1), '10.1.1');
    assert.match(all.stdout, /^2\.5 +Send ping with binary payload of 126 octets\.$/m);
    assert.ok(!ids.some((id) => id.startsWith('9.')), 'family 9 is opt-in');

    assert.equal(listed(withNine.stdout).length, 247 + 54);
    // 12 and 13 (permessage-deflate): 5 and 7 sub-families of 18 cases each.
    const withDeflate = listed(deflate.stdout);
    assert.equal(withDeflate.length, 247 + 90 + 126);
    assert.equal(withDeflate.at(-1), '13.7.18');

    // Naming an opt-in case by number selects it; 5.1.* names case 5.1 itself.
    assert.deepEqual(listed(named.stdout), ['5.1', '9.1.1', '9.5.1']);

    assert.deepEqual(listed(excluded.stdout), ['6.4.1', '6.4.3', '6.4.4']);

    const entries = JSON.parse(json.stdout) as { id: string; family: string; description: string; expectation: string }[];
    assert.equal(entries.length, 9);
    assert.deepEqual(entries[0], {
      id: '7.9.1',
      family: '7',
      familyTitle: 'Close Handling',
      description: 'Send close with invalid close code 0.',
      expectation: 'Clean close with protocol error code or drop TCP.',
    });
  });

  test('--json prints one report document: the run, its options, counts per verdict, and each case with its wire; exit 0', async (t) => {
    const server = await startHandmadeEcho();
    t.after(() => server.close());
    const run = await runCli(['conformance', server.url, '--json', '--cases', '1.1.*,2.*', '--exclude', '2.11', '--timeout', '3000']);
    assert.equal(run.code, 0, run.output);
    const report = JSON.parse(run.stdout) as ConformanceReport;
    const pkg = JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')) as { version: string };
    assert.equal(report.tool, 'porthole conformance');
    assert.equal(report.version, pkg.version);
    assert.equal(report.url, server.url);
    assert.ok(!Number.isNaN(Date.parse(report.startedAt)));
    assert.deepEqual(report.options, { cases: ['1.1.*', '2.*'], exclude: ['2.11'], include: [], timeoutMs: 3000 });
    assert.deepEqual(report.summary, { OK: 18, 'NON-STRICT': 0, INFORMATIONAL: 0, UNIMPLEMENTED: 0, FAILED: 0, total: 18 });
    assert.deepEqual(report.cases.map((c) => c.id), ['1.1.1', '1.1.2', '1.1.3', '1.1.4', '1.1.5', '1.1.6', '1.1.7', '1.1.8', '2.1', '2.2', '2.3', '2.4', '2.5', '2.6', '2.7', '2.8', '2.9', '2.10']);
    const c = report.cases.find((x) => x.id === '2.2')!;
    assert.equal(c.family, '2');
    assert.equal(c.familyTitle, 'Pings/Pongs');
    assert.equal(c.behavior, 'OK');
    assert.equal(c.behaviorClose, 'OK');
    assert.equal(c.remoteCloseCode, 1000);
    assert.equal(c.droppedBy, 'server');
    assert.match(c.expectation, /Pong/);
    const ping = c.wire.find((w) => w.dir === 'sent' && w.opcode === 9)!;
    assert.deepEqual({ kind: ping.kind, fin: ping.fin, rsv: ping.rsv, masked: ping.masked, length: ping.length, preview: ping.preview }, { kind: 'frame', fin: true, rsv: 0, masked: true, length: 13, preview: 'Hello, world!' });
    const pong = c.wire.find((w) => w.dir === 'received' && w.opcode === 10)!;
    assert.equal(pong.masked, false);
    assert.equal(pong.preview, 'Hello, world!');
    assert.ok(c.wire.some((w) => w.dir === 'received' && w.opcode === 8 && w.closeCode === 1000));
    assert.ok(c.wire.some((w) => w.kind === 'tcp-close'));
    // 2.5: the server failed the connection with 1002, as it must.
    const c25 = report.cases.find((x) => x.id === '2.5')!;
    assert.equal(c25.remoteCloseCode, 1002);
    assert.equal(run.stderr, '', 'no progress line when stderr is not a terminal');
  });

  test('a FAILED case: the summary table lists it with its reason, exit 1', async (t) => {
    const server = await startHandmadeEcho({ ignoreRsv: true });
    t.after(() => server.close());
    const run = await runCli(['conformance', server.url, '--cases', '1.1.1,3.1']);
    assert.equal(run.code, 1, run.output);
    assert.match(run.stdout, /^family +OK +NON-STRICT +INFORMATIONAL +UNIMPLEMENTED +FAILED$/m);
    assert.match(run.stdout, /^1 Framing +1 +0 +0 +0 +0$/m);
    assert.match(run.stdout, /^3 Reserved Bits +0 +0 +0 +0 +1$/m);
    assert.match(run.stdout, /^FAILED \(1\):\n {2}3\.1 +Send small text message with RSV = 1\.\n +Expected nothing; got text message "Hello, world!"\./m);
    assert.match(run.stdout, /^result: 1 FAILED$/m);
  });

  test('bad usage exits 2 with a hint: a pattern that matches no case, an unknown family, no URL, a bad timeout', async () => {
    // Five separate runs of the CLI, started together.
    const [unknown, family, noUrl, timeout, help] = await Promise.all([
      runCli(['conformance', 'ws://127.0.0.1:9/', '--cases', '1.*,8.*']),
      runCli(['conformance', 'ws://127.0.0.1:9/', '--include', '3']),
      runCli(['conformance']),
      runCli(['conformance', 'ws://127.0.0.1:9/', '--timeout', '0']),
      runCli(['conformance', '--help']),
    ]);
    assert.equal(unknown.code, 2, unknown.output);
    assert.match(unknown.stderr, /no case matches "8\.\*"/);
    assert.match(unknown.stderr, /hint: .*porthole conformance --list/);

    assert.equal(family.code, 2, family.output);
    assert.match(family.stderr, /not an opt-in family/);

    assert.equal(noUrl.code, 2, noUrl.output);
    assert.match(noUrl.stderr, /missing URL/);

    assert.equal(timeout.code, 2, timeout.output);

    assert.equal(help.code, 0);
    assert.match(help.stdout, /Examples:\n {2}porthole echo --port 9001 &/);
  });

  test('an endpoint that cannot be reached: PH_ERR_CONFORMANCE_CONNECT, exit 1, nothing tested', async () => {
    const port = await unusedPort();
    const run = await runCli(['conformance', `ws://127.0.0.1:${port}/`]);
    assert.equal(run.code, 1, run.output);
    assert.match(run.stderr, /^porthole conformance: PH_ERR_CONFORMANCE_CONNECT: ws:\/\/127\.0\.0\.1:\d+\/: connect failed: ECONNREFUSED$/m);
    assert.equal(run.stdout, '');
  });

  test('an endpoint that refuses the upgrade, or answers 101 with a wrong Sec-WebSocket-Accept: PH_ERR_CONFORMANCE_HANDSHAKE, exit 1', async (t) => {
    const refusing = http.createServer((_req, res) => res.writeHead(404).end('no'));
    await new Promise<void>((ok) => refusing.listen(0, '127.0.0.1', ok));
    t.after(() => refusing.close());
    const liar = net.createServer((s) => {
      s.on('error', () => {});
      s.once('data', () => s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: bm90IHRoZSByaWdodCBrZXk=\r\n\r\n'));
    });
    await new Promise<void>((ok) => liar.listen(0, '127.0.0.1', ok));
    t.after(() => liar.close());
    // Two separate runs of the CLI, started together.
    const [refused, lied] = await Promise.all([
      runCli(['conformance', `ws://127.0.0.1:${(refusing.address() as net.AddressInfo).port}/`]),
      runCli(['conformance', `ws://127.0.0.1:${(liar.address() as net.AddressInfo).port}/`]),
    ]);
    assert.equal(refused.code, 1, refused.output);
    assert.match(refused.stderr, /PH_ERR_CONFORMANCE_HANDSHAKE: .*the server refused the upgrade: HTTP\/1\.1 404 Not Found/);
    assert.equal(lied.code, 1, lied.output);
    assert.match(lied.stderr, /PH_ERR_CONFORMANCE_HANDSHAKE: .*Sec-WebSocket-Accept is "bm90IHRoZSByaWdodCBrZXk=", expected .* for the key sent/);
  });

  test('at a terminal: a progress line is rewritten in place on stderr, then erased before the summary', async (t) => {
    const server = await startHandmadeEcho();
    t.after(() => server.close());
    const steps = [['expect', 'result: nothing FAILED']];
    const session = startPython(t, 'pty_session.py', [JSON.stringify(steps), '--', process.execPath, CLI, 'conformance', server.url, '--cases', '1.1.*']);
    const exit = await session.waitExit(40_000);
    assert.equal(exit.code, 0, session.describe());
    const result = JSON.parse(session.stdoutLines()[0]) as { output: string; exit: number | null; error: string | null };
    assert.equal(result.error, null, result.output);
    assert.equal(result.exit, 0, result.output);
    // Each case rewrites the same line: carriage return, erase to the end, the new text.
    for (let i = 1; i <= 8; i++) assert.ok(result.output.includes(`\r\x1b[K[${i}/8] 1.1.${i} `), `progress for case ${i} of 8`);
    // The last progress text is erased before the summary, which starts on a clean line.
    assert.match(result.output, /\r\x1b\[Kporthole conformance ws:\/\/127\.0\.0\.1:\d+\/: 8 cases in/);
  });

  test('SIGINT stops the run after the case in progress: the summary of the cases run so far, "interrupted", exit 1', async (t) => {
    // Every 3.x case waits out its timeout on this server: the run would take 21 s, the case in progress 3 s.
    const server = await startHandmadeEcho({ noCloseOnProtocolError: true });
    t.after(() => server.close());
    const child = startCli(t, ['conformance', server.url, '--cases', '3.*', '--timeout', '3000']);
    const deadline = Date.now() + 20_000;
    while (server.connections!() < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(server.connections!(), 1, child.describe());
    child.proc.kill('SIGINT');
    const exit = await child.waitExit(30_000);
    assert.equal(exit.code, 1, child.describe());
    assert.match(child.stdout, /: 1 case in /);
    assert.match(child.stdout, /^3 Reserved Bits +0 +0 +0 +0 +1$/m);
    assert.match(child.stderr, /^interrupted after 1 case$/m);
  });

  test('--origin and -H are sent with every handshake, as written', async (t) => {
    const server = await startHandmadeEcho();
    t.after(() => server.close());
    const run = await runCli(['conformance', `${server.url}some/path?x=1`, '--cases', '1.1.1,2.1', '--origin', 'https://app.example.com', '-H', 'Authorization: Bearer abc', '-H', 'X-Trace: 7']);
    assert.equal(run.code, 0, run.output);
    assert.equal(server.heads!.length, 2);
    for (const head of server.heads!) {
      assert.match(head, /^GET \/some\/path\?x=1 HTTP\/1\.1\r\n/);
      assert.match(head, /^Host: 127\.0\.0\.1:\d+$/m);
      assert.match(head, /^Sec-WebSocket-Version: 13$/m);
      assert.match(head, /^Origin: https:\/\/app\.example\.com$/m);
      assert.match(head, /^Authorization: Bearer abc$/m);
      assert.match(head, /^X-Trace: 7$/m);
    }
  });

  test('--html DIR writes index.html and report.json after the run; bytes that are not UTF-8 are shown as labelled hex; a DIR that is a file is refused before anything runs', async (t) => {
    const { mkdtempSync, rmSync, writeFileSync, existsSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'ph-conformance-html-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const server = await startHandmadeEcho();
    t.after(() => server.close());
    const out = join(dir, 'report');
    // 1.2.3: a binary message of 65 bytes of 0xfe, which is not UTF-8.
    const run = await runCli(['conformance', server.url, '--cases', '1.1.1,1.2.3', '--html', out]);
    assert.equal(run.code, 0, run.output);
    assert.match(run.stderr, new RegExp(`report written to ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/index\\.html`));
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as ConformanceReport;
    assert.deepEqual(report.cases.map((c) => c.id), ['1.1.1', '1.2.3']);
    const binary = report.cases[1].wire.find((w) => w.dir === 'sent' && w.opcode === 2)!;
    assert.equal(binary.previewHex, true);
    assert.match(binary.preview ?? '', /^0xfefe/);
    const text = report.cases[0].wire.find((w) => w.dir === 'sent' && w.opcode === 1);
    assert.equal(text?.previewHex, undefined);
    const html = readFileSync(join(out, 'index.html'), 'utf8');
    assert.match(html, /1\.2\.3/);
    assert.match(html, /class="hex"/);

    // A file where the report's directory should be: exit 2 at once, and the endpoint is never contacted.
    const file = join(dir, 'a-file');
    writeFileSync(file, 'not a directory');
    const before = server.connections!();
    const refused = await runCli(['conformance', server.url, '--cases', '1.1.1', '--html', file]);
    assert.equal(refused.code, 2, refused.output);
    assert.match(refused.stderr, /--html: PH_ERR_REPORT_DIR: cannot write the HTML report into .*a-file: it exists and is not a directory/);
    assert.equal(server.connections!(), before);
    assert.equal(existsSync(join(file, 'index.html')), false);
  });
});
