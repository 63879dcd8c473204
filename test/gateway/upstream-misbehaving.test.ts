import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { closeServer, listen, startGateway } from '../helpers/net.js';

/** An upstream that answers every request with these exact bytes. */
async function rawAnswer(bytes: string): Promise<{ port: number; server: net.Server }> {
  const server = net.createServer((s) => {
    s.on('error', () => {});
    s.once('data', () => s.end(bytes));
  });
  return { port: await listen(server), server };
}

test('an upstream status Node cannot relay (099) is a 502 PH_ERR_UPSTREAM_BAD_RESPONSE, not a crash', async () => {
  const up = await rawAnswer('HTTP/1.1 099 Weird\r\nContent-Length: 0\r\n\r\n');
  const g = await startGateway({ apps: [{ name: 'w', port: up.port }] });
  try {
    const res = await fetch(`${g.url}/w/`, { headers: { Accept: 'application/json' } });
    assert.equal(res.status, 502);
    assert.equal(res.headers.get('x-porthole-error'), 'PH_ERR_UPSTREAM_BAD_RESPONSE');
    assert.match(((await res.json()) as { error: { message: string } }).error.message, /cannot be relayed/);
    // Still serving.
    assert.equal((await fetch(`${g.url}/_porthole/health`)).status, 200);
  } finally {
    await g.close();
    await closeServer(up.server);
  }
});
