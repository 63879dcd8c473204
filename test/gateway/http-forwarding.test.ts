import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { rawUpstream, rawValues, request, sha256, until } from '../helpers/http.js';
import { httpUpstream, rawRequest, startGateway, type TestGateway } from '../helpers/net.js';

type Upstream = Awaited<ReturnType<typeof httpUpstream>>;

/** An upstream that records each request's head and answers 200 `ok`. */
async function recorder(): Promise<Upstream & { seen: http.IncomingMessage[] }> {
  const seen: http.IncomingMessage[] = [];
  const up = await httpUpstream((req, res) => {
    seen.push(req);
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  return Object.assign(up, { seen });
}

describe('streaming', () => {
  test('Server-Sent Events arrive one by one, not at the end', async () => {
    const total = 8;
    let sent = 0;
    const up = await httpUpstream((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
      const tick = () => {
        if (res.destroyed) return;
        res.write(`data: event ${sent}\n\n`);
        sent++;
        if (sent === total) res.end();
        else setTimeout(tick, 200);
      };
      tick();
    });
    const g = await startGateway({ apps: [{ name: 'sse', port: up.port }] });
    try {
      const res = await fetch(`${g.url}/sse/events`, { headers: { Accept: 'text/event-stream' } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'text/event-stream');
      const reader = res.body!.getReader();
      const first = await reader.read();
      assert.match(Buffer.from(first.value!).toString(), /^data: event 0/);
      assert.ok(sent < total, `the first event arrived only after all ${total} were sent: the stream was buffered`);
      let text = Buffer.from(first.value!).toString();
      for (;;) {
        const r = await reader.read();
        if (r.done) break;
        text += Buffer.from(r.value).toString();
      }
      assert.equal(text, Array.from({ length: total }, (_, i) => `data: event ${i}\n\n`).join(''));
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('a 50 MiB download streams through intact', async () => {
    const body = randomBytes(50 * 1024 * 1024);
    const up = await httpUpstream((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      // Chunked writes, no Content-Length: the gateway must not wait for the end.
      let off = 0;
      const pump = () => {
        while (off < body.length) {
          const chunk = body.subarray(off, off + 256 * 1024);
          off += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    const g = await startGateway({ apps: [{ name: 'dl', port: up.port }] });
    try {
      const r = await request(`${g.url}/dl/big.bin`, { timeoutMs: 60_000 });
      assert.equal(r.status, 200);
      assert.equal(r.body.length, body.length);
      assert.equal(sha256(r.body), sha256(body));
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('a 50 MiB upload streams through intact, and the upstream receives it before the client has finished sending', async () => {
    const size = 50 * 1024 * 1024;
    const body = randomBytes(size);
    let received = 0;
    let upstreamHash = '';
    const up = await httpUpstream((req, res) => {
      const h = sha256Stream();
      req.on('data', (d: Buffer) => {
        received += d.length;
        h.update(d);
      });
      req.on('end', () => {
        upstreamHash = h.digest();
        res.end(JSON.stringify({ received, hash: upstreamHash }));
      });
    });
    const g = await startGateway({ apps: [{ name: 'ul', port: up.port }] });
    try {
      const answer = new Promise<{ status: number; text: string }>((ok, fail) => {
        const req = http.request(`${g.url}/ul/upload`, { method: 'POST', agent: false, headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(size) } });
        req.on('error', fail);
        req.on('response', (res) => {
          let text = '';
          res.on('data', (d) => (text += d));
          res.on('end', () => ok({ status: res.statusCode!, text }));
        });
        void (async () => {
          // Send the first MiB, then wait until the upstream has seen bytes while most of the body is still unsent.
          const first = 1024 * 1024;
          req.write(body.subarray(0, first));
          try {
            await until(() => received > 0, 20_000, 'the upstream to receive the first chunk');
          } catch (err) {
            req.destroy(err as Error);
            return;
          }
          for (let off = first; off < size; off += 256 * 1024) {
            if (!req.write(body.subarray(off, off + 256 * 1024))) await new Promise((r) => req.once('drain', r));
          }
          req.end();
        })();
      });
      const r = await answer;
      assert.equal(r.status, 200);
      const got = JSON.parse(r.text);
      assert.equal(got.received, size);
      assert.equal(got.hash, sha256(body));
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('a chunked upload without Content-Length streams through intact', async () => {
    const body = randomBytes(3 * 1024 * 1024 + 17);
    const up = await httpUpstream((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (d: Buffer) => chunks.push(d));
      req.on('end', () => res.end(sha256(Buffer.concat(chunks))));
    });
    const g = await startGateway({ apps: [{ name: 'ul', port: up.port }] });
    try {
      const r = await new Promise<string>((ok, fail) => {
        const req = http.request(`${g.url}/ul/`, { method: 'PUT', agent: false });
        req.on('error', fail);
        req.on('response', (res) => {
          let t = '';
          res.on('data', (d) => (t += d));
          res.on('end', () => ok(t));
        });
        for (let off = 0; off < body.length; off += 100_000) req.write(body.subarray(off, off + 100_000));
        req.end();
      });
      assert.equal(r, sha256(body));
    } finally {
      await g.close();
      await up.close();
    }
  });
});

/** An incremental sha256, so the upstream never holds the whole upload. */
function sha256Stream() {
  const h = createHash('sha256');
  return { update: (b: Buffer) => h.update(b), digest: () => h.digest('hex') };
}

describe('request bodies on methods without a default body', () => {
  // Node's server removes the client's chunked framing. Unless the gateway asks for chunked
  // framing again, Node's client sends a GET or DELETE body unframed, and the upstream reads
  // it as the next request on the kept-alive connection: request smuggling.
  test('a chunked GET or DELETE body is re-framed, never read upstream as a smuggled request', async () => {
    const seen: string[] = [];
    const up = await httpUpstream((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        seen.push(`${req.method} ${req.url} body=${JSON.stringify(body)}`);
        res.end(`answer to ${req.method} ${req.url}`);
      });
    });
    const g = await startGateway({ apps: [{ name: 'a', port: up.port }] });
    try {
      const smuggled = 'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n';
      for (const method of ['GET', 'DELETE']) {
        const chunk = `${smuggled.length.toString(16)}\r\n${smuggled}\r\n0\r\n\r\n`;
        const out = await rawRequest(g.port, `${method} /a/first HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n${chunk}`, 1500);
        assert.match(out, new RegExp(`^HTTP/1\\.1 200 OK[\\s\\S]*answer to ${method} /first`));
        // The next request through the gateway gets its own answer, not one queued by a smuggled request.
        const next = await request(`${g.url}/a/next`);
        assert.equal(next.text, 'answer to GET /next');
      }
      assert.deepEqual(seen, [
        `GET /first body=${JSON.stringify(smuggled)}`,
        'GET /next body=""',
        `DELETE /first body=${JSON.stringify(smuggled)}`,
        'GET /next body=""',
      ]);
    } finally {
      await g.close();
      await up.close();
    }
  });
});

describe('response headers', () => {
  let up: Upstream;
  let gw: TestGateway;
  let upOrigin: string;

  before(async () => {
    up = await httpUpstream((req, res) => {
      // Same answers whether the prefix was stripped (/loc) or not (/raw/…).
      const u = new URL(req.url!.replace(/^\/raw\//, '/'), 'http://x');
      switch (u.pathname) {
        case '/cookies':
          res.setHeader('Set-Cookie', ['sid=abc; Path=/; HttpOnly', 'theme=dark; path=/settings; Max-Age=60', 'plain=1']);
          return res.end('cookies');
        case '/relative':
          res.writeHead(302, { Location: '/login?next=%2F' });
          return res.end();
        case '/self-absolute':
          res.writeHead(302, { Location: `${upOrigin}/inside/page?q=1` });
          return res.end();
        case '/self-localhost':
          res.writeHead(302, { Location: `http://localhost:${up.port}/lh` });
          return res.end();
        case '/self-bare':
          res.writeHead(302, { Location: upOrigin });
          return res.end();
        case '/foreign':
          res.writeHead(302, { Location: 'https://accounts.example.org/oauth?x=1' });
          return res.end();
        case '/scheme-relative':
          res.writeHead(302, { Location: '//cdn.example.org/x' });
          return res.end();
        case '/already-prefixed':
          res.writeHead(302, { Location: '/loc/already' });
          return res.end();
        default:
          return res.end('default');
      }
    });
    upOrigin = `http://127.0.0.1:${up.port}`;
    gw = await startGateway({
      apps: [
        { name: 'loc', port: up.port },
        { name: 'raw', port: up.port, strip_prefix: false },
      ],
    });
  });
  after(async () => {
    await gw.close();
    await up.close();
  });

  test('several Set-Cookie headers stay separate', async () => {
    const res = await fetch(`${gw.url}/loc/cookies`);
    const cookies = res.headers.getSetCookie();
    assert.equal(cookies.length, 3);
    assert.equal(cookies[2], 'plain=1');
    const raw = await request(`${gw.url}/loc/cookies`);
    assert.equal(rawValues(raw.rawHeaders, 'set-cookie').length, 3);
  });

  test('Set-Cookie Path=/ becomes Path=/{app}/, other attributes untouched', async () => {
    const cookies = (await fetch(`${gw.url}/loc/cookies`)).headers.getSetCookie();
    assert.equal(cookies[0], 'sid=abc; Path=/loc/; HttpOnly');
    assert.equal(cookies[1], 'theme=dark; path=/loc/settings; Max-Age=60');
  });

  test('Location: /x comes back as /{app}/x', async () => {
    const r = await request(`${gw.url}/loc/relative`);
    assert.equal(r.status, 302);
    assert.equal(r.headers.location, '/loc/login?next=%2F');
  });

  test('an absolute Location to the upstream’s own origin is rewritten under the prefix', async () => {
    assert.equal((await request(`${gw.url}/loc/self-absolute`)).headers.location, '/loc/inside/page?q=1');
    assert.equal((await request(`${gw.url}/loc/self-localhost`)).headers.location, '/loc/lh');
    assert.equal((await request(`${gw.url}/loc/self-bare`)).headers.location, '/loc/');
  });

  test('a foreign absolute Location is left untouched', async () => {
    assert.equal((await request(`${gw.url}/loc/foreign`)).headers.location, 'https://accounts.example.org/oauth?x=1');
    assert.equal((await request(`${gw.url}/loc/scheme-relative`)).headers.location, '//cdn.example.org/x');
  });

  test('a Location already under the prefix is not prefixed twice', async () => {
    assert.equal((await request(`${gw.url}/loc/already-prefixed`)).headers.location, '/loc/already');
  });

  test('with strip_prefix: false nothing is rewritten', async () => {
    assert.equal((await request(`${gw.url}/raw/relative`)).headers.location, '/login?next=%2F');
    assert.equal((await request(`${gw.url}/raw/self-absolute`)).headers.location, `${upOrigin}/inside/page?q=1`);
    const cookies = (await fetch(`${gw.url}/raw/cookies`)).headers.getSetCookie();
    assert.equal(cookies[0], 'sid=abc; Path=/; HttpOnly');
  });
});

describe('hop-by-hop headers', () => {
  test('are removed on the way up; end-to-end ones are kept', async () => {
    const up = await recorder();
    const g = await startGateway({ apps: [{ name: 'h', port: up.port }] });
    try {
      const out = await rawRequest(
        g.port,
        'GET /h/x HTTP/1.1\r\n' +
          `Host: 127.0.0.1:${g.port}\r\n` +
          'Connection: keep-alive, X-Hop-Secret\r\n' +
          'X-Hop-Secret: 1\r\n' +
          'Keep-Alive: timeout=5\r\n' +
          'TE: trailers\r\n' +
          'Proxy-Authorization: Basic c2VjcmV0\r\n' +
          'Proxy-Connection: keep-alive\r\n' +
          'Authorization: Bearer end-to-end\r\n' +
          'X-End: kept\r\n' +
          'Cache-Control: no-cache\r\n' +
          '\r\n',
        1500,
      );
      assert.match(out, /^HTTP\/1\.1 200/);
      const h = up.seen[0].headers;
      for (const name of ['x-hop-secret', 'keep-alive', 'te', 'proxy-authorization', 'proxy-connection']) {
        assert.equal(h[name], undefined, `${name} reached the upstream`);
      }
      assert.ok(!/x-hop-secret/i.test(String(h.connection ?? '')), 'Connection still names the client’s hop header');
      assert.equal(h.authorization, 'Bearer end-to-end');
      assert.equal(h['x-end'], 'kept');
      assert.equal(h['cache-control'], 'no-cache');
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('are removed on the way down; end-to-end ones are kept', async () => {
    const up = await rawUpstream((s: net.Socket) => {
      s.once('data', () => {
        s.end(
          'HTTP/1.1 200 OK\r\n' +
            'Connection: close, X-Resp-Hop\r\n' +
            'X-Resp-Hop: internal\r\n' +
            'Keep-Alive: timeout=7, max=99\r\n' +
            'Proxy-Authenticate: Basic realm="up"\r\n' +
            'Trailer: X-Checksum\r\n' +
            'X-End: kept\r\n' +
            'ETag: "v1"\r\n' +
            'Content-Length: 2\r\n' +
            '\r\n' +
            'ok',
        );
      });
    });
    const g = await startGateway({ apps: [{ name: 'h', port: up.port }] });
    try {
      const r = await request(`${g.url}/h/`);
      assert.equal(r.status, 200);
      assert.equal(r.text, 'ok');
      assert.equal(r.headers['x-resp-hop'], undefined);
      assert.equal(r.headers['proxy-authenticate'], undefined);
      assert.equal(r.headers.trailer, undefined);
      assert.ok(!/max=99/.test(String(r.headers['keep-alive'] ?? '')), 'the upstream’s Keep-Alive reached the client');
      assert.ok(!/x-resp-hop/i.test(String(r.headers.connection ?? '')));
      assert.equal(r.headers['x-end'], 'kept');
      assert.equal(r.headers.etag, '"v1"');
    } finally {
      await g.close();
      await up.close();
    }
  });
});

describe('forwarding headers', () => {
  test('X-Forwarded-For/-Proto/-Host/-Prefix and Forwarded reach the upstream', async () => {
    const up = await recorder();
    const g = await startGateway({ apps: [{ name: 'fw', port: up.port }] });
    try {
      await request(`${g.url}/fw/p`);
      const h = up.seen[0].headers;
      assert.equal(h['x-forwarded-for'], '127.0.0.1');
      assert.equal(h['x-forwarded-proto'], 'http');
      assert.equal(h['x-forwarded-host'], `127.0.0.1:${g.port}`);
      assert.equal(h['x-forwarded-prefix'], '/fw');
      assert.equal(h.forwarded, `for=127.0.0.1;proto=http;host="127.0.0.1:${g.port}"`);
      assert.equal(h.host, `127.0.0.1:${g.port}`, 'the client’s Host is kept by default');
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('a client’s forged X-Forwarded-* and Forwarded are not trusted by default', async () => {
    const up = await recorder();
    const g = await startGateway({ apps: [{ name: 'fw', port: up.port }] });
    try {
      await request(`${g.url}/fw/`, {
        headers: { 'X-Forwarded-For': '6.6.6.6', 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'evil.test', 'X-Real-IP': '6.6.6.6', Forwarded: 'for=6.6.6.6' },
      });
      const h = up.seen[0].headers;
      assert.equal(h['x-forwarded-for'], '127.0.0.1');
      assert.equal(h['x-forwarded-proto'], 'http');
      assert.equal(h['x-forwarded-host'], `127.0.0.1:${g.port}`);
      assert.equal(h['x-real-ip'], undefined);
      assert.ok(!String(h.forwarded).includes('6.6.6.6'));
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('with trust_forwarded: true the client’s X-Forwarded-For is appended to', async () => {
    const up = await recorder();
    const g = await startGateway({ trust_forwarded: true, apps: [{ name: 'fw', port: up.port }] });
    try {
      await request(`${g.url}/fw/`, { headers: { 'X-Forwarded-For': '203.0.113.7', 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'public.example.test' } });
      const h = up.seen[0].headers;
      assert.equal(h['x-forwarded-for'], '203.0.113.7, 127.0.0.1');
      assert.equal(h['x-forwarded-proto'], 'https');
      assert.equal(h['x-forwarded-host'], 'public.example.test');
      assert.match(String(h.forwarded), /proto=https/);
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('set_headers are added and override the client’s values', async () => {
    const up = await recorder();
    const g = await startGateway({ apps: [{ name: 's', port: up.port, set_headers: { 'X-Remote-User': 'gateway', Authorization: 'Bearer from-config' } }] });
    try {
      await request(`${g.url}/s/`, { headers: { 'X-Remote-User': 'forged', authorization: 'Bearer from-client', 'X-Other': 'kept' } });
      const raw = up.seen[0].rawHeaders;
      assert.deepEqual(rawValues(raw, 'x-remote-user'), ['gateway']);
      assert.deepEqual(rawValues(raw, 'authorization'), ['Bearer from-config']);
      assert.deepEqual(rawValues(raw, 'x-other'), ['kept']);
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('set_headers also override what the gateway adds (Host, X-Forwarded-*): one value each, not two', async () => {
    // Behind a TLS terminator: X-Forwarded-Proto must read https, not "http, https".
    const up = await recorder();
    const g = await startGateway({
      trust_forwarded: true,
      apps: [{ name: 's', port: up.port, upstream_host: 'upstream', set_headers: { Host: 'set.example.test', 'X-Forwarded-Proto': 'https', 'X-Real-IP': '198.51.100.1' } }],
    });
    try {
      await request(`${g.url}/s/`, { headers: { 'X-Real-IP': '6.6.6.6' } });
      const raw = up.seen[0].rawHeaders;
      assert.deepEqual(rawValues(raw, 'host'), ['set.example.test']);
      assert.deepEqual(rawValues(raw, 'x-forwarded-proto'), ['https']);
      assert.deepEqual(rawValues(raw, 'x-real-ip'), ['198.51.100.1']);
      assert.deepEqual(rawValues(raw, 'x-forwarded-for'), ['127.0.0.1'], 'the headers not in set_headers are still added');
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('upstream_host: upstream sends the target’s own host, a literal value is sent as is', async () => {
    const up = await recorder();
    const g = await startGateway({
      server_names: ['public.example.test'],
      apps: [
        { name: 'u', port: up.port, upstream_host: 'upstream' },
        { name: 'l', port: up.port, upstream_host: 'internal.example.test' },
        { name: 'k', port: up.port },
      ],
    });
    try {
      await request(`${g.url}/u/`);
      await request(`${g.url}/l/`);
      await request(`${g.url}/k/`, { headers: { Host: 'public.example.test' } });
      assert.equal(up.seen[0].headers.host, `127.0.0.1:${up.port}`);
      assert.equal(up.seen[1].headers.host, 'internal.example.test');
      assert.equal(up.seen[2].headers.host, 'public.example.test');
      assert.equal(rawValues(up.seen[0].rawHeaders, 'host').length, 1, 'exactly one Host header');
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('repeated request headers reach the upstream as separate, ordered values', async () => {
    const up = await recorder();
    const g = await startGateway({ apps: [{ name: 'm', port: up.port }] });
    try {
      // A raw list is sent as is: it has to carry its own Host.
      const r = await request(`${g.url}/m/`, { headers: ['Host', `127.0.0.1:${g.port}`, 'X-Multi', 'one', 'Accept', 'text/html', 'X-Multi', 'two, three', 'Accept', 'application/json', 'X-Multi', 'four'] });
      assert.equal(r.status, 200);
      const raw = up.seen[0].rawHeaders;
      assert.deepEqual(rawValues(raw, 'x-multi'), ['one', 'two, three', 'four']);
      assert.deepEqual(rawValues(raw, 'accept'), ['text/html', 'application/json']);
    } finally {
      await g.close();
      await up.close();
    }
  });
});

describe('bodiless responses and connection reuse', () => {
  let up: Upstream;
  let connections = 0;
  let gw: TestGateway;

  before(async () => {
    up = await httpUpstream((req, res) => {
      switch (req.url) {
        case '/head':
          res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '1234', 'X-Head': 'yes' });
          return res.end();
        case '/204':
          res.writeHead(204, { 'X-No': 'content' });
          return res.end();
        case '/304':
          if (req.headers['if-none-match'] === '"e1"') {
            res.writeHead(304, { ETag: '"e1"' });
            return res.end();
          }
          res.writeHead(200, { ETag: '"e1"' });
          return res.end('fresh');
        default:
          req.resume();
          return req.on('end', () => res.end(`n ${req.url}`));
      }
    });
    up.server.on('connection', () => connections++);
    gw = await startGateway({ apps: [{ name: 'b', port: up.port }] });
  });
  after(async () => {
    await gw.close();
    await up.close();
  });

  test('HEAD, 204 and 304 answer without a body and keep the client connection usable', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const head = await request(`${gw.url}/b/head`, { method: 'HEAD', agent });
      assert.equal(head.status, 200);
      assert.equal(head.headers['content-length'], '1234');
      assert.equal(head.headers['x-head'], 'yes');
      assert.equal(head.body.length, 0);
      const nc = await request(`${gw.url}/b/204`, { agent });
      assert.equal(nc.status, 204);
      assert.equal(nc.headers['x-no'], 'content');
      assert.equal(nc.body.length, 0);
      const fresh = await request(`${gw.url}/b/304`, { agent });
      assert.equal(fresh.text, 'fresh');
      const cached = await request(`${gw.url}/b/304`, { agent, headers: { 'If-None-Match': '"e1"' } });
      assert.equal(cached.status, 304);
      assert.equal(cached.headers.etag, '"e1"');
      assert.equal(cached.body.length, 0);
      const after = await request(`${gw.url}/b/next`, { agent });
      assert.equal(after.text, 'n /next', 'the connection still works after the bodiless answers');
    } finally {
      agent.destroy();
    }
  });

  test('20 sequential requests reuse upstream connections (at most 2)', async () => {
    await new Promise((r) => setTimeout(r, 50));
    const before = connections;
    for (let i = 0; i < 20; i++) {
      const r = await request(`${gw.url}/b/seq${i}`, { method: i % 2 ? 'POST' : 'GET', body: i % 2 ? `body ${i}` : undefined });
      assert.equal(r.text, `n /seq${i}`);
    }
    assert.ok(connections - before <= 2, `20 requests opened ${connections - before} upstream connections`);
  });
});

describe('a client that goes away', () => {
  test('mid-download: the upstream response is closed, not left streaming', async () => {
    let upstreamClosed = false;
    let written = 0;
    const up = await httpUpstream((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      const chunk = Buffer.alloc(64 * 1024);
      const timer = setInterval(() => {
        res.write(chunk);
        written += chunk.length;
      }, 10);
      res.on('close', () => {
        upstreamClosed = true;
        clearInterval(timer);
      });
    });
    const g = await startGateway({ apps: [{ name: 'dl', port: up.port }] });
    try {
      await new Promise<void>((ok, fail) => {
        const req = http.get(`${g.url}/dl/endless`, { agent: false }, (res) => {
          res.once('data', () => {
            req.destroy();
            ok();
          });
        });
        req.on('error', (err) => (err.message === 'socket hang up' ? undefined : fail(err)));
      });
      await until(() => upstreamClosed, 15_000, 'the upstream response to be closed');
      const at = written;
      await new Promise((r) => setTimeout(r, 200));
      assert.ok(written - at <= 64 * 1024, 'the upstream kept streaming to nobody');
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('a client that stops reading holds the upstream back: the gateway does not buffer the download', async () => {
    // The upstream writes as fast as the gateway takes its bytes, for at most 256 MiB or 3 s.
    let written = 0;
    let blocked = false;
    const cap = 256 * 1024 * 1024;
    const up = await httpUpstream((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      const chunk = Buffer.alloc(256 * 1024);
      const deadline = Date.now() + 3000;
      const pump = () => {
        while (written < cap && Date.now() < deadline) {
          written += chunk.length;
          if (!res.write(chunk)) {
            blocked = true;
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
    });
    const g = await startGateway({ apps: [{ name: 'dl', port: up.port }] });
    try {
      let client!: http.ClientRequest;
      await new Promise<void>((ok, fail) => {
        client = http.get(`${g.url}/dl/big`, { agent: false }, (res) => {
          // One chunk read, then nothing more: the client's socket stops being read.
          res.once('data', () => {
            res.pause();
            ok();
          });
        });
        client.on('error', fail);
      });
      await until(() => blocked, 15_000, 'the upstream to be held back');
      // Time for a gateway without backpressure to take much more than socket buffers hold.
      await new Promise((r) => setTimeout(r, 1500));
      assert.ok(written < 64 * 1024 * 1024, `the upstream wrote ${written} bytes to a client that reads nothing`);
      client.destroy();
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('while the upstream is still thinking: the upstream request is cancelled', async () => {
    let received = false;
    let upstreamClosed = false;
    const up = await httpUpstream((req) => {
      received = true;
      req.socket.on('close', () => (upstreamClosed = true)); // never answers
    });
    const g = await startGateway({ apps: [{ name: 'slow', port: up.port }] });
    try {
      const req = http.get(`${g.url}/slow/think`, { agent: false });
      req.on('error', () => {});
      await until(() => received, 15_000, 'the upstream to receive the request');
      req.destroy();
      await until(() => upstreamClosed, 15_000, 'the upstream connection to be closed');
      const r = await request(`${g.url}/_porthole/health`);
      assert.equal(r.status, 200);
    } finally {
      await g.close();
      await up.close();
    }
  });
});
