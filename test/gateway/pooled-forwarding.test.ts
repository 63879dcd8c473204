/**
 * Body-less GETs and OPTIONS go through undici's pool (upstream-pool.ts), the
 * rest through http.request. What undici does differently must not show:
 * an interim 100 Continue (undici fails the exchange), the bytes of response
 * headers and of a non-ASCII reason phrase (undici decodes the phrase as
 * UTF-8), a header undici refuses to send (`Expect`).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';
import { rawUpstream, request } from '../helpers/http.js';
import { httpUpstream, listen, startGateway } from '../helpers/net.js';

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
