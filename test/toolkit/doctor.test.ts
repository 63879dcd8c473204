/**
 * `porthole doctor` names the cause of each WebSocket failure the seed
 * write-ups describe, against a real peer for each: nginx without the upgrade
 * headers, nginx's read timeout, Tornado's Origin check, a wrong path, a
 * server that is not WebSocket, a self-signed certificate, ngrok's
 * interstitial, a subprotocol not selected — and says "all good" for a
 * healthy echo server, through the built CLI.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test, type TestContext } from 'node:test';
import { runDoctor, type DoctorOptions, type DoctorReport, type DoctorStep } from '../../src/toolkit/doctor.js';
import { formatReport } from '../../src/toolkit/doctor-report.js';
import { startNginx } from '../fixtures/doctor/nginx.js';
import {
  appServer,
  everything200Server,
  ngrokLikeServer,
  pathFilteredServer,
  selfSignedCertificate,
  tlsAppServer,
  wrongAcceptServer,
  type Fixture,
} from '../fixtures/doctor/servers.js';
import { startGateway } from '../helpers/net.js';
import { fixture, startPython } from '../helpers/python.js';
import { runCli, unusedPort } from './helpers.js';

/** Generous per-step timeout: the machine is shared; healthy steps take milliseconds. */
const STEP_MS = 5000;

async function doctor(opts: DoctorOptions): Promise<DoctorReport & { text: string }> {
  const report = await runDoctor({ timeoutMs: STEP_MS, ...opts });
  return { ...report, text: formatReport(report, true) };
}

function stepOf(report: DoctorReport & { text: string }, name: DoctorStep['step']): DoctorStep {
  const step = report.steps.find((s) => s.step === name);
  assert.ok(step, `step ${name} is in the report\n${report.text}`);
  return step;
}

function statuses(report: DoctorReport): string {
  return report.steps.map((s) => `${s.step}:${s.status}`).join(' ');
}

async function started<T extends Fixture>(t: TestContext, f: Promise<T>): Promise<T> {
  const fx = await f;
  t.after(() => fx.close());
  return fx;
}

