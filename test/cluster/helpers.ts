/**
 * Cluster nodes in the test process: createServer() with a Redis store, each
 * with its own data directory and peer listener on 127.0.0.1 port 0.
 */
import type { TestContext } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type PortholeServer, type ServerStarted } from 'porthole';

export interface TestNode {
  name: string;
  server: PortholeServer;
  started: ServerStarted;
  url: string;
  /** An admin API call with this node's token; resolves with status and JSON body. */
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
}

export async function startNode(t: TestContext, name: string, redisUrl: string, extra: Record<string, unknown> = {}, cluster: Record<string, unknown> = {}): Promise<TestNode> {
  const dataDir = mkdtempSync(join(tmpdir(), `ph-node-${name}-`));
  const server = createServer({
    config: { store: { url: redisUrl, prefix: `t${process.pid}:` }, cluster: { listen: '127.0.0.1:0', heartbeat_ttl: '2s', ...cluster }, ...extra },
    node: name,
    dataDir,
    listen: { port: 0 },
  });
  const started = await server.listen();
  let closed = false;
  const node: TestNode = {
    name,
    server,
    started,
    url: started.url,
    async api(method, path, body) {
      const res = await fetch(`${started.url}/_porthole/api${path}`, {
        method,
        headers: { authorization: `Bearer ${started.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = text;
      }
      return { status: res.status, body: json };
    },
    async close() {
      if (closed) return;
      closed = true;
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  t.after(() => node.close());
  return node;
}

/** Polls `check` every 10 ms until it returns a value other than undefined, or fails after `ms`. */
export async function until<T>(what: string, check: () => Promise<T | undefined> | T | undefined, ms = 5_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
