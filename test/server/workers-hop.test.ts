/**
 * The hop from a worker to the primary (src/workers/internal-hop.ts) on real sockets: only
 * the per-start secret is answered, the client's own address reaches the primary (the
 * admin API's loopback check judges the client, not the worker), a primary that is gone
 * is a 502 with its code; and the restart budget that keeps a crashing worker from being
 * forked in a loop.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';
import { listenInternal, newSecret, primaryHop } from '../../src/workers/internal-hop.js';
import { RestartBudget } from '../../src/workers/restart-budget.js';
import { closeServer, collect, listen } from '../helpers/net.js';

function get(port: number, path: string, opts: { headers?: Record<string, string>; localAddress?: string } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((ok, fail) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers: opts.headers, localAddress: opts.localAddress, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => ok({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', fail);
  });
}

describe('workers: the hop to the primary', () => {
  test('a request without the secret, or with a wrong one, is 403 PH_ERR_WORKER_AUTH and logged; nothing is handled', async () => {
    const errors = collect('error', 'gw-hop');
    let handled = 0;
    const internal = await listenInternal({ secret: newSecret(), gatewayId: 'gw-hop', handle: (_req, res) => (handled++, res.end('no')) });
    try {
      for (const headers of [{}, { 'X-Porthole-Worker': 'guess' }] as Record<string, string>[]) {
        const res = await get(internal.port, '/_porthole/api/apps', { headers });
        assert.equal(res.status, 403);
        assert.equal(res.headers['x-porthole-error'], 'PH_ERR_WORKER_AUTH');
      }
      assert.equal(handled, 0);
      assert.equal(errors.events.filter((e) => e.code === 'PH_ERR_WORKER_AUTH').length, 2);
    } finally {
      errors.stop();
      await internal.close();
    }
  });

  test("through a worker's hop the primary sees the client's address and the worker's pid, and the answer streams back", async () => {
    const secret = newSecret();
    const seen: { remote?: string; local?: string; worker: number; url?: string }[] = [];
    const internal = await listenInternal({
      secret,
      gatewayId: 'gw-hop',
      handle: (req, res, client) => {
        seen.push({ remote: req.socket.remoteAddress, local: req.socket.localAddress, worker: client.worker, url: req.url });
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.end(`seen ${req.headers['x-porthole-worker'] === undefined ? 'without' : 'with'} the secret`);
      },
    });
    const hop = primaryHop({ port: internal.port, secret, gatewayId: 'gw-hop' });
    const front = http.createServer((req, res) => hop.forward(req, res));
    const port = await listen(front);
    try {
      // From 127.0.0.2: the hop itself connects from 127.0.0.1.
      const res = await get(port, '/_porthole/health?x=1', { localAddress: '127.0.0.2' });
      assert.equal(res.status, 200);
      assert.equal(res.body, 'seen without the secret', 'the secret is not passed on to the handlers');
      assert.deepEqual(seen, [{ remote: '127.0.0.2', local: '127.0.0.1', worker: process.pid, url: '/_porthole/health?x=1' }]);
    } finally {
      hop.close();
      await closeServer(front);
      await internal.close();
    }
  });

  test('a primary that does not answer: 502 PH_ERR_PRIMARY_UNREACHABLE, logged', async () => {
    const errors = collect('error', 'gw-hop');
    // A port that was free a moment ago: nothing listens there now.
    const gone = http.createServer();
    const deadPort = await listen(gone);
    await closeServer(gone);
    const hop = primaryHop({ port: deadPort, secret: newSecret(), gatewayId: 'gw-hop' });
    const front = http.createServer((req, res) => hop.forward(req, res));
    const port = await listen(front);
    try {
      const res = await get(port, '/_porthole/api/apps', { headers: { Accept: 'application/json' } });
      assert.equal(res.status, 502);
      assert.equal(res.headers['x-porthole-error'], 'PH_ERR_PRIMARY_UNREACHABLE');
      assert.ok(errors.events.some((e) => e.code === 'PH_ERR_PRIMARY_UNREACHABLE'));
    } finally {
      errors.stop();
      hop.close();
      await closeServer(front);
    }
  });
});

describe('workers: the restart budget', () => {
  test('5 replacements within 60 s, then PH_ERR_WORKER_RESTARTS until the oldest leaves the window', () => {
    let now = 0;
    const budget = new RestartBudget(5, 60_000, () => now);
    for (let i = 0; i < 5; i++) assert.equal(budget.take(), null, `restart ${i + 1}`);
    now = 59_999;
    const refused = budget.take();
    assert.equal(refused?.code, 'PH_ERR_WORKER_RESTARTS');
    assert.match(refused!.message, /workers ended 6 times within 60 s/);
    now = 60_000;
    assert.equal(budget.take(), null, 'the first restart has left the window');
  });
});