test('nginx without the upgrade headers: diagnosed as the proxy dropping Upgrade, with the nginx lines as the fix', async (t) => {
  const app = await started(t, appServer());
  const nginx = await startNginx('nginx-no-upgrade.conf', app.port);
  t.after(() => nginx.stop());

  const r = await doctor({ url: `ws://127.0.0.1:${nginx.port}/ws` });
  assert.equal(r.exitCode, 1, r.text);
  assert.equal(r.diagnosis, 'upgrade', r.text);
  assert.equal(statuses(r), 'url:pass dns:pass tcp:pass upgrade:fail', 'nothing after the upgrade can be tested');
  const up = stepOf(r, 'upgrade');
  assert.equal(up.data?.cause, 'upgrade-dropped', r.text);
  assert.match(up.detail, /^HTTP\/1\.1 200 OK from nginx\/[\d.]+ instead of 101: the proxy did not pass the upgrade on \(it served an HTML page\)$/);
  assert.match(up.explanation ?? '', /nginx \(Server: nginx\/[\d.]+\) answered the upgrade with 200 and an HTML page/);
  assert.match(up.explanation ?? '', /Upgrade and Connection are hop-by-hop headers/);
  for (const line of ['proxy_http_version 1.1;', 'proxy_set_header Upgrade $http_upgrade;', 'proxy_set_header Connection "upgrade";'])
    assert.ok(up.fix?.includes(line), `the fix has "${line}"\n${r.text}`);
  // Every byte of the answer is shown: the status line, nginx's Server header, the app's page.
  assert.ok(up.wire?.includes('> Upgrade: websocket'));
  assert.ok(up.wire?.includes('< HTTP/1.1 200 OK'));
  assert.ok(up.wire?.some((l) => /^< Server: nginx\//.test(l)));
  assert.ok(up.wire?.some((l) => l.includes('<h1>My app</h1>')));
});

test('nginx in front of a backend that is down: 502 diagnosed as the backend behind nginx, not the handshake', async (t) => {
  const nginx = await startNginx('nginx-short-read-timeout.conf', await unusedPort());
  t.after(() => nginx.stop());
  const r = await doctor({ url: `ws://127.0.0.1:${nginx.port}/ws` });
  assert.equal(r.diagnosis, 'upgrade', r.text);
  const up = stepOf(r, 'upgrade');
  assert.equal(up.data?.cause, 'backend-down', r.text);
  assert.match(up.detail, /^HTTP\/1\.1 502 Bad Gateway from nginx\//);
  assert.match(up.explanation ?? '', /^nginx \(Server: nginx\/[\d.]+\) could not connect to the WebSocket server behind it/);
  assert.match(up.fix ?? '', /proxy_pass/);
});

test('nginx with a 2 s proxy_read_timeout and --idle 4: the cut after ~2 s of silence is caught and blamed on proxy_read_timeout', async (t) => {
  const app = await started(t, appServer());
  const nginx = await startNginx('nginx-short-read-timeout.conf', app.port);
  t.after(() => nginx.stop());

  const progress: string[] = [];
  const r = await doctor({ url: `ws://127.0.0.1:${nginx.port}/ws`, idleMs: 4000, message: 'before the silence', onProgress: (l) => progress.push(l) });
  assert.equal(r.exitCode, 1, r.text);
  assert.equal(r.diagnosis, 'idle', r.text);
  assert.equal(stepOf(r, 'roundtrip').status, 'pass', 'through nginx the socket works until it goes quiet');
  const idle = stepOf(r, 'idle');
  const cut = idle.data?.cutAfterMs as number;
  assert.ok(cut > 1500 && cut < 3800, `cut after ${cut} ms, expected ~2000\n${r.text}`);
  assert.equal(idle.data?.closeCode, null, 'nginx sends no close frame');
  assert.match(idle.detail, /cut after ~\d\.\d s of silence: TCP (FIN|reset)/);
  assert.match(idle.explanation ?? '', /nginx \(Server: nginx\/[\d.]+\).*proxy_read_timeout/);
  assert.match(idle.explanation ?? '', /1006/);
  assert.match(idle.fix ?? '', /proxy_read_timeout 3600s;/);
  assert.match(idle.fix ?? '', /pings/);
  assert.deepEqual(progress, ['holding the connection idle for 4.0 s…']);
  assert.equal(stepOf(r, 'close').status, 'warn', 'the close step reports the cut instead of testing');
});

test('Tornado checking Origin: the 403 is recognised, the retry with its own origin succeeds, and the fix names the header to rewrite; its 400 and 426 are read too', async (t) => {
  const tornado = await startPython(fixture('tornado_echo.py'));
  t.after(() => tornado.stop());
  const own = `http://127.0.0.1:${tornado.port}`;

  const r = await doctor({ url: `ws://127.0.0.1:${tornado.port}/ws`, origin: 'https://other.example', message: 'after the retry' });
  assert.equal(r.exitCode, 1, r.text);
  assert.equal(r.diagnosis, 'upgrade');
  const up = stepOf(r, 'upgrade');
  assert.equal(up.data?.cause, 'origin', r.text);
  assert.match(up.detail, /^HTTP\/1\.1 403 .*"Cross origin websockets not allowed": the server checks Origin$/);
  assert.match(up.explanation ?? '', new RegExp(`refused Origin: https://other\\.example and accepted its own origin ${own}`));
  assert.ok(up.wire?.includes(`* retried with Origin: ${own}: HTTP/1.1 101 Switching Protocols`), r.text);
  assert.ok(up.fix?.includes(`proxy_set_header Origin ${own};`), r.text);
  assert.ok(up.fix?.includes('upstream_origin: upstream'), r.text);
  // The doctor carried on over the retried connection: everything else is fine.
  for (const name of ['accept', 'subprotocol', 'roundtrip', 'close'] as const) assert.equal(stepOf(r, name).status, 'pass', r.text);
  assert.match(stepOf(r, 'roundtrip').detail, /message echoed/);

  // The same real server, with the handshake headers a broken proxy would leave.
  const h2c = await doctor({ url: `ws://127.0.0.1:${tornado.port}/ws`, headers: [['Upgrade', 'h2c']] });
  const bad = stepOf(h2c, 'upgrade');
  assert.equal(bad.data?.cause, 'upgrade-headers-missing', h2c.text);
  assert.match(bad.detail, /^HTTP\/1\.1 400 .*Can "Upgrade" only to "WebSocket"/);
  assert.match(bad.explanation ?? '', /HTTP\/2/);
  assert.ok(bad.fix?.includes('proxy_set_header Upgrade $http_upgrade;'));

  const v8 = await doctor({ url: `ws://127.0.0.1:${tornado.port}/ws`, headers: [['Sec-WebSocket-Version', '99']] });
  const version = stepOf(v8, 'upgrade');
  assert.equal(version.data?.cause, 'version', v8.text);
  assert.match(version.detail, /^HTTP\/1\.1 426 .*wants Sec-WebSocket-Version 7, 8, 13, the handshake sent 99$/);
});

test('a path that 404s: wrong path; and the same path with a trailing slash is found to work without it', async (t) => {
  const server = await started(t, pathFilteredServer());

  const wrong = await doctor({ url: `ws://127.0.0.1:${server.port}/wrong` });
  assert.equal(wrong.exitCode, 1, wrong.text);
  const up = stepOf(wrong, 'upgrade');
  assert.equal(up.data?.cause, 'wrong-path', wrong.text);
  assert.match(up.detail, /404 Not Found: nothing at \/wrong$/);
  assert.match(up.explanation ?? '', /WebSocket path is wrong, or a proxy strips or adds a prefix/);

  const slash = await doctor({ url: `ws://127.0.0.1:${server.port}/ws/` });
  const up2 = stepOf(slash, 'upgrade');
  assert.equal(up2.data?.cause, 'wrong-path');
  assert.match(up2.detail, /nothing at \/ws\/, but \/ws upgrades/);
  assert.equal(up2.fix, `use ws://127.0.0.1:${server.port}/ws`);
});

test('a server that answers 200 to everything: not a WebSocket endpoint (or Upgrade not passed), proven with a second path', async (t) => {
  const server = await started(t, everything200Server());
  const r = await doctor({ url: `ws://127.0.0.1:${server.port}/socket` });
  assert.equal(r.exitCode, 1, r.text);
  const up = stepOf(r, 'upgrade');
  assert.equal(up.data?.cause, 'not-websocket', r.text);
  assert.match(up.detail, /^HTTP\/1\.1 200 OK instead of 101: the server answers 200 to any path$/);
  assert.match(up.explanation ?? '', /does not speak WebSocket at \/socket/);
  assert.match(up.explanation ?? '', /dropped the Upgrade header/);
  assert.ok(up.wire?.some((l) => /^\* retried at \/porthole-doctor-\w+: HTTP\/1\.1 200 OK$/.test(l)), r.text);
  assert.match(up.fix ?? '', /pass Upgrade and Connection/);
});

test('TLS with a self-signed certificate: ✗ at TLS with the explanation; --insecure carries on to all good; --ca trusts it', async (t) => {
  const tls = selfSignedCertificate();
  t.after(() => tls.remove());
  const server = await started(t, tlsAppServer(tls));
  const url = `wss://127.0.0.1:${server.port}/`;

  const refused = await doctor({ url });
  assert.equal(refused.exitCode, 1, refused.text);
  assert.equal(statuses(refused), 'url:pass dns:pass tcp:pass tls:fail');
  const step = stepOf(refused, 'tls');
  assert.match(step.detail, /^self-signed certificate not trusted \(DEPTH_ZERO_SELF_SIGNED_CERT\): CN=localhost, issued by itself, valid until /);
  assert.ok(step.wire?.some((l) => /^\* TLSv1\.[23], cipher /.test(l)), refused.text);
  assert.ok(step.wire?.includes('* issuer:  CN=localhost (self-signed)'), refused.text);
  assert.ok(step.wire?.includes('* names:   DNS:localhost, IP Address:127.0.0.1'), refused.text);
  assert.match(step.explanation ?? '', /self-signed: nothing vouches for it/);
  assert.match(step.fix ?? '', /--ca cert\.pem/);
  assert.match(step.fix ?? '', /--insecure/);

  const insecure = await doctor({ url, insecure: true, message: 'over tls' });
  assert.equal(insecure.exitCode, 0, insecure.text);
  assert.equal(stepOf(insecure, 'tls').status, 'warn');
  assert.match(stepOf(insecure, 'tls').detail, /accepted because of --insecure/);
  for (const name of ['upgrade', 'accept', 'subprotocol', 'roundtrip', 'close'] as const) assert.equal(stepOf(insecure, name).status, 'pass', insecure.text);

  const trusted = await doctor({ url, ca: readFileSync(tls.cert) });
  assert.equal(trusted.exitCode, 0, trusted.text);
  // Trusted now; the only remark left is that a 1-day certificate expires soon.
  assert.match(stepOf(trusted, 'tls').detail, /expires in \d+ h$/);

  // ws:// to this TLS port: the server hangs up on plain HTTP, and a TLS probe names the fix.
  const plain = await doctor({ url: `ws://127.0.0.1:${server.port}/` });
  const up = stepOf(plain, 'upgrade');
  assert.equal(up.data?.cause, 'tls-expected', plain.text);
  assert.match(up.detail, /this port speaks TLS$/);
  assert.equal(up.fix, `use wss://127.0.0.1:${server.port}/`);
});

test('a healthy ws echo server: every step ✓ and exit 0 through the CLI, and --json parses', async (t) => {
  const server = await started(t, appServer());
  const url = `ws://127.0.0.1:${server.port}/ws`;

  const text = await runCli(['doctor', url, '--message', 'hello doctor']);
  assert.equal(text.code, 0, text.output);
  const stepLines = text.stdout.split('\n').filter((l) => /^[✓✗!] /.test(l));
  assert.deepEqual(
    stepLines.map((l) => l.slice(2, 24).trim()),
    ['URL', 'DNS', 'TCP connect', 'HTTP upgrade', 'Sec-WebSocket-Accept', 'Subprotocol', 'Round trip', 'Close'],
    text.output,
  );
  assert.ok(stepLines.every((l) => l.startsWith('✓ ')), text.output);
  assert.match(text.stdout, /^✓ Round trip {12}ping → pong in [\d.]+ m?s; message echoed in [\d.]+ m?s$/m);
  assert.match(text.stdout, /^all good: the WebSocket at ws:\/\/127\.0\.0\.1:\d+\/ws works \(round trip [\d.]+ m?s\)$/m);

  const ok = await runCli(['doctor', url, '--json', '-s', 'chat', '-H', 'X-Trace: 1']);
  assert.equal(ok.code, 0, ok.output);
  const good = JSON.parse(ok.stdout) as DoctorReport;
  assert.equal(good.ok, true);
  assert.equal(good.exitCode, 0);
  assert.equal(good.diagnosis, null);
  assert.match(good.summary, /works/);
  assert.equal(good.steps.find((s) => s.step === 'subprotocol')?.detail, 'offered chat, selected chat');
  assert.ok(good.steps.find((s) => s.step === 'upgrade')?.wire?.includes('> X-Trace: 1'));
  for (const s of good.steps) {
    assert.equal(s.status, 'pass', JSON.stringify(s));
    assert.equal(s.ok, true);
    assert.equal(typeof s.detail, 'string');
  }
  assert.deepEqual(
    good.steps.map((s) => s.step),
    ['url', 'dns', 'tcp', 'upgrade', 'accept', 'subprotocol', 'roundtrip', 'close'],
  );
});

test('ngrok’s interstitial page is recognised, the retry with ngrok-skip-browser-warning gets through, and the fix names that header', async (t) => {
  const server = await started(t, ngrokLikeServer());
  const r = await doctor({ url: `http://127.0.0.1:${server.port}/_stcore/stream` });
  assert.equal(stepOf(r, 'url').status, 'pass');
  assert.match(stepOf(r, 'url').detail, /http:\/\/ is tested as ws:\/\//);
  assert.equal(r.exitCode, 1, r.text);
  const up = stepOf(r, 'upgrade');
  assert.equal(up.data?.cause, 'ngrok-interstitial', r.text);
  assert.match(up.detail, /ngrok’s "You are about to visit" interstitial page/);
  assert.match(up.explanation ?? '', /ERR_NGROK_6024/);
  assert.ok(up.wire?.includes('* retried with ngrok-skip-browser-warning: true: HTTP/1.1 101 Switching Protocols'), r.text);
  assert.match(up.fix ?? '', /ngrok-skip-browser-warning: true/);
  assert.match(up.fix ?? '', /set_headers: \{ ngrok-skip-browser-warning: "true" \}/);
  assert.equal(stepOf(r, 'roundtrip').status, 'pass', 'behind the interstitial the socket works');
});

test('a subprotocol required but not selected: ✗ at step 6, with the browser’s 1006 explained', async (t) => {
  const server = await started(t, appServer({ handleProtocols: () => false }));
  const r = await doctor({ url: `ws://127.0.0.1:${server.port}/`, subprotocols: ['graphql-ws', 'graphql-transport-ws'] });
  assert.equal(r.exitCode, 1, r.text);
  assert.equal(r.diagnosis, 'subprotocol');
  const step = stepOf(r, 'subprotocol');
  assert.equal(step.detail, 'offered graphql-ws, graphql-transport-ws, the server selected none');
  assert.match(step.explanation ?? '', /1006/);
  assert.ok(stepOf(r, 'upgrade').wire?.includes('> Sec-WebSocket-Protocol: graphql-ws, graphql-transport-ws'));
  assert.equal(stepOf(r, 'accept').status, 'pass', 'the handshake itself is fine');
});

test('mixed content: a ws:// socket for an https:// page fails at the URL step with wss:// or same-origin as the fix', async (t) => {
  const server = await started(t, appServer());
  const r = await doctor({ url: `ws://127.0.0.1:${server.port}/ws`, pageOrigin: 'https://app.example.com' });
  assert.equal(r.diagnosis, 'url', r.text);
  const step = stepOf(r, 'url');
  assert.match(step.detail, /^mixed content: a page on https:\/\/app\.example\.com may not open ws:\/\//);
  assert.match(step.fix ?? '', /wss:\/\//);
  assert.match(step.fix ?? '', /Porthole/);
  // The browser would send the page's origin: so does the doctor.
  assert.ok(stepOf(r, 'upgrade').wire?.includes('> Origin: https://app.example.com'));
  assert.equal(stepOf(r, 'roundtrip').status, 'pass', 'the socket itself works');
});

test('a Porthole gateway whose app is down: 502 with X-Porthole-Error, or (by default) a 101 then close 1014 with the reason', async () => {
  const dead = await unusedPort();
  const g = await startGateway({ apps: [{ name: 'plain', port: dead, ws_errors: 'http' }, { name: 'vnc', port: dead }] });
  try {
    const http = await doctor({ url: `${g.wsUrl}/plain/ws` });
    const up = stepOf(http, 'upgrade');
    assert.equal(up.data?.cause, 'backend-down', http.text);
    assert.match(up.detail, /502 .*X-Porthole-Error: PH_ERR_UPSTREAM_REFUSED/);
    assert.match(up.explanation ?? '', /nothing listens at its port/);

    const ws = await doctor({ url: `${g.wsUrl}/vnc/websockify` });
    assert.equal(ws.diagnosis, 'roundtrip', ws.text);
    const rt = stepOf(ws, 'roundtrip');
    assert.equal(rt.data?.closeCode, 1014);
    assert.match(rt.detail, /close frame 1014 \(bad gateway: .*\) reason ".*vnc.*"/);
    assert.match(rt.explanation ?? '', /cannot be reached/);
  } finally {
    await g.close();
  }
});

test('nothing listening: ✗ at TCP connect, explained as refused', async () => {
  const port = await unusedPort();
  const r = await doctor({ url: `ws://127.0.0.1:${port}/` });
  assert.equal(statuses(r), 'url:pass dns:pass tcp:fail');
  assert.match(stepOf(r, 'tcp').detail, /ECONNREFUSED/);
  assert.match(stepOf(r, 'tcp').explanation ?? '', /nothing listens on port/);
});

test('a 101 whose Sec-WebSocket-Accept is for another key: ✗ at step 5', async (t) => {
  const server = await started(t, wrongAcceptServer());
  const r = await doctor({ url: `ws://127.0.0.1:${server.port}/` });
  assert.equal(r.diagnosis, 'accept', r.text);
  assert.match(stepOf(r, 'accept').detail, /^Sec-WebSocket-Accept is s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=, expected \S+ for the key sent$/);
});

test('bad usage exits 2: a URL that is not WebSocket, a zero timeout, a malformed header', async () => {
  for (const args of [['ftp://example.com/'], ['ws://127.0.0.1:1/', '--timeout', '0'], ['ws://127.0.0.1:1/', '-H', 'no colon']]) {
    const r = await runCli(['doctor', ...args]);
    assert.equal(r.code, 2, r.output);
    assert.equal(r.stdout, '');
  }
  const help = await runCli(['doctor', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /What it checks, in order/);
  assert.match(help.stdout, /--idle <seconds>/);
  assert.match(help.stdout, /Exit codes:/);
});
