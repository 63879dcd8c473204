/**
 * Pooled GETs (upstream-pool.ts) against upstreams and clients that misbehave:
 * what one response leaves on its connection must never reach the next one,
 * and a connection handed on must read its next answer.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { createGateway } from '../../src/index.js';
import { rawUpstream, request } from '../helpers/http.js';
import { listen, sleep, startGateway, waitFor } from '../helpers/net.js';

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

test('a connection whose last body piece met backpressure at the client is read again when it carries the next GET', async () => {
  // 40 KiB in one read: more than a client write's 16 KiB high-water mark, so writing it to the
  // client reports backpressure and the pooled connection pauses, just as the answer is whole.
  const body = Buffer.alloc(40 * 1024, 0x62);
  const up = await rawUpstream((s) =>
    s.on('data', (d: Buffer) => {
      if (d.toString('latin1').startsWith('GET /big ')) s.write(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`), body]));
      else s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    }),
  );
  const g = await startGateway({ apps: [{ name: 'slow', port: up.port, response_timeout: '3s' }] });
  try {
    const big = await request(`${g.url}/slow/big`);
    assert.equal(big.body.length, body.length);
    const r = await request(`${g.url}/slow/next`, { timeoutMs: 6000 });
    assert.equal(up.sockets.length, 1, 'the next GET took the same connection');
    assert.equal(r.status, 200, `${r.status} ${r.headers['x-porthole-error']}`);
    assert.equal(r.text, 'ok');
  } finally {
    await g.close();
    await up.close();
  }
});

test('a chunked answer of many small chunks to a slow client waits for one drain, not one per chunk', async () => {
  // One read holds a chunk past the client's high-water mark and 50 tiny ones after it: each
  // of them is handed to the client while it is already behind.
  const chunks = `5000\r\n${'c'.repeat(0x5000)}\r\n${'1\r\nd\r\n'.repeat(50)}0\r\n\r\n`;
  const up = await rawUpstream((s) => s.on('data', () => s.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${chunks}`)));
  const g = await startGateway({ apps: [{ name: 'tiny', port: up.port }] });
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
  process.on('warning', onWarning);
  try {
    const r = await request(`${g.url}/tiny/`);
    assert.equal(r.body.length, 0x5000 + 50);
    await sleep(50);
    assert.deepEqual(warnings, []);
  } finally {
    process.off('warning', onWarning);
    await g.close();
    await up.close();
  }
});

test('a set_headers value that HTTP/1.1 cannot carry (a character above U+00FF) is refused when the config loads, never a crash of the gateway per request', async () => {
  // Node's client throws on such a head (ERR_INVALID_CHAR), once per request: the config check
  // names the character instead, before the gateway serves anything.
  assert.throws(
    () => createGateway({ apps: [{ name: 'wide', port: 9, set_headers: { 'X-Who': '日本' } }] }),
    (err: Error & { code?: string }) => err.code === 'PH_ERR_CONFIG' && /set_headers\.X-Who: header values are written as latin1 text: "日" \(U\+65E5\)/.test(err.message),
  );
});

test('an upstream that closes in the middle of its response head: 502 PH_ERR_UPSTREAM_RESET on both paths', async () => {
  // Node's client calls that a socket hang up (no answer came); the pool read it as a head that is
  // not HTTP (the parser's verdict on a head cut short), a different fault in the log and the page.
  const up = await rawUpstream((s) => s.once('data', () => s.end('HTTP/1.1 200 OK\r\nX-Half')));
  const g = await startGateway({ apps: [{ name: 'half', port: up.port }] });
  try {
    for (const method of ['GET', 'DELETE']) {
      const r = await request(`${g.url}/half/`, { method });
      assert.equal(r.status, 502, method);
      assert.equal(r.headers['x-porthole-error'], 'PH_ERR_UPSTREAM_RESET', method);
    }
  } finally {
    await g.close();
    await up.close();
  }
});

test('the start of an answer no request asked for closes the connection at once, so the next GET never reads past it', async () => {
  // A second answer begun right behind the first, and not finished in that read: Node's client
  // reads each request's answer with a fresh parser; the pooled connection must not carry the
  // half-read head over to the next GET, whose own answer would then be read as its continuation.
  const up = await rawUpstream((s) =>
    s.on('data', (d: Buffer) => {
      if (d.toString('latin1').startsWith('GET /1 ')) s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Le');
      else s.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh');
    }),
  );
  const g = await startGateway({ apps: [{ name: 'begun', port: up.port }] });
  try {
    assert.equal((await request(`${g.url}/begun/1`)).text, 'ok');
    await sleep(50);
    const r = await request(`${g.url}/begun/2`);
    assert.equal(r.status, 200, `${r.status} ${r.headers['x-porthole-error']}`);
    assert.equal(r.text, 'fresh');
    assert.equal(up.sockets.length, 2, 'the second GET went on a new connection');
  } finally {
    await g.close();
    await up.close();
  }
});

test('a GET in flight on a reused connection when the gateway closes is not sent again to the upstream', async () => {
  const held: http.ServerResponse[] = [];
  let connections = 0;
  const up = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    if (req.url === '/hold') held.push(res);
    else res.end('ok');
  });
  up.on('connection', () => connections++);
  const port = await listen(up);
  const g = await startGateway({ apps: [{ name: 'q', port }] });
  try {
    assert.equal((await request(`${g.url}/q/warm`)).text, 'ok');
    // On the warm connection: the pool's close fails it as closed, which is no reason to retry.
    const hold = request(`${g.url}/q/hold`).catch(() => 'cut');
    await waitFor(() => held.length === 1, 5000, 'the held GET');
    await g.close();
    assert.equal(await hold, 'cut');
    await sleep(300);
    assert.equal(held.length, 1, 'the GET reached the upstream again after the gateway closed');
    assert.equal(connections, 1, 'a connection was opened after the gateway closed');
  } finally {
    up.closeAllConnections();
    await new Promise((ok) => up.close(ok));
  }
});

test('at the connection cap, requests that waited go first: one that comes as a connection is freed queues behind them', async () => {
  const { H1Pool } = await import('../../src/gateway/upstream-pool.js');
  type Ex = import('../../src/gateway/upstream-pool.js').Exchange;
  const held: http.ServerResponse[] = [];
  const up = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    if (req.url === '/hold') held.push(res);
    else res.end(req.url);
  });
  const port = await listen(up);
  const pool = new H1Pool({ kind: 'tcp', host: '127.0.0.1', port, label: `127.0.0.1:${port}` } as never, 0);
  const order: string[] = [];
  const exchange = (name: string, onComplete?: () => void): Ex => ({
    conn: null,
    sent() {},
    head: () => false,
    data: (chunk) => (order.push(`${name}:${chunk.toString()}`), true),
    complete: () => onComplete?.(),
    failed: (err) => order.push(`${name} failed: ${err.message}`),
  });
  const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;
  try {
    // Whichever held request is answered first brings a newcomer the moment its connection is freed.
    let late = false;
    const bringLate = () => {
      if (!late) pool.request(exchange('late'), get('/late'));
      late = true;
    };
    for (let i = 0; i < 256; i++) pool.request(exchange(`hold${i}`, bringLate), get('/hold'));
    await waitFor(() => held.length === 256, 15_000, '256 held requests');
    pool.request(exchange('first'), get('/first'));
    pool.request(exchange('second'), get('/second'));
    // The first held answer ends; as it completes (its connection just freed), a new request comes.
    held.shift()!.end('done');
    // The freed connection carries the three in turn: the two that waited, then the newcomer.
    await waitFor(() => order.filter((o) => !o.startsWith('hold')).length === 3, 5000, 'three answered');
    assert.deepEqual(order.filter((o) => !o.startsWith('hold')), ['first:/first', 'second:/second', 'late:/late']);
  } finally {
    pool.destroy();
    for (const res of held.splice(0)) res.end();
    up.closeAllConnections();
    await new Promise((ok) => up.close(ok));
  }
});

test('an HTTP/1.0 upstream keeps its connection for the next GET: the pooled request asks for keep-alive, as http.request does', async () => {
  const up = await rawUpstream((s) =>
    s.on('data', (d: Buffer) => {
      // An HTTP/1.0 server keeps a connection open only when the request asks it to.
      if (/\r\nconnection: *keep-alive\r\n/i.test(d.toString('latin1'))) s.write('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok');
      else s.end('HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok');
    }),
  );
  const g = await startGateway({ apps: [{ name: 'old', port: up.port }] });
  try {
    for (let i = 0; i < 3; i++) assert.equal((await request(`${g.url}/old/${i}`)).text, 'ok');
    assert.equal(up.sockets.length, 1);
  } finally {
    await g.close();
    await up.close();
  }
});
