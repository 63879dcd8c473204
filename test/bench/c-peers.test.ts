/**
 * The benchmark's C peers (bench/peers/c-upstream.c, bench/clients/handshakes.c) speak
 * HTTP and WebSocket correctly: a peer that cut a corner would make the figures it
 * produces wrong, not just fast.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import WebSocket, { WebSocketServer } from 'ws';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'porthole-c-peers-'));
const upstreamBin = join(dir, 'c-upstream');
const clientBin = join(dir, 'handshakes');
let upstream: ChildProcess;
let port = 0;

before(async () => {
  // The same builds as the benchmark's (bench/run.mjs, cBuild); gcc and libssl-dev come with bench/lib/peers.mjs's ensureInstalled.
  execFileSync('gcc', ['-O2', '-Wall', '-Werror', '-o', upstreamBin, join(ROOT, 'bench/peers/c-upstream.c'), '-lcrypto']);
  execFileSync('gcc', ['-O2', '-Wall', '-Werror', '-o', clientBin, join(ROOT, 'bench/clients/handshakes.c'), '-lpthread']);
  upstream = spawn(upstreamBin, ['0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(upstream.stdout!, 'data')) as [Buffer];
  port = Number(String(line).trim());
  assert.ok(port > 0, `the upstream prints its port: ${line}`);
});

after(() => {
  upstream?.kill();
  rmSync(dir, { recursive: true, force: true });
});

test('the C upstream answers every request on a kept-alive connection with its fixed body', async () => {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const ports = new Set<number>();
  try {
    for (let i = 0; i < 3; i++) {
      const body = await new Promise<string>((ok, fail) => {
        request({ host: '127.0.0.1', port, path: `/page/${i}`, agent }, (res) => {
          ports.add(res.socket.localPort!);
          let b = '';
          res.on('data', (d) => (b += d)).on('end', () => ok(`${res.statusCode} ${res.headers['content-length']} ${b}`));
        })
          .on('error', fail)
          .end();
      });
      assert.equal(body, '200 24 hello from the upstream\n');
    }
    assert.equal(ports.size, 1, 'one connection carried all three');
  } finally {
    agent.destroy();
  }
});

test('the C upstream echoes text and binary messages (a 16-bit length among them), answers a ping, and echoes the close code', async () => {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/echo`, { perMessageDeflate: false });
  await once(ws, 'open');
  const got: [string, boolean][] = [];
  ws.on('message', (d, binary) => got.push([binary ? (d as Buffer).toString('hex') : String(d), binary]));
  const pong = once(ws, 'pong');
  ws.send('hello');
  const big = Buffer.alloc(300, 7);
  ws.send(big);
  ws.ping(Buffer.from('p'));
  const [data] = (await pong) as [Buffer];
  assert.equal(String(data), 'p');
  while (got.length < 2) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(got, [['hello', false], [big.toString('hex'), true]]);
  ws.close(4001, 'bye');
  const [code, reason] = (await once(ws, 'close')) as [number, Buffer];
  assert.equal(code, 4001);
  assert.equal(String(reason), 'bye');
});

test('the C handshake client completes its cycle against the C upstream and counts each one', async () => {
  const out = execFileSync(clientBin, ['127.0.0.1', String(port), '/hs', '2', '0.3'], { encoding: 'utf8' });
  const r = JSON.parse(out) as { done: number; errors: number; p50: number; p99: number };
  assert.equal(r.errors, 0);
  assert.ok(r.done > 10, `cycles: ${r.done}`);
  assert.ok(r.p50 > 0 && r.p99 >= r.p50);
});

test('the C handshake client counts a server that does not upgrade, or answers with a wrong key, as errors, never as done', async () => {
  let wrongKey = false;
  const server = createServer((_req, res) => res.end('no'));
  server.on('upgrade', (_req, socket) => {
    // A 101 whose accept key is not the one for the client's key.
    if (wrongKey) socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n');
    else socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const p = (server.address() as AddressInfo).port;
  try {
    for (const wrong of [false, true]) {
      wrongKey = wrong;
      // Not execFileSync: the server answering it runs on this thread.
      const r = JSON.parse((await promisify(execFile)(clientBin, ['127.0.0.1', String(p), '/hs', '1', '0.2'], { encoding: 'utf8' })).stdout) as { done: number; errors: number };
      assert.equal(r.done, 0, wrong ? 'a wrong accept key' : 'a refusal');
      assert.ok(r.errors > 0);
    }
  } finally {
    server.close();
  }
});

test('the C handshake client counts an echo that does not carry its payload back as an error', async () => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  // The right frame header, the wrong bytes.
  wss.on('connection', (ws) => ws.on('message', (d: Buffer) => ws.send(Buffer.alloc(d.length, 2))));
  try {
    const p = (wss.address() as AddressInfo).port;
    const r = JSON.parse((await promisify(execFile)(clientBin, ['127.0.0.1', String(p), '/hs', '1', '0.2'], { encoding: 'utf8' })).stdout) as { done: number; errors: number };
    assert.equal(r.done, 0);
    assert.ok(r.errors > 0);
  } finally {
    wss.close();
  }
});

test('the C handshake client refuses bad arguments', () => {
  const r = spawnSyncStatus(clientBin, ['127.0.0.1', '1', '/', '0', '1']);
  assert.equal(r, 2);
});

function spawnSyncStatus(bin: string, args: string[]): number | null {
  try {
    execFileSync(bin, args, { stdio: 'ignore' });
    return 0;
  } catch (err) {
    return (err as { status: number | null }).status;
  }
}
