/**
 * Body-less GETs, HEADs and OPTIONS go through the gateway's own connection
 * pools (upstream-pool.ts), the rest through http.request. Nothing of the
 * difference may show: an interim 100 Continue, the bytes of response headers
 * and of a non-ASCII reason phrase, an `Expect` header, a HEAD's answer, a
 * connection the upstream closes, resets or fills with bytes no request asked for.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { describe, test } from 'node:test';
import { rawUpstream, request } from '../helpers/http.js';
import { httpUpstream, listen, sleep, startGateway, waitFor } from '../helpers/net.js';

describe('GETs through the pool', () => {
  test('an interim 100 Continue before the answer to a GET: the client gets the answer', async () => {
    const up = await rawUpstream((s) => {
      s.on('data', () => s.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
    });
    const g = await startGateway({ apps: [{ name: 'interim', port: up.port }] });
    try {
      const r = await request(`${g.url}/interim/x`);
      assert.equal(r.status, 200);
      assert.equal(r.text, 'ok');
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('response header bytes and a non-ASCII reason phrase reach the client unchanged', async () => {
    const head = Buffer.concat([
      Buffer.from('HTTP/1.1 200 '),
      Buffer.from('Ça va', 'utf8'),
      Buffer.from('\r\nX-Name: caf'),
      Buffer.from([0xe9, 0xff]),
      Buffer.from('\r\nContent-Length: 2\r\n\r\nok'),
    ]);
    const up = await rawUpstream((s) => s.on('data', () => s.write(head)));
    const g = await startGateway({ apps: [{ name: 'bytes', port: up.port }] });
    try {
      const r = await request(`${g.url}/bytes/`);
      assert.equal(r.status, 200);
      assert.equal(r.statusMessage, Buffer.from('Ça va', 'utf8').toString('latin1'));
      assert.deepEqual(Buffer.from(String(r.headers['x-name']), 'latin1'), Buffer.from([0x63, 0x61, 0x66, 0xe9, 0xff]));
      assert.equal(r.text, 'ok');
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('a GET with an Expect header reaches the upstream with it', async () => {
    const up = await httpUpstream((req, res) => res.end(`expect=${req.headers.expect} ${req.method} ${req.url}`));
    const g = await startGateway({ apps: [{ name: 'exp', port: up.port }] });
    try {
      const r = await request(`${g.url}/exp/a`, { headers: { Expect: '100-continue' } });
      assert.equal(r.status, 200);
      assert.equal(r.text, 'expect=100-continue GET /a');
      // An OPTIONS and a GET without it take the pool and are answered alike.
      assert.equal((await request(`${g.url}/exp/b`, { method: 'OPTIONS' })).text, 'expect=undefined OPTIONS /b');
      assert.equal((await request(`${g.url}/exp/c`)).text, 'expect=undefined GET /c');
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('a client that leaves before its GET is answered: the upstream request is cancelled, the gateway serves on', async () => {
    const closed: string[] = [];
    const up = await httpUpstream((req, res) => {
      if (req.url === '/slow') {
        res.on('close', () => closed.push(req.url!));
        return; // never answers
      }
      res.end('fine');
    });
    const g = await startGateway({ apps: [{ name: 'slow', port: up.port }] });
    try {
      await new Promise<void>((ok) => {
        const req = http.get(`${g.url}/slow/slow`, { agent: false });
        req.on('error', () => ok());
        setTimeout(() => req.destroy(), 200);
      });
      for (let i = 0; i < 100 && closed.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(closed, ['/slow'], 'the upstream saw its request cancelled');
      assert.equal((await request(`${g.url}/slow/x`)).text, 'fine');
    } finally {
      await g.close();
      await up.close();
    }
  });
});

test('an idle upstream connection is closed after about 4 s, even when the upstream offers to keep it for 10 minutes', async () => {
  const up = http.createServer({ keepAliveTimeout: 600_000 }, (_req, res) => res.end('ok'));
  const closedAt: number[] = [];
  up.on('connection', (s) => s.on('close', () => closedAt.push(Date.now())));
  const port = await listen(up);
  const g = await startGateway({ apps: [{ name: 'long', port }] });
  try {
    const r = await request(`${g.url}/long/`);
    assert.equal(r.headers['keep-alive'], undefined, 'hop-by-hop, not relayed');
    const answered = Date.now();
    for (let i = 0; i < 160 && closedAt.length === 0; i++) await new Promise((ok) => setTimeout(ok, 50));
    assert.equal(closedAt.length, 1, 'the gateway closed its idle connection to the upstream');
    const idle = closedAt[0] - answered;
    assert.ok(idle >= 3000 && idle < 6000, `closed after ${idle} ms idle`);
  } finally {
    await g.close();
    up.closeAllConnections();
    await new Promise((ok) => up.close(ok));
  }
});

describe('upstream faults on pooled GETs', () => {
  test('a body delimited by the connection close that ends in a reset is cut at the client, not ended as whole', async () => {
    // No Content-Length, no chunking: the body runs until the upstream closes. A FIN ends it; a
    // reset (the app killed, a connection torn down) breaks it off, and the client must see that.
    const up = await rawUpstream((s) =>
      s.once('data', () => {
        s.write('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\nthe first half of a bo');
        setTimeout(() => s.resetAndDestroy(), 150);
      }),
    );
    const g = await startGateway({ apps: [{ name: 'eof', port: up.port }] });
    try {
      for (const method of ['GET', 'DELETE']) {
        // DELETE takes http.request, GET the pool: both tell the client the body broke off.
        await assert.rejects(request(`${g.url}/eof/x`, { method, timeoutMs: 10_000 }), (err: Error) => {
          assert.doesNotMatch(err.message, /no complete answer/, `${method}: the client hung`);
          return true;
        }, `${method}: a truncated body was ended as a whole one`);
      }
      assert.equal((await request(`${g.url}/_porthole/health`)).status, 200);
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('an upstream reset while the client is slow and the pooled connection paused: the gateway serves on', async () => {
    // A close-delimited event stream, sent in small pieces, then a reset.
    const up = await rawUpstream((s) =>
      s.once('data', () => {
        s.write('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/event-stream\r\n\r\n');
        let n = 0;
        const tick = setInterval(() => {
          if (++n <= 24) return void s.write(`data: ${'x'.repeat(1000)}\n\n`);
          clearInterval(tick);
          s.resetAndDestroy();
        }, 5);
      }),
    );
    const hold = await httpUpstream(() => {}); // never answers
    const g = await startGateway({ apps: [{ name: 'rst', port: up.port }, { name: 'hold', port: hold.port }] });
    const client = net.connect(g.port, '127.0.0.1');
    client.on('error', () => {});
    try {
      // Pipelined behind a response that never comes: the stream's response waits in the
      // gateway, whose writes to it report backpressure after 16 KiB, and the upstream connection
      // is paused with a few pieces still to read when the reset comes.
      client.write('GET /hold/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /rst/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      await sleep(600);
      assert.equal((await request(`${g.url}/_porthole/health`)).status, 200, 'the gateway is still up');
    } finally {
      client.destroy();
      await g.close();
      await Promise.all([up.close(), hold.close()]);
    }
  });

  for (const [what, head] of [
    ['two Content-Length headers', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok'],
    ['Content-Length beside Transfer-Encoding', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n'],
    ['a header line that is not a header after Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nthis is not a header\r\n\r\nok'],
  ] as const) {
    test(`a response head with ${what} is 502 PH_ERR_UPSTREAM_BAD_RESPONSE, as on the http.request path`, async () => {
      const up = await rawUpstream((s) => s.once('data', () => s.end(head)));
      const g = await startGateway({ apps: [{ name: 'bad', port: up.port }] });
      try {
        for (const method of ['GET', 'DELETE']) {
          const r = await request(`${g.url}/bad/`, { method });
          assert.equal(r.status, 502, method);
          assert.equal(r.headers['x-porthole-error'], 'PH_ERR_UPSTREAM_BAD_RESPONSE', method);
        }
      } finally {
        await g.close();
        await up.close();
      }
    });
  }
});

test('a client that leaves while its GET waits for a pooled connection costs no upstream connection', async () => {
  const held: http.ServerResponse[] = [];
  let closed = 0;
  const up = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    if (req.url === '/hold') held.push(res);
    else res.end('ok');
  });
  up.on('connection', (s) => s.on('close', () => closed++));
  const port = await listen(up);
  const g = await startGateway({ apps: [{ name: 'q', port }] });
  try {
    // Every connection of the pool (256) busy with a GET the upstream holds.
    const holds = Array.from({ length: 256 }, () => request(`${g.url}/q/hold`));
    await waitFor(() => held.length === 256, 15_000, '256 held requests');
    // One more waits in the pool's queue, and its client leaves.
    const waiting = http.get(`${g.url}/q/hold`, { agent: false });
    waiting.on('error', () => {});
    await sleep(200);
    waiting.destroy();
    await sleep(200);
    for (const res of held.splice(0)) res.end('done');
    assert.ok((await Promise.all(holds)).every((r) => r.text === 'done'));
    await sleep(300);
    assert.equal(held.length, 0, 'the abandoned GET never reached the upstream');
    assert.equal(closed, 0, 'no warm upstream connection was closed for it');
    assert.equal((await request(`${g.url}/q/x`)).text, 'ok');
  } finally {
    await g.close();
    up.closeAllConnections();
    await new Promise((ok) => up.close(ok));
  }
});

test('an upstream that sends 100 Continue before its answers gets each GET once, and the client the final answer', async () => {
  let received = 0;
  const up = await rawUpstream((s) =>
    s.on('data', (d: Buffer) => {
      for (const line of d.toString('latin1').split('\r\n')) if (line.startsWith('GET /')) received++;
      s.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    }),
  );
  const g = await startGateway({ apps: [{ name: 'interim', port: up.port }] });
  try {
    for (let i = 0; i < 3; i++) assert.equal((await request(`${g.url}/interim/${i}`)).text, 'ok');
    // The interim answer is read past on the pooled connection, as Node's client does: no GET is sent again.
    assert.equal(received, 3);
  } finally {
    await g.close();
    await up.close();
  }
});

test('a 304 or 204 that carries the Content-Length of the body it does not have reaches the client', async () => {
  // RFC 9110 §8.6: a 304 may say how long the representation is; a 204 saying so is wrong, but
  // it has no body either way. Nothing is missing: the answer is relayed, on both paths.
  const up = await httpUpstream((req, res) => {
    const status = req.url === '/fresh' ? 304 : 204;
    res.writeHead(status, { ETag: '"v1"', 'Content-Length': '1234' });
    res.end();
  });
  const g = await startGateway({ apps: [{ name: 'cond', port: up.port }] });
  try {
    for (const method of ['GET', 'DELETE']) {
      const fresh = await request(`${g.url}/cond/fresh`, { method, headers: { 'If-None-Match': '"v1"' } });
      assert.equal(fresh.status, 304, method);
      assert.equal(fresh.headers.etag, '"v1"', method);
      assert.equal(fresh.text, '', method);
      const empty = await request(`${g.url}/cond/empty`, { method });
      assert.equal(empty.status, 204, method);
    }
  } finally {
    await g.close();
    await up.close();
  }
});

test('a reason phrase in bytes that are not UTF-8 reaches the client byte for byte', async () => {
  // A latin1 é (0xE9): read and written as latin1, as on the http.request path.
  const head = Buffer.concat([Buffer.from('HTTP/1.1 200 R'), Buffer.from([0xe9]), Buffer.from('ussi\r\nContent-Length: 2\r\n\r\nok')]);
  const up = await rawUpstream((s) => s.on('data', () => s.write(head)));
  const g = await startGateway({ apps: [{ name: 'latin', port: up.port }] });
  try {
    const r = await request(`${g.url}/latin/`);
    assert.equal(r.status, 200);
    assert.equal(r.statusMessage, 'R\u00e9ussi');
    assert.equal(r.text, 'ok');
  } finally {
    await g.close();
    await up.close();
  }
});

test('a GET that meets a reset of the idle pooled connection it was about to take is sent on a new connection', async () => {
  const up = await rawUpstream((s) => s.on('data', () => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')));
  const g = await startGateway({ apps: [{ name: 'idle', port: up.port }] });
  const client = net.connect(g.port, '127.0.0.1');
  client.on('error', () => {});
  let answers = '';
  client.on('data', (d: Buffer) => (answers += d.toString('latin1')));
  try {
    await new Promise((ok) => client.once('connect', ok));
    client.write('GET /idle/1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await waitFor(() => answers.includes('\r\n\r\nok'), 5000, 'the first answer');
    assert.equal(up.sockets.length, 1);
    answers = '';
    // The next request and the upstream's reset of the idle connection reach the gateway in
    // the same turn of its event loop: the request has been given the connection, not written.
    client.write('GET /idle/2 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    up.sockets[0].resetAndDestroy();
    const until = Date.now() + 50;
    while (Date.now() < until);
    await waitFor(() => answers.includes('\r\n\r\n'), 5000, 'the second answer');
    assert.match(answers, /^HTTP\/1\.1 200 /, answers.split('\r\n')[0]);
    assert.equal(up.sockets.length, 2, 'sent on a new connection');
  } finally {
    client.destroy();
    await g.close();
    await up.close();
  }
});

describe('the pooled connection, read by Node\'s parser', () => {
  test('a HEAD is answered with the length of the body it does not carry, and its connection then carries a GET', async () => {
    const methods: string[] = [];
    const up = await rawUpstream((s) =>
      s.on('data', (d: Buffer) => {
        const method = d.toString('latin1').split(' ')[0];
        methods.push(method);
        // A HEAD's answer says how long the GET's body is, and has none.
        s.write(method === 'HEAD' ? 'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n' : 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      }),
    );
    const g = await startGateway({ apps: [{ name: 'head', port: up.port }] });
    try {
      const head = await request(`${g.url}/head/x`, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(head.headers['content-length'], '1000');
      assert.equal(head.text, '');
      assert.equal((await request(`${g.url}/head/y`)).text, 'ok');
      assert.deepEqual(methods, ['HEAD', 'GET']);
      assert.equal(up.sockets.length, 1, 'the GET went on the HEAD\'s connection');
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('bytes the upstream sends past its answer are never read as the next request\'s answer', async () => {
    const up = await rawUpstream((s) =>
      s.on('data', () => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale')),
    );
    const g = await startGateway({ apps: [{ name: 'extra', port: up.port }] });
    try {
      for (let i = 0; i < 3; i++) assert.equal((await request(`${g.url}/extra/${i}`)).text, 'ok', `request ${i}`);
      // Each connection that carried such bytes was closed, not reused.
      assert.equal(up.sockets.length, 3);
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('an answer with 40 headers reaches the client with all of them, in order', async () => {
    const names = Array.from({ length: 40 }, (_, i) => `X-H${i}`);
    const up = await rawUpstream((s) =>
      s.on('data', () => s.write(`HTTP/1.1 200 OK\r\n${names.map((n, i) => `${n}: v${i}\r\n`).join('')}Content-Length: 2\r\n\r\nok`)),
    );
    const g = await startGateway({ apps: [{ name: 'many', port: up.port }] });
    try {
      const r = await request(`${g.url}/many/`);
      assert.equal(r.text, 'ok');
      const relayed = r.rawHeaders.filter((_, i) => i % 2 === 0 && r.rawHeaders[i].startsWith('X-H'));
      assert.deepEqual(relayed, names);
      assert.equal(r.headers['x-h39'], 'v39');
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('a body that ends with the connection reaches the client whole, and the next GET gets a new connection', async () => {
    const body = Buffer.alloc(300_000, 0x61);
    const up = await rawUpstream((s) =>
      s.once('data', () => {
        s.write('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n');
        s.end(body);
      }),
    );
    const g = await startGateway({ apps: [{ name: 'eof', port: up.port }] });
    try {
      for (let i = 0; i < 2; i++) {
        const r = await request(`${g.url}/eof/${i}`);
        assert.equal(r.status, 200);
        assert.equal(r.text.length, body.length);
      }
      assert.equal(up.sockets.length, 2);
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('a GET that waited for a connection (all 256 busy) takes the first one freed', async () => {
    const held: http.ServerResponse[] = [];
    const up = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
      if (req.url === '/hold') held.push(res);
      else res.end(`answer to ${req.url}`);
    });
    let connections = 0;
    up.on('connection', () => connections++);
    const port = await listen(up);
    const g = await startGateway({ apps: [{ name: 'q', port }] });
    try {
      const holds = Array.from({ length: 256 }, () => request(`${g.url}/q/hold`));
      await waitFor(() => held.length === 256, 15_000, '256 held requests');
      const waiting = request(`${g.url}/q/late`);
      await sleep(200);
      held.shift()!.end('done');
      assert.equal((await waiting).text, 'answer to /late');
      assert.equal(connections, 256, 'no 257th connection');
      for (const res of held.splice(0)) res.end('done');
      assert.ok((await Promise.all(holds)).every((r) => r.text === 'done'));
    } finally {
      await g.close();
      up.closeAllConnections();
      await new Promise((ok) => up.close(ok));
    }
  });
});
