/**
 * `porthole doctor` recognises Porthole's Host refusal (issue 8, item 10) —
 * as the close reason after a completed handshake (the default) and as a
 * 421 with X-Porthole-Error (`ws_errors: http`) — and says to add the name
 * to server_names. The doctor sends the Host a tunnel would (`-H Host: …`).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatReport } from '../../src/toolkit/doctor-report.js';
import { runDoctor } from '../../src/toolkit/doctor.js';
import { startGateway, wsUpstream } from '../helpers/net.js';
import { runCli } from './helpers.js';

const NAME = 'abc-123.ngrok-free.app';

test('doctor through a tunnel name the gateway does not know: close 1008 PH_ERR_HOST_REFUSED explained, fix names server_names; 421 likewise; listed, all good', async () => {
  const up = await wsUpstream();
  const g = await startGateway({ apps: [{ name: 'vnc', port: up.port }, { name: 'plain', port: up.port, ws_errors: 'http' }] });
  try {
    const ws = await runDoctor({ url: `${g.wsUrl}/vnc/websockify`, headers: [['Host', NAME]], timeoutMs: 5000 });
    const text = formatReport(ws, true);
    assert.equal(ws.exitCode, 1, text);
    assert.equal(ws.diagnosis, 'roundtrip', text);
    const rt = ws.steps.find((s) => s.step === 'roundtrip')!;
    assert.equal(rt.data?.cause, 'host-refused', text);
    assert.equal(rt.data?.closeCode, 1008);
    assert.match(String(rt.data?.closeReason), /^PH_ERR_HOST_REFUSED: /);
    assert.match(rt.explanation ?? '', /DNS rebinding/);
    assert.match(rt.fix ?? '', new RegExp(`server_names: \\[${NAME.replace(/\./g, '\\.')}\\]`));
    assert.match(text, /server_names/);

    const http = await runDoctor({ url: `${g.wsUrl}/plain/ws`, headers: [['Host', `${NAME}:443`]], timeoutMs: 5000 });
    const up421 = http.steps.find((s) => s.step === 'upgrade')!;
    assert.equal(up421.status, 'fail');
    assert.equal(up421.data?.cause, 'host-refused', formatReport(http, true));
    assert.equal(up421.data?.status, 421);
    assert.match(up421.detail, /421 .*X-Porthole-Error: PH_ERR_HOST_REFUSED/);
    assert.match(up421.fix ?? '', new RegExp(`server_names: \\[${NAME.replace(/\./g, '\\.')}\\]`), 'the port is left out of the name');

    g.gw.reload({ server_names: [NAME], apps: [{ name: 'vnc', port: up.port }] });
    const ok = await runDoctor({ url: `${g.wsUrl}/vnc/websockify`, headers: [['Host', NAME]], timeoutMs: 5000 });
    assert.equal(ok.exitCode, 0, formatReport(ok, true));
  } finally {
    await g.close();
    await up.close();
  }
});

test('porthole doctor (the built CLI) prints the refusal and the server_names line to add, and exits 1', async () => {
  const up = await wsUpstream();
  const g = await startGateway({ apps: [{ name: 'vnc', port: up.port }] });
  try {
    const r = await runCli(['doctor', `${g.wsUrl}/vnc/websockify`, '-H', `Host: ${NAME}`, '--timeout', '5']);
    assert.equal(r.code, 1, r.output);
    assert.match(r.stdout, /✗ .*PH_ERR_HOST_REFUSED/);
    assert.match(r.stdout, /DNS rebinding/);
    assert.ok(r.stdout.includes(`server_names: [${NAME}]`), r.stdout);
  } finally {
    await g.close();
    await up.close();
  }
});

test('doctor at a path no app owns: the close reason with the app\'s own URL is shown, and the fix points at it', async () => {
  const up = await wsUpstream();
  const g = await startGateway({ apps: [{ name: 'vnc', port: up.port, ws_paths: ['/websockify'] }] });
  try {
    const r = await runDoctor({ url: `${g.wsUrl}/websockify`, timeoutMs: 5000 });
    const rt = r.steps.find((s) => s.step === 'roundtrip')!;
    assert.equal(rt.data?.closeCode, 1008, formatReport(r, true));
    assert.equal(rt.data?.closeReason, `no app at /websockify; page under /vnc/? open http://vnc.localhost:${g.port}/ or use path=vnc/websockify`);
    assert.match(rt.fix ?? '', /^do what the reason says/);
  } finally {
    await g.close();
    await up.close();
  }
});
