/**
 * `porthole conformance wss://…`: a `ws` echo server behind TLS with a
 * self-signed certificate made with openssl for this run. Refused with a hint
 * by default; tested with --insecure and with --ca.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { WebSocketServer } from 'ws';
import { selfSigned } from '../tls/tls-helpers.js';
import { runCli } from './helpers.js';

test('wss:// with a self-signed certificate: PH_ERR_CONFORMANCE_CONNECT with a hint by default; --insecure and --ca run the cases', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'porthole-conformance-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { cert: certPem, key: keyPem, certFile: cert } = selfSigned(dir, 'server');
  const server = https.createServer({ cert: certPem, key: keyPem });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => {
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  t.after(() => {
    for (const c of wss.clients) c.terminate();
    server.close();
  });
  const url = `wss://127.0.0.1:${(server.address() as net.AddressInfo).port}/`;

  const refused = await runCli(['conformance', url, '--cases', '1.1.1']);
  assert.equal(refused.code, 1, refused.output);
  assert.match(refused.stderr, /PH_ERR_CONFORMANCE_CONNECT: .*SELF_SIGNED.*--ca FILE trusts its CA, --insecure skips the check/);

  const insecure = await runCli(['conformance', url, '--insecure', '--cases', '1.*,2.*,7.7.*']);
  assert.equal(insecure.code, 0, insecure.output);
  assert.match(insecure.stdout, /: 40 cases in .*\n[\s\S]*^result: nothing FAILED$/m);

  const trusted = await runCli(['conformance', url, '--ca', cert, '--cases', '5.*']);
  assert.equal(trusted.code, 0, trusted.output);
  assert.match(trusted.stdout, /: 20 cases in [\s\S]*^result: nothing FAILED$/m);
});
