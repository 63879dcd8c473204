/**
 * The proof: a real MCP server that speaks stdio
 * (@modelcontextprotocol/server-everything) behind `porthole stdio`, driven
 * by the official TypeScript SDK over its WebSocket client transport.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { WebSocketClientTransport } from '@modelcontextprotocol/sdk/client/websocket.js';
import WebSocket from 'ws';
import { startStdioServer, type StdioServer } from 'porthole';
import { waitFor } from '../helpers/net.js';
import { alive, allGone, environOf, killAll } from './proc.js';

const require = createRequire(import.meta.url);
const SERVER = join(dirname(require.resolve('@modelcontextprotocol/server-everything/package.json')), 'dist', 'index.js');

/** Every WebSocket the SDK opens, with how it closed: the transport does not say. */
const sockets: { ws: WebSocket; close?: { code: number; reason: string } }[] = [];
class RecordingWebSocket extends WebSocket {
  constructor(url: string | URL, protocols?: string | string[]) {
    super(url, protocols);
    const entry: (typeof sockets)[number] = { ws: this };
    sockets.push(entry);
    this.on('close', (code, reason) => (entry.close = { code, reason: reason.toString() }));
  }
}
// Node 20 has no global WebSocket (22 has); the SDK's transport uses the global one.
const saved = (globalThis as { WebSocket?: unknown }).WebSocket;
(globalThis as { WebSocket?: unknown }).WebSocket = RecordingWebSocket;
after(() => ((globalThis as { WebSocket?: unknown }).WebSocket = saved));

async function mcpServer(args: string[] = ['stdio']): Promise<{ server: StdioServer; url: URL; logs: string[]; seen: Set<number>; stop(): Promise<void> }> {
  const logs: string[] = [];
  const server = await startStdioServer({ command: [process.execPath, SERVER, ...args], name: 'everything', killGraceMs: 2000, log: (l, s, pid) => logs.push(`${s} ${pid} ${l}`) });
  const seen = new Set<number>();
  const watch = setInterval(() => server.pids.forEach((p) => seen.add(p)), 10);
  return {
    server,
    url: new URL(server.url.replace(/^http/, 'ws') + '/'),
    logs,
    seen,
    async stop() {
      clearInterval(watch);
      await server.close();
      killAll([...seen]);
    },
  };
}

async function connect(url: URL): Promise<{ client: Client; socket: (typeof sockets)[number] }> {
  const client = new Client({ name: 'porthole-test', version: '1.0.0' });
  const before = sockets.length;
  await client.connect(new WebSocketClientTransport(url));
  return { client, socket: sockets[before] };
}

/** Every live process carrying `PORTHOLE_RUN=marker` (the run's, whatever group it is in). */
function marked(marker: string): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(`PORTHOLE_RUN=${marker}`)) found.push(pid);
    } catch {
      // gone, or not ours
    }
  }
  return found;
}

