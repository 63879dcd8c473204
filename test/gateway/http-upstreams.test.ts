import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { after, before, describe, test } from 'node:test';
import type tls from 'node:tls';
import { rawUpstream, request, selfSignedCert, tempDir, type TempDir } from '../helpers/http.js';
import { closeServer, httpUpstream, listen, startGateway } from '../helpers/net.js';

/** A port nothing listens on (bound, then released). */
async function deadPort(): Promise<number> {
  const s = http.createServer();
  const port = await listen(s);
  await closeServer(s);
  return port;
}

describe('https upstreams', () => {
  let dir: TempDir;
  let server: https.Server;
  let port: number;
  const servernames: (string | false | null)[] = [];

  before(async () => {
    dir = tempDir();
    const { key, cert } = selfSignedCert(dir);
    server = https.createServer({ key, cert }, (req, res) => {
      servernames.push((req.socket as tls.TLSSocket).servername);
      res.end(`tls ${req.url} host=${req.headers.host}`);
    });
    port = await listen(server);
  });
  after(async () => {
    await closeServer(server);
    dir.remove();
  });

  test('a self-signed upstream certificate fails with 502 PH_ERR_UPSTREAM_TLS by default', async () => {
    const g = await startGateway({ apps: [{ name: 's', url: `https://127.0.0.1:${port}` }] });
    try {
      const r = await request(`${g.url}/s/x`);
      assert.equal(r.status, 502);
      assert.equal(r.headers['x-porthole-error'], 'PH_ERR_UPSTREAM_TLS');
      assert.match(r.text, /TLS/);
    } finally {
      await g.close();
    }
  });

  test('tls_verify: false accepts the self-signed certificate', async () => {
    const g = await startGateway({ apps: [{ name: 's', url: `https://127.0.0.1:${port}`, tls_verify: false }] });
    try {
      const r = await request(`${g.url}/s/x?y=1`);
      assert.equal(r.status, 200);
      assert.equal(r.text, `tls /x?y=1 host=127.0.0.1:${port}`, 'url targets get their own host by default');
    } finally {
      await g.close();
    }
  });

  test('SNI: url https://localhost:PORT sends servername localhost', async () => {
    const g = await startGateway({ apps: [{ name: 's', url: `https://localhost:${port}`, tls_verify: false }] });
    try {
      servernames.length = 0;
      const r = await request(`${g.url}/s/sni`);
      assert.equal(r.status, 200);
      assert.equal(r.text, `tls /sni host=localhost:${port}`);
      assert.deepEqual(servernames, ['localhost']);
    } finally {
      await g.close();
    }
  });

  test('connect_timeout: 0 means no connect limit, like the other timeouts, not a 0 ms timer', async () => {
    // A TLS handshake takes a few ms, so a 0 ms timer would fail every request.
    const g = await startGateway({ connect_timeout: 0, apps: [{ name: 's', url: `https://127.0.0.1:${port}`, tls_verify: false }] });
    try {
      const r = await request(`${g.url}/s/zero`);
      assert.equal(r.headers['x-porthole-error'], undefined);
      assert.equal(r.status, 200);
    } finally {
      await g.close();
    }
  });

  test('connect_timeout fires (504 PH_ERR_UPSTREAM_CONNECT_TIMEOUT) when TCP connects but TLS never starts', async () => {
    const mute = await rawUpstream((s: net.Socket) => s.resume()); // accepts, reads, never answers
    const g = await startGateway({ apps: [{ name: 'm', url: `https://127.0.0.1:${mute.port}`, connect_timeout: '300ms', response_timeout: 30 }] });
    try {
      const t0 = Date.now();
      const r = await request(`${g.url}/m/`, { headers: { Accept: 'application/json' } });
      const ms = Date.now() - t0;
      assert.equal(r.status, 504);
      assert.equal(r.headers['x-porthole-error'], 'PH_ERR_UPSTREAM_CONNECT_TIMEOUT');
      assert.equal(JSON.parse(r.text).error.app, 'm');
      assert.ok(mute.sockets.length >= 1, 'the TCP connection was made');
      assert.ok(ms >= 250 && ms < 10_000, `answered after ${ms} ms`);
    } finally {
      await g.close();
      await mute.close();
    }
  });
});

