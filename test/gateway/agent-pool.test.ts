/**
 * The keep-alive agents of upstreams are shared across route snapshots (a
 * reload keeps warm connections), but only while a snapshot uses them: a
 * gateway whose apps change ports (restarts, a cluster's nodes coming back
 * at new addresses) kept one agent per address it ever saw. A request in
 * flight on a route that is gone still completes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Gateway } from '../../src/gateway/gateway.js';

const agentsOf = (g: Gateway): number => (g as unknown as { agents: { size: number } }).agents.size;

test('a reload drops the agents no route uses any more; a request in flight through a dropped one completes', async (t) => {
  let release!: () => void;
  const held = new Promise<void>((ok) => (release = ok));
  let arrived!: () => void;
  const reached = new Promise<void>((ok) => (arrived = ok));
  const slow = http.createServer(async (req, res) => {
    if (req.url?.endsWith('/slow')) {
      arrived();
      await held;
    }
    res.end(`answered ${req.url}`);
  });
  await new Promise<void>((ok) => slow.listen(0, '127.0.0.1', ok));
  t.after(() => slow.close());
  const port = (slow.address() as AddressInfo).port;
  const config = (p: number, more: object[] = []) => ({ apps: [{ name: 'app', port: p }, ...more] });

  const gateway = new Gateway(config(port));
  const { url } = await gateway.listen('127.0.0.1', 0);
  t.after(() => gateway.close());
  const inFlight = fetch(`${url}/app/slow`).then((r) => r.text());
  await reached;

  // 300 port changes of one app and of a second one: only the current addresses keep an agent.
  for (let i = 1; i <= 300; i++) gateway.reload(config(port + i, [{ name: 'other', port: 20_000 + i }]));
  assert.ok(agentsOf(gateway) <= 2, `agents kept after 300 reloads: ${agentsOf(gateway)}`);

  // The request that started on the first route still gets its answer.
  release();
  assert.equal(await inFlight, 'answered /slow');
  // Back to the first port: a fresh agent, and it works.
  gateway.reload(config(port));
  assert.equal(await (await fetch(`${url}/app/x`)).text(), 'answered /x');
  assert.ok(agentsOf(gateway) <= 1, `agents: ${agentsOf(gateway)}`);
});

test('the connection pools of body-less GETs go with their agent when a reload stops using it', async (t) => {
  const up = http.createServer((req, res) => res.end(`answered ${req.url}`));
  await new Promise<void>((ok) => up.listen(0, '127.0.0.1', ok));
  t.after(() => up.close());
  const port = (up.address() as AddressInfo).port;
  const gateway = new Gateway({ apps: [{ name: 'app', port }] });
  const { url } = await gateway.listen('127.0.0.1', 0);
  t.after(() => gateway.close());
  const poolsOf = (g: Gateway): number => (g as unknown as { agents: { pools: number } }).agents.pools;

  assert.equal(poolsOf(gateway), 0, 'no pool before a request');
  assert.equal(await (await fetch(`${url}/app/a`)).text(), 'answered /a');
  assert.equal(poolsOf(gateway), 1);
  // Another port: the old agent, and its pool, are forgotten.
  gateway.reload({ apps: [{ name: 'app', port: port + 1 }] });
  assert.equal(poolsOf(gateway), 0);
  gateway.reload({ apps: [{ name: 'app', port }] });
  assert.equal(await (await fetch(`${url}/app/b`)).text(), 'answered /b');
  assert.equal(poolsOf(gateway), 1);
});
