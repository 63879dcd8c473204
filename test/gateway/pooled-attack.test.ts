/**
 * Pooled GETs (upstream-pool.ts) against upstreams and clients that misbehave:
 * what one response leaves on its connection must never reach the next one,
 * and a connection handed on must read its next answer.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { rawUpstream, request } from '../helpers/http.js';
import { sleep, startGateway, waitFor } from '../helpers/net.js';

test('the trailers of a chunked answer never become headers of the next answer on the same connection', async () => {
  let n = 0;
  const up = await rawUpstream((s) =>
    s.on('data', () => {
      // The first answer ends with a trailer; the second is plain.
      if (n++ === 0) s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Secret\r\n\r\n2\r\nok\r\n0\r\nX-Secret: for-the-first-client-only\r\n\r\n');
      else s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    }),
  );
  const g = await startGateway({ apps: [{ name: 'trail', port: up.port }] });
  try {
    const first = await request(`${g.url}/trail/1`);
    assert.equal(first.text, 'ok');
    const second = await request(`${g.url}/trail/2`);
    assert.equal(second.text, 'ok');
    assert.equal(up.sockets.length, 1, 'the second GET went on the first one\'s connection');
    assert.equal(second.headers['x-secret'], undefined, 'a trailer of the first answer reached the second client as a header');
  } finally {
    await g.close();
    await up.close();
  }
});
