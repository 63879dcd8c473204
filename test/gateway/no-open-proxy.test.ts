import assert from 'node:assert/strict';
import { test } from 'node:test';
import { httpUpstream, rawRequest, startGateway } from '../helpers/net.js';

test('not an open proxy: absolute-form URLs, foreign Hosts and CONNECT reach no app', async () => {
  let hits = 0;
  const up = await httpUpstream((_req, res) => {
    hits++;
    res.end('app');
  });
  const g = await startGateway({ apps: [{ name: 'a', port: up.port }] });
  try {
    const absolute = await rawRequest(g.port, `GET http://127.0.0.1:${up.port}/a/ HTTP/1.1\r\nHost: 127.0.0.1:${up.port}\r\nConnection: close\r\n\r\n`);
    assert.match(absolute, /^HTTP\/1\.1 404/);
    const foreignHost = await rawRequest(g.port, 'GET /elsewhere HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n');
    assert.match(foreignHost, /^HTTP\/1\.1 421/, 'a name that is not the gateway\'s is refused on loopback (DNS rebinding)');
    const connect = await rawRequest(g.port, `CONNECT 127.0.0.1:${up.port} HTTP/1.1\r\nHost: 127.0.0.1:${up.port}\r\n\r\n`, 1000);
    assert.doesNotMatch(connect, /^HTTP\/1\.1 200/);
    assert.equal(hits, 0, 'the upstream was never reached');
    // The real route still works.
    assert.equal(await (await fetch(`${g.url}/a/`)).text(), 'app');
    assert.equal(hits, 1);
  } finally {
    await g.close();
    await up.close();
  }
});
