/**
 * Regression (found by test/reliability/fuzz.test.ts): a client pipelines two
 * requests and leaves before the first is answered. Node never emits `close`
 * on the second, queued response, so the gateway neither logged the request it
 * had passed on to the app nor counted it finished: a drain then waited its
 * whole drain_timeout for it.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { collect, httpUpstream, sleep, startGateway, waitFor } from '../helpers/net.js';

test('pipelined requests of a client that left are each logged (as not answered), and a drain does not wait for them', async (t) => {
  const seen: string[] = [];
  const up = await httpUpstream((req, res) => {
    seen.push(req.url ?? '');
    setTimeout(() => res.end('late'), 200);
  });
  t.after(() => up.close());
  const gw = await startGateway({ drain_timeout: '8s', apps: [{ name: 'up', port: up.port }] });
  const log = collect('request', gw.gw.id);
  t.after(() => log.stop());

  const client = net.connect(gw.port, '127.0.0.1');
  client.on('error', () => undefined);
  await new Promise((ok) => client.once('connect', ok));
  const head = (p: string) => `GET /up/${p} HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\n\r\n`;
  client.write(head('first') + head('second'));
  await waitFor(() => seen.length >= 1, 5000, 'the first request at the app');
  await sleep(50);
  client.destroy();

  const paths = () => log.events.map((e) => e.path).sort();
  await waitFor(() => seen.every((p) => paths().includes(`/up${p}`)), 5000, `a log line for each request the app received (${seen.join(', ')})`);
  for (const e of log.events) {
    assert.equal(e.code, 'PH_ERR_REQUEST_ABORTED', `${e.path}: logged as not answered, not as the ${e.status} of a fresh response`);
  }
  const started = Date.now();
  await gw.close();
  assert.ok(Date.now() - started < 4000, `the drain took ${Date.now() - started} ms: it waited for a request nobody will answer`);
});

test('a request whose client left is not sent to the app again (the reused-connection retry is for the upstream\'s resets only)', async (t) => {
  const seen: string[] = [];
  const up = await httpUpstream((req, res) => {
    seen.push(req.url ?? '');
    setTimeout(() => res.end('late'), 100);
  });
  t.after(() => up.close());
  const gw = await startGateway({ apps: [{ name: 'up', port: up.port }] });
  t.after(() => gw.close());
  for (let i = 0; i < 5; i++) {
    // Warm kept-alive upstream connections, so both next requests go out on reused sockets.
    await Promise.all([1, 2, 3].map((n) => fetch(`http://127.0.0.1:${gw.port}/up/warm${n}`).then((r) => r.text())));
    const client = net.connect(gw.port, '127.0.0.1');
    client.on('error', () => undefined);
    await new Promise((ok) => client.once('connect', ok));
    const head = (p: string) => `GET /up/${p} HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\n\r\n`;
    client.write(head(`a${i}`) + head(`b${i}`));
    await waitFor(() => seen.includes(`/a${i}`), 5000, 'the first request at the app');
    client.destroy();
  }
  await sleep(500);
  const counts = new Map<string, number>();
  for (const p of seen) counts.set(p, (counts.get(p) ?? 0) + 1);
  assert.deepEqual([...counts].filter(([p, n]) => n > 1 && !p.startsWith('/warm')), [], `each request reached the app once: ${seen.join(' ')}`);
});