describe('an MCP server over WebSocket (server-everything behind porthole stdio, the official SDK)', { timeout: 120_000 }, () => {
  test('initialize, list tools, call a tool, read a resource; closing the client ends the server', async () => {
    const m = await mcpServer();
    try {
      const { client, socket } = await connect(m.url);
      assert.equal(socket.ws.protocol, 'mcp', 'the SDK\'s subprotocol is accepted');
      assert.match(client.getServerVersion()?.name ?? '', /everything/);
      const { tools } = await client.listTools();
      assert.ok(tools.some((t) => t.name === 'echo'), tools.map((t) => t.name).join(', '));
      const echoed = await client.callTool({ name: 'echo', arguments: { message: 'through porthole' } });
      assert.match(JSON.stringify(echoed.content), /through porthole/);
      const { resources } = await client.listResources();
      assert.ok(resources.length > 0);
      const read = await client.readResource({ uri: resources[0].uri });
      assert.equal(read.contents[0].uri, resources[0].uri);
      assert.ok(('text' in read.contents[0] && read.contents[0].text.length > 0) || 'blob' in read.contents[0]);
      const [pid] = m.server.pids;
      await client.close();
      await allGone([pid]);
      await waitFor(() => m.server.processes === 0, 5000, 'the server to forget the process');
    } finally {
      await m.stop();
    }
  });

  test('two clients at once get two processes, each answering its own client', async () => {
    const m = await mcpServer();
    try {
      const [a, b] = await Promise.all([connect(m.url), connect(m.url)]);
      assert.equal(m.server.processes, 2);
      const pids = m.server.pids;
      assert.notEqual(pids[0], pids[1]);
      const [ra, rb] = await Promise.all([
        a.client.callTool({ name: 'echo', arguments: { message: 'from a' } }),
        b.client.callTool({ name: 'echo', arguments: { message: 'from b' } }),
      ]);
      assert.match(JSON.stringify(ra.content), /from a/);
      assert.doesNotMatch(JSON.stringify(ra.content), /from b/);
      assert.match(JSON.stringify(rb.content), /from b/);
      await a.client.close();
      await waitFor(() => pids.filter(alive).length === 1, 10_000, "a's process to end, b's to stay");
      // b's process still answers after a left.
      const again = await b.client.callTool({ name: 'echo', arguments: { message: 'still here' } });
      assert.match(JSON.stringify(again.content), /still here/);
      await b.client.close();
      await allGone(pids);
    } finally {
      await m.stop();
    }
  });

  test('a client that disconnects mid-call leaves no process behind (checked in /proc by the run marker)', async () => {
    const m = await mcpServer();
    try {
      const { client, socket } = await connect(m.url);
      const [pid] = m.server.pids;
      const marker = environOf(pid).get('PORTHOLE_RUN')!;
      assert.deepEqual(marked(marker), [pid], 'the server is the one process of its run');
      let progressed = false;
      const call = client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 60, steps: 60 } }, undefined, { onprogress: () => (progressed = true), timeout: 120_000 });
      call.catch(() => undefined);
      await waitFor(() => progressed, 10_000, 'the long call to report progress');
      socket.ws.terminate(); // cut, no close frame
      await allGone([pid]);
      await waitFor(() => marked(marker).length === 0 && m.server.processes === 0, 5000, 'no process of the run in /proc');
      await assert.rejects(call, 'the pending call fails instead of hanging');
    } finally {
      await m.stop();
    }
  });

  test('a server that crashes mid-session: the client gets 1011 with the signal, and its pending call fails at once', async () => {
    const m = await mcpServer();
    try {
      const { client, socket } = await connect(m.url);
      const [pid] = m.server.pids;
      const call = client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 60, steps: 60 } }, undefined, { timeout: 120_000 });
      call.catch(() => undefined);
      process.kill(pid, 'SIGSEGV');
      await assert.rejects(call);
      await waitFor(() => socket.close, 5000, 'the close frame');
      assert.equal(socket.close!.code, 1011);
      assert.match(socket.close!.reason, /^PH_ERR_STDIO_EXIT: everything: killed by SIGSEGV/);
    } finally {
      await m.stop();
    }
  });

  test('a server that exits at start: initialize fails, the close says "exit code 1" and the server\'s last stderr line', async () => {
    const m = await mcpServer(['no-such-transport']);
    try {
      const before = sockets.length;
      const client = new Client({ name: 'porthole-test', version: '1.0.0' });
      await assert.rejects(client.connect(new WebSocketClientTransport(m.url)));
      const socket = sockets[before];
      await waitFor(() => socket.close, 5000, 'the close frame');
      assert.equal(socket.close!.code, 1011);
      assert.match(socket.close!.reason, /^PH_ERR_STDIO_EXIT: everything: exit code 1: Unknown transport: no-such-transport/);
      assert.ok(m.logs.some((l) => /stderr \d+ Unknown transport: no-such-transport/.test(l)), 'its stderr is in the log');
    } finally {
      await m.stop();
    }
  });
});