describe('url, socket and plain upstreams', () => {
  test('url with a base path prepends it to every forwarded path', async () => {
    const seen: string[] = [];
    const up = await httpUpstream((req, res) => {
      seen.push(req.url!);
      res.end('ok');
    });
    const g = await startGateway({ apps: [{ name: 'b', url: `http://127.0.0.1:${up.port}/base` }, { name: 'slash', url: `http://127.0.0.1:${up.port}/base/` }] });
    try {
      await request(`${g.url}/b/x/y?z=1`);
      await request(`${g.url}/b/`);
      await request(`${g.url}/slash/q`);
      assert.deepEqual(seen, ['/base/x/y?z=1', '/base/', '/base/q']);
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('url with a base path: Location and cookie paths under the base come back under the prefix', async () => {
    let origin = '';
    const up = await httpUpstream((req, res) => {
      if (req.url === '/base/abs') res.writeHead(302, { Location: `${origin}/base/after` });
      else res.writeHead(302, { Location: '/base/login', 'Set-Cookie': 'sid=1; Path=/base' });
      res.end();
    });
    origin = `http://127.0.0.1:${up.port}`;
    const g = await startGateway({ apps: [{ name: 'b', url: `${origin}/base` }] });
    try {
      const rel = await request(`${g.url}/b/start`);
      assert.equal(rel.headers.location, '/b/login', 'the client would otherwise be sent to /b/base/login, which maps to /base/base/login');
      assert.deepEqual(rel.headers['set-cookie'], ['sid=1; Path=/b']);
      const abs = await request(`${g.url}/b/abs`);
      assert.equal(abs.headers.location, '/b/after');
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('a unix-socket upstream works', async () => {
    const dir = tempDir();
    const server = http.createServer((req, res) => res.end(`unix ${req.method} ${req.url} host=${req.headers.host}`));
    const sock = dir.file('app.sock');
    await new Promise<void>((ok) => server.listen(sock, ok));
    const g = await startGateway({ apps: [{ name: 'u', socket: sock }] });
    try {
      const r = await request(`${g.url}/u/path?q=1`);
      assert.equal(r.status, 200);
      assert.equal(r.text, `unix GET /path?q=1 host=127.0.0.1:${g.port}`);
      const post = await request(`${g.url}/u/p`, { method: 'POST', body: 'x' });
      assert.equal(post.text, `unix POST /p host=127.0.0.1:${g.port}`);
    } finally {
      await g.close();
      await closeServer(server);
      dir.remove();
    }
  });

  test('a missing unix socket is 502 PH_ERR_UPSTREAM_REFUSED', async () => {
    const g = await startGateway({ apps: [{ name: 'u', socket: '/tmp/porthole-test-no-such-dir/none.sock' }] });
    try {
      const r = await request(`${g.url}/u/`);
      assert.equal(r.status, 502);
      assert.equal(r.headers['x-porthole-error'], 'PH_ERR_UPSTREAM_REFUSED');
    } finally {
      await g.close();
    }
  });
});

describe('upstream failures', () => {
  test('response_timeout fires (504 PH_ERR_UPSTREAM_TIMEOUT) when the upstream accepts the request and never answers', async () => {
    let got = 0;
    const up = await httpUpstream(() => {
      got++; // never answers
    });
    const g = await startGateway({ apps: [{ name: 'slow', port: up.port, response_timeout: '300ms' }] });
    try {
      const t0 = Date.now();
      const r = await request(`${g.url}/slow/`);
      const ms = Date.now() - t0;
      assert.equal(r.status, 504);
      assert.equal(r.headers['x-porthole-error'], 'PH_ERR_UPSTREAM_TIMEOUT');
      assert.equal(got, 1, 'the upstream received the request');
      assert.ok(ms >= 250 && ms < 10_000, `answered after ${ms} ms`);
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('response_timeout does not cut a response whose head came in time', async () => {
    const up = await httpUpstream((_req, res) => {
      res.writeHead(200);
      res.write('a');
      setTimeout(() => res.end('b'), 800);
    });
    const g = await startGateway({ apps: [{ name: 'slowbody', port: up.port, response_timeout: '300ms' }] });
    try {
      const r = await request(`${g.url}/slowbody/`);
      assert.equal(r.status, 200);
      assert.equal(r.text, 'ab');
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('an upstream that is down is 502 PH_ERR_UPSTREAM_REFUSED', async () => {
    const port = await deadPort();
    const g = await startGateway({ apps: [{ name: 'down', port }] });
    try {
      const r = await request(`${g.url}/down/`);
      assert.equal(r.status, 502);
      assert.equal(r.headers['x-porthole-error'], 'PH_ERR_UPSTREAM_REFUSED');
    } finally {
      await g.close();
    }
  });

  test('an upstream that answers garbage is 502 PH_ERR_UPSTREAM_BAD_RESPONSE', async () => {
    const up = await rawUpstream((s) => s.once('data', () => s.end('SSH-2.0-OpenSSH_9.2p1 Debian\r\nnot http at all\r\n\r\n')));
    const g = await startGateway({ apps: [{ name: 'ssh', port: up.port }] });
    try {
      const r = await request(`${g.url}/ssh/`);
      assert.equal(r.status, 502);
      assert.equal(r.headers['x-porthole-error'], 'PH_ERR_UPSTREAM_BAD_RESPONSE');
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('an upstream that resets mid-body cuts the client (no hang, no clean end) and the gateway keeps serving', async () => {
    const up = await rawUpstream((s) =>
      s.once('data', (d: Buffer) => {
        const chunked = d.toString().startsWith('GET /chunked');
        s.write(chunked ? 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n' : 'HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\nhello');
        setTimeout(() => s.resetAndDestroy(), 100);
      }),
    );
    const ok = await httpUpstream((_req, res) => res.end('still here'));
    const g = await startGateway({ apps: [{ name: 'cut', port: up.port }, { name: 'ok', port: ok.port }] });
    try {
      for (const path of ['/cut/length', '/cut/chunked']) {
        await assert.rejects(request(`${g.url}${path}`, { timeoutMs: 15_000 }), (err: Error) => {
          assert.doesNotMatch(err.message, /no complete answer/, `${path}: the client hung instead of seeing the cut`);
          return true;
        });
      }
      const r = await request(`${g.url}/ok/`);
      assert.equal(r.text, 'still here');
      const again = await request(`${g.url}/_porthole/health`);
      assert.equal(again.status, 200);
    } finally {
      await g.close();
      await Promise.all([up.close(), ok.close()]);
    }
  });

  test('an idempotent request on a kept-alive connection the upstream just closed is retried once', async () => {
    // Every connection answers its first request, then closes without answering the second.
    const up = await rawUpstream((s) => {
      let n = 0;
      s.on('data', () => {
        if (++n === 1) s.write(`HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nfirst`);
        else s.destroy();
      });
    });
    const g = await startGateway({ apps: [{ name: 'flaky', port: up.port }] });
    try {
      assert.equal((await request(`${g.url}/flaky/1`)).text, 'first');
      const second = await request(`${g.url}/flaky/2`);
      assert.equal(second.status, 200);
      assert.equal(second.text, 'first');
      assert.equal(up.sockets.length, 2, 'the retry used a new connection');
      // Requests with a body have connections of their own (http.request's agent, not the pool
      // of body-less GETs): the first POST opens one, the second reuses it and finds it closed.
      const first = await request(`${g.url}/flaky/3`, { method: 'POST', body: 'not idempotent' });
      assert.equal(first.text, 'first');
      const post = await request(`${g.url}/flaky/4`, { method: 'POST', body: 'not idempotent' });
      assert.equal(up.sockets.length, 3, 'the POST was not sent again on a new connection');
      assert.equal(post.status, 502, 'a POST with a body is not retried');
      assert.equal(post.headers['x-porthole-error'], 'PH_ERR_UPSTREAM_RESET');
    } finally {
      await g.close();
      await up.close();
    }
  });
});
