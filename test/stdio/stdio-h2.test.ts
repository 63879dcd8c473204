/**
 * A stdio app reached over HTTP/2 (RFC 8441): the extended CONNECT goes the
 * way every upgrade goes, so the program gets its lines and the client its
 * answers and the exit status, as over HTTP/1.1.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startGateway, waitFor } from '../helpers/net.js';
import { selfSigned, tempDir } from '../tls/tls-helpers.js';
import { clientFrame, closeOf, h2Connect, h2WebSocket } from '../h2/h2-helpers.js';
import { allGone, killAll } from './proc.js';

const TEXT = 0x1;

describe('stdio apps over HTTP/2', { timeout: 30_000 }, () => {
  test('lines both ways over an extended CONNECT stream; the exit status arrives as the close frame', async () => {
    const tmp = tempDir('porthole-stdio-h2-');
    const pair = selfSigned(tmp.dir, 'gw');
    const gw = await startGateway({ tls: { cert: pair.certFile, key: pair.keyFile }, apps: [{ name: 'sh', stdio: 'read line; echo "got $line"; exit 4' }] });
    const session = await h2Connect(gw.port, pair.cert);
    const pids: number[] = [];
    try {
      const ws = await h2WebSocket(session, '/sh/');
      assert.equal(ws.status, 200);
      pids.push(...(await waitFor(() => (gw.gw.stdio.pids().length ? gw.gw.stdio.pids() : undefined), 5000, 'the program')));
      ws.stream.write(clientFrame(TEXT, 'over h2'));
      const first = await ws.frames.next();
      assert.equal(first?.opcode, TEXT);
      assert.equal(first?.payload.toString(), 'got over h2');
      const end = closeOf(await ws.frames.next());
      assert.equal(end.code, 1011);
      assert.match(end.reason, /^PH_ERR_STDIO_EXIT: sh: exit code 4$/);
      ws.stream.end();
      await allGone(pids);
    } finally {
      session.close();
      await gw.close();
      killAll(pids);
      tmp.remove();
    }
  });
});
